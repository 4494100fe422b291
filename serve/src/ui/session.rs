//! Sessions of the web page: `/ui/login` exchanges a bearer token (or an OIDC JWT) for a
//! random session id in an HttpOnly, SameSite=Strict cookie. Each session has its own CSRF
//! token, which every form carries and every POST must repeat; the login form, which has no
//! session yet, is bound to a random nonce in a short-lived cookie instead (double submit).
//! Sessions live in memory: a restart signs everyone out. Only the sha256 of a session id
//! is kept, so the table cannot be replayed from a memory dump.

use axum::http::HeaderMap;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use subtle::ConstantTimeEq;

/// The session cookie.
pub const COOKIE: &str = "pbc_session";
/// The login form's nonce cookie.
pub const LOGIN_COOKIE: &str = "pbc_login";
/// How long a session lasts.
pub const LIFETIME: Duration = Duration::from_secs(8 * 3600);
/// Sessions kept at most (the oldest go first).
const MAX_SESSIONS: usize = 10_000;

/// 32 random bytes, as 64 hex digits.
pub fn random_token() -> String {
    let mut b = [0u8; 32];
    if getrandom::fill(&mut b).is_err() {
        // No randomness: a token nobody can guess cannot be made; refuse every session.
        return String::new();
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn digest(id: &str) -> String {
    Sha256::digest(id.as_bytes())
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

/// Whether two secrets are equal, in constant time (and neither is empty).
pub fn same_secret(a: &str, b: &str) -> bool {
    !a.is_empty() && !b.is_empty() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// A signed-in person.
#[derive(Clone, Debug)]
pub struct Session {
    pub user: String,
    pub csrf: String,
    since: Instant,
    /// At most [`LIFETIME`]; a session opened with a JWT ends when the JWT expires.
    lasts: Duration,
}

#[derive(Default)]
pub struct Sessions {
    by_id: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    /// A new session for `user`, lasting `lasts` (at most [`LIFETIME`]): its id (the
    /// cookie's value).
    pub fn open(&self, user: &str, lasts: Duration) -> Option<String> {
        let id = random_token();
        let csrf = random_token();
        if id.is_empty() || csrf.is_empty() {
            return None;
        }
        let mut m = self.by_id.lock().ok()?;
        m.retain(|_, s| s.since.elapsed() < s.lasts);
        if m.len() >= MAX_SESSIONS
            && let Some(oldest) = m
                .iter()
                .min_by_key(|(_, s)| s.since)
                .map(|(k, _)| k.clone())
        {
            m.remove(&oldest);
        }
        m.insert(
            digest(&id),
            Session {
                user: user.to_string(),
                csrf,
                since: Instant::now(),
                lasts: lasts.min(LIFETIME),
            },
        );
        Some(id)
    }

    /// The session the request's cookie names, if it is open.
    pub fn of(&self, headers: &HeaderMap) -> Option<Session> {
        let id = cookie(headers, COOKIE)?;
        let m = self.by_id.lock().ok()?;
        m.get(&digest(&id))
            .filter(|s| s.since.elapsed() < s.lasts)
            .cloned()
    }

    /// Ends the request's session.
    pub fn close(&self, headers: &HeaderMap) {
        if let Some(id) = cookie(headers, COOKIE)
            && let Ok(mut m) = self.by_id.lock()
        {
            m.remove(&digest(&id));
        }
    }
}

/// The value of cookie `name` in the request.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all("cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Strict, `Secure` over HTTPS; `max_age` 0 deletes.
pub fn set_cookie(name: &str, value: &str, path: &str, max_age: u64, secure: bool) -> String {
    format!(
        "{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite=Strict{}",
        if secure { "; Secure" } else { "" }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_is_found_by_its_cookie_only() {
        let s = Sessions::default();
        let id = s.open("ann@example.com", LIFETIME).unwrap();
        let mut h = HeaderMap::new();
        h.insert("cookie", format!("a=b; {COOKIE}={id}").parse().unwrap());
        let found = s.of(&h).unwrap();
        assert_eq!(found.user, "ann@example.com");
        assert_eq!(found.csrf.len(), 64);
        let mut other = HeaderMap::new();
        other.insert(
            "cookie",
            format!("{COOKIE}={}", random_token()).parse().unwrap(),
        );
        assert!(s.of(&other).is_none());
        s.close(&h);
        assert!(s.of(&h).is_none());
        // A session whose token has expired is over.
        let id = s.open("ann@example.com", Duration::ZERO).unwrap();
        let mut h = HeaderMap::new();
        h.insert("cookie", format!("{COOKIE}={id}").parse().unwrap());
        assert!(s.of(&h).is_none());
    }

    #[test]
    fn secrets_compare_whole_and_never_empty() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("", ""));
    }
}
