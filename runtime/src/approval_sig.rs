//! Signed approval statements: the one place that builds, canonicalises, signs, parses and
//! verifies them (`pbc approve --sign`, `pbc serve` as a delegate, `pbc resume` and the Argo
//! runner's gate check all call this module).
//!
//! A statement is the JSON object `{"v": 1, "run", "stage", "decision", "approver",
//! "playbook_sha256", "issued_at", "expires_at"}` (times in RFC 3339, UTC), canonicalised per
//! RFC 8785 (JCS), signed with Ed25519, and carried as `base64url(payload).base64url(sig)`
//! (no padding). The payload must be the canonical form itself, so one statement has exactly
//! one encoding. A signature verifies under the approver's own key (`approvals.keys`) or under
//! a trusted delegate's (`approvals.delegates`: a service that signs for the people it
//! authenticated).

use crate::agents::same_person;
use crate::report::ApproverRef;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
pub use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use ed25519_dalek::{Signature, Signer, VerifyingKey};
use pbc_compiler::config::{ApprovalSettings, public_key_bytes};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

/// The statement format's version.
pub const VERSION: u64 = 1;
/// The longest statement accepted (an encoded one is a few hundred bytes).
pub const MAX_STATEMENT_BYTES: usize = 8 * 1024;
/// How far in the future `issued_at` may be (clocks differ between machines).
pub const CLOCK_SKEW_SECS: i64 = 300;
/// How long a statement `pbc approve --sign` and `pbc serve` make stays valid by default.
pub const DEFAULT_VALIDITY_SECS: i64 = 24 * 3600;
/// The largest private key file read.
const MAX_KEY_FILE_BYTES: u64 = 16 * 1024;

/// Hex SHA-256 (the bundle manifest's form).
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// An approval statement.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Statement {
    pub v: u64,
    /// The run id (a workflow's name in Argo).
    pub run: String,
    /// The stage whose gate it decides (empty: the playbook's own approval).
    pub stage: String,
    /// `approve` or `reject`.
    pub decision: String,
    pub approver: String,
    /// The SHA-256 of the resolved playbook (the bundle manifest's `resolved/<name>.yaml`).
    pub playbook_sha256: String,
    /// RFC 3339, UTC.
    pub issued_at: String,
    /// RFC 3339, UTC.
    pub expires_at: String,
}

/// Why a statement, or a set of them, does not pass a gate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rejected {
    /// Signed approvals are required and none was given.
    Missing,
    /// Not a statement: its encoding, JSON, fields or canonical form.
    Malformed(String),
    /// No key is configured for the approver and no delegate is trusted.
    UnknownKey {
        approver: String,
    },
    /// The signature verifies under neither the approver's key nor a delegate's.
    ForgedSignature {
        approver: String,
    },
    /// The approver is not among the gate's (or its branch's) approvers.
    NotAnApprover {
        approver: String,
        allowed: String,
    },
    /// The approver triggered the run.
    Requester {
        approver: String,
    },
    /// Signed for another version of the playbook.
    ContentHash {
        signed: String,
        running: String,
    },
    Expired {
        expires_at: String,
    },
    NotYetValid {
        issued_at: String,
    },
    /// A statement for another run (a replay).
    OtherRun {
        signed: String,
        expected: String,
    },
    /// A statement for another stage's gate (a replay).
    OtherStage {
        signed: String,
        expected: String,
    },
    /// The statement's decision is not the one the gate was given.
    DecisionMismatch {
        signed: String,
        expected: String,
    },
    /// Fewer distinct people approved than `min-approvals` asks.
    TooFew {
        need: usize,
        got: usize,
    },
}

impl Rejected {
    /// A stable name for the reason (audit details, JSON).
    pub fn code(&self) -> &'static str {
        match self {
            Rejected::Missing => "missing",
            Rejected::Malformed(_) => "malformed",
            Rejected::UnknownKey { .. } => "unknown-key",
            Rejected::ForgedSignature { .. } => "forged-signature",
            Rejected::NotAnApprover { .. } => "not-an-approver",
            Rejected::Requester { .. } => "requester",
            Rejected::ContentHash { .. } => "content-hash-mismatch",
            Rejected::Expired { .. } => "expired",
            Rejected::NotYetValid { .. } => "not-yet-valid",
            Rejected::OtherRun { .. } => "other-run",
            Rejected::OtherStage { .. } => "other-stage",
            Rejected::DecisionMismatch { .. } => "decision-mismatch",
            Rejected::TooFew { .. } => "too-few-approvers",
        }
    }
}

impl fmt::Display for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rejected::Missing => write!(
                f,
                "no signed approval statement (approvals.require-signature is on: approve with `pbc approve ID --sign KEYFILE` or through `pbc serve`)"
            ),
            Rejected::Malformed(m) => write!(f, "not a signed approval statement: {m}"),
            Rejected::UnknownKey { approver } => write!(
                f,
                "no public key for approver {approver} (approvals.keys) and no trusted delegate (approvals.delegates)"
            ),
            Rejected::ForgedSignature { approver } => write!(
                f,
                "the signature of the statement by {approver} does not verify under their key or a trusted delegate's (forged or altered)"
            ),
            Rejected::NotAnApprover { approver, allowed } => {
                write!(
                    f,
                    "{approver} may not approve this gate: allowed are {allowed}"
                )
            }
            Rejected::Requester { approver } => write!(
                f,
                "{approver} triggered the run and cannot approve its gates (four-eyes rule)"
            ),
            Rejected::ContentHash { signed, running } => write!(
                f,
                "the statement approves another version of the playbook (sha256 {signed}; the run's is {running})"
            ),
            Rejected::Expired { expires_at } => {
                write!(f, "the statement expired at {expires_at}")
            }
            Rejected::NotYetValid { issued_at } => {
                write!(f, "the statement is issued in the future ({issued_at})")
            }
            Rejected::OtherRun { signed, expected } => write!(
                f,
                "the statement is for run {signed}, not {expected} (a replay)"
            ),
            Rejected::OtherStage { signed, expected } => write!(
                f,
                "the statement is for stage `{signed}`, not `{expected}` (a replay)"
            ),
            Rejected::DecisionMismatch { signed, expected } => write!(
                f,
                "the statement says `{signed}`, the gate was given `{expected}`"
            ),
            Rejected::TooFew { need, got } => write!(
                f,
                "{got} distinct approver(s) signed; the gate needs {need} (min-approvals)"
            ),
        }
    }
}

/// What a statement must match to pass a gate.
#[derive(Clone, Debug)]
pub struct Expect<'a> {
    pub run: &'a str,
    /// Empty: the playbook's own approval.
    pub stage: &'a str,
    pub decision: &'a str,
    pub playbook_sha256: &'a str,
    /// Who triggered the run (never an approver).
    pub requester: &'a str,
    /// The gate's approvers (its branch's, for a conditional gate). Empty: anyone but the
    /// requester.
    pub approvers: &'a [ApproverRef],
    /// Role members.
    pub roles: &'a BTreeMap<String, Vec<String>>,
    /// Distinct approvers needed (`min-approvals`, at least 1).
    pub min_approvals: usize,
    /// Now, in Unix seconds.
    pub now: i64,
}

/// The public keys statements are verified with.
#[derive(Clone, Debug, Default)]
pub struct Keys {
    approvers: Vec<(String, VerifyingKey)>,
    delegates: Vec<(String, VerifyingKey)>,
}

impl Keys {
    /// The keys of `approvals:`. A key that is not one was refused when the configuration
    /// was read; one that still fails here is left out (it verifies nothing).
    pub fn from_settings(s: &ApprovalSettings) -> Keys {
        let parse = |m: &BTreeMap<String, String>| -> Vec<(String, VerifyingKey)> {
            m.iter()
                .filter_map(|(n, k)| {
                    let b = public_key_bytes(k)?;
                    Some((n.clone(), VerifyingKey::from_bytes(&b).ok()?))
                })
                .collect()
        };
        Keys {
            approvers: parse(&s.keys),
            delegates: parse(&s.delegates),
        }
    }

    /// Verifies `sig` over `payload` for `approver`: their own key, else a delegate's.
    /// Returns who signed (`approver`, or `delegate:NAME`).
    fn verify(&self, approver: &str, payload: &[u8], sig: &Signature) -> Result<String, Rejected> {
        let own = self
            .approvers
            .iter()
            .find(|(n, _)| same_person(n, approver))
            .map(|(_, k)| k);
        if own.is_none() && self.delegates.is_empty() {
            return Err(Rejected::UnknownKey {
                approver: approver.to_string(),
            });
        }
        if let Some(k) = own
            && k.verify_strict(payload, sig).is_ok()
        {
            return Ok(approver.to_string());
        }
        for (name, k) in &self.delegates {
            if k.verify_strict(payload, sig).is_ok() {
                return Ok(format!("delegate:{name}"));
            }
        }
        Err(Rejected::ForgedSignature {
            approver: approver.to_string(),
        })
    }
}

/// A statement that verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    pub statement: Statement,
    /// The approver, or `delegate:NAME` when a delegate signed for them.
    pub signed_by: String,
}

fn rfc3339(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

fn parse_time(s: &str, what: &str) -> Result<i64, Rejected> {
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.timestamp())
        .map_err(|_| Rejected::Malformed(format!("`{what}` is not an RFC 3339 time: {s:?}")))
}

impl Statement {
    /// A statement issued `now` (Unix seconds), valid for `validity_secs`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        run: &str,
        stage: &str,
        decision: &str,
        approver: &str,
        playbook_sha256: &str,
        now: i64,
        validity_secs: i64,
    ) -> Statement {
        Statement {
            v: VERSION,
            run: run.into(),
            stage: stage.into(),
            decision: decision.into(),
            approver: approver.into(),
            playbook_sha256: playbook_sha256.into(),
            issued_at: rfc3339(now),
            expires_at: rfc3339(now.saturating_add(validity_secs)),
        }
    }

    /// The RFC 8785 canonical JSON: the bytes that are signed.
    pub fn canonical(&self) -> Vec<u8> {
        // A struct of strings and an integer always serialises.
        serde_json_canonicalizer::to_vec(self).unwrap_or_default()
    }

    /// Signs: `base64url(payload).base64url(signature)`.
    pub fn sign(&self, key: &SigningKey) -> String {
        let payload = self.canonical();
        let sig = key.sign(&payload);
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(&payload),
            URL_SAFE_NO_PAD.encode(sig.to_bytes())
        )
    }
}

/// Decodes a signed statement (no verification).
pub fn parse(token: &str) -> Result<(Statement, Vec<u8>, Signature), Rejected> {
    let token = token.trim();
    if token.len() > MAX_STATEMENT_BYTES {
        return Err(Rejected::Malformed(format!(
            "longer than {MAX_STATEMENT_BYTES} bytes"
        )));
    }
    let Some((p, s)) = token.split_once('.') else {
        return Err(Rejected::Malformed(
            "expected base64url(payload).base64url(signature)".into(),
        ));
    };
    let payload = URL_SAFE_NO_PAD
        .decode(p)
        .map_err(|_| Rejected::Malformed("the payload is not base64url".into()))?;
    let sig = URL_SAFE_NO_PAD
        .decode(s)
        .map_err(|_| Rejected::Malformed("the signature is not base64url".into()))?;
    let sig = Signature::from_slice(&sig)
        .map_err(|_| Rejected::Malformed("the signature is not 64 bytes".into()))?;
    let st: Statement = serde_json::from_slice(&payload)
        .map_err(|e| Rejected::Malformed(format!("the payload: {e}")))?;
    if st.v != VERSION {
        return Err(Rejected::Malformed(format!(
            "version {} (this pbc reads {VERSION})",
            st.v
        )));
    }
    if st.canonical() != payload {
        return Err(Rejected::Malformed(
            "the payload is not in RFC 8785 canonical form".into(),
        ));
    }
    Ok((st, payload, sig))
}

/// Verifies one statement against the gate it is given to.
pub fn verify(token: &str, keys: &Keys, x: &Expect<'_>) -> Result<Verified, Rejected> {
    let (st, payload, sig) = parse(token)?;
    // The signature first: nothing else a forger wrote is believed.
    let signed_by = keys.verify(&st.approver, &payload, &sig)?;
    if st.run != x.run {
        return Err(Rejected::OtherRun {
            signed: st.run,
            expected: x.run.into(),
        });
    }
    if st.stage != x.stage {
        return Err(Rejected::OtherStage {
            signed: st.stage,
            expected: x.stage.into(),
        });
    }
    if st.decision != x.decision {
        return Err(Rejected::DecisionMismatch {
            signed: st.decision,
            expected: x.decision.into(),
        });
    }
    if st.playbook_sha256 != x.playbook_sha256 {
        return Err(Rejected::ContentHash {
            signed: st.playbook_sha256,
            running: x.playbook_sha256.into(),
        });
    }
    let issued = parse_time(&st.issued_at, "issued_at")?;
    let expires = parse_time(&st.expires_at, "expires_at")?;
    if issued > x.now.saturating_add(CLOCK_SKEW_SECS) {
        return Err(Rejected::NotYetValid {
            issued_at: st.issued_at,
        });
    }
    if expires <= x.now || expires <= issued {
        return Err(Rejected::Expired {
            expires_at: st.expires_at,
        });
    }
    if same_person(&st.approver, x.requester) {
        return Err(Rejected::Requester {
            approver: st.approver,
        });
    }
    if !may_approve(x.approvers, x.roles, &st.approver) {
        return Err(Rejected::NotAnApprover {
            approver: st.approver,
            allowed: describe(x.approvers),
        });
    }
    Ok(Verified {
        statement: st,
        signed_by,
    })
}

/// Verifies every statement and counts distinct approvers against `min_approvals`. The
/// first statement that fails names the reason.
pub fn verify_all(
    tokens: &[String],
    keys: &Keys,
    x: &Expect<'_>,
) -> Result<Vec<Verified>, Rejected> {
    if tokens.is_empty() {
        return Err(Rejected::Missing);
    }
    let mut out: Vec<Verified> = Vec::new();
    for t in tokens {
        let v = verify(t, keys, x)?;
        if !out
            .iter()
            .any(|o| same_person(&o.statement.approver, &v.statement.approver))
        {
            out.push(v);
        }
    }
    let need = x.min_approvals.max(1);
    if out.len() < need {
        return Err(Rejected::TooFew {
            need,
            got: out.len(),
        });
    }
    Ok(out)
}

/// Statements in one parameter: separated by whitespace or commas.
pub fn split_tokens(text: &str) -> Vec<String> {
    text.split(|c: char| c.is_whitespace() || c == ',')
        .filter(|t| !t.is_empty())
        .map(String::from)
        .collect()
}

/// Whether `who` is named, or a member of a named role. An empty list: anyone (the
/// requester is refused before).
fn may_approve(
    approvers: &[ApproverRef],
    roles: &BTreeMap<String, Vec<String>>,
    who: &str,
) -> bool {
    approvers.is_empty()
        || approvers.iter().any(|a| match a {
            ApproverRef::User(u) => same_person(u, who),
            ApproverRef::Role(r) => roles
                .get(r)
                .is_some_and(|m| m.iter().any(|x| same_person(x, who))),
        })
}

fn describe(approvers: &[ApproverRef]) -> String {
    approvers
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Reads a private key: a PKCS#8 PEM file (`pbc keygen`, or `openssl genpkey -algorithm
/// ed25519`). Its content never appears in an error.
pub fn read_signing_key(path: &Path) -> crate::Result<SigningKey> {
    let text = crate::files::read_text(path, "the signing key", MAX_KEY_FILE_BYTES)?;
    SigningKey::from_pkcs8_pem(&text).map_err(|_| {
        crate::Error::Usage(format!(
            "{}: not an Ed25519 private key in PKCS#8 PEM (make one with `pbc keygen` or `openssl genpkey -algorithm ed25519`)",
            path.display()
        ))
    })
}

/// A private key's PEM text, wiped when dropped.
pub type SecretPem = pkcs8::der::zeroize::Zeroizing<String>;

/// A new key pair from the system's randomness: the private key as PKCS#8 PEM and the public
/// key as base64 (the form `approvals.keys` takes).
pub fn generate() -> crate::Result<(SecretPem, String)> {
    let mut seed = pkcs8::der::zeroize::Zeroizing::new([0u8; 32]);
    getrandom::fill(&mut *seed).map_err(|e| crate::Error::Io(format!("no randomness: {e}")))?;
    let key = SigningKey::from_bytes(&seed);
    let pem = key
        .to_pkcs8_pem(pkcs8::LineEnding::LF)
        .map_err(|e| crate::Error::Io(format!("cannot encode the key: {e}")))?;
    Ok((pem, public_key_base64(&key.verifying_key())))
}

/// A public key in the form `approvals.keys` takes (standard base64).
pub fn public_key_base64(k: &VerifyingKey) -> String {
    base64::engine::general_purpose::STANDARD.encode(k.to_bytes())
}

#[cfg(test)]
#[path = "approval_sig_tests.rs"]
mod tests;
