//! The `syslog` audit sink: RFC 5424 messages over TCP with octet-counting framing
//! (RFC 6587, section 3.4.1; RFC 5425 over TLS), one message per audit entry.
//!
//! `<110>1 TIME HOST APP - EVENT [pbc@32473 seq="N" run="R" hash="H" prev="P" batch="B"
//! chain-before="X" chain-after="Y"] BOM LINE`: facility 13 (log audit), severity 6
//! (informational), the entry's own time, its event as MSGID, and the log's line as the
//! message, so that a receiver holds the hash-chained entry byte for byte. Syslog has no
//! acknowledgement: a batch counts as delivered when every byte was written and the
//! connection closed cleanly (TLS `close_notify` included).

use super::batch::{Batch, sd_escape};
use super::{SendError, Settings};
use pbc_compiler::config::SyslogSink;
use std::io::Write;
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// The private enterprise number pbc's structured data is named under (RFC 5424, section 7.2.2:
/// a documentation-reserved number, as in the RFC's own examples).
const SD_ID: &str = "pbc@32473";

/// This machine's name, else `-`.
fn hostname() -> String {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .unwrap_or_default();
    let name: String = name
        .trim()
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(255)
        .collect();
    if name.is_empty() { "-".into() } else { name }
}

/// The frame of one entry: `LEN SP MSG`.
pub(super) fn frame(s: &SyslogSink, host: &str, b: &Batch<'_>, i: usize) -> Vec<u8> {
    let (line, e) = &b.lines[i];
    let msgid: String = e
        .event
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(32)
        .collect();
    let msgid = if msgid.is_empty() { "-".into() } else { msgid };
    let msg = format!(
        "<110>1 {time} {host} {app} - {msgid} [{SD_ID} seq=\"{seq}\" run=\"{run}\" hash=\"{hash}\" prev=\"{prev}\" batch=\"{batch}\" chain-before=\"{before}\" chain-after=\"{after}\"] \u{feff}{line}",
        time = e.time,
        app = s.app_name,
        seq = e.seq,
        run = sd_escape(e.run.as_deref().unwrap_or("")),
        hash = e.hash,
        prev = e.prev,
        batch = b.id(),
        before = b.chain_before,
        after = b.chain_after,
    );
    let mut out = format!("{} ", msg.len()).into_bytes();
    out.extend_from_slice(msg.as_bytes());
    out
}

pub(super) fn send(s: &SyslogSink, b: &Batch<'_>, settings: &Settings) -> Result<(), SendError> {
    let host = s.hostname.clone().unwrap_or_else(hostname);
    let mut bytes = Vec::new();
    for i in 0..b.lines.len() {
        bytes.extend(frame(s, &host, b, i));
    }
    let shown = format!("{}:{}", s.host, s.port);
    let timeout = Duration::from_secs(s.timeout.max(1));
    let addr = (s.host.as_str(), s.port)
        .to_socket_addrs()
        .map_err(|e| SendError::retry(format!("{shown}: {e}")))?
        .next()
        .ok_or_else(|| SendError::retry(format!("{shown}: no address")))?;
    let tcp = TcpStream::connect_timeout(&addr, timeout)
        .map_err(|e| SendError::retry(format!("{shown}: {e}")))?;
    let _ = tcp.set_write_timeout(Some(timeout));
    let _ = tcp.set_read_timeout(Some(timeout));
    let io = |e: std::io::Error| SendError::retry(format!("{shown}: {e}"));
    if s.tls {
        let cfg =
            crate::tls::rustls_client(settings.ca_file.as_deref()).map_err(SendError::retry)?;
        let name = rustls::pki_types::ServerName::try_from(s.host.clone())
            .map_err(|e| SendError::permanent(format!("{shown}: {e}")))?;
        let conn = rustls::ClientConnection::new(cfg, name)
            .map_err(|e| SendError::retry(format!("{shown}: TLS: {e}")))?;
        let mut tls = rustls::StreamOwned::new(conn, tcp);
        tls.write_all(&bytes).map_err(io)?;
        tls.flush().map_err(io)?;
        tls.conn.send_close_notify();
        tls.flush().map_err(io)?;
        let _ = tls.sock.shutdown(std::net::Shutdown::Write);
        drain(&mut tls.sock);
    } else {
        let mut tcp = tcp;
        tcp.write_all(&bytes).map_err(io)?;
        tcp.flush().map_err(io)?;
        tcp.shutdown(std::net::Shutdown::Write).map_err(io)?;
        drain(&mut tcp);
    }
    Ok(())
}

/// Waits (up to the read timeout) for the receiver to close its side: it has read it all.
fn drain(tcp: &mut TcpStream) {
    use std::io::Read;
    let mut buf = [0u8; 512];
    while let Ok(n) = tcp.read(&mut buf) {
        if n == 0 {
            break;
        }
    }
}
