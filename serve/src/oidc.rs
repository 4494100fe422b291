//! OIDC identities (`serve.oidc`): a bearer JWT is verified against the public keys of a JWKS
//! file — its signature (RSA, RSA-PSS, ECDSA P-256/P-384 or Ed25519; never `none` or a
//! shared-secret HMAC), its issuer, its audience, and its expiry and not-before times with
//! [`LEEWAY_SECONDS`] of clock skew, read on the server's clock. The user is the claim
//! `user-claim` names; roles come from `.pbc.yaml` as for tokens.

use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use pbc_compiler::config::ServeOidc;
use pbc_runtime::Error;
use serde_json::Value;

/// Clock skew allowed on `exp` and `nbf`.
pub const LEEWAY_SECONDS: i64 = 60;

/// The signature algorithms accepted (asymmetric only).
const ALGORITHMS: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

struct Key {
    kid: Option<String>,
    /// The JWK's `alg`, when it names one.
    alg: Option<Algorithm>,
    key: DecodingKey,
}

/// The issuer's keys and what a token must say.
pub struct Oidc {
    issuer: String,
    audience: String,
    user_claim: String,
    keys: Vec<Key>,
}

/// Whether `token` has the shape of a JWT (three base64url parts).
pub fn looks_like_jwt(token: &str) -> bool {
    let parts: Vec<&str> = token.split('.').collect();
    parts.len() == 3
        && parts[..2].iter().all(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

impl Oidc {
    /// Reads the JWKS file; a file that cannot be read, is not a key set, or holds no usable
    /// public key refuses to start.
    pub fn load(cfg: &ServeOidc) -> Result<Oidc, Error> {
        let path = &cfg.jwks_file;
        let text = pbc_runtime::files::read_text(path, "the JWKS file", 1 << 20)?;
        let set: JwkSet = serde_json::from_str(&text).map_err(|e| {
            Error::Usage(format!(
                "{}: not a JSON Web Key Set ({e}); serve.oidc.jwks-file needs {{\"keys\": [...]}}",
                path.display()
            ))
        })?;
        let mut keys = Vec::new();
        for (i, jwk) in set.keys.iter().enumerate() {
            let name = jwk
                .common
                .key_id
                .clone()
                .unwrap_or_else(|| format!("#{}", i + 1));
            if matches!(jwk.algorithm, AlgorithmParameters::OctetKey(_)) {
                return Err(Error::Usage(format!(
                    "{}: key {name} is a shared secret (`kty: oct`); serve.oidc accepts only public keys (RSA, EC, OKP)",
                    path.display()
                )));
            }
            let alg = match jwk.common.key_algorithm {
                Some(a) => match a.to_string().parse::<Algorithm>() {
                    Ok(a) if ALGORITHMS.contains(&a) => Some(a),
                    _ => {
                        return Err(Error::Usage(format!(
                            "{}: key {name} is for `{a}`, which serve.oidc does not accept",
                            path.display()
                        )));
                    }
                },
                None => None,
            };
            let key = DecodingKey::from_jwk(jwk).map_err(|e| {
                Error::Usage(format!("{}: key {name} is not usable: {e}", path.display()))
            })?;
            keys.push(Key {
                kid: jwk.common.key_id.clone(),
                alg,
                key,
            });
        }
        if keys.is_empty() {
            return Err(Error::Usage(format!(
                "{}: the key set holds no key",
                path.display()
            )));
        }
        Ok(Oidc {
            issuer: cfg.issuer.clone(),
            audience: cfg.audience.clone(),
            user_claim: cfg.user_claim.clone(),
            keys,
        })
    }

    /// The user `token` authenticates at `now_ms`, or why it does not.
    pub fn user(&self, token: &str, now_ms: i64) -> Result<String, String> {
        self.user_until(token, now_ms).map(|(u, _)| u)
    }

    /// [`Oidc::user`], with the token's expiry (`exp`, unix seconds).
    pub fn user_until(&self, token: &str, now_ms: i64) -> Result<(String, i64), String> {
        let header =
            jsonwebtoken::decode_header(token).map_err(|e| format!("not a valid JWT: {e}"))?;
        let alg = header.alg;
        if !ALGORITHMS.contains(&alg) {
            return Err(format!("JWT algorithm {alg:?} is not accepted"));
        }
        let mut v = Validation::new(alg);
        // Times are checked below, on the server's clock.
        v.validate_exp = false;
        v.validate_nbf = false;
        v.required_spec_claims = ["exp", "iss", "aud"].map(String::from).into();
        v.set_issuer(&[&self.issuer]);
        v.set_audience(&[&self.audience]);
        let candidates = self.keys.iter().filter(|k| {
            header
                .kid
                .as_ref()
                .is_none_or(|kid| k.kid.as_ref() == Some(kid))
                && k.alg.is_none_or(|a| a == alg)
                && k.key.family() == alg.family()
        });
        let mut why = format!(
            "no key of the JWKS matches the JWT (kid {:?}, {alg:?})",
            header.kid.as_deref().unwrap_or("none")
        );
        let mut claims = None;
        for k in candidates {
            match jsonwebtoken::decode::<Value>(token, &k.key, &v) {
                Ok(d) => {
                    claims = Some(d.claims);
                    break;
                }
                Err(e) => why = format!("JWT refused: {e}"),
            }
        }
        let claims = claims.ok_or(why)?;
        let now = now_ms.div_euclid(1000);
        let time = |c: &str| claims.get(c).and_then(Value::as_f64).map(|t| t as i64);
        let exp = match time("exp") {
            Some(exp) if now > exp.saturating_add(LEEWAY_SECONDS) => {
                return Err("JWT expired".into());
            }
            Some(exp) => exp,
            None => return Err("JWT without a numeric `exp`".into()),
        };
        if let Some(nbf) = time("nbf")
            && nbf > now.saturating_add(LEEWAY_SECONDS)
        {
            return Err("JWT not valid yet (`nbf`)".into());
        }
        match claims.get(&self.user_claim).and_then(Value::as_str) {
            Some(u) if !u.trim().is_empty() => Ok((u.trim().to_string(), exp)),
            _ => Err(format!("JWT without the user claim `{}`", self.user_claim)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_three_part_tokens_look_like_jwts() {
        assert!(looks_like_jwt("eyJh.eyJz.c2ln"));
        assert!(looks_like_jwt("eyJh.eyJz."));
        assert!(!looks_like_jwt("c2VjcmV0"));
        assert!(!looks_like_jwt("a.b"));
        assert!(!looks_like_jwt("a+b.c.d"));
    }

    #[test]
    fn a_shared_secret_key_set_refuses_to_start() {
        let dir = tempfile_dir();
        let p = dir.join("jwks.json");
        std::fs::write(
            &p,
            r#"{"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "s"}]}"#,
        )
        .unwrap();
        let cfg = ServeOidc {
            issuer: "i".into(),
            audience: "a".into(),
            jwks_file: p,
            user_claim: "email".into(),
        };
        let Err(Error::Usage(m)) = Oidc::load(&cfg) else {
            panic!("accepted")
        };
        assert!(m.contains("shared secret"), "{m}");
    }

    fn tempfile_dir() -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("pbc-oidc-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }
}
