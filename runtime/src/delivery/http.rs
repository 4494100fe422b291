//! One JSON POST for the HTTP channels: TLS as [`crate::tls`] sets it up, the proxy from
//! `HTTPS_PROXY`/`HTTP_PROXY`/`ALL_PROXY` unless `NO_PROXY` exempts the host, and errors that
//! name the endpoint without any secret it holds.

use super::{SendError, Settings};
use std::time::Duration;

/// A response: status and body (at most 64 KiB read).
pub(super) struct Response {
    pub status: u16,
    pub body: String,
}

/// How an endpoint is named in messages: `shown` when the URL holds a key (its scheme and
/// host only).
pub(super) fn shown(url: &str, secret: bool) -> String {
    if !secret {
        return url.to_string();
    }
    let rest = url.split_once("://");
    match rest {
        Some((scheme, r)) => {
            let host = r.split(['/', '?', '#']).next().unwrap_or("");
            let host = host.rsplit('@').next().unwrap_or(host);
            format!("{scheme}://{host}/…")
        }
        None => "(a URL from the environment)".into(),
    }
}

/// POSTs `body` as JSON with `headers`.
pub(super) fn post(
    url: &str,
    shown: &str,
    headers: &[(&str, String)],
    body: &str,
    timeout: u64,
    settings: &Settings,
) -> Result<Response, SendError> {
    use std::io::Read;
    let agent = crate::tls::delivery_agent(
        Duration::from_secs(timeout.max(1)),
        settings.ca_file.as_deref(),
    )
    .map_err(SendError::retry)?;
    let mut req = agent
        .post(url)
        .header("Content-Type", "application/json")
        .header("User-Agent", concat!("pbc/", env!("CARGO_PKG_VERSION")));
    for (k, v) in headers {
        req = req.header(*k, v.as_str());
    }
    match req.send(body) {
        Ok(mut r) => {
            let status = r.status().as_u16();
            let mut text = String::new();
            let _ = r
                .body_mut()
                .as_reader()
                .take(64 * 1024)
                .read_to_string(&mut text);
            Ok(Response { status, body: text })
        }
        Err(e) => {
            let msg = crate::tls::describe(shown, &e);
            // A URL from the environment may appear in the transport's own words.
            let msg = if shown != url {
                msg.replace(url, shown)
            } else {
                msg
            };
            Err(SendError::retry(msg))
        }
    }
}

/// An HTTP status as the outcome of an attempt: 2xx delivered; 408, 429 and 5xx retried;
/// any other 4xx is a request the service will never accept (permanent).
pub(super) fn outcome(shown: &str, r: &Response) -> Result<(), SendError> {
    match r.status {
        200..=299 => Ok(()),
        408 | 429 | 500..=599 => Err(SendError::retry(format!(
            "{shown} answered {}{}",
            r.status,
            brief(&r.body)
        ))),
        s => Err(SendError::permanent(format!(
            "{shown} answered {s}{}",
            brief(&r.body)
        ))),
    }
}

/// The start of a response body, for messages.
pub(super) fn brief(body: &str) -> String {
    let t = body.trim();
    if t.is_empty() {
        return String::new();
    }
    let cut: String = t.chars().take(200).collect();
    format!(": {}", crate::guardrails::Redactor::secrets().text(&cut))
}

/// A response with its headers, its body read up to a bound.
pub(crate) struct FullResponse {
    pub status: u16,
    /// Lower-case names.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl FullResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Any request (`GET`, `PUT`, `POST`) with exactly `headers`, reading at most `limit` bytes
/// of the answer. The proxy and TLS as [`post`].
pub(crate) fn request(
    method: &str,
    url: &str,
    headers: &[(String, String)],
    body: Option<&[u8]>,
    timeout: u64,
    settings: &Settings,
    limit: u64,
) -> Result<FullResponse, SendError> {
    use std::io::Read;
    let agent = crate::tls::delivery_agent(
        Duration::from_secs(timeout.max(1)),
        settings.ca_file.as_deref(),
    )
    .map_err(SendError::retry)?;
    let mut b = ureq::http::Request::builder()
        .method(method)
        .uri(url)
        .header("User-Agent", concat!("pbc/", env!("CARGO_PKG_VERSION")));
    for (k, v) in headers {
        b = b.header(k.as_str(), v.as_str());
    }
    let req = b
        .body(body.map(<[u8]>::to_vec).unwrap_or_default())
        .map_err(|e| SendError::permanent(format!("{url}: {e}")))?;
    match agent.run(req) {
        Ok(mut r) => {
            let status = r.status().as_u16();
            let headers = r
                .headers()
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_ascii_lowercase(),
                        v.to_str().unwrap_or("").to_string(),
                    )
                })
                .collect();
            let mut body = Vec::new();
            let _ = r.body_mut().as_reader().take(limit).read_to_end(&mut body);
            Ok(FullResponse {
                status,
                headers,
                body,
            })
        }
        Err(e) => Err(SendError::retry(crate::tls::describe(url, &e))),
    }
}
