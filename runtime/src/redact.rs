//! The secret detector's key rule: JSON fields whose name says they hold a secret.
//!
//! `no-secrets-in-code` is one detector with two halves: value patterns on text (AWS keys,
//! private key blocks, API tokens, high-entropy assignments; see [`crate::guardrails`]) and
//! this key rule on JSON structure. The guardrail blocks on both; every redaction path (audit
//! details, stored outputs, stdout, notifications, approval messages) applies both, whatever
//! guardrails the stage lists.
//!
//! The key rule: a field's name is split into words (at `_`, `-`, `.`, spaces and camelCase
//! boundaries) and lower-cased. It names a secret when
//! - a word is `password`, `passwd`, `passphrase`, `secret`, `secrets`, `credential`,
//!   `credentials`, `authorization`, `apikey`, `accesskey` or `privatekey`;
//! - two neighbouring words are `api key`, `access key`, `private key` or `secret key`; or
//! - its last word is `token` (`token`, `access_token`, `githubToken`).
//!
//! So `max_tokens`, `token_count`, `tokens` and `token_limit` are not secrets, nor are
//! `key`, `keys` or `primary_key`. Under such a field, a string or a number is a secret, and
//! so is every string inside an object or a list; booleans and null are not, nor are
//! placeholders: an empty string, `${…}`, `<…>`, `{{…}}`, a value already `[REDACTED…]` and
//! one character repeated (`***`).

use crate::guardrails::Finding;
use serde_json::Value;

/// The guardrail whose detector this is; redactions are marked `[REDACTED:no-secrets-in-code]`.
pub const SECRETS: &str = "no-secrets-in-code";

/// The marker that replaces a secret.
pub fn marker() -> Value {
    Value::String(format!("[REDACTED:{SECRETS}]"))
}

/// The lower-case words of a field name.
fn words(key: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut cur = String::new();
    let mut prev_lower = false;
    for c in key.chars() {
        if !c.is_alphanumeric() {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            prev_lower = false;
            continue;
        }
        if c.is_uppercase() && prev_lower && !cur.is_empty() {
            out.push(std::mem::take(&mut cur));
        }
        prev_lower = c.is_lowercase() || c.is_ascii_digit();
        cur.extend(c.to_lowercase());
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Whether a field named `key` holds a secret (the rule in the module documentation).
pub fn secret_key(key: &str) -> bool {
    const WORDS: &[&str] = &[
        "password",
        "passwd",
        "passphrase",
        "secret",
        "secrets",
        "credential",
        "credentials",
        "authorization",
        "apikey",
        "accesskey",
        "privatekey",
    ];
    const PAIRS: &[(&str, &str)] = &[
        ("api", "key"),
        ("access", "key"),
        ("private", "key"),
        ("secret", "key"),
    ];
    let w = words(key);
    w.iter().any(|x| WORDS.contains(&x.as_str()))
        || w.windows(2)
            .any(|p| PAIRS.contains(&(p[0].as_str(), p[1].as_str())))
        || w.last().is_some_and(|x| x == "token")
}

/// A value that stands for a secret without being one.
fn placeholder(s: &str) -> bool {
    let t = s.trim();
    let mut chars = t.chars();
    let first = chars.next();
    t.is_empty()
        || t.starts_with("${")
        || t.starts_with("[REDACTED")
        || (t.starts_with('<') && t.ends_with('>'))
        || (t.starts_with("{{") && t.ends_with("}}"))
        || first.is_some_and(|f| chars.all(|c| c == f))
}

/// Whether the value under a secret-named field holds a secret.
fn holds_secret(v: &Value) -> bool {
    match v {
        Value::String(s) => !placeholder(s),
        Value::Number(_) => true,
        Value::Array(a) => a.iter().any(nested_secret),
        Value::Object(m) => m.values().any(nested_secret),
        _ => false,
    }
}

fn nested_secret(v: &Value) -> bool {
    match v {
        Value::String(s) => !placeholder(s),
        Value::Array(a) => a.iter().any(nested_secret),
        Value::Object(m) => m.values().any(nested_secret),
        _ => false,
    }
}

fn escape_pointer(k: &str) -> String {
    k.replace('~', "~0").replace('/', "~1")
}

/// Findings of the key rule in `v` (rooted at `root`): one per secret-named field that holds
/// a secret, without a range (the whole value is redacted).
pub fn key_findings(v: &Value, root: &str) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut stack: Vec<(&Value, String)> = vec![(v, root.to_string())];
    while let Some((v, path)) = stack.pop() {
        match v {
            Value::Object(m) => {
                for (k, x) in m.iter().rev() {
                    let p = format!("{path}/{}", escape_pointer(k));
                    if secret_key(k) && holds_secret(x) {
                        out.push(Finding {
                            guardrail: SECRETS.to_string(),
                            rule: "secret-field".into(),
                            path: p,
                            line: None,
                            column: None,
                            length: None,
                            range: None,
                        });
                    } else {
                        stack.push((x, p));
                    }
                }
            }
            Value::Array(a) => {
                for (i, x) in a.iter().enumerate().rev() {
                    stack.push((x, format!("{path}/{i}")));
                }
            }
            _ => {}
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

/// `v` with the value of every secret-named field that holds a secret replaced by the marker.
pub fn redact_keys(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, x)| {
                    let x = if secret_key(k) && holds_secret(x) {
                        marker()
                    } else {
                        redact_keys(x)
                    };
                    (k.clone(), x)
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(redact_keys).collect()),
        x => x.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_key_rule() {
        for k in [
            "password",
            "db_password",
            "Password",
            "passwd",
            "secret",
            "client_secret",
            "aws_secret_access_key",
            "secretKey",
            "token",
            "access_token",
            "githubToken",
            "api_key",
            "apiKey",
            "apikey",
            "X-API-Key",
            "access_key",
            "private_key",
            "privateKey",
            "credentials",
            "credential_json",
            "Authorization",
        ] {
            assert!(secret_key(k), "{k}");
        }
        for k in [
            "max_tokens",
            "token_count",
            "tokens",
            "token_limit",
            "key",
            "primary_key",
            "keys",
            "monkey",
            "author",
            "files_changed",
            "risk-level",
        ] {
            assert!(!secret_key(k), "{k}");
        }
    }

    #[test]
    fn fields_found_and_redacted() {
        let v = json!({
            "aws_secret_access_key": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "password": "hunter2",
            "nested": [{"api_key": 12345}],
            "credentials": {"user": "ann", "pass": "pw-9"},
            "token": "${input.token}",
            "password_required": true,
            "max_tokens": 512,
            "token_count": 7,
            "secret": "***",
        });
        let paths: Vec<String> = key_findings(&v, "output")
            .into_iter()
            .map(|f| f.path)
            .collect();
        assert_eq!(
            paths,
            [
                "output/aws_secret_access_key",
                "output/credentials",
                "output/nested/0/api_key",
                "output/password",
            ]
        );
        let r = redact_keys(&v);
        assert_eq!(r["password"], marker());
        assert_eq!(r["credentials"], marker());
        assert_eq!(r["nested"][0]["api_key"], marker());
        assert_eq!(r["token"], "${input.token}");
        assert_eq!(r["max_tokens"], 512);
        assert_eq!(r["token_count"], 7);
        assert_eq!(r["password_required"], true);
    }
}
