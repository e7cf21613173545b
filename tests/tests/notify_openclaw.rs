//! `occ notify-openclaw` end to end: with a stand-in `openclaw` that records its argv (what it
//! is asked to send, malformed input refused, openclaw's failure passed on, openclaw killed
//! with a killed notifier), with the real OpenClaw CLI in `--dry-run` (the argv we build is one
//! it accepts), and as the broker's `approval.notify` for a real pending request.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::approval::{pending_id, ready, text, AgentHome};
use crate::notify::{notify_config, wait_events};

/// The line every message ends with.
const NOT_AN_APPROVAL: &str = "A reply in this chat approves nothing.";

/// A pending request as the broker gives it to a notifier; its command hides a right-to-left
/// override that the message must show escaped.
fn request() -> Value {
    json!({
        "id": "k3v9x2qa", "age_seconds": 0, "expires_at": "2026-12-07T05:00:00Z",
        "submituser": "occ-agent", "peer_pid": 4242, "session_id": null,
        "command": ["/usr/bin/systemctl", "restart", "nginx\u{202e}"], "runuser": "root",
        "rungroup": null, "runcwd": "/srv", "env": {}, "reason": "reload the config",
        "untrusted": true, "runs_arbitrary_code": false, "flags": ["writes_files"],
        "host": "web1", "approve_command": "occ approve k3v9x2qa --confirm-untrusted",
        "statement": "occ-approval-statement v1\n",
        "source": {"channel": "telegram", "sender": "4711", "chat": "-100999"},
    })
}

/// A directory (0755) for a stand-in openclaw and what it records.
struct Fake {
    dir: tempfile::TempDir,
}

impl Fake {
    fn new() -> Fake {
        let dir = tempfile::Builder::new()
            .prefix("occ-notify-openclaw")
            .tempdir()
            .unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        Fake { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `openclaw` as a shell script that records its argv (NUL-separated) and then runs `then`.
    fn openclaw(&self, then: &str) -> PathBuf {
        let p = self.path("openclaw");
        let rec = self.path("argv");
        occ_tests::write_exe(
            &p,
            &format!(
                "#!/bin/sh\nprintf '%s\\0' \"$@\" > '{}.tmp'\nmv '{0}.tmp' '{0}'\n{then}\n",
                rec.display()
            ),
        );
        p
    }

    /// What the stand-in was run with, waiting up to `wait` for it.
    fn argv(&self, wait: Duration) -> Option<Vec<String>> {
        let deadline = Instant::now() + wait;
        loop {
            if let Ok(b) = std::fs::read(self.path("argv")) {
                let mut v: Vec<String> = b
                    .split(|&c| c == 0)
                    .map(|s| String::from_utf8(s.to_vec()).unwrap())
                    .collect();
                v.pop();
                return Some(v);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// `occ notify-openclaw ARGS` with `stdin`, PATH `path` and nothing else in the environment
/// but HOME (as the broker runs it, plus a HOME).
fn notify_openclaw(args: &[&str], stdin: &[u8], path: &str, home: &Path) -> Output {
    let mut c = Command::new(occ_tests::bin("occ"));
    c.arg("notify-openclaw")
        .args(args)
        .env_clear()
        .env("PATH", path)
        .env("HOME", home)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    let mut w = child.stdin.take().unwrap();
    let data = stdin.to_vec();
    // A refusal may come before all of stdin is read.
    let writer = std::thread::spawn(move || {
        let _ = w.write_all(&data);
    });
    let out = child.wait_with_output().unwrap();
    let _ = writer.join();
    out
}

/// Asserts the parts of a message for [`request`]-like request `id` from `host`, run as `as_`.
fn assert_message(m: &str, id: &str, host: &str, command: &str, approve: &str) {
    for want in [
        format!("occ: approval needed on {host} for #{id}"),
        format!("\n    command: {command}\n"),
        format!("approve, as an approver on {host}: {approve}\n"),
        format!("occ approvals --statement {id} > statement; occ sign statement"),
        format!("deny: occ deny {id}\n"),
    ] {
        assert!(m.contains(&want), "{want:?} missing from:\n{m}");
    }
    assert!(m.ends_with(NOT_AN_APPROVAL), "{m}");
}

#[test]
fn notify_openclaw_sends_the_escaped_request_through_openclaw_on_path() {
    let fake = Fake::new();
    fake.openclaw(r#"echo '{"action":"send","channel":"telegram","dryRun":false}'"#);
    let path = format!("{}:/usr/bin:/bin", fake.dir.path().display());
    let out = notify_openclaw(
        &[
            "--channel",
            "telegram",
            "--target",
            "-1001234567890",
            "--account",
            "approvals",
            "--json",
        ],
        request().to_string().as_bytes(),
        &path,
        fake.dir.path(),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let argv = fake.argv(Duration::ZERO).expect("openclaw was not run");
    let message = argv
        .iter()
        .find_map(|a| a.strip_prefix("--message="))
        .expect("no --message")
        .to_string();
    assert_eq!(
        argv,
        [
            "message",
            "send",
            "--channel=telegram",
            "--target=-1001234567890",
            "--account=approvals",
            &format!("--message={message}"),
            "--json",
        ]
    );
    assert_message(
        &message,
        "k3v9x2qa",
        "web1",
        r#"["/usr/bin/systemctl", "restart", "nginx\u{202e}"]"#,
        "occ approve k3v9x2qa --confirm-untrusted",
    );
    assert!(message.contains("(UNTRUSTED SOURCE)"), "{message}");
    assert!(
        message.contains("\n    reason: reload the config\n"),
        "{message}"
    );
    // Where the agent's run came from, as OpenClaw told it: shown, never trusted.
    assert!(
        message.contains("\n    asked from: telegram, sender 4711, chat -100999\n"),
        "{message}"
    );
    assert!(
        !message.contains('\u{202e}'),
        "the override reached the chat raw"
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["request_id"], "k3v9x2qa");
    assert_eq!(report["message"], message.as_str());
    assert_eq!(report["openclaw_result"]["channel"], "telegram");
    assert_eq!(
        report["openclaw"],
        fake.path("openclaw").display().to_string()
    );
    assert_eq!(report["node"], Value::Null, "a shell script needs no node");
}

#[test]
fn notify_openclaw_refuses_malformed_or_oversized_stdin_and_runs_nothing() {
    let fake = Fake::new();
    fake.openclaw("true");
    let path = format!("{}:/usr/bin:/bin", fake.dir.path().display());
    let mut unknown = request();
    unknown["shown_nowhere"] = "x".into();
    let mut no_approve = request();
    no_approve
        .as_object_mut()
        .unwrap()
        .remove("approve_command");
    let oversized = {
        let mut r = request();
        r["reason"] = "x".repeat(17 << 20).into();
        r.to_string().into_bytes()
    };
    for (input, says) in [
        (b"".to_vec(), "stdin is empty"),
        (b"{\"id\": ".to_vec(), "stdin is not JSON"),
        (
            unknown.to_string().into_bytes(),
            "unknown field `shown_nowhere`",
        ),
        (
            no_approve.to_string().into_bytes(),
            "\"approve_command\" is missing",
        ),
        (oversized, "stdin holds more than 16 MiB"),
    ] {
        let out = notify_openclaw(
            &["--channel", "telegram", "--target", "1"],
            &input,
            &path,
            fake.dir.path(),
        );
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{says}: {err}");
        assert!(err.contains(says), "{says}: {err}");
        assert!(err.starts_with("occ notify-openclaw: "), "{err}");
        assert!(fake.argv(Duration::ZERO).is_none(), "{says}: openclaw ran");
    }
    // Blank flags are refused before anything runs, too.
    let out = notify_openclaw(
        &["--channel", "telegram", "--target", " "],
        request().to_string().as_bytes(),
        &path,
        fake.dir.path(),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("--target is empty"));
    assert!(fake.argv(Duration::ZERO).is_none());
}

#[test]
fn notify_openclaw_passes_on_openclaws_failure_and_deadline() {
    let fake = Fake::new();
    let path = format!("{}:/usr/bin:/bin", fake.dir.path().display());
    let run = |extra: &[&str]| {
        let mut args = vec!["--channel", "telegram", "--target", "1"];
        args.extend_from_slice(extra);
        notify_openclaw(
            &args,
            request().to_string().as_bytes(),
            &path,
            fake.dir.path(),
        )
    };
    fake.openclaw(
        r#"echo '{"ok":false,"error":{"type":"cli_error","message":"Unknown account \"x\" for channel telegram."}}'; exit 3"#,
    );
    let out = run(&[]);
    assert_eq!(out.status.code(), Some(3), "openclaw's own status");
    let err = text(&out.stderr);
    assert!(
        err.contains("openclaw message send exited 3: Unknown account \"x\" for channel telegram."),
        "{err}"
    );
    assert!(
        err.contains(&format!("(ran {})", fake.path("openclaw").display())),
        "{err}"
    );

    fake.openclaw("sleep 30");
    let t = Instant::now();
    let out = run(&["--timeout", "1", "--json"]);
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    assert_eq!(out.status.code(), Some(2));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["ok"], false);
    assert!(
        report["error"]
            .as_str()
            .unwrap()
            .contains("openclaw message send timed out after 1s and was killed"),
        "{report}"
    );

    // Not on PATH and not given: the error says how to point at it.
    let out = notify_openclaw(
        &["--channel", "telegram", "--target", "1"],
        request().to_string().as_bytes(),
        "/usr/bin:/bin",
        fake.dir.path(),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("no openclaw on PATH (/usr/bin:/bin)"),
        "{}",
        text(&out.stderr)
    );
}

/// Whether `pid` is gone (or a zombie nobody has reaped yet).
fn dead(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(s) => s
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z')),
    }
}

/// The broker kills a notifier at its deadline with SIGKILL: openclaw, in a process group of
/// its own, must die with `occ notify-openclaw`, not go on sending after the broker gave up.
#[test]
fn notify_openclaw_killed_takes_openclaw_with_it() {
    let fake = Fake::new();
    let pidfile = fake.path("pid");
    fake.openclaw(&format!("echo $$ > '{}'\nexec sleep 30", pidfile.display()));
    let mut child = Command::new(occ_tests::bin("occ"))
        .args(["notify-openclaw", "--channel", "telegram", "--target", "1"])
        .env_clear()
        .env(
            "PATH",
            format!("{}:/usr/bin:/bin", fake.dir.path().display()),
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(request().to_string().as_bytes())
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let pid: i32 = loop {
        if let Some(p) = std::fs::read_to_string(&pidfile)
            .ok()
            .and_then(|s| s.trim().parse().ok())
        {
            break p;
        }
        assert!(Instant::now() < deadline, "openclaw never started");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(!dead(pid));
    child.kill().unwrap();
    child.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !dead(pid) {
        assert!(
            Instant::now() < deadline,
            "openclaw (pid {pid}) outlived the killed notifier"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The real OpenClaw CLI accepts the argv we build: in `--dry-run`, on a throwaway HOME whose
/// profile configures one Telegram account (no network: in a network namespace of its own
/// when root can make one), with `/usr/bin` (where an older Node may live) behind `--node`'s
/// directory on PATH. An unknown account is refused by OpenClaw, and its reason and exit status
/// come back.
#[test]
fn notify_openclaw_argv_is_accepted_by_the_real_openclaw_cli() {
    let Some(inst) = crate::openclaw::install_or_skip() else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let profile_dir = home.path().join(".openclaw-occnotify");
    std::fs::create_dir_all(&profile_dir).unwrap();
    let config = json!({"channels": {"telegram": {"accounts": {"approvals": {
        "botToken": "123456:occ-test-token-never-used"}}}}});
    std::fs::write(profile_dir.join("openclaw.json"), config.to_string()).unwrap();
    let openclaw = inst.cli_bin.join("openclaw");
    let node = inst.node_bin.join("node");
    let offline = occ_tests::is_root()
        && Command::new("unshare")
            .args(["-n", "true"])
            .status()
            .is_ok_and(|s| s.success());
    let run = |account: &str| {
        let mut c = if offline {
            let mut c = Command::new("unshare");
            c.args(["-n", "--"]).arg(occ_tests::bin("occ"));
            c
        } else {
            Command::new(occ_tests::bin("occ"))
        };
        c.args(["notify-openclaw", "--channel", "telegram"])
            .args(["--target", "-1001234567890", "--account", account])
            .args(["--profile", "occnotify", "--openclaw"])
            .arg(&openclaw)
            .arg("--node")
            .arg(&node)
            .args(["--dry-run", "--json"])
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("HOME", home.path())
            .env("OPENCLAW_NO_AUTO_UPDATE", "1")
            .env("OPENCLAW_DISABLE_BONJOUR", "1")
            .current_dir(home.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(request().to_string().as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    };
    let out = run("approvals");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["node"], node.display().to_string());
    let r = &report["openclaw_result"];
    assert_eq!(r["action"], "send", "{r}");
    assert_eq!(r["dryRun"], true, "{r}");
    assert_eq!(r["payload"]["channel"], "telegram", "{r}");
    assert_eq!(r["payload"]["to"], "telegram:-1001234567890", "{r}");

    let out = run("nosuch");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    let err = text(&out.stderr);
    assert!(
        err.contains(
            "openclaw message send exited 1: Unknown account \"nosuch\" for channel telegram."
        ),
        "{err}"
    );
}

/// As the broker's `approval.notify` (user mode, as the agent): a real pending request reaches
/// the stand-in, audited `notify_sent`. The stand-in is what npm installs, a `#!/usr/bin/env
/// node` script with its `node` beside it, and the broker gives notifiers a PATH without that
/// directory: `occ notify-openclaw` finds the `node` beside openclaw and puts it first.
#[test]
fn notify_openclaw_as_approval_notify_sends_a_pending_request() {
    let Some(ids) = ready() else { return };
    let h = AgentHome::new(ids);
    let fake = Fake::new();
    let openclaw = fake.path("openclaw");
    occ_tests::write_exe(
        &openclaw,
        "#!/usr/bin/env node\nthrow new Error('not node');\n",
    );
    // `node`, as env finds it on PATH: records $0 and the script's argv.
    let rec = fake.path("argv");
    occ_tests::write_exe(
        fake.path("node"),
        &format!(
            "#!/bin/sh\nprintf '%s\\0' \"$0\" \"$@\" > '{}.tmp'\nmv '{0}.tmp' '{0}'\n\
             echo '{{\"action\":\"send\",\"dryRun\":false}}'\n",
            rec.display()
        ),
    );
    let occ = h.home.join("bin/occ");
    notify_config(
        &h,
        &[
            occ.to_str().unwrap(),
            "notify-openclaw",
            "--channel",
            "telegram",
            "--target",
            "-1001234567890",
            "--account",
            "approvals",
            "--openclaw",
            openclaw.to_str().unwrap(),
        ],
        30,
    );
    let id = pending_id(&h.sudo(&["-n", "/usr/bin/id", "-u"], &[]));
    let argv = fake
        .argv(Duration::from_secs(20))
        .expect("the notifier never ran openclaw");
    assert_eq!(argv[0], fake.path("node").display().to_string(), "{argv:?}");
    assert_eq!(argv[1], openclaw.display().to_string());
    let message = argv
        .iter()
        .find_map(|a| a.strip_prefix("--message="))
        .expect("no --message")
        .to_string();
    assert_eq!(
        argv[2..],
        [
            "message",
            "send",
            "--channel=telegram",
            "--target=-1001234567890",
            "--account=approvals",
            &format!("--message={message}"),
            "--json",
        ]
    );
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_message(
        &message,
        &id,
        host.trim(),
        r#"["/usr/bin/id", "-u"]"#,
        &format!("occ approve {id}"),
    );
    assert!(message.contains("\n#"), "{message}");
    assert!(message.contains(" occ-agent → root "), "{message}");
    let sent = wait_events(&h, "notify_sent", 1, Duration::from_secs(10));
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0]["request_id"], id.as_str());
    assert_eq!(sent[0]["exit_status"], 0);
    assert_eq!(sent[0]["notify_argv"][1], "notify-openclaw");
    assert!(wait_events(&h, "notify_failed", 0, Duration::ZERO).is_empty());

    // OpenClaw refuses: its status and reason reach the audit log through the broker.
    occ_tests::write_exe(
        fake.path("node"),
        "#!/bin/sh\necho '{\"ok\":false,\"error\":{\"type\":\"cli_error\",\
         \"message\":\"Unknown account \\\"approvals\\\" for channel telegram.\"}}'\nexit 1\n",
    );
    let id = pending_id(&h.sudo(&["-n", "/usr/bin/id", "-g"], &[]));
    let failed = wait_events(&h, "notify_failed", 1, Duration::from_secs(20));
    assert!(!failed.is_empty(), "no notify_failed");
    assert_eq!(failed[0]["request_id"], id.as_str());
    assert_eq!(failed[0]["exit_status"], 1, "{}", failed[0]);
    assert_eq!(
        failed[0]["error"],
        format!(
            "the notifier exited 1: occ notify-openclaw: openclaw message send exited 1: \
             Unknown account \"approvals\" for channel telegram. (ran {} on {})",
            openclaw.display(),
            fake.path("node").display()
        ),
        "{}",
        failed[0]
    );
    h.verify_intact();
}
