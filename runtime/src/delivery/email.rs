//! `email`: SMTP with `lettre`, STARTTLS required by default (`tls: tls` for implicit TLS on
//! 465; `tls: none` only for a relay on the same host or network). The message has a text
//! and an HTML part; its `Message-ID` holds the notification id, so a mail system or reader
//! can spot a second copy of an at-least-once delivery. The server's certificate is checked
//! against the system's roots plus `tls.ca-file`.

use super::message::{facts, title};
use super::{OutboxRow, SendError, Settings, secret};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{Message, SmtpTransport, Transport};
use pbc_compiler::config::{EmailDef, SmtpTls};
use serde_json::Value;
use std::time::Duration;

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// `(subject, text, html)` of a notification.
pub fn render(p: &Value) -> (String, String, String) {
    let subject: String = format!("[pbc] {}", title(p)).chars().take(200).collect();
    let msg = p.get("message").and_then(Value::as_str).unwrap_or("");
    let url = p.get("approval_url").and_then(Value::as_str);
    let mut text = format!("{msg}\n\n");
    let mut html = format!(
        "<html><body><h2>{}</h2><p>{}</p><table>",
        html_escape(&title(p)),
        html_escape(msg)
    );
    for (k, v) in facts(p) {
        text.push_str(&format!("{k}: {v}\n"));
        html.push_str(&format!(
            "<tr><th align=\"left\">{k}</th><td>{}</td></tr>",
            html_escape(&v)
        ));
    }
    html.push_str("</table>");
    if let Some(u) = url {
        text.push_str(&format!("\nReview: {u}\n"));
        html.push_str(&format!(
            "<p><a href=\"{}\">Review the approval</a></p>",
            html_escape(u)
        ));
    }
    let id = p.get("id").and_then(Value::as_str).unwrap_or("");
    text.push_str(&format!("\n-- \npbc notification {id}\n"));
    html.push_str(&format!(
        "<p style=\"color:#888\">pbc notification {}</p></body></html>",
        html_escape(id)
    ));
    (subject, text, html)
}

fn tls_params(host: &str, settings: &Settings) -> Result<TlsParameters, SendError> {
    let mut b = TlsParameters::builder(host.to_string());
    // Where the platform has no roots (the runner's `FROM scratch` image), the bundled Mozilla
    // roots, as the https channels do; else the platform's.
    if !crate::tls::platform_has_roots() {
        b = b.certificate_store(lettre::transport::smtp::client::CertificateStore::WebpkiRoots);
    }
    if let Some(ca) = &settings.ca_file {
        // The same size-bounded, type-checked read as the https channels.
        crate::tls::read_ca_file(ca).map_err(SendError::retry)?;
        let pem = std::fs::read(ca)
            .map_err(|e| SendError::retry(format!("tls.ca-file {}: {e}", ca.display())))?;
        let cert = Certificate::from_pem(&pem)
            .map_err(|e| SendError::retry(format!("tls.ca-file {}: {e}", ca.display())))?;
        b = b.add_root_certificate(cert);
    }
    b.build_rustls()
        .map_err(|e| SendError::retry(format!("TLS for {host}: {e}")))
}

pub(super) fn send(
    d: &EmailDef,
    r: &OutboxRow,
    payload: &Value,
    settings: &Settings,
) -> Result<(), SendError> {
    let bad = |what: &str, v: &str, e: &dyn std::fmt::Display| {
        SendError::permanent(format!("email: `{what}` {v:?} is not an address: {e}"))
    };
    let from: Mailbox = d.from.parse().map_err(|e| bad("from", &d.from, &e))?;
    let (subject, text, html) = render(payload);
    let mut m = Message::builder()
        .from(from)
        .subject(subject)
        .message_id(Some(format!("<{}.{}@pbc>", r.id, r.action)));
    for to in &d.to {
        m = m.to(to.parse().map_err(|e| bad("to", to, &e))?);
    }
    let email = m
        .multipart(MultiPart::alternative_plain_html(text, html))
        .map_err(|e| SendError::permanent(format!("email: {e}")))?;
    let tls = match d.tls {
        SmtpTls::Starttls => Tls::Required(tls_params(&d.host, settings)?),
        SmtpTls::Tls => Tls::Wrapper(tls_params(&d.host, settings)?),
        SmtpTls::None => Tls::None,
    };
    let mut t = SmtpTransport::builder_dangerous(d.host.as_str())
        .port(d.port)
        .tls(tls)
        .timeout(Some(Duration::from_secs(d.timeout.max(1))));
    if let (Some(u), Some(p)) = (&d.username_env, &d.password_env) {
        t = t.credentials(Credentials::new(
            secret(u, "the SMTP user name")?,
            secret(p, "the SMTP password")?,
        ));
    }
    let where_ = format!("smtp://{}:{}", d.host, d.port);
    match t.build().send(&email) {
        Ok(resp) if resp.is_positive() => Ok(()),
        Ok(resp) => Err(SendError::retry(format!(
            "{where_} answered {}",
            resp.code()
        ))),
        Err(e) if e.is_permanent() => Err(SendError::permanent(format!("{where_}: {e}"))),
        Err(e) => Err(SendError::retry(format!("{where_}: {e}"))),
    }
}
