//! `approval.notify` and `occ approvals --watch` end to end, through the real shim and broker
//! as the agent user (user mode): what the notifier reads, a webhook to a receiver on
//! 127.0.0.1, a slow notifier that cannot delay the pending answer, a failing one retried and
//! audited, shells refused at load, and the live queue seeing a request come and go.

use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::approval::{pending_id, ready, text, AgentHome};

pub(crate) fn notify_config(h: &AgentHome, argv: &[&str], timeout: u64) {
    let cfg = serde_json::json!({
        "approval": {"notify": {"argv": argv, "timeout_seconds": timeout}}
    });
    h.write_security("broker.json", &cfg.to_string());
}

/// The audit events of `kind`, waiting up to `wait` for at least `n`.
pub(crate) fn wait_events(h: &AgentHome, kind: &str, n: usize, wait: Duration) -> Vec<Value> {
    let deadline = Instant::now() + wait;
    loop {
        let got: Vec<Value> = h
            .events()
            .into_iter()
            .filter(|e| e["event_type"] == kind)
            .collect();
        if got.len() >= n || Instant::now() >= deadline {
            return got;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits up to `wait` for `path` to hold a whole line and returns its first line.
fn wait_line(path: &Path, wait: Duration) -> String {
    let deadline = Instant::now() + wait;
    loop {
        let t = std::fs::read_to_string(path).unwrap_or_default();
        if let Some(l) = t.lines().next().filter(|_| t.contains('\n')) {
            return l.to_string();
        }
        assert!(
            Instant::now() < deadline,
            "nothing arrived in {}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Checks what a notifier got for pending request `id` (`sudo -n /usr/bin/id -u`).
fn assert_request_json(v: &Value, id: &str) {
    assert_eq!(v["id"], id, "{v}");
    assert_eq!(
        v["command"],
        serde_json::json!(["/usr/bin/id", "-u"]),
        "{v}"
    );
    assert_eq!(v["submituser"], "occ-agent", "{v}");
    assert_eq!(v["runuser"], "root", "{v}");
    assert_eq!(v["untrusted"], false, "{v}");
    assert!(v["flags"].is_array(), "{v}");
    assert!(
        v["expires_at"].as_str().is_some_and(|s| s.ends_with('Z')),
        "{v}"
    );
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_eq!(v["host"], host.trim(), "{v}");
    assert_eq!(v["approve_command"], format!("occ approve {id}"), "{v}");
}

#[test]
fn notifier_reads_the_pending_request_as_json_on_stdin() {
    let Some(ids) = ready() else { return };
    let h = AgentHome::new(ids);
    let got = h.home.join("notified.jsonl");
    notify_config(&h, &["/usr/bin/tee", "-a", got.to_str().unwrap()], 10);
    let id = pending_id(&h.sudo(&["-n", "/usr/bin/id", "-u"], &[]));
    let line = wait_line(&got, Duration::from_secs(10));
    let v: Value = serde_json::from_str(&line).unwrap();
    assert_request_json(&v, &id);
    // The same fields as `occ approvals --json` shows for it.
    let listed = h.pending();
    let mut expected = listed[0].clone();
    let mut given = v.clone();
    // Its age moved on between the two readings.
    expected.as_object_mut().unwrap().remove("age_seconds");
    given.as_object_mut().unwrap().remove("age_seconds");
    // The statement to sign is the one `occ approvals --statement ID` prints.
    let stmt = h.occ(&["approvals", "--statement", &id]);
    assert!(stmt.status.success());
    assert_eq!(v["statement"], text(&stmt.stdout).as_str(), "{v}");
    for k in ["host", "approve_command", "statement"] {
        given.as_object_mut().unwrap().remove(k);
    }
    assert_eq!(given, expected);
    let sent = wait_events(&h, "notify_sent", 1, Duration::from_secs(5));
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0]["request_id"], id.as_str());
    assert_eq!(sent[0]["exit_status"], 0);
    assert_eq!(sent[0]["attempt"], 1);
    assert_eq!(sent[0]["notify_argv"][0], "/usr/bin/tee");
    h.verify_intact();
}

/// A webhook: curl posts the request to an HTTP receiver on 127.0.0.1 (the receiver a chat or
/// ntfy server would be), which writes what it got to a file.
#[test]
fn curl_webhook_delivers_the_request_to_a_local_receiver() {
    let Some(ids) = ready() else { return };
    if !Path::new("/usr/bin/curl").exists() {
        occ_tests::skip("needs curl at /usr/bin/curl");
        return;
    }
    let h = AgentHome::new(ids);
    let dir = tempfile::tempdir().unwrap();
    let body_file = dir.path().join("body.json");
    let script = r#"
import http.server, sys
out = sys.argv[1]
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        n = int(self.headers.get('Content-Length', 0))
        data = self.rfile.read(n)
        with open(out + '.tmp', 'wb') as f:
            f.write(self.path.encode() + b'\n' + self.headers.get('Content-Type', '').encode() + b'\n' + data)
        import os; os.rename(out + '.tmp', out)
        self.send_response(200); self.end_headers(); self.wfile.write(b'ok')
    def log_message(self, *a): pass
s = http.server.HTTPServer(('127.0.0.1', 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
"#;
    let mut rx = Command::new("python3")
        .args(["-c", script, body_file.to_str().unwrap()])
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    let mut port = String::new();
    BufReader::new(rx.stdout.take().unwrap())
        .read_line(&mut port)
        .unwrap();
    let url = format!("http://127.0.0.1:{}/occ-approvals", port.trim());
    notify_config(
        &h,
        &[
            "/usr/bin/curl",
            "-sS",
            "--fail",
            "--max-time",
            "5",
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            "@-",
            &url,
        ],
        10,
    );
    let id = pending_id(&h.sudo(&["-n", "/usr/bin/id", "-u"], &[]));
    let deadline = Instant::now() + Duration::from_secs(10);
    while !body_file.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = rx.kill();
    let _ = rx.wait();
    let got = std::fs::read_to_string(&body_file).expect("the receiver got nothing");
    let mut lines = got.splitn(3, '\n');
    assert_eq!(lines.next(), Some("/occ-approvals"));
    assert_eq!(lines.next(), Some("application/json"));
    let v: Value = serde_json::from_str(lines.next().unwrap().trim()).unwrap();
    assert_request_json(&v, &id);
    let sent = wait_events(&h, "notify_sent", 1, Duration::from_secs(5));
    assert_eq!(sent.len(), 1, "{sent:?}");
}

/// logger to a syslog socket: the test binds the socket, so what logger sent is checked.
#[test]
fn logger_sends_the_request_to_a_syslog_socket() {
    let Some(ids) = ready() else { return };
    let h = AgentHome::new(ids);
    let sock = h.home.join("log.sock");
    let listener = std::os::unix::net::UnixDatagram::bind(&sock).unwrap();
    std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o777)).unwrap();
    notify_config(
        &h,
        &["/usr/bin/logger", "-t", "occ", "-u", sock.to_str().unwrap()],
        10,
    );
    let id = pending_id(&h.sudo(&["-n", "/usr/bin/id", "-u"], &[]));
    listener
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut buf = vec![0u8; 65536];
    let n = listener.recv(&mut buf).expect("logger sent nothing");
    let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
    let json = &msg[msg.find("occ: {").expect(&msg) + 5..];
    let v: Value = serde_json::from_str(json.trim()).unwrap();
    assert_request_json(&v, &id);
}

/// A notifier that takes 30 s never delays the pending answer; it is killed at its timeout
/// (5 s, well past the 2 s each answer must come within, so a notifier run on the request path
/// fails this) and that attempt is audited as failed.
#[test]
fn slow_notifier_does_not_delay_the_pending_answer() {
    let Some(ids) = ready() else { return };
    let h = AgentHome::new(ids);
    notify_config(&h, &["/usr/bin/sleep", "30"], 5);
    for round in 0..3 {
        let t = Instant::now();
        let out = h.sudo(&["-n", "/usr/bin/id", "-u", &format!("-{round}")], &[]);
        let took = t.elapsed();
        assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
        assert!(
            text(&out.stderr).contains("approval pending"),
            "{}",
            text(&out.stderr)
        );
        assert!(took < Duration::from_secs(2), "round {round} took {took:?}");
    }
    let failed = wait_events(&h, "notify_failed", 1, Duration::from_secs(15));
    assert!(!failed.is_empty());
    assert_eq!(failed[0]["timed_out"], true, "{:?}", failed[0]);
    assert_eq!(failed[0]["signal"], 9, "{:?}", failed[0]);
    assert!(
        failed[0]["error"]
            .as_str()
            .unwrap()
            .contains("timed out after 5s and was killed"),
        "{:?}",
        failed[0]
    );
}

/// A notifier that fails is audited with its exit status and retried while the request is
/// pending; once the request is decided, the retries stop.
#[test]
fn failing_notifier_is_audited_and_retried_until_the_request_is_decided() {
    let Some(ids) = ready() else { return };
    let h = AgentHome::new(ids);
    notify_config(&h, &["/usr/bin/false"], 5);
    let id = pending_id(&h.sudo(&["-n", "/usr/bin/id", "-u"], &[]));
    let failed = wait_events(&h, "notify_failed", 2, Duration::from_secs(10));
    assert!(failed.len() >= 2, "{failed:?}");
    for (i, f) in failed.iter().take(2).enumerate() {
        assert_eq!(f["request_id"], id.as_str());
        assert_eq!(f["exit_status"], 1, "{f}");
        assert_eq!(f["attempt"], i as i64 + 1, "{f}");
        assert_eq!(f["error"], "the notifier exited 1", "{f}");
    }
    let deny = h.occ(&["deny", &id]);
    assert!(deny.status.success(), "{}", text(&deny.stderr));
    let before = wait_events(&h, "notify_failed", 0, Duration::ZERO).len();
    // The next retry would be due 4 s after the second attempt.
    std::thread::sleep(Duration::from_secs(5));
    let after = wait_events(&h, "notify_failed", 0, Duration::ZERO).len();
    assert_eq!(before, after, "retried after the request was decided");
}

/// A shell, directly or through a harmless-looking symlink, is refused when broker.json loads:
/// `occ policy check` names the key and the request is refused, never notified through it.
#[test]
fn shell_as_notifier_is_refused_at_config_load() {
    let Some(ids) = ready() else { return };
    let h = AgentHome::new(ids);
    let link = h.home.join("notify-helper");
    std::os::unix::fs::symlink("/bin/bash", &link).unwrap();
    for argv in [vec!["/bin/sh", "-c", "cat"], vec![link.to_str().unwrap()]] {
        notify_config(&h, &argv, 10);
        let out = h.occ(&["policy", "check", "--json"]);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
        let all = text(&out.stdout);
        assert!(all.contains("approval.notify.argv[0]"), "{all}");
        assert!(all.contains("a shell or interpreter"), "{all}");
        let refused = h.sudo(&["-n", "/usr/bin/id", "-u"], &[]);
        let err = text(&refused.stderr);
        assert!(err.contains("approval.notify.argv[0]"), "{err}");
        assert!(err.contains("(occ: policy_invalid)"), "{err}");
    }
    assert!(h.events().iter().all(|e| e["event_type"] != "notify_sent"));
}

/// A user-mode broker runs its notifier as itself: another user is refused at load.
#[test]
fn user_mode_notifier_user_must_be_the_brokers() {
    let Some(ids) = ready() else { return };
    let h = AgentHome::new(ids);
    let cfg = r#"{"approval": {"notify": {"argv": ["/usr/bin/logger"], "user": "root"}}}"#;
    h.write_security("broker.json", cfg);
    let out = h.occ(&["policy", "check"]);
    assert_eq!(out.status.code(), Some(1));
    let t = text(&out.stdout);
    assert!(t.contains("approval.notify.user"), "{t}");
    assert!(t.contains("is not the broker's user"), "{t}");
}

/// The rule a root broker (system mode) loads broker.json by: `user` required, never root,
/// and it must exist. Checked through `occ policy check` run as root.
#[test]
fn root_broker_refuses_root_missing_or_absent_notify_user() {
    if !occ_tests::is_root() {
        occ_tests::skip("needs root (the loader's rule for a root broker)");
        return;
    }
    let home = tempfile::tempdir().unwrap();
    let sec = home.path().join("security");
    std::fs::create_dir_all(&sec).unwrap();
    for (user, says) in [
        (Some("root"), "a notifier never runs as root"),
        (Some("occ-no-such-user"), "does not exist"),
        (None, "the notifier would run as root"),
    ] {
        let mut n = serde_json::json!({"argv": ["/usr/bin/logger"]});
        if let Some(u) = user {
            n["user"] = u.into();
        }
        let p = sec.join("broker.json");
        std::fs::write(
            &p,
            serde_json::json!({"approval": {"notify": n}}).to_string(),
        )
        .unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        let out = Command::new(occ_tests::bin("occ"))
            .args(["policy", "check"])
            .env("OCC_HOME", home.path())
            .env("OCC_MODE", "user")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1));
        let t = text(&out.stdout);
        assert!(t.contains("approval.notify.user"), "{t}");
        assert!(t.contains(says), "{says}: {t}");
    }
}

/// Reads lines from a child's stdout on a thread, so every wait has a deadline.
/// `occ approvals --watch --json` from `occ` (a command for the occ to run, as some user):
/// the child, its lines as they come, and a 20 s deadline to read them by.
pub(crate) fn watch_json(mut occ: Command) -> (Child, mpsc::Receiver<String>, Instant) {
    occ.args(["approvals", "--watch", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut watch = occ.spawn().unwrap();
    let rx = lines_of(&mut watch);
    (watch, rx, Instant::now() + Duration::from_secs(20))
}

pub(crate) fn lines_of(child: &mut Child) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    let out = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for l in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    rx
}

pub(crate) fn next_json(rx: &mpsc::Receiver<String>, deadline: Instant) -> Value {
    let left = deadline.saturating_duration_since(Instant::now());
    let l = rx
        .recv_timeout(left)
        .expect("no event from --watch in time");
    serde_json::from_str(&l).unwrap_or_else(|e| panic!("{e}: {l}"))
}

/// `occ approvals --watch --json`: a request filed while watching arrives with its full view;
/// approving it sends its removal, with the reason.
#[test]
fn watch_sees_a_request_arrive_and_leave() {
    let Some(ids) = ready() else { return };
    let h = AgentHome::new(ids);
    // A broker first (the shim starts one on demand; the watch needs one running).
    let _ = h.occ(&["status"]);
    let first = pending_id(&h.sudo(&["-n", "/usr/bin/id", "-g"], &[]));
    let (mut watch, rx, deadline) = watch_json(h.cmd(&h.home.join("bin/occ")));
    let e = next_json(&rx, deadline);
    assert_eq!(
        (e["event"].as_str(), e["id"].as_str()),
        (Some("added"), Some(first.as_str()))
    );
    assert_eq!(e["initial"], true);
    let e = next_json(&rx, deadline);
    assert_eq!(e, serde_json::json!({"event": "watching", "pending": 1}));

    let id = pending_id(&h.sudo(&["-n", "/usr/bin/id", "-u"], &[]));
    let e = next_json(&rx, deadline);
    assert_eq!(e["event"], "added", "{e}");
    assert_eq!(e["id"], id.as_str());
    assert_eq!(
        e["request"]["command"],
        serde_json::json!(["/usr/bin/id", "-u"])
    );
    assert_eq!(e["approve_command"], format!("occ approve {id}"));
    assert!(e.get("initial").is_none(), "{e}");

    let ok = h.occ(&["approve", "--yes", &id]);
    assert!(ok.status.success(), "{}", text(&ok.stderr));
    let e = next_json(&rx, deadline);
    assert_eq!(
        e,
        serde_json::json!({"event": "removed", "id": id, "reason": "approved"})
    );
    let ok = h.occ(&["deny", &first]);
    assert!(ok.status.success(), "{}", text(&ok.stderr));
    let e = next_json(&rx, deadline);
    assert_eq!(
        e,
        serde_json::json!({"event": "removed", "id": first, "reason": "denied"})
    );

    // Stopping the broker ends the watch with its reason, not a hang.
    h.stop_broker();
    let status = loop {
        if let Some(st) = watch.try_wait().unwrap() {
            break st;
        }
        assert!(Instant::now() < deadline, "the watch outlived the broker");
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    watch
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(status.code().is_some(), "{err}");
    assert!(err.contains("stopping") || err.contains("ended"), "{err}");
}

/// A broker running as root runs its notifier as `approval.notify.user` (groups, gid and uid
/// dropped before exec): what the notifier writes is owned by that user. A root broker in user
/// mode takes the same path as the system broker here (it judges by its own uid).
#[test]
fn root_broker_runs_the_notifier_as_its_user() {
    if !occ_tests::is_root() {
        occ_tests::skip("needs root (a root broker)");
        return;
    }
    let Some(approver) = nix::unistd::User::from_name("occ-approver").ok().flatten() else {
        occ_tests::skip("needs the occ-approver user (created by .ci/run)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("h");
    let out = dir.path().join("out");
    std::fs::create_dir_all(home.join("bin")).unwrap();
    std::fs::create_dir_all(home.join("security")).unwrap();
    std::fs::create_dir_all(&out).unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o777)).unwrap();
    std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o700)).unwrap();
    occ_tests::copy_exe(occ_tests::bin("occ-shim"), home.join("bin/sudo"));
    occ_tests::copy_exe(occ_tests::bin("occ"), home.join("bin/occ"));
    let got = out.join("got");
    let cfg = serde_json::json!({"approval": {"notify": {
        "argv": ["/usr/bin/tee", got.to_str().unwrap()], "user": "occ-approver"}}});
    let p = home.join("security/broker.json");
    std::fs::write(&p, cfg.to_string()).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    let run = |prog: &str, args: &[&str]| {
        Command::new(home.join("bin").join(prog))
            .args(args)
            .env_clear()
            .env(
                "PATH",
                format!("{}:/usr/bin:/bin", home.join("bin").display()),
            )
            .env("OCC_HOME", &home)
            .env("OCC_MODE", "user")
            .env("HOME", dir.path())
            .current_dir(&home)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let pending = run("sudo", &["-n", "/usr/bin/id", "-u"]);
    let id = pending_id(&pending);
    let line = wait_line(&got, Duration::from_secs(10));
    let v: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["id"], id.as_str());
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(&got).unwrap();
    assert_eq!(
        (meta.uid(), meta.gid()),
        (approver.uid.as_raw(), approver.gid.as_raw()),
        "the notifier did not run as occ-approver"
    );
    // The attempt is audited once the notifier has ended.
    let deadline = Instant::now() + Duration::from_secs(10);
    let log = loop {
        let log = std::fs::read_to_string(home.join("security/privileged-audit.jsonl"))
            .unwrap_or_default();
        if log.contains("notify_sent") || Instant::now() >= deadline {
            break log;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(log.contains(r#""notify_user": "occ-approver""#), "{log}");
    if let Ok(pid) = std::fs::read_to_string(home.join("run/broker.pid")) {
        let _ = Command::new("kill").args(["-TERM", pid.trim()]).status();
    }
}

/// A request that expires leaves the watch with reason `expired` (the broker's own sweep,
/// no request needed to notice it).
#[test]
fn watch_sees_a_request_expire() {
    let Some(ids) = ready() else { return };
    let h = AgentHome::with_test_clock(ids);
    // The request starts the broker (the shim starts one on demand); the watch sees it first.
    let id = pending_id(&h.sudo(&["-n", "/usr/bin/id", "-u"], &[]));
    let (mut watch, rx, deadline) = watch_json(h.cmd(&h.home.join("bin/occ")));
    let first = next_json(&rx, deadline);
    assert_eq!(
        (first["event"].as_str(), first["id"].as_str()),
        (Some("added"), Some(id.as_str())),
        "{first}"
    );
    assert_eq!(next_json(&rx, deadline)["event"], "watching");
    h.advance_minutes(31);
    let e = next_json(&rx, deadline);
    assert_eq!(
        e,
        serde_json::json!({"event": "removed", "id": id, "reason": "expired"})
    );
    let _ = watch.kill();
    let _ = watch.wait();
}

/// On a terminal, `occ approvals --watch` rings the bell for each new request (never for the
/// ones already pending when it starts); piped, it never does.
#[test]
fn watch_rings_the_bell_on_a_terminal_for_new_requests_only() {
    let Some(ids) = ready() else { return };
    let h = AgentHome::new(ids);
    let first = pending_id(&h.sudo(&["-n", "/usr/bin/id", "-g"], &[]));
    // script(1) gives the watch a terminal for its stdout.
    let mut c = h.cmd(Path::new("/usr/bin/script"));
    c.args(["-qfec", "occ approvals --watch", "/dev/null"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut watch = c.spawn().unwrap();
    let mut out = watch.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel::<Vec<u8>>();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = out.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen = Vec::new();
    let until = |want: &str, seen: &mut Vec<u8>| {
        while !String::from_utf8_lossy(seen).contains(want) {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(b) => seen.extend(b),
                Err(_) => panic!("no {want:?} in {:?}", String::from_utf8_lossy(seen)),
            }
        }
    };
    until("watching the queue", &mut seen);
    assert!(
        !seen.contains(&0x07),
        "a request pending at the start rang: {:?}",
        String::from_utf8_lossy(&seen)
    );
    assert!(String::from_utf8_lossy(&seen).contains(&first));
    let id = pending_id(&h.sudo(&["-n", "/usr/bin/id", "-u"], &[]));
    until(&format!("approve: occ approve {id}"), &mut seen);
    let text = String::from_utf8_lossy(&seen).into_owned();
    let at = text.find(&format!("#{id}")).unwrap();
    assert_eq!(
        text[..at].chars().last(),
        Some('\u{7}'),
        "the new request's block starts with the bell: {text:?}"
    );
    let _ = watch.kill();
    let _ = watch.wait();
}

/// The README's mail notifier, as written there (`/usr/bin/mail -s … ops@example.org`), with
/// Debian's bsd-mailx and msmtp as the system's sendmail, delivers the request to an SMTP
/// server on 127.0.0.1 (a sink this test runs; msmtp's system config points there).
#[test]
fn the_mail_notifier_delivers_the_request_over_smtp() {
    use std::io::Write as _;
    let Some(ids) = ready() else { return };
    if !Path::new("/usr/bin/mail").exists() || !Path::new("/usr/bin/msmtp").exists() {
        occ_tests::skip("needs /usr/bin/mail and msmtp (Debian packages bsd-mailx, msmtp-mta)");
        return;
    }
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    struct Rc;
    impl Drop for Rc {
        fn drop(&mut self) {
            let _ = std::fs::remove_file("/etc/msmtprc");
        }
    }
    let _rc = Rc;
    std::fs::write(
        "/etc/msmtprc",
        format!(
            "account default\nhost 127.0.0.1\nport {port}\nfrom occ@localhost\nauth off\n\
             tls off\n"
        ),
    )
    .unwrap();
    std::fs::set_permissions("/etc/msmtprc", std::fs::Permissions::from_mode(0o644)).unwrap();
    // A minimal SMTP server: one session, the message's DATA sent back on a channel.
    let (tx, rx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        let Ok((stream, _)) = listener.accept() else {
            return;
        };
        let mut w = stream.try_clone().unwrap();
        let mut r = BufReader::new(stream);
        let _ = w.write_all(b"220 localhost ESMTP test\r\n");
        let mut data = String::new();
        let mut in_data = false;
        let mut line = String::new();
        while r.read_line(&mut line).unwrap_or(0) > 0 {
            if in_data {
                if line == ".\r\n" {
                    in_data = false;
                    let _ = w.write_all(b"250 queued\r\n");
                } else {
                    data.push_str(&line);
                }
            } else {
                let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
                let reply: &[u8] = match verb.as_str() {
                    "EHLO" => b"250-localhost\r\n250 8BITMIME\r\n",
                    "DATA" => {
                        in_data = true;
                        b"354 go on\r\n"
                    }
                    "QUIT" => {
                        let _ = w.write_all(b"221 bye\r\n");
                        break;
                    }
                    _ => b"250 ok\r\n",
                };
                let _ = w.write_all(reply);
            }
            line.clear();
        }
        let _ = tx.send(data);
    });
    let h = AgentHome::new(ids);
    notify_config(
        &h,
        &[
            "/usr/bin/mail",
            "-s",
            "occ: approval pending",
            "ops@example.org",
        ],
        20,
    );
    let id = pending_id(&h.sudo(&["-n", "/usr/bin/id", "-u"], &[]));
    let data = rx
        .recv_timeout(Duration::from_secs(20))
        .unwrap_or_else(|_| {
            panic!(
                "no mail: {:?}",
                wait_events(&h, "notify_failed", 1, Duration::ZERO)
            )
        });
    assert!(data.contains("Subject: occ: approval pending"), "{data}");
    assert!(data.contains("ops@example.org"), "{data}");
    assert!(
        data.contains(&format!("\"approve_command\":\"occ approve {id}\"")),
        "{data}"
    );
    let sent = wait_events(&h, "notify_sent", 1, Duration::from_secs(10));
    assert_eq!(sent.len(), 1, "{sent:?}");
}
