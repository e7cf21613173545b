//! `occ approvals --watch`: the live queue, like `journalctl -f` for pending requests. It asks
//! the broker once (`{"op": "watch"}`) and then only reads what the broker pushes; it never
//! polls. New requests print with a bell when stdout is a terminal; removals print one line.

use std::io::{IsTerminal, Write};
use std::os::unix::net::UnixStream;

use occ_proto::Frame;
use serde_json::Value;

use super::admin::socket_path;
use crate::escape::escape_text;
use crate::gate::admin::AdminRequest;
use crate::view::PendingView;

/// Runs the watch until the broker ends it (exit 1 with its reason) or goes away (exit 2).
pub fn run(json_out: bool) -> i32 {
    let sock = socket_path();
    let stream = match UnixStream::connect(&sock) {
        Ok(s) => s,
        Err(e) => {
            return fail(
                json_out,
                &format!(
                    "occ broker unavailable at {}: {e}; start it with `occ broker`",
                    sock.display()
                ),
            )
        }
    };
    let body = match serde_json::to_vec(&AdminRequest::Watch) {
        Ok(b) => b,
        Err(e) => return fail(json_out, &e.to_string()),
    };
    if let Err(e) = occ_proto::write_frame(&stream, &Frame::Admin { body }, &[]) {
        return fail(json_out, &format!("cannot talk to the broker: {e}"));
    }
    let bell = !json_out && std::io::stdout().is_terminal();
    let mut out = std::io::stdout().lock();
    loop {
        // No deadline: a quiet queue is not an error. The broker ends the watch itself.
        let got = match occ_proto::read_frame_by(&stream, None) {
            Ok(g) => g,
            Err(e) => return fail(json_out, &format!("the broker ended the watch: {e}")),
        };
        match got.frame {
            Frame::AdminEvent { body } => {
                let Ok(v) = serde_json::from_slice::<Value>(&body) else {
                    return fail(json_out, "the broker sent an event that is not JSON");
                };
                let line = if json_out {
                    format!("{v}\n")
                } else {
                    match text(&v, bell) {
                        Ok(t) => t,
                        Err(e) => return fail(false, &e),
                    }
                };
                if out
                    .write_all(line.as_bytes())
                    .and_then(|()| out.flush())
                    .is_err()
                {
                    // Our reader went away (`| head`): stop quietly.
                    return 0;
                }
            }
            Frame::AdminReply { ok, body } => {
                let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                if json_out {
                    let _ = writeln!(out, "{v}");
                }
                let msg = v
                    .get("error")
                    .or_else(|| v.get("reason"))
                    .and_then(Value::as_str)
                    .unwrap_or("the broker ended the watch");
                eprintln!("occ: {msg}");
                return if ok { 0 } else { 1 };
            }
            Frame::Refuse(r) => {
                return fail(json_out, &format!("{} ({})", r.message, r.reason_code))
            }
            other => {
                return fail(
                    json_out,
                    &format!("unexpected frame from the broker: {:?}", other.frame_type()),
                )
            }
        }
    }
}

/// One event as text: a new request's full view (with a bell), or one line for a removal.
fn text(v: &Value, bell: bool) -> Result<String, String> {
    let id = v.get("id").and_then(Value::as_str).unwrap_or("");
    match v.get("event").and_then(Value::as_str) {
        Some("added") => {
            // Typed, refusing unknown keys: a field this occ cannot show must not be hidden.
            let view: PendingView = serde_json::from_value(
                v.get("request").cloned().unwrap_or(Value::Null),
            )
            .map_err(|e| {
                format!(
                    "the broker's request has something this occ cannot show ({e}); use the \
                     occ that matches the running broker, or `occ approvals --watch --json`"
                )
            })?;
            let initial = v.get("initial").and_then(Value::as_bool).unwrap_or(false);
            let approve = v
                .get("approve_command")
                .and_then(Value::as_str)
                .map(escape_text)
                .unwrap_or_default();
            Ok(format!(
                "{}{}    approve: {approve}\n",
                if bell && !initial { "\x07" } else { "" },
                view.text()
            ))
        }
        Some("removed") => Ok(format!(
            "#{} removed: {}\n",
            escape_text(id),
            escape_text(v.get("reason").and_then(Value::as_str).unwrap_or("?"))
        )),
        Some("watching") => Ok(format!(
            "occ: watching the queue ({} pending); Ctrl-C to stop\n",
            v.get("pending").and_then(Value::as_u64).unwrap_or(0)
        )),
        _ => Ok(String::new()),
    }
}

fn fail(json_out: bool, msg: &str) -> i32 {
    if json_out {
        println!("{}", serde_json::json!({ "error": msg }));
    }
    eprintln!("occ: {msg}");
    2
}
