//! The `s3` audit sink: each batch becomes one JSON Lines object per run, keyed
//! `PREFIX/DATE/RUN/FIRST-LAST.jsonl` (the date of its first entry, the first and last entry
//! numbers), holding the log's lines byte for byte. The object's metadata carries the chain's
//! head before and after the batch (`x-amz-meta-pbc-chain-before`, `-after`) and the batch id.
//! A batch sent again (a crash before the cursor moved) rewrites the same keys.
//!
//! With `object-lock: true`, each object is written under Object Lock `COMPLIANCE` until its
//! run's `audit.retention` has passed (the bucket must have been created with Object Lock
//! enabled); a run without `audit.retention` gets the bucket's default retention.
//! Requests are signed with SigV4; `endpoint` and `path-style` reach S3-compatible stores.

use super::batch::Batch;
use super::http::{FullResponse, request};
use super::sigv4::{self, Service};
use super::{SendError, Settings};
use crate::audit::AuditEntry;
use pbc_compiler::config::S3Sink;
use std::collections::BTreeMap;

/// The largest object read back (`pbc audit verify --against`).
const MAX_OBJECT: u64 = 256 * 1024 * 1024;

/// Percent-encodes a key for a URL path (each `/`-separated segment).
fn encode_key(key: &str) -> String {
    key.split('/')
        .map(|seg| {
            let mut s = String::new();
            for b in seg.bytes() {
                if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                    s.push(b as char);
                } else {
                    s.push_str(&format!("%{b:02X}"));
                }
            }
            s
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// The bucket's base URL (no trailing slash) and the host it is signed for.
fn bucket_url(s: &S3Sink) -> String {
    let endpoint = s
        .endpoint
        .clone()
        .unwrap_or_else(|| format!("https://s3.{}.amazonaws.com", s.region));
    if s.path_style {
        return format!("{endpoint}/{}", s.bucket);
    }
    match endpoint.split_once("://") {
        Some((scheme, host)) => format!("{scheme}://{}.{host}", s.bucket),
        None => endpoint,
    }
}

/// A signed request to the bucket.
fn call(
    s: &S3Sink,
    method: &str,
    url: &str,
    mut headers: Vec<(&str, String)>,
    body: &[u8],
    settings: &Settings,
    limit: u64,
) -> Result<FullResponse, SendError> {
    let host = url
        .split_once("://")
        .map(|(_, r)| r.split('/').next().unwrap_or(""))
        .unwrap_or("")
        .to_string();
    headers.push(("host", host));
    let signed = sigv4::headers(
        &s.credentials,
        &s.region,
        Service::S3,
        method,
        url,
        &headers,
        body,
    )?;
    let all: Vec<(String, String)> = headers
        .into_iter()
        .filter(|(k, _)| *k != "host")
        .map(|(k, v)| (k.to_string(), v))
        .chain(signed)
        .collect();
    let body = (method == "PUT" || method == "POST").then_some(body);
    request(method, url, &all, body, s.timeout, settings, limit)
}

fn outcome(what: &str, r: &FullResponse) -> Result<(), SendError> {
    let text = String::from_utf8_lossy(&r.body).to_string();
    super::http::outcome(
        what,
        &super::http::Response {
            status: r.status,
            body: text,
        },
    )
}

/// The objects of one batch: key and lines, by run.
pub(crate) fn objects(s: &S3Sink, b: &Batch<'_>) -> Vec<(String, String, Vec<u8>)> {
    let mut by_run: BTreeMap<&str, Vec<&(String, AuditEntry)>> = BTreeMap::new();
    for l in b.lines {
        by_run
            .entry(l.1.run.as_deref().unwrap_or("-"))
            .or_default()
            .push(l);
    }
    by_run
        .into_iter()
        .filter_map(|(run, lines)| {
            let first = lines.first()?;
            let last = lines.last()?;
            let date = first.1.time.get(..10).unwrap_or("0000-00-00");
            let key = format!(
                "{}{date}/{run}/{:012}-{:012}.jsonl",
                s.prefix, first.1.seq, last.1.seq
            );
            let mut body = Vec::new();
            for (l, _) in lines {
                body.extend_from_slice(l.as_bytes());
                body.push(b'\n');
            }
            Some((run.to_string(), key, body))
        })
        .collect()
}

pub(super) fn send(s: &S3Sink, b: &Batch<'_>, settings: &Settings) -> Result<(), SendError> {
    use base64::Engine;
    use sha2::Digest;
    let base = bucket_url(s);
    for (run, key, body) in objects(s, b) {
        let url = format!("{base}/{}", encode_key(&key));
        let checksum =
            base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(&body));
        let mut headers = vec![
            ("content-type", "application/x-ndjson".to_string()),
            ("x-amz-checksum-sha256", checksum),
            ("x-amz-sdk-checksum-algorithm", "SHA256".to_string()),
            ("x-amz-meta-pbc-chain-before", b.chain_before.to_string()),
            ("x-amz-meta-pbc-chain-after", b.chain_after.to_string()),
            ("x-amz-meta-pbc-batch", b.id()),
            ("x-amz-meta-pbc-sink", b.sink.to_string()),
        ];
        if s.object_lock
            && let Some(secs) = b.retention.get(&run)
        {
            let until = b.now.saturating_add((*secs as i64).saturating_mul(1000));
            headers.push(("x-amz-object-lock-mode", "COMPLIANCE".into()));
            headers.push((
                "x-amz-object-lock-retain-until-date",
                crate::clock::rfc3339(until),
            ));
        }
        let shown = format!("s3://{}/{key}", s.bucket);
        let r = call(s, "PUT", &url, headers, &body, settings, 64 * 1024)?;
        outcome(&shown, &r)?;
    }
    Ok(())
}

/// One object read back: its key, its metadata's chain heads, its lines.
pub(crate) struct Object {
    pub key: String,
    pub chain_before: Option<String>,
    pub chain_after: Option<String>,
    pub text: String,
}

/// Every object under the sink's prefix, in key order (`pbc audit verify --against`).
pub(crate) fn read_back(s: &S3Sink, settings: &Settings) -> Result<Vec<Object>, String> {
    let base = bucket_url(s);
    let mut keys = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut url = format!(
            "{base}/?list-type=2&prefix={}",
            encode_key(&s.prefix).replace('/', "%2F")
        );
        if let Some(t) = &token {
            url.push_str(&format!(
                "&continuation-token={}",
                encode_key(t).replace('/', "%2F")
            ));
        }
        let r = call(s, "GET", &url, Vec::new(), &[], settings, 16 * 1024 * 1024)
            .map_err(|e| e.message)?;
        outcome(&format!("s3://{} (list)", s.bucket), &r).map_err(|e| e.message)?;
        let xml = String::from_utf8_lossy(&r.body).to_string();
        keys.extend(tags(&xml, "Key"));
        let truncated = tags(&xml, "IsTruncated").first().map(String::as_str) == Some("true");
        token = tags(&xml, "NextContinuationToken").into_iter().next();
        if !truncated || token.is_none() {
            break;
        }
    }
    keys.sort();
    let mut out = Vec::new();
    for key in keys {
        let url = format!("{base}/{}", encode_key(&key));
        let r =
            call(s, "GET", &url, Vec::new(), &[], settings, MAX_OBJECT).map_err(|e| e.message)?;
        outcome(&format!("s3://{}/{key}", s.bucket), &r).map_err(|e| e.message)?;
        out.push(Object {
            chain_before: r.header("x-amz-meta-pbc-chain-before").map(String::from),
            chain_after: r.header("x-amz-meta-pbc-chain-after").map(String::from),
            text: String::from_utf8_lossy(&r.body).to_string(),
            key,
        });
    }
    Ok(out)
}

/// The texts of every `<tag>…</tag>` in an XML document, entities decoded.
fn tags(xml: &str, tag: &str) -> Vec<String> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(i) = rest.find(&open) {
        let after = &rest[i + open.len()..];
        let Some(j) = after.find(&close) else {
            break;
        };
        out.push(
            after[..j]
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&quot;", "\"")
                .replace("&apos;", "'")
                .replace("&amp;", "&"),
        );
        rest = &after[j + close.len()..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_urls() {
        assert_eq!(encode_key("a b/c+d.jsonl"), "a%20b/c%2Bd.jsonl");
        let mut s = S3Sink {
            bucket: "trail".into(),
            prefix: "p/".into(),
            region: "eu-west-1".into(),
            endpoint: None,
            path_style: false,
            object_lock: false,
            credentials: Default::default(),
            timeout: 1,
        };
        assert_eq!(bucket_url(&s), "https://trail.s3.eu-west-1.amazonaws.com");
        s.endpoint = Some("http://127.0.0.1:9000".into());
        s.path_style = true;
        assert_eq!(bucket_url(&s), "http://127.0.0.1:9000/trail");
        assert_eq!(
            tags("<a><Key>x&amp;y</Key><Key>z</Key></a>", "Key"),
            vec!["x&y", "z"]
        );
    }
}
