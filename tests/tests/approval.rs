//! The approval path end to end, through the real binaries, as the unprivileged agent user:
//! the shim files a request, an approver decides with `occ approve`/`deny`, the real sudo runs
//! exactly what was approved, and every step is in an audit log that verifies.
//!
//! Needs root (to become the agent user), the real sudo, the `occ-agent` user and its scoped
//! NOPASSWD drop-in, all of which `.ci/run` sets up.

use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const AGENT: &str = "occ-agent";

/// The agent user's uid and gid, if the user exists.
pub(crate) fn agent_ids() -> Option<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.first() == Some(&AGENT))
            .then(|| Some((f.get(2)?.parse().ok()?, f.get(3)?.parse().ok()?)))?
    })
}

/// Whether the environment can run these tests; prints SKIP (a failure under
/// OCC_REQUIRE_FULL_TESTS=1) when it cannot.
pub(crate) fn ready() -> Option<(u32, u32)> {
    if !occ_tests::is_root() {
        occ_tests::skip("needs root (to run as the agent user)");
        return None;
    }
    if !Path::new("/usr/bin/sudo").is_file() {
        occ_tests::skip("needs the real sudo at /usr/bin/sudo");
        return None;
    }
    let Some(ids) = agent_ids() else {
        occ_tests::skip("needs the occ-agent user (created by .ci/run)");
        return None;
    };
    let check = Command::new("/usr/bin/sudo")
        .args(["-n", "-l", "-U", AGENT, "/usr/bin/id"])
        .output();
    if !check.map(|o| o.status.success()).unwrap_or(false) {
        occ_tests::skip("needs occ-agent's NOPASSWD sudoers drop-in (written by .ci/run)");
        return None;
    }
    Some(ids)
}

pub(crate) struct AgentHome {
    _dir: tempfile::TempDir,
    pub(crate) home: PathBuf,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
}

impl AgentHome {
    pub(crate) fn new(ids: (u32, u32)) -> AgentHome {
        AgentHome::with_occ(ids, "occ")
    }

    /// A home whose `bin/occ` is `occ-test-clock`: the same program with a clock that
    /// [`AgentHome::advance_minutes`] moves.
    pub(crate) fn with_test_clock(ids: (u32, u32)) -> AgentHome {
        AgentHome::with_occ(ids, "occ-test-clock")
    }

    fn with_occ((uid, gid): (u32, u32), occ: &str) -> AgentHome {
        let dir = tempfile::Builder::new()
            .prefix("occ-approval")
            .tempdir()
            .unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let home = dir.path().join("openclaw");
        let bin = home.join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::create_dir_all(home.join("security")).unwrap();
        occ_tests::copy_exe(occ_tests::bin("occ-shim"), bin.join("sudo"));
        occ_tests::copy_exe(occ_tests::bin(occ), bin.join("occ"));
        let h = AgentHome {
            _dir: dir,
            home,
            uid,
            gid,
        };
        h.chown_all();
        h
    }

    pub(crate) fn chown_all(&self) {
        let st = Command::new("chown")
            .args(["-R", &format!("{}:{}", self.uid, self.gid)])
            .arg(&self.home)
            .status()
            .unwrap();
        assert!(st.success());
        for d in [
            self.home.clone(),
            self.home.join("bin"),
            self.home.join("security"),
        ] {
            std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o700)).unwrap();
        }
    }

    /// Writes a policy file as the agent's own 0600 file.
    pub(crate) fn write_security(&self, name: &str, text: &str) {
        let p = self.home.join("security").join(name);
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::os::unix::fs::chown(&p, Some(self.uid), Some(self.gid)).unwrap();
    }

    pub(crate) fn cmd(&self, program: &Path) -> Command {
        let mut c = Command::new(program);
        c.uid(self.uid)
            .gid(self.gid)
            .env_clear()
            .env(
                "PATH",
                format!("{}:/usr/bin:/bin", self.home.join("bin").display()),
            )
            .env("HOME", self.home.parent().unwrap())
            .env("OCC_HOME", &self.home)
            .env("OCC_MODE", "user")
            .env("LANG", "C")
            .current_dir(&self.home)
            .stdin(Stdio::null());
        c
    }

    /// The agent's `sudo ARGS` through the shim (stdin not a terminal).
    pub(crate) fn sudo(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut c = self.cmd(&self.home.join("bin/sudo"));
        c.args(args);
        for (k, v) in env {
            c.env(k, v);
        }
        c.output().unwrap()
    }

    /// `occ ARGS` as the agent's uid (in user mode the approver shares it).
    pub(crate) fn occ(&self, args: &[&str]) -> Output {
        let mut c = self.cmd(&self.home.join("bin/occ"));
        c.args(args);
        c.output().unwrap()
    }

    pub(crate) fn occ_with_stdin(&self, args: &[&str], stdin: &str) -> Output {
        let mut c = self.cmd(&self.home.join("bin/occ"));
        c.args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    }

    pub(crate) fn pending(&self) -> Vec<Value> {
        let out = self.occ(&["approvals", "--json"]);
        assert!(out.status.success(), "occ approvals: {}", text(&out.stderr));
        serde_json::from_slice::<Value>(&out.stdout)
            .unwrap()
            .as_array()
            .cloned()
            .unwrap()
    }

    pub(crate) fn events(&self) -> Vec<Value> {
        let log = self.home.join("security/privileged-audit.jsonl");
        std::fs::read_to_string(log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    pub(crate) fn verify_intact(&self) {
        let out = self.occ(&["audit", "verify", "--json"]);
        let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        assert_eq!(
            v["intact"],
            Value::Bool(true),
            "audit verify: {} {}",
            text(&out.stdout),
            text(&out.stderr)
        );
        assert!(out.status.success());
    }

    pub(crate) fn stop_broker(&self) {
        let pidfile = self.home.join("run/broker.pid");
        if let Some(pid) = std::fs::read_to_string(&pidfile)
            .ok()
            .and_then(|s| s.trim().parse::<i32>().ok())
        {
            let _ = Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(5);
            while pidfile.exists() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

impl Drop for AgentHome {
    fn drop(&mut self) {
        self.stop_broker();
    }
}

pub(crate) fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The shim's pending line, checked word for word: the id, the expiry time it names
/// (`YYYY-MM-DDTHH:MM:SSZ`) and whether its hint asks for `--confirm-untrusted`.
pub(crate) struct PendingLine {
    pub(crate) id: String,
    pub(crate) expires_at: String,
    pub(crate) confirm_untrusted: bool,
}

pub(crate) fn pending_line(out: &Output) -> PendingLine {
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {err}");
    parse_pending_line(err.lines().last().unwrap_or(""))
}

/// One pending line, checked word for word (id shape, expiry time, the approve hint).
pub(crate) fn parse_pending_line(line: &str) -> PendingLine {
    let (id, rest) = line
        .strip_prefix("sudo: approval pending (occ #")
        .and_then(|r| r.split_once(", expires "))
        .unwrap_or_else(|| panic!("not a pending line: {line:?}"));
    let expires_at = rest.split(')').next().unwrap_or("");
    let confirm_untrusted = line.ends_with(" --confirm-untrusted");
    let hint = if confirm_untrusted {
        " --confirm-untrusted"
    } else {
        ""
    };
    assert_eq!(
        line,
        format!(
            "sudo: approval pending (occ #{id}, expires {expires_at}): an approver can run: \
             occ approve {id}{hint}"
        )
    );
    assert_eq!(id.len(), 8);
    assert!(id
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()));
    let shape = expires_at.bytes().enumerate().all(|(i, b)| match i {
        4 | 7 => b == b'-',
        10 => b == b'T',
        13 | 16 => b == b':',
        19 => b == b'Z',
        _ => b.is_ascii_digit(),
    });
    assert!(shape && expires_at.len() == 20, "{expires_at:?}");
    PendingLine {
        id: id.to_string(),
        expires_at: expires_at.to_string(),
        confirm_untrusted,
    }
}

/// The id from the shim's pending line, checking the line word for word.
pub(crate) fn pending_id(out: &Output) -> String {
    pending_line(out).id
}

pub(crate) fn types(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["event_type"].as_str().unwrap_or("").to_string())
        .collect()
}

#[test]
fn pending_then_approve_runs_exactly_once_with_stdio_and_status_passed_through() {
    let Some(ids) = ready() else { return };
    let h = AgentHome::new(ids);

    let first = h.sudo(&["-n", "/usr/bin/id", "-u"], &[]);
    let id = pending_id(&first);
    assert!(first.stdout.is_empty(), "nothing ran before approval");
    // Right after the broker's first events, the log and its head checkpoint already verify.
    h.verify_intact();

    let again = h.sudo(&["-n", "/usr/bin/id", "-u"], &[]);
    assert_eq!(
        pending_id(&again),
        id,
        "an identical pending request keeps its id"
    );

    let list = h.pending();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["id"], Value::String(id.clone()));
    assert_eq!(list[0]["command"][0], "/usr/bin/id");
    assert_eq!(list[0]["runuser"], "root");

    let ok = h.occ(&["approve", "--yes", &id]);
    assert!(ok.status.success(), "approve: {}", text(&ok.stderr));

    let ran = h.sudo(&["-n", "/usr/bin/id", "-u"], &[]);
    assert_eq!(text(&ran.stdout), "0\n", "stderr: {}", text(&ran.stderr));
    assert_eq!(ran.status.code(), Some(0));

    // --once: the grant is gone.
    let third = h.sudo(&["-n", "/usr/bin/id", "-u"], &[]);
    let id2 = pending_id(&third);
    assert_ne!(id2, id, "ids are never reused");

    // stdin and the exit status pass through unchanged.
    let ok = h.occ(&["approve", "--yes", &id2]);
    assert!(ok.status.success());
    let cat = {
        let req = h.sudo(&["-n", "/bin/sh", "-c", "cat; echo err >&2; exit 7"], &[]);
        let id = pending_id(&req);
        assert!(h.occ(&["approve", "--yes", &id]).status.success());
        let mut c = h.cmd(&h.home.join("bin/sudo"));
        c.args(["-n", "/bin/sh", "-c", "cat; echo err >&2; exit 7"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().unwrap();
        child.stdin.take().unwrap().write_all(b"hello\n").unwrap();
        child.wait_with_output().unwrap()
    };
    assert_eq!(text(&cat.stdout), "hello\n");
    assert_eq!(text(&cat.stderr), "err\n");
    assert_eq!(cat.status.code(), Some(7));

    h.stop_broker();
    let ev = h.events();
    let t = types(&ev);
    for want in [
        "broker_started",
        "request_received",
        "approval_requested",
        "approval_granted",
        "exec_start",
        "exec_finish",
        "broker_stopped",
    ] {
        assert!(t.iter().any(|x| x == want), "missing {want} in {t:?}");
    }
    let granted = ev
        .iter()
        .find(|e| e["event_type"] == "approval_granted")
        .unwrap();
    assert!(
        granted["approver_pid"].as_i64().unwrap_or(0) > 0,
        "approver pid recorded: {granted}"
    );
    assert_eq!(granted["approver_uid"], Value::from(h.uid));
    let finish: Vec<&Value> = ev
        .iter()
        .filter(|e| e["event_type"] == "exec_finish")
        .collect();
    assert_eq!(finish.last().unwrap()["exit_value"], 7);
    let seqs: Vec<u64> = ev.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "seq contiguous");
    h.verify_intact();
}

#[test]
fn deny_refuses_and_is_audited() {
    let Some(ids) = ready() else { return };
    let h = AgentHome::new(ids);
    let id = pending_id(&h.sudo(&["-n", "/usr/bin/true"], &[]));
    let out = h.occ(&["deny", &id, "--note", "not now"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(h.pending().is_empty());
    // A denied request never runs, and while the denied request's window lasts the same
    // request is answered with the denial and its note, not filed again.
    let next = h.sudo(&["-n", "/usr/bin/true"], &[]);
    assert_eq!(
        text(&next.stderr),
        "sudo: an approver denied this request: not now (occ: approval_denied)\n"
    );
    assert_eq!(next.status.code(), Some(1));
    assert!(h.pending().is_empty(), "no new pending request");
    // Another request is filed as usual.
    let other = pending_id(&h.sudo(&["-n", "/usr/bin/id", "-u"], &[]));
    assert_ne!(other, id);
    let bad = h.occ(&["approve", "--yes", &id]);
    assert_eq!(bad.status.code(), Some(1), "approving a denied id fails");
    h.stop_broker();
    let ev = h.events();
    assert!(types(&ev).contains(&"approval_denied".to_string()));
    let repeated: Vec<&Value> = ev
        .iter()
        .filter(|e| e["event_type"] == "denial_repeated")
        .collect();
    assert_eq!(repeated.len(), 1, "{repeated:?}");
    assert_eq!(repeated[0]["denied_request_id"], id.as_str());
    assert_eq!(repeated[0]["reason_code"], "approval_denied");
    assert!(!types(&ev).contains(&"exec_start".to_string()));
    h.verify_intact();
}

/// `audit.fsync` in broker.json is what the broker does: with `always` (the default) it makes
/// the log durable before each answer, with `batch` it leaves that to the group commit.
#[test]
fn audit_fsync_in_broker_json_is_honoured() {
    let Some(ids) = ready() else { return };
    let audit_of = |h: &AgentHome| {
        let st = h.occ(&["status", "--json"]);
        assert!(st.status.success(), "{}", text(&st.stderr));
        let v: Value = serde_json::from_slice(&st.stdout).unwrap();
        v["audit"].clone()
    };
    let h = AgentHome::new(ids);
    // request_received + approval_requested, then the Pending answer: one sync before it.
    let id = pending_id(&h.sudo(&["-n", "/usr/bin/true"], &[]));
    let a = audit_of(&h);
    assert_eq!(a["fsync"], "always", "{a}");
    let before = a["syncs_before_answers"].as_u64().unwrap();
    assert!(before >= 1, "{a}");
    // The denial is durable before `occ deny` hears it was done.
    assert!(h.occ(&["deny", &id]).status.success());
    let a = audit_of(&h);
    assert!(a["syncs_before_answers"].as_u64().unwrap() > before, "{a}");
    h.stop_broker();
    h.verify_intact();

    let h = AgentHome::new(ids);
    h.write_security("broker.json", r#"{"audit": {"fsync": "batch"}}"#);
    let id = pending_id(&h.sudo(&["-n", "/usr/bin/true"], &[]));
    assert!(h.occ(&["deny", &id]).status.success());
    let a = audit_of(&h);
    assert_eq!(a["fsync"], "batch", "{a}");
    assert_eq!(a["syncs_before_answers"], 0, "{a}");
    h.stop_broker();
    h.verify_intact();
}

/// `audit.seal: true` with an unsealed log refuses every request (nothing unsealed goes on
/// record); once `occ audit init --seal` starts sealing, requests go through, sealed.
#[test]
fn audit_seal_in_broker_json_fails_closed_until_the_log_is_sealed() {
    let Some(ids) = ready() else { return };
    let h = AgentHome::new(ids);
    h.write_security("broker.json", r#"{"audit": {"seal": true}}"#);
    let out = h.sudo(&["-n", "/usr/bin/true"], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains("audit.seal") && err.contains("occ audit init --seal"),
        "{err}"
    );
    assert!(h.pending().is_empty(), "nothing was filed");

    let init = h.occ(&["audit", "init", "--seal", "--json"]);
    assert!(init.status.success(), "{}", text(&init.stderr));
    let k0: Value = serde_json::from_slice(&init.stdout).unwrap();
    let k0 = k0["k0"].as_str().unwrap().to_string();
    let id = pending_id(&h.sudo(&["-n", "/usr/bin/true"], &[]));
    assert!(h.occ(&["deny", &id]).status.success());
    h.stop_broker();
    let ev = h.events();
    let requested = ev
        .iter()
        .find(|e| e["event_type"] == "request_received")
        .expect("the request after sealing began is on record");
    assert!(requested["seal"].is_string(), "{requested}");
    let verify = h.occ(&["audit", "verify", "--key", &k0]);
    assert!(
        verify.status.success(),
        "{}{}",
        text(&verify.stdout),
        text(&verify.stderr)
    );
}

#[test]
fn session_grant_is_reused_within_the_session_only() {
    let Some(ids) = ready() else { return };
    let h = AgentHome::new(ids);
    let sid = [("OPENCLAW_TASK_SESSION_ID", "task-42")];
    let id = pending_id(&h.sudo(&["-n", "/usr/bin/id", "-u"], &sid));
    let out = h.occ(&["approve", "--yes", &id, "--session"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    for _ in 0..3 {
        let ran = h.sudo(&["-n", "/usr/bin/id", "-u"], &sid);
        assert_eq!(text(&ran.stdout), "0\n", "{}", text(&ran.stderr));
    }
    // Another session, different args, or no session: not covered.
    pending_id(&h.sudo(
        &["-n", "/usr/bin/id", "-u"],
        &[("OPENCLAW_TASK_SESSION_ID", "other")],
    ));
    pending_id(&h.sudo(&["-n", "/usr/bin/id", "-g"], &sid));
    pending_id(&h.sudo(&["-n", "/usr/bin/id", "-u"], &[]));

    let st = h.occ(&["status", "--json"]);
    let v: Value = serde_json::from_slice(&st.stdout).unwrap();
    assert_eq!(v["broker"], "up");
    let s = v["sessions"].as_array().unwrap();
    assert_eq!(s.len(), 1);
    assert_eq!(s[0]["session_id"], "task-42");
    assert_eq!(s[0]["grants"], 1);

    let dropped = h.occ(&["drop", "--session", "task-42"]);
    assert!(dropped.status.success());
    pending_id(&h.sudo(&["-n", "/usr/bin/id", "-u"], &sid));
}

#[test]
fn session_scope_refused_for_code_runners_and_sessionless_requests() {
    let Some(ids) = ready() else { return };
    let h = AgentHome::new(ids);
    let sid = [("OPENCLAW_TASK_SESSION_ID", "t")];
    let id = pending_id(&h.sudo(&["-n", "/bin/sh", "-c", "true"], &sid));
    let out = h.occ(&["approve", "--yes", &id, "--session"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("arbitrary code"),
        "{}",
        text(&out.stderr)
    );
    let id = pending_id(&h.sudo(&["-n", "/usr/bin/true"], &[]));
    let out = h.occ(&["approve", "--yes", &id, "--session"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("no session id"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn untrusted_request_needs_confirmation() {
    let Some(ids) = ready() else { return };
    let h = AgentHome::new(ids);
    h.write_security(
        "prompt-policy.json",
        r#"{"require_confirmation_for_untrusted": true}"#,
    );
    let env = [("OPENCLAW_UNTRUSTED_SOURCE", "1")];
    // The hint is the exact command that will work.
    let line = pending_line(&h.sudo(&["-n", "/usr/bin/id", "-u"], &env));
    assert!(line.confirm_untrusted, "the hint names --confirm-untrusted");
    let id = line.id;
    assert_eq!(h.pending()[0]["untrusted"], true);
    let out = h.occ(&["approve", "--yes", &id]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("--confirm-untrusted"));
    let out = h.occ(&["approve", "--yes", &id, "--confirm-untrusted"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let ran = h.sudo(&["-n", "/usr/bin/id", "-u"], &env);
    assert_eq!(text(&ran.stdout), "0\n", "{}", text(&ran.stderr));
    h.stop_broker();
    let t = types(&h.events());
    assert!(t.contains(&"untrusted_source_block".to_string()));
    assert!(t.contains(&"untrusted_source_confirmed".to_string()));
}

/// A run that OpenClaw started from a channel message (its own `OPENCLAW_CHANNEL_CONTEXT`, and
/// occ's plugin's `OPENCLAW_MESSAGE_CHANNEL`): the approver sees where it came from, escaped;
/// it counts as untrusted unless prompt-policy.json's `channel_requests_untrusted` is false;
/// the audit log records it.
#[test]
fn channel_message_requests_show_their_source_and_count_as_untrusted() {
    let Some(ids) = ready() else { return };
    let h = AgentHome::new(ids);
    h.write_security(
        "prompt-policy.json",
        r#"{"require_confirmation_for_untrusted": true}"#,
    );
    let env = [
        (
            "OPENCLAW_CHANNEL_CONTEXT",
            "{\"sender\":{\"id\":\"81\u{202e}23\"},\"chat\":{\"id\":\"-1001234567890\"}}",
        ),
        ("OPENCLAW_MESSAGE_CHANNEL", "telegram"),
        ("OPENCLAW_AGENT_ID", "main"),
        ("OPENCLAW_TASK_SESSION_ID", "s-chan"),
    ];
    let line = pending_line(&h.sudo(&["-n", "/usr/bin/id", "-u"], &env));
    assert!(line.confirm_untrusted, "a channel message is untrusted");
    let p = &h.pending()[0];
    assert_eq!(p["untrusted"], true);
    assert_eq!(p["source"]["channel"], "telegram");
    assert_eq!(p["source"]["sender"], "81\u{202e}23");
    assert_eq!(p["source"]["chat"], "-1001234567890");
    assert_eq!(p["source"]["agent"], "main");
    let list = h.occ(&["approvals"]);
    let shown = text(&list.stdout);
    assert!(
        shown.contains("asked from: telegram, sender 81")
            && shown.contains("chat -1001234567890, agent main"),
        "{shown}"
    );
    assert!(
        !shown.contains('\u{202e}'),
        "the override is escaped: {shown}"
    );
    let out = h.occ(&["approve", "--yes", &line.id]);
    assert_eq!(out.status.code(), Some(1), "needs --confirm-untrusted");
    assert!(h.occ(&["deny", &line.id]).status.success());

    // A run from the CLI (the plugin's variables, no channel) is not untrusted.
    let cli = [
        ("OPENCLAW_AGENT_ID", "main"),
        ("OPENCLAW_SESSION_KEY", "agent:main:main"),
    ];
    let line = pending_line(&h.sudo(&["-n", "/usr/bin/id", "-g"], &cli));
    assert!(!line.confirm_untrusted);
    let p = h.pending();
    let p = p.iter().find(|p| p["id"] == line.id.as_str()).unwrap();
    assert_eq!(p["untrusted"], false);
    assert_eq!(p["source"]["session_key"], "agent:main:main");
    assert!(h.occ(&["deny", &line.id]).status.success());

    // prompt-policy.json can say channel messages are not untrusted; the source still shows.
    h.write_security(
        "prompt-policy.json",
        r#"{"require_confirmation_for_untrusted": true, "channel_requests_untrusted": false}"#,
    );
    let line = pending_line(&h.sudo(&["-n", "/usr/bin/id", "-n", "-u"], &env));
    assert!(!line.confirm_untrusted);
    let p = h.pending();
    let p = p.iter().find(|p| p["id"] == line.id.as_str()).unwrap();
    assert_eq!(p["untrusted"], false);
    assert_eq!(p["source"]["channel"], "telegram");
    assert!(h.occ(&["deny", &line.id]).status.success());

    h.stop_broker();
    let events = h.events();
    let asked: Vec<&Value> = events
        .iter()
        .filter(|e| e["event_type"] == "approval_requested")
        .collect();
    assert_eq!(asked.len(), 3, "{asked:?}");
    assert_eq!(asked[0]["source"]["channel"], "telegram");
    assert_eq!(asked[0]["source"]["chat"], "-1001234567890");
    assert_eq!(asked[0]["untrusted"], true);
    assert_eq!(asked[1]["source"]["agent"], "main");
    assert_eq!(asked[2]["untrusted"], false);
}

#[test]
fn token_is_required_when_configured_and_never_logged() {
    let Some(ids) = ready() else { return };
    let h = AgentHome::new(ids);
    let set = h.occ(&["token", "set", "--generate", "--json"]);
    assert!(set.status.success(), "{}", text(&set.stderr));
    let v: Value = serde_json::from_slice(&set.stdout).unwrap();
    let token = v["token"].as_str().unwrap().to_string();
    assert_eq!(token.len(), 32);
    let cfg = std::fs::read_to_string(h.home.join("security/broker.json")).unwrap();
    assert!(!cfg.contains(&token), "only the digest is stored");
    let md = std::fs::metadata(h.home.join("security/broker.json")).unwrap();
    assert_eq!(md.mode() & 0o777, 0o600);

    let id = pending_id(&h.sudo(&["-n", "/usr/bin/true"], &[]));
    // The agent approving itself without the token fails.
    let bad = h.occ_with_stdin(&["approve", "--yes", &id], "wrong-token\n");
    assert_eq!(bad.status.code(), Some(1), "{}", text(&bad.stderr));
    let none = h.occ(&["approve", "--yes", &id]);
    assert_eq!(none.status.code(), Some(1));
    assert_eq!(h.pending().len(), 1, "still pending");
    let good = h.occ_with_stdin(&["approve", "--yes", &id], &format!("{token}\n"));
    assert!(good.status.success(), "{}", text(&good.stderr));
    let ran = h.sudo(&["-n", "/usr/bin/true"], &[]);
    assert_eq!(ran.status.code(), Some(0), "{}", text(&ran.stderr));

    h.stop_broker();
    let log = std::fs::read_to_string(h.home.join("security/privileged-audit.jsonl")).unwrap();
    assert!(
        !log.contains(&token),
        "the token never appears in the audit log"
    );
    let t = types(&h.events());
    assert!(t.contains(&"token_failed".to_string()));
    assert!(t.contains(&"token_ok".to_string()));
}

#[test]
fn agent_self_approval_without_token_is_audited_with_its_pid() {
    // User mode's documented limit: with no token, the agent can approve itself. It must at
    // least be on record, with the approving process's pid.
    let Some(ids) = ready() else { return };
    let h = AgentHome::new(ids);
    let id = pending_id(&h.sudo(&["-n", "/usr/bin/true"], &[]));
    let child = h
        .cmd(&h.home.join("bin/occ"))
        .args(["approve", "--yes", &id])
        .spawn()
        .unwrap();
    let approver_pid = child.id();
    assert!(child.wait_with_output().unwrap().status.success());
    h.stop_broker();
    let ev = h.events();
    let g = ev
        .iter()
        .find(|e| e["event_type"] == "approval_granted")
        .unwrap();
    assert_eq!(g["approver_pid"], Value::from(approver_pid));
}

#[test]
fn piped_yes_does_not_approve() {
    let Some(ids) = ready() else { return };
    let h = AgentHome::new(ids);
    let mut c = h.cmd(&h.home.join("bin/sudo"));
    c.args(["/usr/bin/true"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    let _ = child.stdin.take().unwrap().write_all(b"y\ny\nyes\n");
    let out = child.wait_with_output().unwrap();
    pending_id(&out);
    assert_eq!(h.pending().len(), 1);
}

#[test]
fn replaying_a_grant_with_other_args_cwd_or_env_is_refused() {
    let Some(ids) = ready() else { return };
    let h = AgentHome::new(ids);
    let id = pending_id(&h.sudo(&["-n", "/usr/bin/id", "-u"], &[]));
    assert!(h.occ(&["approve", "--yes", &id]).status.success());
    // Different arguments, an env assignment, a different cwd, another target user: all new
    // requests.
    pending_id(&h.sudo(&["-n", "/usr/bin/id", "-g"], &[]));
    pending_id(&h.sudo(&["-n", "FOO=1", "/usr/bin/id", "-u"], &[]));
    pending_id(&h.sudo(&["-n", "-u", "nobody", "/usr/bin/id", "-u"], &[]));
    let mut c = h.cmd(&h.home.join("bin/sudo"));
    c.args(["-n", "/usr/bin/id", "-u"]).current_dir("/");
    pending_id(&c.output().unwrap());
    // The approved one still works exactly once.
    let ran = h.sudo(&["-n", "/usr/bin/id", "-u"], &[]);
    assert_eq!(text(&ran.stdout), "0\n", "{}", text(&ran.stderr));
}

#[test]
fn forged_session_state_file_grants_nothing() {
    let Some(ids) = ready() else { return };
    let h = AgentHome::new(ids);
    let sid = [("OPENCLAW_TASK_SESSION_ID", "task-forge")];
    let run = || h.sudo(&["-n", "/usr/bin/id", "-u"], &sid);
    let id = pending_id(&run());
    assert!(h
        .occ(&["approve", "--yes", &id, "--session"])
        .status
        .success());
    assert_eq!(text(&run().stdout), "0\n", "the session grant works");
    // A clean stop writes a real snapshot (the true digest), vouched for by broker_stopped.
    h.stop_broker();
    let state = h.home.join("security/root-session-state.json");
    let genuine = std::fs::read_to_string(&state).expect("a snapshot of the live grant");
    // The agent keeps a copy and removes it, so the next start restores nothing...
    std::fs::remove_file(&state).unwrap();
    pending_id(&run());
    h.stop_broker();
    // ...then puts the genuine bytes back, with no broker_stopped naming them, and restarts.
    h.write_security("root-session-state.json", &genuine);
    pending_id(&run());
    h.stop_broker();
    let t = types(&h.events());
    assert!(t.contains(&"state_rejected".to_string()), "{t:?}");
    let ran = t.iter().filter(|e| *e == "exec_start").count();
    assert_eq!(ran, 1, "only the approved run ran: {t:?}");
    h.verify_intact();
}

#[test]
fn spoofing_text_is_shown_escaped_to_the_approver() {
    let Some(ids) = ready() else { return };
    let h = AgentHome::new(ids);
    let evil = "x\u{1b}[2J\u{202e}gpj.exe\nAPPROVED";
    pending_id(&h.sudo(
        &["-n", "/usr/bin/echo", evil],
        &[(
            "OPENCLAW_PRIV_REASON",
            "routine\u{1b}[31m update\r\nall good",
        )],
    ));
    let out = h.occ(&["approvals"]);
    let shown = text(&out.stdout);
    assert!(out.status.success());
    for bad in ['\u{1b}', '\u{202e}', '\r'] {
        assert!(
            !shown.contains(bad),
            "raw {bad:?} reached the approver: {shown:?}"
        );
    }
    assert!(
        shown.contains("\\u{001b}[2J\\u{202e}gpj.exe\\nAPPROVED"),
        "{shown}"
    );
    assert!(
        shown.contains("routine\\u{001b}[31m update\\r\\nall good"),
        "{shown}"
    );
}

#[test]
fn another_uid_is_refused_by_the_agents_broker() {
    let Some(ids) = ready() else { return };
    let h = AgentHome::new(ids);
    // Start the agent's broker.
    pending_id(&h.sudo(&["-n", "/usr/bin/true"], &[]));
    // Root talks to it through a copy of the shim pointed at the same home.
    let out = Command::new(h.home.join("bin/occ"))
        .args(["approvals", "--json"])
        .env("OCC_HOME", &h.home)
        .env("OCC_MODE", "user")
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0), "{}", text(&out.stdout));
    assert!(
        text(&out.stderr).contains("peer_uid_mismatch"),
        "{}",
        text(&out.stderr)
    );
}

const MINUTE_MS: u64 = 60_000;

impl AgentHome {
    /// Moves the test clock of a [`AgentHome::with_test_clock`] home forward: the broker reads
    /// the offset file on every tick.
    pub(crate) fn advance_minutes(&self, minutes: u64) {
        let file = self.home.join("run/test-clock-offset-ms");
        let before: u64 = std::fs::read_to_string(&file)
            .ok()
            .and_then(|t| t.trim().parse().ok())
            .unwrap_or(0);
        let staging = file.with_extension("tmp");
        std::fs::write(&staging, (before + minutes * MINUTE_MS).to_string()).unwrap();
        std::fs::rename(&staging, &file).unwrap();
    }
}

#[test]
fn pending_requests_expire_after_the_configured_minutes() {
    let Some(ids) = ready() else { return };
    let h = AgentHome::with_test_clock(ids);
    let id = pending_id(&h.sudo(&["-n", "/usr/bin/true"], &[]));
    h.advance_minutes(29);
    assert_eq!(h.pending().len(), 1, "still pending after 29 minutes");
    h.advance_minutes(2);
    assert!(h.pending().is_empty(), "expired after 30 minutes");
    let late = h.occ(&["approve", "--yes", &id]);
    assert_eq!(
        late.status.code(),
        Some(1),
        "an expired request cannot be approved"
    );
    // Asking again files a new request with a new id.
    assert_ne!(pending_id(&h.sudo(&["-n", "/usr/bin/true"], &[])), id);
    h.stop_broker();
    let ev = h.events();
    let expired = ev
        .iter()
        .find(|e| e["event_type"] == "approval_expired")
        .expect("approval_expired audited");
    assert_eq!(expired["request_id"], Value::String(id));
    h.verify_intact();
}

#[test]
fn session_grant_ends_after_thirty_idle_minutes() {
    let Some(ids) = ready() else { return };
    let h = AgentHome::with_test_clock(ids);
    let sid = [("OPENCLAW_TASK_SESSION_ID", "task-idle")];
    let id = pending_id(&h.sudo(&["-n", "/usr/bin/id", "-u"], &sid));
    assert!(h
        .occ(&["approve", "--yes", &id, "--session"])
        .status
        .success());
    // Activity slides the window: 25 + 25 minutes with a run in between stays live.
    h.advance_minutes(25);
    assert_eq!(
        text(&h.sudo(&["-n", "/usr/bin/id", "-u"], &sid).stdout),
        "0\n"
    );
    h.advance_minutes(25);
    assert_eq!(
        text(&h.sudo(&["-n", "/usr/bin/id", "-u"], &sid).stdout),
        "0\n"
    );
    h.advance_minutes(31);
    pending_id(&h.sudo(&["-n", "/usr/bin/id", "-u"], &sid));
    h.stop_broker();
    let t = types(&h.events());
    assert!(t.contains(&"session_timeout".to_string()), "{t:?}");
}

/// Runs the agent's `sudo ARGS` on a pseudo-terminal (via `script`), so the shim waits for a
/// decision instead of returning the pending line. With a piped stdin, the test types on that
/// terminal.
fn sudo_on_pty_typing(h: &AgentHome, args: &str, stdin: Stdio) -> std::process::Child {
    let mut c = h.cmd(Path::new("/usr/bin/script"));
    c.args([
        "-qec",
        &format!("{} {args}", h.home.join("bin/sudo").display()),
        "/dev/null",
    ])
    .stdin(stdin)
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    c.spawn().unwrap()
}

fn sudo_on_pty(h: &AgentHome, args: &str) -> std::process::Child {
    sudo_on_pty_typing(h, args, Stdio::null())
}

fn sudo_on_pty_with_input(h: &AgentHome, args: &str) -> std::process::Child {
    sudo_on_pty_typing(h, args, Stdio::piped())
}

/// Like [`ready`], and `script(1)` is there to give the shim a terminal.
pub(crate) fn pty_ready() -> Option<(u32, u32)> {
    let ids = ready()?;
    if !Path::new("/usr/bin/script").is_file() {
        occ_tests::skip("needs script(1) from util-linux");
        return None;
    }
    Some(ids)
}

fn wait_for_pending(h: &AgentHome) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        // The shim may still be starting the broker: an unreachable broker is "not yet".
        let out = h.occ(&["approvals", "--json"]);
        let list: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        if let Some(id) = list[0]["id"].as_str() {
            return id.to_string();
        }
        assert!(Instant::now() < deadline, "no pending request appeared");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn waiting_shim_runs_as_soon_as_an_approver_approves() {
    let Some(ids) = pty_ready() else { return };
    let h = AgentHome::new(ids);
    let child = sudo_on_pty(&h, "/usr/bin/id -u");
    let id = wait_for_pending(&h);
    let ok = h.occ(&["approve", "--yes", &id]);
    assert!(ok.status.success(), "{}", text(&ok.stderr));
    let out = child.wait_with_output().unwrap();
    let shown = text(&out.stdout);
    assert!(
        shown.contains(&format!(
            "sudo: waiting for approval (occ #{id}): occ approve {id}"
        )),
        "{shown:?}"
    );
    assert!(
        shown.trim_end().ends_with('0'),
        "the command ran on the terminal: {shown:?}"
    );
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn waiting_shim_reports_a_denial() {
    let Some(ids) = pty_ready() else { return };
    let h = AgentHome::new(ids);
    let child = sudo_on_pty(&h, "/usr/bin/true");
    let id = wait_for_pending(&h);
    assert!(h.occ(&["deny", &id, "--note", "no"]).status.success());
    let out = child.wait_with_output().unwrap();
    let shown = text(&out.stdout);
    assert!(shown.contains("(occ: approval_denied)"), "{shown:?}");
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn typing_yes_on_its_own_terminal_does_not_approve_by_default() {
    let Some(ids) = pty_ready() else { return };
    let h = AgentHome::new(ids);
    let mut child = sudo_on_pty_with_input(&h, "/usr/bin/id -u");
    let id = wait_for_pending(&h);
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"y\nyes\n").unwrap();
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(
        h.pending().len(),
        1,
        "still pending: the terminal is not an approval channel"
    );
    assert!(h.occ(&["deny", &id]).status.success());
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert!(!text(&out.stdout).contains("\n0"), "{}", text(&out.stdout));
    h.stop_broker();
    assert!(!types(&h.events()).contains(&"exec_start".to_string()));
}

#[test]
fn opt_in_tty_channel_prompts_on_the_callers_terminal() {
    let Some(ids) = pty_ready() else { return };
    let h = AgentHome::new(ids);
    h.write_security(
        "broker.json",
        r#"{"approval": {"channels": ["queue", "tty"]}}"#,
    );
    let mut child = sudo_on_pty_with_input(&h, "/usr/bin/id -u");
    wait_for_pending(&h);
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"y\n").unwrap();
    let out = child.wait_with_output().unwrap();
    let shown = text(&out.stdout);
    assert!(
        shown.contains("occ: run [\"/usr/bin/id\", \"-u\"] as root in "),
        "{shown:?}"
    );
    assert!(shown.trim_end().ends_with('0'), "{shown:?}");
    assert_eq!(out.status.code(), Some(0));
    h.stop_broker();
    let ev = h.events();
    let g = ev
        .iter()
        .find(|e| e["event_type"] == "approval_granted")
        .unwrap();
    assert_eq!(g["channel"], "tty");
}

#[test]
fn occ_exec_takes_the_shims_path_with_its_reason_and_session() {
    let Some(ids) = ready() else { return };
    let h = AgentHome::new(ids);
    let run = || {
        h.occ(&[
            "exec",
            "--reason",
            "rotate the nginx logs",
            "--session-id",
            "task-9",
            "--",
            "/usr/bin/id",
            "-u",
        ])
    };
    let id = pending_id(&run());
    let p = &h.pending()[0];
    assert_eq!(p["reason"], "rotate the nginx logs");
    assert_eq!(p["session_id"], "task-9");
    assert!(h.occ(&["approve", "--yes", &id]).status.success());
    let out = run();
    assert_eq!(text(&out.stdout), "0\n", "{}", text(&out.stderr));
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn a_shim_killed_mid_run_leaves_exec_outcome_unknown() {
    let Some(ids) = ready() else { return };
    let h = AgentHome::new(ids);
    let args = ["-n", "/bin/sh", "-c", "sleep 3"];
    let id = pending_id(&h.sudo(&args, &[]));
    assert!(h.occ(&["approve", "--yes", &id]).status.success());
    let mut child = h.cmd(&h.home.join("bin/sudo")).args(args).spawn().unwrap();
    // Wait until the run has started (exec_start is durable before the grant is sent).
    let deadline = Instant::now() + Duration::from_secs(10);
    while !types(&h.events()).contains(&"exec_start".to_string()) {
        assert!(Instant::now() < deadline, "exec_start never appeared");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    let _ = child.wait();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !types(&h.events()).contains(&"exec_outcome_unknown".to_string()) {
        assert!(
            Instant::now() < deadline,
            "exec_outcome_unknown never appeared"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!types(&h.events()).contains(&"exec_finish".to_string()));
}

#[test]
fn session_grants_survive_a_broker_restart_but_a_forged_snapshot_does_not() {
    let Some(ids) = ready() else { return };
    let h = AgentHome::new(ids);
    let sid = [("OPENCLAW_TASK_SESSION_ID", "restart")];
    let id = pending_id(&h.sudo(&["-n", "/usr/bin/id", "-u"], &sid));
    assert!(h
        .occ(&["approve", "--yes", &id, "--session"])
        .status
        .success());
    h.stop_broker();
    let state = h.home.join("security/root-session-state.json");
    let md = std::fs::metadata(&state).expect("snapshot written at shutdown");
    assert_eq!(md.mode() & 0o777, 0o600);
    // The shim starts a new broker, which restores the grant it vouched for.
    let ran = h.sudo(&["-n", "/usr/bin/id", "-u"], &sid);
    assert_eq!(text(&ran.stdout), "0\n", "{}", text(&ran.stderr));
    assert!(!state.exists(), "a snapshot is read once");

    // Now the agent edits the snapshot between stop and start: it is rejected.
    h.stop_broker();
    let text_before = std::fs::read_to_string(&state).unwrap();
    let forged = text_before.replacen("\"restart\"", "\"forged\"", 1);
    assert_ne!(forged, text_before);
    h.write_security("root-session-state.json", &forged);
    pending_id(&h.sudo(&["-n", "/usr/bin/id", "-u"], &sid));
    h.stop_broker();
    let t = types(&h.events());
    assert!(t.contains(&"grants_restored".to_string()), "{t:?}");
    assert!(t.contains(&"state_rejected".to_string()), "{t:?}");
    h.verify_intact();
}

#[test]
fn sigterm_answers_a_waiting_caller_with_broker_stopping() {
    let Some(ids) = pty_ready() else { return };
    let h = AgentHome::new(ids);
    let child = sudo_on_pty(&h, "/usr/bin/true");
    wait_for_pending(&h);
    h.stop_broker();
    let out = child.wait_with_output().unwrap();
    let shown = text(&out.stdout);
    assert!(shown.contains("(occ: broker_stopping)"), "{shown:?}");
    assert_eq!(out.status.code(), Some(1));
    let ev = h.events();
    let t = types(&ev);
    assert_eq!(
        t.last().map(String::as_str),
        Some("broker_stopped"),
        "{t:?}"
    );
    assert!(!t.contains(&"exec_start".to_string()));
    // The request itself is not ended: the clean stop carries it over (issue 15), and the next
    // start records it as pending_restored under its old id.
    assert!(!t.contains(&"approval_expired".to_string()), "{t:?}");
    let id = pending_id(&h.sudo(&["-n", "/usr/bin/true"], &[]));
    let ev = h.events();
    assert!(
        ev.iter()
            .any(|e| e["event_type"] == "pending_restored" && e["request_id"] == id.as_str()),
        "{:?}",
        types(&ev)
    );
}

/// User mode: a pending request survives a clean stop (SIGTERM) with its id and expiry, is
/// audited `pending_restored`, and can be approved after the restart; the retry runs. A
/// snapshot edited after the stop restores nothing. Needs root.
#[test]
fn pending_request_survives_a_restart_and_is_approved_after_it_needs_root() {
    let Some(ids) = ready() else { return };
    let h = AgentHome::new(ids);
    let run = || h.sudo(&["-n", "/usr/bin/id", "-u"], &[]);
    let id = pending_id(&run());
    let before = h.pending();
    h.stop_broker();
    let state = h.home.join("security/root-session-state.json");
    let md = std::fs::metadata(&state).expect("the snapshot carries the pending request");
    assert_eq!(md.mode() & 0o777, 0o600);
    // The shim starts a new broker: the identical request is still pending under its old id.
    assert_eq!(pending_id(&run()), id);
    let after = h.pending();
    assert_eq!(after.len(), 1);
    assert_eq!(after[0]["id"], before[0]["id"]);
    assert_eq!(after[0]["expires_at"], before[0]["expires_at"]);
    let ev = h.events();
    let restored: Vec<&Value> = ev
        .iter()
        .filter(|e| e["event_type"] == "pending_restored")
        .collect();
    assert_eq!(restored.len(), 1, "{:?}", types(&ev));
    assert_eq!(restored[0]["request_id"], id.as_str());
    assert!(h.occ(&["approve", "--yes", &id]).status.success());
    let ran = run();
    assert_eq!(text(&ran.stdout), "0\n", "{}", text(&ran.stderr));

    // A pending request in a snapshot edited after the stop is not restored.
    let id2 = pending_id(&run());
    h.stop_broker();
    let genuine = std::fs::read_to_string(&state).unwrap();
    let forged = genuine.replacen("/usr/bin/id", "/usr/bin/idx", 1);
    assert_ne!(forged, genuine);
    h.write_security("root-session-state.json", &forged);
    let id3 = pending_id(&run());
    assert_ne!(id3, id2, "the edited snapshot restored nothing");
    let t = types(&h.events());
    assert!(t.contains(&"state_rejected".to_string()), "{t:?}");
    assert_eq!(
        t.iter().filter(|x| *x == "pending_restored").count(),
        1,
        "{t:?}"
    );
    h.verify_intact();
}

#[test]
fn expiry_is_recorded_without_any_further_request() {
    let Some(ids) = ready() else { return };
    let h = AgentHome::with_test_clock(ids);
    let id = pending_id(&h.sudo(&["-n", "/usr/bin/true"], &[]));
    h.advance_minutes(31);
    // No request and no approver command: the broker's own sweep records the expiry.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let ev = h.events();
        if let Some(e) = ev.iter().find(|e| e["event_type"] == "approval_expired") {
            assert_eq!(e["request_id"], Value::String(id));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no approval_expired within 5 s: {:?}",
            types(&ev)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// User mode: an approved command the agent's real sudo would want a password for (occ-agent
/// has no NOPASSWD rule for whoami) is refused before the grant is spent, with the sudoers line
/// that would fix it; the approval stays, so the retry after the fix runs. Needs root.
#[test]
fn approval_is_kept_when_the_real_sudo_would_ask_a_password_needs_root() {
    let Some(ids) = ready() else { return };
    let h = AgentHome::new(ids);
    let run = || h.sudo(&["-n", "/usr/bin/whoami"], &[]);
    let id = pending_id(&run());
    assert!(h.occ(&["approve", "--yes", &id]).status.success());
    for attempt in 0..2 {
        let out = run();
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "attempt {attempt}: {err}");
        assert!(out.stdout.is_empty(), "nothing ran: {}", text(&out.stdout));
        assert!(
            err.contains("(occ: real_sudo_needs_password)")
                && err.contains("the approval is kept")
                && err.contains("occ-agent ALL=(root) NOPASSWD: /usr/bin/whoami"),
            "attempt {attempt}: {err}"
        );
        assert!(!err.contains("approval pending"), "no new request: {err}");
    }
    assert!(
        h.pending().is_empty(),
        "the approval was not turned back into a request"
    );
    // The admin adds the rule the message named: the kept approval now runs, once.
    struct Rule(PathBuf);
    impl Drop for Rule {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
    let rule = Rule(PathBuf::from(format!(
        "/etc/sudoers.d/occ-test-whoami-{}",
        std::process::id()
    )));
    std::fs::write(&rule.0, "occ-agent ALL=(root) NOPASSWD: /usr/bin/whoami\n").unwrap();
    std::fs::set_permissions(&rule.0, std::fs::Permissions::from_mode(0o440)).unwrap();
    let ran = run();
    drop(rule);
    assert_eq!(text(&ran.stdout), "root\n", "{}", text(&ran.stderr));
    assert_eq!(ran.status.code(), Some(0));
    pending_id(&run());
    h.stop_broker();
    let ev = h.events();
    let blocks: Vec<&Value> = ev
        .iter()
        .filter(|e| e["reason_code"] == "real_sudo_needs_password")
        .collect();
    assert_eq!(blocks.len(), 2, "{:?}", types(&ev));
    for b in &blocks {
        assert_eq!(b["event_type"], "policy_block");
        assert_eq!(b["grant_kept"], Value::Bool(true));
        assert_eq!(b["request_id"], Value::String(id.clone()));
    }
    let t = types(&ev);
    assert_eq!(t.iter().filter(|x| *x == "approval_requested").count(), 2);
    assert_eq!(t.iter().filter(|x| *x == "exec_start").count(), 1, "{t:?}");
    h.verify_intact();
}
