//! `approvals:` in `.pbc.yaml`: whether a gate's approval must be a signed statement, and the
//! Ed25519 public keys that verify them (each approver's own, and the trusted delegates such
//! as `pbc serve` that sign for the people they authenticated).

use super::*;
use base64::Engine as _;

/// The keys of `approvals:`.
const APPROVAL_KEYS: &[&str] = &["require-signature", "keys", "delegates", "max-wait"];

/// `approvals:`. Keys are the 32 bytes of an Ed25519 public key, base64 (standard or URL-safe
/// alphabet, padding optional), as `pbc keygen` prints them.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ApprovalSettings {
    /// `require-signature`: a gate passes only on a signed approval statement.
    #[serde(default)]
    pub require_signature: bool,
    /// `keys`: each approver's public key (the approver as gates name people).
    #[serde(default)]
    pub keys: BTreeMap<String, String>,
    /// `delegates`: services trusted to sign for any approver they authenticated.
    #[serde(default)]
    pub delegates: BTreeMap<String, String>,
    /// `max-wait`: the longest a gate may wait for a decision, its `sla` and every
    /// escalation level's `after` added up (seconds); `pbc check` holds gates to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_wait_secs: Option<u64>,
}

impl ApprovalSettings {
    /// Nothing configured (the default; not written into a frozen run).
    pub fn is_empty(&self) -> bool {
        *self == ApprovalSettings::default()
    }
}

/// The 32 bytes of a base64 Ed25519 public key, if it is one.
pub fn public_key_bytes(text: &str) -> Option<[u8; 32]> {
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    let cfg = GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
    let text = text.trim();
    [
        GeneralPurpose::new(&base64::alphabet::STANDARD, cfg),
        GeneralPurpose::new(&base64::alphabet::URL_SAFE, cfg),
    ]
    .iter()
    .find_map(|e| e.decode(text).ok())
    .and_then(|b| <[u8; 32]>::try_from(b.as_slice()).ok())
}

impl Config {
    pub(super) fn read_approvals(&mut self, v: &Node, diags: &mut Vec<Diagnostic>) {
        let Some(entries) = v.as_map() else {
            diags.push(bad(
                v.span,
                format!(
                    "`approvals` must be a mapping (`require-signature`, `keys`, `delegates`), found {}",
                    v.type_name()
                ),
            ));
            return;
        };
        for e in entries {
            match e.key_str() {
                "require-signature" => match e.value.as_scalar() {
                    Some(sc) if sc.kind == ScalarKind::Bool => {
                        self.approvals.require_signature = sc.text.eq_ignore_ascii_case("true")
                    }
                    _ => diags.push(bad(
                        e.value.span,
                        "`approvals.require-signature` must be `true` or `false`".into(),
                    )),
                },
                k @ ("keys" | "delegates") => {
                    let map = read_key_map(&e.value, k, diags);
                    if k == "keys" {
                        self.approvals.keys = map;
                    } else {
                        self.approvals.delegates = map;
                    }
                }
                "max-wait" => {
                    self.approvals.max_wait_secs =
                        duration(&e.value, "approvals.max-wait", diags).map(|d| d.seconds)
                }
                other => diags.push(unknown_key(e.key.span, other, APPROVAL_KEYS)),
            }
        }
    }
}

fn read_key_map(v: &Node, what: &str, diags: &mut Vec<Diagnostic>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let Some(entries) = v.as_map() else {
        diags.push(bad(
            v.span,
            format!(
                "`approvals.{what}` must be a mapping of names to base64 Ed25519 public keys, found {}",
                v.type_name()
            ),
        ));
        return out;
    };
    for e in entries {
        let name = e.key_str().trim().to_string();
        match e.value.as_str() {
            Some(k) if public_key_bytes(k).is_some() => {
                out.insert(name, k.trim().to_string());
            }
            _ => diags.push(
                bad(
                    e.value.span,
                    format!("`approvals.{what}.{name}` is not an Ed25519 public key"),
                )
                .with_help(
                    "write the key's 32 bytes in base64, as `pbc keygen` prints them (or `openssl pkey -in KEY.pem -pubout -outform DER | tail -c 32 | base64`)",
                ),
            ),
        }
    }
    out
}
