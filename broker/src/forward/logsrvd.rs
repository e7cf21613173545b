//! sudo_logsrvd: occ's events in sudo's own log-server protocol (sudo_logsrv.proto(5)). Each
//! forwarded event is one short session: ClientHello, then AcceptMessage, RejectMessage, or
//! AcceptMessage + ExitMessage, and the server's close as the acknowledgement; over TLS the
//! same messages after the handshake (`tls.rs`). It never decides anything and never blocks a
//! request: it runs on the forwarder's own thread.

use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use occ_audit::witness::{logsrvd_message, LogsrvdMessage};
use serde_json::Value as Json;

use super::tls::{HalfClose, TlsClient, TlsFiles};
use super::{hostname, SendError, Transport};

/// The server must accept messages up to 2 MiB (sudo_logsrv.proto(5)); we never send more.
const MESSAGE_MAX: usize = 2 << 20;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// The messages occ sends and reads, written from sudo_logsrv.proto(5).
pub mod proto {
    /// `TimeSpec`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct TimeSpec {
        #[prost(int64, tag = "1")]
        pub tv_sec: i64,
        #[prost(int32, tag = "2")]
        pub tv_nsec: i32,
    }

    /// `InfoMessage`: one key and its value.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct InfoMessage {
        #[prost(string, tag = "1")]
        pub key: String,
        #[prost(oneof = "info_message::Value", tags = "2, 3, 4, 5")]
        pub value: Option<info_message::Value>,
    }

    /// `InfoMessage`'s nested types.
    pub mod info_message {
        /// `InfoMessage.StringList`.
        #[derive(Clone, PartialEq, prost::Message)]
        pub struct StringList {
            #[prost(string, repeated, tag = "1")]
            pub strings: Vec<String>,
        }
        /// `InfoMessage.NumberList`.
        #[derive(Clone, PartialEq, prost::Message)]
        pub struct NumberList {
            #[prost(int64, repeated, tag = "1")]
            pub numbers: Vec<i64>,
        }
        /// `InfoMessage.value`.
        #[derive(Clone, PartialEq, prost::Oneof)]
        pub enum Value {
            #[prost(int64, tag = "2")]
            Numval(i64),
            #[prost(string, tag = "3")]
            Strval(String),
            #[prost(message, tag = "4")]
            Strlistval(StringList),
            #[prost(message, tag = "5")]
            Numlistval(NumberList),
        }
    }

    /// `ClientHello`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ClientHello {
        #[prost(string, tag = "1")]
        pub client_id: String,
    }

    /// `AcceptMessage`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct AcceptMessage {
        #[prost(message, optional, tag = "1")]
        pub submit_time: Option<TimeSpec>,
        #[prost(message, repeated, tag = "2")]
        pub info_msgs: Vec<InfoMessage>,
        #[prost(bool, tag = "3")]
        pub expect_iobufs: bool,
    }

    /// `RejectMessage`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct RejectMessage {
        #[prost(message, optional, tag = "1")]
        pub submit_time: Option<TimeSpec>,
        #[prost(string, tag = "2")]
        pub reason: String,
        #[prost(message, repeated, tag = "3")]
        pub info_msgs: Vec<InfoMessage>,
    }

    /// `ExitMessage`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ExitMessage {
        #[prost(message, optional, tag = "1")]
        pub run_time: Option<TimeSpec>,
        #[prost(int32, tag = "2")]
        pub exit_value: i32,
        #[prost(bool, tag = "3")]
        pub dumped_core: bool,
        #[prost(string, tag = "4")]
        pub signal: String,
        #[prost(string, tag = "5")]
        pub error: String,
    }

    /// `ClientMessage`: the container of everything a client sends (occ sends these four).
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ClientMessage {
        #[prost(oneof = "client_message::Type", tags = "1, 2, 3, 13")]
        pub r#type: Option<client_message::Type>,
    }

    /// `ClientMessage.type`.
    pub mod client_message {
        /// The message inside a `ClientMessage`.
        #[derive(Clone, PartialEq, prost::Oneof)]
        pub enum Type {
            #[prost(message, tag = "1")]
            AcceptMsg(super::AcceptMessage),
            #[prost(message, tag = "2")]
            RejectMsg(super::RejectMessage),
            #[prost(message, tag = "3")]
            ExitMsg(super::ExitMessage),
            #[prost(message, tag = "13")]
            HelloMsg(super::ClientHello),
        }
    }

    /// `ServerHello`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ServerHello {
        #[prost(string, tag = "1")]
        pub server_id: String,
        #[prost(string, tag = "2")]
        pub redirect: String,
        #[prost(string, repeated, tag = "3")]
        pub servers: Vec<String>,
        #[prost(bool, tag = "4")]
        pub subcommands: bool,
    }

    /// `ServerMessage`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ServerMessage {
        #[prost(oneof = "server_message::Type", tags = "1, 2, 3, 4, 5")]
        pub r#type: Option<server_message::Type>,
    }

    /// `ServerMessage.type`.
    pub mod server_message {
        /// The message inside a `ServerMessage`.
        #[derive(Clone, PartialEq, prost::Oneof)]
        pub enum Type {
            #[prost(message, tag = "1")]
            Hello(super::ServerHello),
            #[prost(message, tag = "2")]
            CommitPoint(super::TimeSpec),
            #[prost(string, tag = "3")]
            LogId(String),
            #[prost(string, tag = "4")]
            Error(String),
            #[prost(string, tag = "5")]
            Abort(String),
        }
    }
}

use proto::client_message::Type as C;
use proto::info_message::{StringList, Value as V};
use proto::server_message::Type as S;
use proto::{
    AcceptMessage, ClientHello, ClientMessage, ExitMessage, InfoMessage, RejectMessage,
    ServerMessage, TimeSpec,
};

/// One `audit.forward` entry of type `logsrvd`.
pub struct Logsrvd {
    address: String,
    /// `"tls": true`: the files, and the client built from them once they all check out.
    tls: Option<(TlsFiles, Option<TlsClient>)>,
}

impl Logsrvd {
    pub fn new(address: &str, tls: Option<TlsFiles>) -> Logsrvd {
        Logsrvd {
            address: address.to_string(),
            tls: tls.map(|f| (f, None)),
        }
    }
}

impl Transport for Logsrvd {
    fn send(&mut self, ev: &Json) -> Result<(), SendError> {
        let Some(messages) = messages_for(ev) else {
            // Not a command event: sudo_logsrvd has no record for it.
            return Ok(());
        };
        let Some((files, client)) = &mut self.tls else {
            return session(&self.address, None, &messages);
        };
        if client.is_none() {
            let uid = nix::unistd::geteuid().as_raw();
            *client = Some(TlsClient::new(&self.address, files, uid).map_err(SendError::Retry)?);
        }
        let sent = session(&self.address, client.as_ref(), &messages);
        if sent.is_err() {
            // Read the files again at the next try: a fixed CA or a renewed client certificate
            // needs no restart.
            *client = None;
        }
        sent
    }
}

/// The client messages (after the hello) that carry `ev`, or `None` when sudo_logsrvd keeps no
/// record of its kind.
pub fn messages_for(ev: &Json) -> Option<Vec<ClientMessage>> {
    let event_type = ev["event_type"].as_str()?;
    let kind = logsrvd_message(event_type)?;
    let info = info_messages(ev);
    let submit_time = Some(timespec_of_rfc3339(ev["timestamp"].as_str().unwrap_or("")));
    let accept = || ClientMessage {
        r#type: Some(C::AcceptMsg(AcceptMessage {
            submit_time: submit_time.clone(),
            info_msgs: info.clone(),
            expect_iobufs: false,
        })),
    };
    Some(match kind {
        LogsrvdMessage::Accept => vec![accept()],
        LogsrvdMessage::AcceptExit => {
            let ms = ev["run_time"].as_i64().unwrap_or(0).max(0);
            let signal = ev["signal"]
                .as_i64()
                .filter(|&s| s > 0)
                .map(signal_name)
                .unwrap_or_default();
            let error = match event_type {
                "exec_finish" => String::new(),
                _ => ev["detail"]
                    .as_str()
                    .or(ev["error"].as_str())
                    .unwrap_or(event_type)
                    .to_string(),
            };
            let exit = ExitMessage {
                run_time: Some(TimeSpec {
                    tv_sec: ms / 1000,
                    tv_nsec: ((ms % 1000) * 1_000_000) as i32,
                }),
                exit_value: ev["exit_value"].as_i64().unwrap_or(0).clamp(0, 255) as i32,
                dumped_core: false,
                signal,
                error,
            };
            vec![
                accept(),
                ClientMessage {
                    r#type: Some(C::ExitMsg(exit)),
                },
            ]
        }
        LogsrvdMessage::Reject => {
            let reason = ev["message"]
                .as_str()
                .or(ev["reason_code"].as_str())
                .unwrap_or(event_type)
                .to_string();
            vec![ClientMessage {
                r#type: Some(C::RejectMsg(RejectMessage {
                    submit_time,
                    reason,
                    info_msgs: info,
                })),
            }]
        }
    })
}

/// sudo's info keys from the event's own fields, then occ's.
fn info_messages(ev: &Json) -> Vec<InfoMessage> {
    let mut out = Vec::new();
    let mut str_key = |key: &str, v: Option<&str>| {
        if let Some(v) = v {
            out.push(InfoMessage {
                key: key.into(),
                value: Some(V::Strval(v.into())),
            });
        }
    };
    let runargv: Vec<String> = ev["runargv"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    // sudo_logsrvd refuses a record without submituser, submithost or command.
    let command = ev["command"]
        .as_str()
        .map(String::from)
        .or_else(|| runargv.first().cloned())
        .unwrap_or_else(|| "(none)".into());
    str_key(
        "submituser",
        Some(ev["submituser"].as_str().unwrap_or("unknown")),
    );
    str_key("submithost", Some(&hostname()));
    // Events from before `submitcwd` was recorded name only where the command ran.
    str_key(
        "submitcwd",
        ev["submitcwd"].as_str().or_else(|| ev["runcwd"].as_str()),
    );
    str_key("command", Some(&command));
    str_key("runcwd", ev["runcwd"].as_str());
    str_key("runuser", ev["runuser"].as_str());
    str_key("rungroup", ev["rungroup"].as_str());
    str_key("ttyname", ev["ttyname"].as_str());
    str_key("occ_event", ev["event_type"].as_str());
    str_key("occ_request_id", ev["request_id"].as_str());
    str_key("occ_session_id", ev["session_id"].as_str());
    str_key("occ_chain_hash", ev["chain_hash"].as_str());
    str_key("occ_reason_code", ev["reason_code"].as_str());
    str_key("occ_approver", ev["approver"].as_str());
    str_key("occ_grant_scope", ev["grant_scope"].as_str());
    let mut num_key = |key: &str, v: Option<i64>| {
        if let Some(v) = v {
            out.push(InfoMessage {
                key: key.into(),
                value: Some(V::Numval(v)),
            });
        }
    };
    num_key("occ_seq", ev["seq"].as_i64());
    num_key("submituid", ev["peer_uid"].as_i64());
    num_key(
        "runuid",
        ev["runuser"].as_str().and_then(|u| {
            nix::unistd::User::from_name(u)
                .ok()
                .flatten()
                .map(|u| i64::from(u.uid.as_raw()))
        }),
    );
    num_key("columns", ev["columns"].as_i64());
    num_key("lines", ev["lines"].as_i64());
    let mut list_key = |key: &str, v: Vec<String>| {
        if !v.is_empty() {
            out.push(InfoMessage {
                key: key.into(),
                value: Some(V::Strlistval(StringList { strings: v })),
            });
        }
    };
    list_key("runargv", runargv);
    list_key(
        "runenv",
        ev["runenv"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default(),
    );
    out
}

/// `INT` for 2: the signal's name without `SIG`, as sudo sends it.
fn signal_name(n: i64) -> String {
    i32::try_from(n)
        .ok()
        .and_then(|n| nix::sys::signal::Signal::try_from(n).ok())
        .map(|s| s.as_str().trim_start_matches("SIG").to_string())
        .unwrap_or_else(|| n.to_string())
}

fn timespec_of_rfc3339(t: &str) -> TimeSpec {
    let d = humantime::parse_rfc3339(t)
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .unwrap_or_default();
    TimeSpec {
        tv_sec: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        tv_nsec: d.subsec_nanos() as i32,
    }
}

/// One session: the TLS handshake when `tls` is given, hello, the messages, then the server's
/// close as the acknowledgement (a `ServerMessage.error` or `abort` instead is a failure, and
/// the event is sent again later).
pub fn session(
    address: &str,
    tls: Option<&TlsClient>,
    messages: &[ClientMessage],
) -> Result<(), SendError> {
    let mut last = format!("{address}: no address");
    let addrs = address
        .to_socket_addrs()
        .map_err(|e| format!("{address}: {e}"))?;
    let mut stream = None;
    for a in addrs {
        match TcpStream::connect_timeout(&a, CONNECT_TIMEOUT) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last = format!("connect {a}: {e}"),
        }
    }
    let s = stream.ok_or(SendError::Retry(last))?;
    s.set_read_timeout(Some(IO_TIMEOUT))
        .and_then(|()| s.set_write_timeout(Some(IO_TIMEOUT)))
        .map_err(|e| SendError::Retry(e.to_string()))?;
    let _ = s.set_nodelay(true);
    match tls {
        None => converse(address, s, messages),
        Some(t) => converse(address, t.connect(address, s)?, messages).map_err(|e| match e {
            SendError::Retry(e) => SendError::Retry(format!("TLS session with {address}: {e}")),
            SendError::Refused(e) => SendError::Refused(format!("TLS session with {address}: {e}")),
        }),
    }
}

/// The protocol proper, the same over TCP and TLS (sudo_logsrv.proto(5): ServerHello says
/// nothing about TLS; the port decides).
fn converse(
    address: &str,
    mut s: impl HalfClose,
    messages: &[ClientMessage],
) -> Result<(), SendError> {
    let hello = ClientMessage {
        r#type: Some(C::HelloMsg(ClientHello {
            client_id: format!("occ {}", env!("CARGO_PKG_VERSION")),
        })),
    };
    write_message(&mut s, &hello)?;
    match read_message(&mut s)? {
        Some(ServerMessage {
            r#type: Some(S::Hello(h)),
        }) => {
            if !h.redirect.is_empty() {
                return Err(SendError::Retry(format!(
                    "{address} redirects to {}; point audit.forward at it",
                    h.redirect
                )));
            }
        }
        other => {
            return Err(SendError::Retry(format!(
                "{address}: expected ServerHello, got {other:?}"
            )))
        }
    }
    for m in messages {
        write_message(&mut s, m)?;
    }
    // Nothing more from us: the server finishes the session (reject, exit) or sees our end
    // (accept alone) and closes; either way it has stored the record before closing.
    let _ = s.close_writes();
    loop {
        match read_message(&mut s) {
            Ok(None) => return Ok(()),
            Ok(Some(ServerMessage {
                r#type: Some(S::Error(e)),
            })) => return Err(SendError::Refused(format!("{address}: server error: {e}"))),
            Ok(Some(ServerMessage {
                r#type: Some(S::Abort(e)),
            })) => return Err(SendError::Retry(format!("{address}: server abort: {e}"))),
            Ok(Some(_)) => continue,
            // A reset means the server dropped data unread: send the event again.
            Err(e) => return Err(SendError::Retry(e)),
        }
    }
}

fn write_message(s: &mut impl HalfClose, m: &ClientMessage) -> Result<(), String> {
    use prost::Message;
    let body = m.encode_to_vec();
    if body.len() > MESSAGE_MAX {
        return Err(format!(
            "message of {} bytes is over sudo_logsrvd's 2 MiB limit",
            body.len()
        ));
    }
    let mut frame = Vec::with_capacity(4 + body.len());
    frame.extend_from_slice(&(body.len() as u32).to_be_bytes());
    frame.extend_from_slice(&body);
    s.write_all(&frame).map_err(|e| format!("send: {e}"))
}

/// The next server message, or `None` at a clean end of stream.
fn read_message(s: &mut impl HalfClose) -> Result<Option<ServerMessage>, String> {
    use prost::Message;
    let mut len = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        match s.read(&mut len[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => return Err("connection closed mid-message".into()),
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("receive: {e}")),
        }
    }
    let n = u32::from_be_bytes(len) as usize;
    if n > MESSAGE_MAX {
        return Err(format!("server message of {n} bytes is too large"));
    }
    let mut body = vec![0u8; n];
    s.read_exact(&mut body)
        .map_err(|e| format!("receive: {e}"))?;
    ServerMessage::decode(body.as_slice())
        .map(Some)
        .map_err(|e| format!("undecodable server message: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    #[test]
    fn reject_carries_sudo_and_occ_keys() {
        let ev = serde_json::json!({
            "seq": 7, "event_type": "policy_block", "timestamp": "2026-11-22T23:07:56.874Z",
            "chain_hash": "ab", "submituser": "alice", "command": "/usr/bin/rm",
            "runargv": ["rm", "-rf", "/"], "runuser": "root", "runcwd": "/tmp",
            "reason_code": "policy_block", "message": "denied by rule rm", "peer_uid": 1000,
        });
        let msgs = messages_for(&ev).expect("a reject");
        assert_eq!(msgs.len(), 1);
        let Some(C::RejectMsg(r)) = &msgs[0].r#type else {
            panic!("{msgs:?}")
        };
        assert_eq!(r.reason, "denied by rule rm");
        assert_eq!(r.submit_time.as_ref().map(|t| t.tv_sec), Some(1795388876));
        let key = |k: &str| r.info_msgs.iter().find(|i| i.key == k).cloned();
        assert_eq!(key("occ_seq").and_then(|i| i.value), Some(V::Numval(7)));
        assert_eq!(
            key("runargv").and_then(|i| i.value),
            Some(V::Strlistval(StringList {
                strings: vec!["rm".into(), "-rf".into(), "/".into()]
            }))
        );
        assert_eq!(key("runuid").and_then(|i| i.value), Some(V::Numval(0)));
        // Round trip through the wire encoding.
        let back = ClientMessage::decode(msgs[0].encode_to_vec().as_slice()).unwrap();
        assert_eq!(back, msgs[0]);
    }

    #[test]
    fn finish_is_accept_then_exit_and_other_events_are_not_sent() {
        let ev = serde_json::json!({
            "seq": 9, "event_type": "exec_finish", "timestamp": "2026-11-22T23:07:56.874Z",
            "chain_hash": "cd", "submituser": "alice", "runargv": ["true"],
            "exit_value": 0, "signal": 15, "run_time": 1500,
        });
        let msgs = messages_for(&ev).expect("accept and exit");
        let Some(C::ExitMsg(x)) = &msgs[1].r#type else {
            panic!("{msgs:?}")
        };
        assert_eq!(
            (
                x.signal.as_str(),
                x.run_time.as_ref().map(|t| (t.tv_sec, t.tv_nsec))
            ),
            ("TERM", Some((1, 500_000_000)))
        );
        assert!(matches!(msgs[0].r#type, Some(C::AcceptMsg(_))));
        let other = serde_json::json!({"seq": 1, "event_type": "request_received"});
        assert!(messages_for(&other).is_none());
    }
}
