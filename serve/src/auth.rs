//! Who is calling: a bearer token (its sha256 compared in constant time with every configured
//! hash) or, for events, an `X-Hub-Signature-256` HMAC of the body. Failed authentications
//! are counted per peer address; too many within a window answer 429 until it passes. A
//! failure is logged with the peer and the reason, never the token.

use hmac::{KeyInit, Mac};
use pbc_compiler::config::TokenHash;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use subtle::ConstantTimeEq;

/// Failed authentications allowed per peer within [`WINDOW`].
pub const MAX_FAILURES: u32 = 10;
pub const WINDOW: Duration = Duration::from_secs(60);

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The user a bearer token authenticates. Every configured hash is compared (in constant
/// time), so the answer takes as long whichever matches.
pub fn user_of_token(tokens: &[TokenHash], token: &str) -> Option<String> {
    let digest = hex(&Sha256::digest(token.as_bytes()));
    let mut found = None;
    for t in tokens {
        let eq: bool = digest
            .as_bytes()
            .ct_eq(t.sha256.to_ascii_lowercase().as_bytes())
            .into();
        if eq && found.is_none() {
            found = Some(t.user.clone());
        }
    }
    found
}

/// Whether `header` (`sha256=HEX`) is the HMAC-SHA256 of `body` with `secret`.
pub fn signature_ok(secret: &[u8], body: &[u8], header: &str) -> bool {
    let Some(hexsig) = header.trim().strip_prefix("sha256=") else {
        return false;
    };
    let Some(sig) = unhex(hexsig) else {
        return false;
    };
    let Ok(mut mac) = hmac::Hmac::<Sha256>::new_from_slice(secret) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&sig).is_ok()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| s.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
        .collect()
}

/// Failed authentications per peer.
#[derive(Default)]
pub struct Failures {
    by_peer: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

impl Failures {
    /// Whether `peer` is blocked (too many failures in the current window).
    pub fn blocked(&self, peer: IpAddr) -> bool {
        let Ok(m) = self.by_peer.lock() else {
            return false;
        };
        m.get(&peer)
            .is_some_and(|(since, n)| since.elapsed() < WINDOW && *n >= MAX_FAILURES)
    }

    /// Counts a failure of `peer`.
    pub fn record(&self, peer: IpAddr) {
        let Ok(mut m) = self.by_peer.lock() else {
            return;
        };
        if m.len() > 10_000 {
            m.retain(|_, (since, _)| since.elapsed() < WINDOW);
        }
        let e = m.entry(peer).or_insert((Instant::now(), 0));
        if e.0.elapsed() >= WINDOW {
            *e = (Instant::now(), 0);
        }
        e.1 += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_matches_its_hash_only() {
        let tokens = vec![TokenHash {
            user: "ann@example.com".into(),
            sha256: hex(&Sha256::digest(b"s3cret")).to_ascii_uppercase(),
        }];
        assert_eq!(
            user_of_token(&tokens, "s3cret").as_deref(),
            Some("ann@example.com")
        );
        assert_eq!(user_of_token(&tokens, "s3cret "), None);
        assert_eq!(user_of_token(&[], "s3cret"), None);
    }

    #[test]
    fn a_signature_is_the_hmac_of_the_body() {
        let mut mac = hmac::Hmac::<Sha256>::new_from_slice(b"k").unwrap();
        mac.update(b"{}");
        let sig = format!("sha256={}", hex(&mac.finalize().into_bytes()));
        assert!(signature_ok(b"k", b"{}", &sig));
        assert!(!signature_ok(b"k", b"{ }", &sig));
        assert!(!signature_ok(b"other", b"{}", &sig));
        assert!(!signature_ok(b"k", b"{}", "sha256=zz"));
        assert!(!signature_ok(b"k", b"{}", "md5=00"));
    }

    #[test]
    fn too_many_failures_block_a_peer() {
        let f = Failures::default();
        let peer: IpAddr = [127, 0, 0, 1].into();
        for _ in 0..MAX_FAILURES - 1 {
            f.record(peer);
        }
        assert!(!f.blocked(peer));
        f.record(peer);
        assert!(f.blocked(peer));
        assert!(!f.blocked([127, 0, 0, 2].into()));
    }
}
