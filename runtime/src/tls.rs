//! HTTPS for the runtime's outgoing calls (the `http` executor, notification channels): rustls,
//! trusting the platform's root certificates plus the PEM certificates of `tls.ca-file` in
//! `.pbc.yaml` (a private certificate authority). Plain `http://` needs none of it.
//!
//! The platform's roots are what the machine's administrators trust (a corporate root
//! installed there works); Mozilla's bundled roots are the fallback only where the platform
//! has none at all (a minimal container without a CA bundle).

use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use ureq::tls::{Certificate, PemItem, RootCerts, TlsConfig};

/// The largest `tls.ca-file` read.
const MAX_CA_FILE: u64 = 1024 * 1024;

/// Whether the platform has root certificates (a `FROM scratch` image has none: then the
/// bundled Mozilla roots are trusted, as for every https call).
pub fn platform_has_roots() -> bool {
    !platform_roots().is_empty()
}

/// The platform's root certificates, loaded once per process.
fn platform_roots() -> &'static [Certificate<'static>] {
    static ROOTS: OnceLock<Vec<Certificate<'static>>> = OnceLock::new();
    ROOTS.get_or_init(|| {
        rustls_native_certs::load_native_certs()
            .certs
            .iter()
            .map(|c| Certificate::from_der(c.as_ref()).to_owned())
            .collect()
    })
}

/// The certificates of a PEM file (at least one), read size-bounded.
pub fn read_ca_file(path: &Path) -> Result<Vec<Certificate<'static>>, String> {
    use std::io::Read;
    let shown = path.display();
    let meta = std::fs::metadata(path).map_err(|e| format!("tls.ca-file {shown}: {e}"))?;
    if !meta.is_file() {
        return Err(format!("tls.ca-file {shown}: not a file"));
    }
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_CA_FILE + 1).read_to_end(&mut bytes))
        .map_err(|e| format!("tls.ca-file {shown}: {e}"))?;
    if bytes.len() as u64 > MAX_CA_FILE {
        return Err(format!(
            "tls.ca-file {shown}: larger than {MAX_CA_FILE} bytes"
        ));
    }
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(&bytes) {
        match item {
            Ok(PemItem::Certificate(c)) => certs.push(c),
            Ok(_) => {}
            Err(e) => return Err(format!("tls.ca-file {shown}: not valid PEM ({e})")),
        }
    }
    if certs.is_empty() {
        return Err(format!(
            "tls.ca-file {shown}: holds no PEM certificate (`-----BEGIN CERTIFICATE-----`)"
        ));
    }
    Ok(certs)
}

/// The roots an https call trusts.
fn roots(ca_file: Option<&Path>) -> Result<RootCerts, String> {
    let platform = platform_roots();
    let extra = match ca_file {
        Some(p) => read_ca_file(p)?,
        None => Vec::new(),
    };
    if platform.is_empty() && extra.is_empty() {
        return Ok(RootCerts::WebPki);
    }
    let all: Vec<Certificate<'static>> = platform.iter().cloned().chain(extra).collect();
    Ok(RootCerts::Specific(Arc::new(all)))
}

/// An agent for one call: the timeout, no proxy (pbc talks only to the URLs it is given),
/// HTTP error statuses as responses, and TLS as above.
pub fn agent(timeout: Duration, ca_file: Option<&Path>) -> Result<ureq::Agent, String> {
    build(timeout, ca_file, None)
}

/// An agent for delivering notifications to services (Slack, PagerDuty, webhooks): as
/// [`agent`], through the proxy `HTTPS_PROXY`/`HTTP_PROXY`/`ALL_PROXY` names unless
/// `NO_PROXY` exempts the host, as corporate networks require.
pub fn delivery_agent(timeout: Duration, ca_file: Option<&Path>) -> Result<ureq::Agent, String> {
    build(timeout, ca_file, ureq::Proxy::try_from_env())
}

fn build(
    timeout: Duration,
    ca_file: Option<&Path>,
    proxy: Option<ureq::Proxy>,
) -> Result<ureq::Agent, String> {
    let tls = TlsConfig::builder().root_certs(roots(ca_file)?).build();
    Ok(ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .proxy(proxy)
        .tls_config(tls)
        .build()
        .into())
}

/// A transport error as a sentence: a TLS failure says so, and what to do about an
/// untrusted certificate.
pub fn describe(url: &str, e: &ureq::Error) -> String {
    let tls = match e {
        ureq::Error::Rustls(r) => Some(r),
        // rustls reports through the connection's reads and writes.
        ureq::Error::Io(io) => io.get_ref().and_then(|x| x.downcast_ref::<rustls::Error>()),
        _ => None,
    };
    match tls {
        Some(r) => {
            let hint = match r {
                rustls::Error::InvalidCertificate(_) => {
                    "; if the server's certificate comes from a private certificate authority, name the authority's certificate in `tls.ca-file` in .pbc.yaml"
                }
                _ => "",
            };
            format!("{url}: TLS handshake failed: {r}{hint}")
        }
        None => match e {
            ureq::Error::Tls(m) => format!("{url}: TLS failed: {m}"),
            e => format!("{url}: {e}"),
        },
    }
}

/// A rustls client configuration for plain TLS streams (the syslog audit sink): the same
/// roots as [`agent`] (the platform's plus `tls.ca-file`; Mozilla's where the platform has
/// none).
pub fn rustls_client(ca_file: Option<&Path>) -> Result<Arc<rustls::ClientConfig>, String> {
    let mut store = rustls::RootCertStore::empty();
    let extra = match ca_file {
        Some(p) => read_ca_file(p)?,
        None => Vec::new(),
    };
    for c in platform_roots().iter().chain(extra.iter()) {
        let _ = store.add(rustls::pki_types::CertificateDer::from(c.der().to_vec()));
    }
    if store.is_empty() {
        store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_root_certificates(store)
        .with_no_client_auth();
    Ok(Arc::new(cfg))
}
