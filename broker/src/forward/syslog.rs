//! syslog: each event as one RFC 5424 message, facility authpriv, with the event's key fields
//! in structured data (`[occ@32473 seq="…" event_type="…" chain_hash="…" …]`) and its
//! canonical JSON line as the message. Local datagram socket, UDP, or TCP with RFC 6587 octet
//! counting. It runs on the forwarder's thread only.

use std::io::Write;
use std::net::{TcpStream, ToSocketAddrs, UdpSocket};
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::time::Duration;

use occ_audit::witness::{logsrvd_message, LogsrvdMessage, SD_ID};
use occ_policy::file::SyslogProtocol;
use serde_json::Value as Json;

use super::{hostname, SendError, Transport};

/// authpriv (10), as sudo logs.
const FACILITY_AUTHPRIV: u8 = 10;
/// Largest datagram we send; a longer event goes without its JSON body (the structured data
/// still carries its seq, type, hash and key fields).
const DATAGRAM_MAX: usize = 60_000;
const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// The event fields put in structured data, beside `seq`, `event_type` and `chain_hash`.
const KEY_FIELDS: &[&str] = &[
    "timestamp",
    "prev_hash",
    "request_id",
    "session_id",
    "submituser",
    "runuser",
    "command",
    "runargv",
    "runcwd",
    "reason_code",
    "exit_value",
    "signal",
    "approver",
    "grant_scope",
    "forwarder",
    "dropped",
];

/// One `audit.forward` entry of type `syslog`.
pub struct Syslog {
    socket: Option<PathBuf>,
    address: Option<String>,
    protocol: SyslogProtocol,
    tcp: Option<TcpStream>,
}

impl Syslog {
    pub fn new(
        socket: Option<PathBuf>,
        address: Option<String>,
        protocol: Option<SyslogProtocol>,
    ) -> Syslog {
        Syslog {
            socket,
            address,
            protocol: protocol.unwrap_or(SyslogProtocol::Udp),
            tcp: None,
        }
    }

    fn send_tcp(&mut self, address: &str, msg: &[u8]) -> Result<(), String> {
        if self.tcp.is_none() {
            let mut last = format!("{address}: no address");
            for a in address
                .to_socket_addrs()
                .map_err(|e| format!("{address}: {e}"))?
            {
                match TcpStream::connect_timeout(&a, IO_TIMEOUT) {
                    Ok(s) => {
                        let _ = s.set_write_timeout(Some(IO_TIMEOUT));
                        self.tcp = Some(s);
                        break;
                    }
                    Err(e) => last = format!("connect {a}: {e}"),
                }
            }
            if self.tcp.is_none() {
                return Err(last);
            }
        }
        let mut frame = format!("{} ", msg.len()).into_bytes();
        frame.extend_from_slice(msg);
        let r = match self.tcp.as_mut() {
            Some(s) => s.write_all(&frame).and_then(|()| s.flush()),
            None => return Err("not connected".into()),
        };
        r.map_err(|e| {
            // Reconnect next time; the event is sent again.
            self.tcp = None;
            format!("send to {address}: {e}")
        })
    }
}

impl Transport for Syslog {
    fn send(&mut self, ev: &Json) -> Result<(), SendError> {
        self.send_event(ev).map_err(SendError::Retry)
    }
}

impl Syslog {
    fn send_event(&mut self, ev: &Json) -> Result<(), String> {
        if let Some(path) = &self.socket {
            let msg = format_5424(ev, DATAGRAM_MAX);
            let s = UnixDatagram::unbound().map_err(|e| e.to_string())?;
            let _ = s.set_write_timeout(Some(IO_TIMEOUT));
            return s
                .send_to(&msg, path)
                .map(|_| ())
                .map_err(|e| format!("send to {}: {e}", path.display()));
        }
        let address = self.address.clone().unwrap_or_default();
        match self.protocol {
            SyslogProtocol::Udp => {
                let msg = format_5424(ev, DATAGRAM_MAX);
                let s = UdpSocket::bind(("0.0.0.0", 0))
                    .or_else(|_| UdpSocket::bind(("::", 0)))
                    .map_err(|e| e.to_string())?;
                s.send_to(&msg, address.as_str())
                    .map(|_| ())
                    .map_err(|e| format!("send to {address}: {e}"))
            }
            SyslogProtocol::Tcp => {
                let msg = format_5424(ev, usize::MAX);
                self.send_tcp(&address, &msg)
            }
        }
    }
}

/// One RFC 5424 message for `ev`: `<PRI>1 TIMESTAMP HOST occ PID EVENT_TYPE [SD] JSON`.
pub fn format_5424(ev: &Json, max: usize) -> Vec<u8> {
    let event_type = ev["event_type"].as_str().unwrap_or("-");
    // Refusals are warnings, everything else a notice.
    let severity = match logsrvd_message(event_type) {
        Some(LogsrvdMessage::Reject) => 4,
        _ => 5,
    };
    let pri = FACILITY_AUTHPRIV * 8 + severity;
    let ts = ev["timestamp"]
        .as_str()
        .filter(|t| !t.is_empty())
        .unwrap_or("-");
    let msgid: String = event_type
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(32)
        .collect();
    let mut sd = format!("[{SD_ID}");
    let mut param = |name: &str, v: &Json| {
        let text = match v {
            Json::Null => return,
            Json::String(s) => s.clone(),
            other => other.to_string(),
        };
        sd.push(' ');
        sd.push_str(name);
        sd.push_str("=\"");
        for c in text.chars() {
            if matches!(c, '"' | '\\' | ']') {
                sd.push('\\');
            }
            sd.push(c);
        }
        sd.push('"');
    };
    param("seq", &ev["seq"]);
    param("event_type", &ev["event_type"]);
    param("chain_hash", &ev["chain_hash"]);
    for k in KEY_FIELDS {
        param(k, &ev[*k]);
    }
    sd.push(']');
    let head = format!(
        "<{pri}>1 {ts} {} occ {} {} {sd}",
        hostname(),
        std::process::id(),
        if msgid.is_empty() { "-" } else { &msgid }
    );
    let body = ev.to_string();
    let mut out = head.into_bytes();
    if out.len() + 1 + body.len() <= max {
        out.push(b' ');
        out.extend_from_slice(body.as_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc5424_with_occ_structured_data() {
        let ev = serde_json::json!({
            "seq": 3, "event_type": "policy_block", "timestamp": "2026-11-22T23:07:56.874Z",
            "chain_hash": "ab12", "submituser": "a\"b]c", "runargv": ["rm", "/"],
        });
        let m = String::from_utf8(format_5424(&ev, usize::MAX)).unwrap();
        // authpriv.warning = 10*8+4.
        assert!(m.starts_with("<84>1 2026-11-22T23:07:56.874Z "), "{m}");
        assert!(
            m.contains(r#"[occ@32473 seq="3" event_type="policy_block" chain_hash="ab12" timestamp="2026-11-22T23:07:56.874Z" submituser="a\"b\]c" runargv="[\"rm\",\"/\"\]"]"#),
            "{m}"
        );
        assert!(m.contains(" policy_block [occ@32473 "), "{m}");
        assert!(m.ends_with(&ev.to_string()), "{m}");
        // Too long for a datagram: the structured data alone.
        let short = String::from_utf8(format_5424(&ev, 200)).unwrap();
        assert!(short.ends_with(']'), "{short}");
    }
}
