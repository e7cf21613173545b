//! The approver's view of a pending request: the JSON item `occ approvals --json` prints, and
//! the text `occ approvals` and the terminal channel print from it. It shows everything the
//! grant binds (target user and group, `-H`, `-P`, `-D`, assignments, preserved and kept
//! variables) and every risk the policy reports; it must never drop a field that changes what
//! runs, and every requester-controlled string goes through [`crate::escape`].

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::escape::{argv_list, escape_text, MIXED_SCRIPT};
use crate::session::{Grant, Pending, RequestInfo, Scope};

/// One pending request as approvers see it. The keys DESIGN.md documents come first; the
/// rest default when absent, so an older broker's answer still reads. Unknown keys are
/// refused: a field this `occ` cannot show must not be silently left out of the view.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PendingView {
    pub id: String,
    pub age_seconds: u64,
    pub expires_at: String,
    pub submituser: String,
    pub peer_pid: i32,
    pub session_id: Option<String>,
    pub command: Vec<String>,
    pub runuser: String,
    pub rungroup: Option<String>,
    pub runcwd: String,
    pub env: BTreeMap<String, String>,
    pub reason: Option<String>,
    pub untrusted: bool,
    pub runs_arbitrary_code: bool,
    #[serde(default)]
    pub set_home: bool,
    #[serde(default)]
    pub preserve_groups: bool,
    #[serde(default)]
    pub chdir: Option<String>,
    #[serde(default)]
    pub preserved_env: BTreeMap<String, String>,
    #[serde(default)]
    pub kept_env: BTreeMap<String, String>,
    #[serde(default)]
    pub flags: Vec<String>,
    #[serde(default)]
    pub wraps: Vec<Vec<String>>,
    #[serde(default)]
    pub requester_writable: Vec<String>,
    /// SHA-256 (hex) of what is shown ([`RequestInfo::view_hash`]): `occ approve` sends it back,
    /// so the broker grants only what the approver saw.
    #[serde(default)]
    pub view_sha256: String,
    /// `approval.quorum` above 1: the approvers who voted for it so far.
    #[serde(default)]
    pub votes: Vec<String>,
    /// How many approvers must vote (`approval.quorum`; 0 from an older broker means 1).
    #[serde(default)]
    pub quorum: u32,
    /// Where OpenClaw says the run came from: `channel`, `sender`, `chat` (from
    /// `OPENCLAW_CHANNEL_CONTEXT`), `agent`, `session_key`, `context_error`; absent fields are
    /// left out, and the whole is `null` for a run from the CLI.
    #[serde(default)]
    pub source: Option<occ_policy::Source>,
}

impl PendingView {
    /// The view of `p` at `now_ms`, where `quorum` approvers must vote (`approval.quorum`;
    /// 1 in user mode). Every view (the list, the notifier's message, a watcher's event) is
    /// made here, so all of them say the same.
    pub fn of(p: &Pending, now_ms: u64, quorum: u32) -> PendingView {
        let expires = UNIX_EPOCH + Duration::from_millis(p.expires_ms);
        let i = &p.info;
        PendingView {
            id: p.id.clone(),
            age_seconds: now_ms.saturating_sub(p.created_ms) / 1000,
            expires_at: humantime::format_rfc3339_seconds(expires).to_string(),
            submituser: i.submituser.clone(),
            peer_pid: i.peer_pid,
            session_id: i.session_id.clone(),
            command: i.command.clone(),
            runuser: i.runuser.clone(),
            rungroup: i.rungroup.clone(),
            runcwd: i.runcwd.clone(),
            env: i.env.clone(),
            reason: i.reason.clone(),
            untrusted: i.untrusted,
            runs_arbitrary_code: i.runs_arbitrary_code,
            set_home: i.set_home,
            preserve_groups: i.preserve_groups,
            chdir: i.chdir.clone(),
            preserved_env: i.preserved_env.clone(),
            kept_env: i.kept_env.clone(),
            flags: i.flags.clone(),
            wraps: i.wraps.clone(),
            requester_writable: i.requester_writable.clone(),
            view_sha256: occ_base::hex::encode(&i.view_hash()),
            votes: p.votes.iter().map(|v| v.name.clone()).collect(),
            quorum,
            source: i.source.clone(),
        }
    }

    /// The view of a request that is not filed yet (the terminal channel's prompt).
    pub fn of_info(info: &RequestInfo) -> PendingView {
        let p = Pending {
            id: String::new(),
            info: info.clone(),
            created_ms: 0,
            expires_ms: 0,
            votes: Vec::new(),
            terms: None,
        };
        PendingView::of(&p, 0, 1)
    }

    /// `runuser`, with `:group` when the request names one.
    pub fn target(&self) -> String {
        match &self.rungroup {
            Some(g) => format!("{}:{}", escape_text(&self.runuser), escape_text(g)),
            None => escape_text(&self.runuser),
        }
    }

    /// The header line: `#ID  submituser → runuser[:group]  age Ns  pid P  session S`.
    pub fn header(&self) -> String {
        format!(
            "#{}  {} → {}  age {}s  pid {}  session {}",
            escape_text(&self.id),
            escape_text(&self.submituser),
            self.target(),
            self.age_seconds,
            self.peer_pid,
            escape_text(self.session_id.as_deref().unwrap_or("-")),
        )
    }

    /// Everything after the command and cwd: one labelled line per extra, each indented by
    /// four spaces and ending in a newline. Empty when the request has no extras.
    pub fn extras(&self) -> String {
        let mut out = String::new();
        let mut line = |label: &str, text: &str| {
            let _ = writeln!(out, "    {label}: {text}");
        };
        if let Some(src) = &self.source {
            // The requester's own environment says so: shown, never trusted.
            line("asked from", &escape_text(&src.describe()));
        }
        if let Some(d) = &self.chdir {
            line("chdir (-D)", &escape_text(d));
        }
        if self.set_home {
            line(
                "home (-H)",
                &format!(
                    "HOME is set to {}'s home directory",
                    escape_text(&self.runuser)
                ),
            );
        }
        if self.preserve_groups {
            line(
                "groups (-P)",
                "the requester's supplementary groups are kept",
            );
        }
        for (label, vars) in [
            ("env", &self.env),
            ("preserved env (-E)", &self.preserved_env),
            ("kept env", &self.kept_env),
        ] {
            for (k, v) in vars {
                line(label, &format!("{}={}", escape_text(k), escape_text(v)));
            }
        }
        if !self.flags.is_empty() {
            let flags: Vec<String> = self.flags.iter().map(|f| escape_text(f)).collect();
            line("flags", &flags.join(", "));
        }
        if self.flags.iter().any(|f| f == "stdin_from_requester") {
            line("stdin", "the requester supplies the content on stdin");
        }
        for w in &self.wraps {
            line("wraps, really runs", &argv_list(w));
        }
        if !self.requester_writable.is_empty() {
            line(
                "WARNING",
                &format!(
                    "what runs can change after approval: the requester can write {}",
                    argv_list(&self.requester_writable)
                ),
            );
        }
        if let Some(r) = &self.reason {
            line("reason", &escape_text(r));
        }
        if self.quorum > 1 {
            let names: Vec<String> = self.votes.iter().map(|v| escape_text(v)).collect();
            let by = if names.is_empty() {
                String::new()
            } else {
                format!(" (voted: {})", names.join(", "))
            };
            line(
                "approvals",
                &format!("{} of {}{by}", self.votes.len(), self.quorum),
            );
        }
        if self.untrusted {
            out.push_str(
                "    UNTRUSTED SOURCE: approve only with --confirm-untrusted after reading it\n",
            );
        }
        if self.runs_arbitrary_code {
            out.push_str("    runs arbitrary code: a grant covers one run only\n");
        }
        out
    }

    /// The whole text block `occ approvals` prints for this request.
    pub fn text(&self) -> String {
        let mut out = format!(
            "{}\n    command: {}\n    cwd: {}\n{}",
            self.header(),
            argv_list(&self.command),
            escape_text(&self.runcwd),
            self.extras()
        );
        if out.contains(MIXED_SCRIPT) {
            // Requester text never shows a raw ⚠ (escape.rs escapes it), so this is occ's mark.
            out.push_str(
                "    note: ⚠mixed-script follows a word that mixes letters of two scripts \
                 (Latin with Cyrillic or Greek, …): it only looks like the word it imitates\n",
            );
        }
        out
    }
}

/// One live grant as `occ grants --json` prints it and `occ grants` shows it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantView {
    /// The id of the request it was approved for.
    pub id: String,
    /// `once`, `session` or `limited`.
    pub scope: String,
    /// Runs left (`None`: no count: a session grant, or a limited grant bounded by time).
    pub uses_left: Option<u32>,
    /// When it ends (`None`: a once grant waits for its run; a session grant ends when the
    /// session is idle).
    pub expires_at: Option<String>,
    pub session_id: Option<String>,
    pub submituser: String,
    pub runuser: String,
    pub command: Vec<String>,
}

impl GrantView {
    /// The view of one grant.
    pub fn of(g: &Grant) -> GrantView {
        GrantView {
            id: g.request_id.clone(),
            scope: g.scope.as_str().to_string(),
            uses_left: match g.scope {
                Scope::Once => Some(1),
                Scope::Session => None,
                Scope::Limited => g.uses_left,
            },
            expires_at: g.expires_ms.map(|ms| {
                let t = UNIX_EPOCH + Duration::from_millis(ms);
                humantime::format_rfc3339_seconds(t).to_string()
            }),
            session_id: g.session_id.clone(),
            submituser: g.submituser.clone(),
            runuser: g.runuser.clone(),
            command: g.command.clone(),
        }
    }

    /// Two lines: `#ID  SCOPE  uses left N  expires T  session S  submituser → runuser`, then
    /// the command.
    pub fn text(&self) -> String {
        let uses = match self.uses_left {
            Some(n) => format!("uses left {n}"),
            None => "uses left -".to_string(),
        };
        format!(
            "#{}  {}  {uses}  expires {}  session {}  {} → {}\n    command: {}\n",
            escape_text(&self.id),
            escape_text(&self.scope),
            escape_text(self.expires_at.as_deref().unwrap_or("-")),
            escape_text(self.session_id.as_deref().unwrap_or("-")),
            escape_text(&self.submituser),
            escape_text(&self.runuser),
            argv_list(&self.command),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view() -> PendingView {
        PendingView {
            id: "ab12cd34".into(),
            submituser: "agent".into(),
            peer_pid: 7,
            command: vec!["/usr/bin/whoami".into()],
            runuser: "agent".into(),
            runcwd: "/srv".into(),
            ..PendingView::default()
        }
    }

    #[test]
    fn a_plain_request_keeps_the_documented_header_and_lines() {
        assert_eq!(
            view().text(),
            "#ab12cd34  agent → agent  age 0s  pid 7  session -\n    command: [\"/usr/bin/whoami\"]\n    cwd: /srv\n"
        );
    }

    #[test]
    fn every_part_of_the_grant_has_its_own_labelled_line() {
        let mut v = view();
        v.rungroup = Some("root".into());
        v.chdir = Some("/srv".into());
        v.set_home = true;
        v.preserve_groups = true;
        v.env = BTreeMap::from([("A".into(), "1 B=2".into())]);
        v.preserved_env = BTreeMap::from([("HTTP_PROXY".into(), "http://p:3128".into())]);
        v.kept_env = BTreeMap::from([("LANG".into(), "C".into())]);
        v.flags = vec!["writes_files".into(), "stdin_from_requester".into()];
        v.wraps = vec![vec!["/usr/bin/rm".into(), "-rf".into(), "/x".into()]];
        v.requester_writable = vec!["/home/agent/run.sh".into()];
        v.reason = Some("deploy".into());
        let t = v.text();
        for want in [
            "#ab12cd34  agent → agent:root  age 0s",
            "\n    chdir (-D): /srv\n",
            "\n    home (-H): HOME is set to agent's home directory\n",
            "\n    groups (-P): the requester's supplementary groups are kept\n",
            "\n    env: A=1 B=2\n",
            "\n    preserved env (-E): HTTP_PROXY=http://p:3128\n",
            "\n    kept env: LANG=C\n",
            "\n    flags: writes_files, stdin_from_requester\n",
            "\n    stdin: the requester supplies the content on stdin\n",
            "\n    wraps, really runs: [\"/usr/bin/rm\", \"-rf\", \"/x\"]\n",
            "\n    WARNING: what runs can change after approval: the requester can write [\"/home/agent/run.sh\"]\n",
            "\n    reason: deploy\n",
        ] {
            assert!(t.contains(want), "{want:?} missing from:\n{t}");
        }
    }

    #[test]
    fn requester_text_in_every_field_is_escaped() {
        let mut v = view();
        let evil = "x\u{1b}[2J\u{202e}\u{200b}";
        v.id = evil.into();
        v.submituser = evil.into();
        v.runuser = evil.into();
        v.rungroup = Some(evil.into());
        v.session_id = Some(evil.into());
        v.command = vec![evil.into()];
        v.runcwd = evil.into();
        v.chdir = Some(evil.into());
        v.env = BTreeMap::from([(evil.into(), evil.into())]);
        v.preserved_env = v.env.clone();
        v.kept_env = v.env.clone();
        v.flags = vec![evil.into()];
        v.wraps = vec![vec![evil.into()]];
        v.requester_writable = vec![evil.into()];
        v.reason = Some(evil.into());
        let t = v.text();
        for c in ['\u{1b}', '\u{202e}', '\u{200b}'] {
            assert!(!t.contains(c), "U+{:04X} shown raw:\n{t}", c as u32);
        }
        // As text: id, submituser, user and group, session, cwd, chdir, three env lines of
        // name and value, flag, reason. As argv: command, wraps, writable paths.
        assert_eq!(t.matches("\\u{001b}").count(), 18, "{t}");
        assert!(!t.contains("\\u001b"), "{t}");
    }

    #[test]
    fn a_mixed_script_word_is_marked_and_explained() {
        let mut v = view();
        v.command = vec!["/usr/bin/cat".into(), "/etc/p\u{430}sswd".into()];
        let t = v.text();
        assert!(t.contains("/etc/p\u{430}sswd⚠mixed-script"), "{t}");
        assert!(
            t.contains("\n    note: ⚠mixed-script follows a word"),
            "{t}"
        );
        assert!(!view().text().contains("note:"));
    }

    #[test]
    fn unknown_keys_are_refused_and_new_keys_default() {
        let old = r#"{"id":"a","age_seconds":1,"expires_at":"t","submituser":"u","peer_pid":1,
            "session_id":null,"command":["/bin/true"],"runuser":"root","rungroup":null,
            "runcwd":"/","env":{},"reason":null,"untrusted":false,"runs_arbitrary_code":false}"#;
        let v: PendingView = serde_json::from_str(old).unwrap();
        assert!(!v.set_home && v.flags.is_empty());
        let newer = old.replace("\"id\"", "\"shown_nowhere\":1,\"id\"");
        let e = serde_json::from_str::<PendingView>(&newer).unwrap_err();
        assert!(e.to_string().contains("unknown field"), "{e}");
    }
}
