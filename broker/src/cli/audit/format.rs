//! How one stored event is shown: `short` (time, event, `user → runuser`, the command and a few
//! key fields), `verbose` (every field, one per line), `json` (the stored line) and `cat` (the
//! message alone). Everything taken from the log is escaped; colour is added only when asked.

use occ_audit::canon::{self, Field, Member, Record};

use crate::escape::{escape_raw as escape, escape_text};

/// The fields that make the chain (the writer's own), shown only by `verbose`.
const CHAIN_FIELDS: [&str; 6] = occ_audit::chain::RESERVED;

/// Fields `short` shows after the command, when present, in this order.
const KEY_FIELDS: [&str; 10] = [
    "request_id",
    "reason_code",
    "grant_scope",
    "exit_value",
    "exit_status",
    "signal",
    "approver",
    "channel",
    "session_id",
    "message",
];

/// `-o`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    /// One line: time, event, user → runuser, command, key fields.
    Short,
    /// Every field, one per line.
    Verbose,
    /// The stored line (JSONL), exactly as written.
    Json,
    /// The message (or the command) alone.
    Cat,
}

/// A parsed line: its top-level members.
pub(super) struct Shown<'a> {
    rec: Record<'a>,
}

impl<'a> Shown<'a> {
    pub(super) fn parse(line: &'a [u8], members: &'a mut Vec<Member>) -> Option<Shown<'a>> {
        members.clear();
        canon::lenient(line, members).ok()?;
        if line.first() != Some(&b'{') {
            return None;
        }
        Some(Shown {
            rec: Record { line, members },
        })
    }

    /// A string field, decoded.
    pub(super) fn string(&self, key: &str) -> Option<String> {
        match self.rec.field(key)? {
            Field::Str(s) => Some(canon::decode_str(s)),
            _ => None,
        }
    }

    /// The command as an argv: `runargv`, else `command`.
    pub(super) fn argv(&self) -> Option<Vec<String>> {
        if let Some(raw) = self.rec.raw("runargv") {
            if let Ok(v) = serde_json::from_slice::<Vec<String>>(raw) {
                return Some(v);
            }
        }
        self.string("command").map(|c| vec![c])
    }

    fn raw_text(&self, key: &str) -> Option<String> {
        match self.rec.field(key)? {
            Field::Str(s) => Some(escape_text(&canon::decode_str(s))),
            Field::Null => None,
            _ => self.rec.raw(key).map(escape),
        }
    }

    /// Who asked: `submituser`, else the approver or `user`; with the field it came from.
    fn user(&self) -> Option<(&'static str, String)> {
        ["submituser", "approver", "user"]
            .into_iter()
            .find_map(|k| self.string(k).map(|v| (k, v)))
    }

    pub(super) fn render(&self, line: &[u8], how: Output, colour: bool) -> String {
        match how {
            Output::Json => escape(line),
            Output::Short => self.short(colour),
            Output::Verbose => self.verbose(colour),
            Output::Cat => self.cat(),
        }
    }

    fn short(&self, colour: bool) -> String {
        let ts = self.string("timestamp").unwrap_or_else(|| "?".into());
        // 2026-12-06T22:53:39.123Z → 2026-12-06 22:53:39
        let time: String = ts.replacen('T', " ", 1).chars().take(19).collect();
        let et = self.string("event_type").unwrap_or_else(|| "?".into());
        let mut out = format!(
            "{}  {}",
            paint(&escape_text(&time), "2", colour),
            paint(
                &format!("{:<22}", escape_text(&et)),
                event_colour(&et),
                colour
            )
        );
        let (user_key, user) = match self.user() {
            Some((k, v)) => (Some(k), Some(v)),
            None => (None, None),
        };
        let runuser = self.string("runuser");
        match (&user, &runuser) {
            (Some(u), Some(r)) => {
                out.push_str(&format!("  {} → {}", escape_text(u), escape_text(r)))
            }
            (Some(u), None) => out.push_str(&format!("  {}", escape_text(u))),
            (None, Some(r)) => out.push_str(&format!("  → {}", escape_text(r))),
            (None, None) => {}
        }
        let argv = self.argv();
        if let Some(argv) = &argv {
            out.push_str("  ");
            out.push_str(&shell_line(argv));
        }
        if argv.is_none() {
            // No command to lead with: the event's own fields say what happened.
            for m in self.rec.members {
                let key = canon::decode_str(&self.rec.line[m.key.start..m.key.end]);
                let shown = CHAIN_FIELDS.contains(&key.as_str())
                    || KEY_FIELDS.contains(&key.as_str())
                    || key.starts_with("peer_")
                    || matches!(key.as_str(), "submituser" | "approver" | "user" | "runuser");
                if !shown {
                    if let Some(v) = self.raw_text(&key) {
                        out.push_str(&format!("  {}={v}", escape_text(&key)));
                    }
                }
            }
        }
        for k in KEY_FIELDS {
            if Some(k) == user_key {
                continue;
            }
            if let Some(v) = self.raw_text(k) {
                if k == "signal" && v == "0" {
                    continue;
                }
                if k == "request_id" {
                    out.push_str(&format!("  #{v}"));
                } else {
                    out.push_str(&format!("  {k}={v}"));
                }
            }
        }
        out
    }

    fn verbose(&self, colour: bool) -> String {
        let seq = self
            .rec
            .field("seq")
            .and_then(|f| f.as_u64())
            .map_or("?".to_owned(), |s| s.to_string());
        let ts = self.string("timestamp").unwrap_or_else(|| "?".into());
        let et = self.string("event_type").unwrap_or_else(|| "?".into());
        let mut out = format!(
            "seq {seq}  {}  {}\n",
            escape_text(&ts),
            paint(&escape_text(&et), event_colour(&et), colour)
        );
        for m in self.rec.members {
            let key = canon::decode_str(&self.rec.line[m.key.start..m.key.end]);
            if matches!(key.as_str(), "seq" | "timestamp" | "event_type") {
                continue;
            }
            let value = match Field::of(&self.rec.line[m.value.start..m.value.end]) {
                Field::Str(s) => escape_text(&canon::decode_str(s)),
                _ => escape(&self.rec.line[m.value.start..m.value.end]),
            };
            let dim = CHAIN_FIELDS.contains(&key.as_str());
            out.push_str(&format!(
                "    {}={value}\n",
                paint(&escape_text(&key), if dim { "2" } else { "" }, colour)
            ));
        }
        out.pop();
        out
    }

    fn cat(&self) -> String {
        if let Some(m) = self.string("message") {
            return escape_text(&m);
        }
        if let Some(argv) = self.argv() {
            return shell_line(&argv);
        }
        escape_text(&self.string("event_type").unwrap_or_default())
    }
}

/// An argv as a shell would need it typed, escaped for the terminal.
fn shell_line(argv: &[String]) -> String {
    argv.iter()
        .map(|a| {
            let plain = !a.is_empty()
                && a.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"/._-=:,+@%".contains(&b));
            if plain {
                escape_text(a)
            } else {
                format!("'{}'", escape_text(&a.replace('\'', "'\\''")))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The SGR colour of an event: refusals red, grants green, runs cyan, waiting yellow.
fn event_colour(et: &str) -> &'static str {
    match et {
        e if e.contains("block")
            || e.contains("denied")
            || e.contains("refused")
            || e.contains("failed")
            || e.contains("rejected")
            || e.contains("broken")
            || e.contains("missing") =>
        {
            "31"
        }
        "approval_granted" | "token_ok" | "untrusted_source_confirmed" => "32",
        e if e.starts_with("exec_") => "36",
        "approval_requested" | "approval_expired" | "exec_outcome_unknown" => "33",
        _ => "",
    }
}

fn paint(s: &str, sgr: &str, colour: bool) -> String {
    if colour && !sgr.is_empty() {
        format!("\x1b[{sgr}m{s}\x1b[0m")
    } else {
        s.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: &[u8] = br#"{"chain_hash": "ab", "event_type": "approval_granted", "grant_scope": "once", "peer_pid": 7, "prev_hash": null, "request_id": "k3x9q2ab", "runargv": ["/usr/bin/systemctl", "restart", "nginx web"], "runuser": "root", "seq": 12, "submituser": "agent", "timestamp": "2026-12-06T22:53:39.123Z"}"#;

    fn shown(how: Output, colour: bool) -> String {
        let mut m = Vec::new();
        let s = Shown::parse(LINE, &mut m).expect("a record");
        s.render(LINE, how, colour)
    }

    #[test]
    fn short_leads_with_time_event_users_and_command() {
        assert_eq!(
            shown(Output::Short, false),
            "2026-12-06 22:53:39  approval_granted        agent → root  /usr/bin/systemctl \
             restart 'nginx web'  #k3x9q2ab  grant_scope=once"
        );
        let c = shown(Output::Short, true);
        assert!(c.contains("\x1b[32mapproval_granted"), "{c:?}");
    }

    #[test]
    fn verbose_json_and_cat() {
        let v = shown(Output::Verbose, false);
        assert!(
            v.starts_with("seq 12  2026-12-06T22:53:39.123Z  approval_granted\n"),
            "{v}"
        );
        assert!(v.contains("\n    peer_pid=7\n"), "{v}");
        assert!(v.contains("\n    chain_hash=ab\n"), "{v}");
        assert_eq!(shown(Output::Json, false).as_bytes(), LINE);
        assert_eq!(
            shown(Output::Cat, false),
            "/usr/bin/systemctl restart 'nginx web'"
        );
    }

    #[test]
    fn hostile_values_are_escaped_in_every_form() {
        let line = br#"{"event_type": "policy_block", "runargv": ["/bin/x", "\u001b[2J"], "seq": 1, "submituser": "a\nb", "timestamp": "t"}"#;
        let mut m = Vec::new();
        let s = Shown::parse(line, &mut m).expect("a record");
        for how in [Output::Short, Output::Verbose, Output::Cat, Output::Json] {
            let out = s.render(line, how, false);
            assert!(
                !out.contains('\x1b') && !out.contains("a\nb"),
                "{how:?}: {out:?}"
            );
        }
    }
}
