//! Audit forwarding end to end: the broker (as the agent user) sends its events to the real
//! `/usr/sbin/sudo_logsrvd` on 127.0.0.1 and to test-owned syslog sockets; a down destination
//! spools without blocking anyone and drains in order; `occ audit verify --witness` catches a
//! rewritten local log. Needs root, the real sudo and the occ-agent user (as `approval.rs`), and
//! sudo_logsrvd (Debian's `sudo` package).

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::approval::{pending_id, ready, text, AgentHome};

pub(crate) const LOGSRVD: &str = "/usr/sbin/sudo_logsrvd";

/// A port on 127.0.0.1 nobody listens on (bound, then released).
pub(crate) fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// The real sudo_logsrvd on 127.0.0.1, writing its JSON event log into a temp dir: Debian
/// bookworm's from the host, or (for TLS, which bookworm's lacks) Debian trixie's in a
/// debootstrapped root, run with `chroot`.
pub(crate) struct Logsrvd {
    dir: tempfile::TempDir,
    /// The root sudo_logsrvd runs in (`chroot`), when it is not the host's.
    root: Option<PathBuf>,
    pub(crate) port: u16,
    child: Option<Child>,
}

/// The `sudo_logsrvd.conf` docs/audit.md shows: plain TCP on 127.0.0.1, JSON event log with
/// exits. `dir` is the server's own view of its directory; `tls` the `[server]` lines that make
/// it a TLS listener.
fn logsrvd_conf(dir: &Path, port: u16, tls: Option<&str>) -> String {
    let (suffix, tls) = match tls {
        Some(lines) => ("(tls)", lines),
        None => ("", ""),
    };
    format!(
        "[server]\nlisten_address = 127.0.0.1:{port}{suffix}\n{tls}server_log = {d}/server.log\n\
         pid_file =\n\n\
         [iolog]\niolog_dir = {d}/io\n\n\
         [eventlog]\nlog_type = logfile\nlog_format = json\nlog_exit = true\n\n\
         [logfile]\npath = {d}/events.json\n",
        d = dir.display()
    )
}

/// A TLS listener's identity and client check, as files under `pki` named `{cert}.pem`,
/// `{cert}.key` and `{ca}.pem`.
pub(crate) struct TlsServer<'a> {
    pub pki: &'a Path,
    pub cert: &'a str,
    pub ca: &'a str,
    /// `tls_checkpeer`: demand a client certificate signed by `ca`.
    pub checkpeer: bool,
}

impl Logsrvd {
    pub(crate) fn start() -> Logsrvd {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        std::fs::write(
            dir.path().join("sudo_logsrvd.conf"),
            logsrvd_conf(dir.path(), port, None),
        )
        .unwrap();
        Logsrvd::run(dir, None, port)
    }

    /// sudo_logsrvd from the Debian root `root`, listening with TLS. Its directory and a copy
    /// of the certificates it uses live inside that root.
    pub(crate) fn start_tls(root: &Path, tls: &TlsServer<'_>) -> Logsrvd {
        let dir = tempfile::Builder::new()
            .prefix("occ-logsrvd")
            .tempdir_in(root.join("tmp"))
            .unwrap();
        let inside = Path::new("/tmp").join(dir.path().file_name().unwrap());
        for (from, to) in [
            (format!("{}.pem", tls.cert), "server.pem"),
            (format!("{}.key", tls.cert), "server.key"),
            (format!("{}.pem", tls.ca), "ca.pem"),
        ] {
            std::fs::copy(tls.pki.join(from), dir.path().join(to)).unwrap();
        }
        let lines = format!(
            "tls_cert = {d}/server.pem\ntls_key = {d}/server.key\ntls_cacert = {d}/ca.pem\n\
             tls_checkpeer = {}\n",
            tls.checkpeer,
            d = inside.display()
        );
        let port = free_port();
        std::fs::write(
            dir.path().join("sudo_logsrvd.conf"),
            logsrvd_conf(&inside, port, Some(&lines)),
        )
        .unwrap();
        Logsrvd::run(dir, Some(root.to_path_buf()), port)
    }

    fn run(dir: tempfile::TempDir, root: Option<PathBuf>, port: u16) -> Logsrvd {
        let mut s = Logsrvd {
            dir,
            root,
            port,
            child: None,
        };
        s.restart();
        s
    }

    pub(crate) fn restart(&mut self) {
        let conf = self.dir.path().join("sudo_logsrvd.conf");
        let mut cmd = match &self.root {
            Some(root) => {
                let mut c = Command::new("chroot");
                c.arg(root).arg(LOGSRVD).arg("-n").arg("-f").arg(
                    Path::new("/tmp")
                        .join(self.dir.path().file_name().unwrap())
                        .join("sudo_logsrvd.conf"),
                );
                c
            }
            None => {
                let mut c = Command::new(LOGSRVD);
                c.arg("-n").arg("-f").arg(&conf);
                c
            }
        };
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start sudo_logsrvd");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if let Some(Ok(Some(st))) = self.child.as_mut().map(Child::try_wait) {
                let mut err = String::new();
                if let Some(mut e) = self.child.take().and_then(|mut c| c.stderr.take()) {
                    let _ = e.read_to_string(&mut err);
                }
                panic!("sudo_logsrvd exited ({st}): {err}");
            }
            assert!(Instant::now() < deadline, "sudo_logsrvd did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub(crate) fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn events_file(&self) -> PathBuf {
        self.dir.path().join("events.json")
    }

    /// The event log's records in file order: ("accept" | "reject" | "exit", record).
    pub(crate) fn records(&self) -> Vec<(String, serde_json::Map<String, Value>)> {
        match std::fs::read(self.events_file()) {
            Ok(b) if !b.is_empty() => occ_audit::witness::logsrvd_records(&b).unwrap_or_default(),
            _ => Vec::new(),
        }
    }
}

impl Drop for Logsrvd {
    fn drop(&mut self) {
        self.kill();
    }
}

pub(crate) fn have_logsrvd() -> bool {
    if Path::new(LOGSRVD).is_file() {
        return true;
    }
    occ_tests::skip("needs /usr/sbin/sudo_logsrvd (Debian's sudo package)");
    false
}

pub(crate) fn status(h: &AgentHome) -> Value {
    let out = h.occ(&["status", "--json"]);
    assert!(
        out.status.success(),
        "occ status: {}{}\nbroker.log:\n{}",
        text(&out.stdout),
        text(&out.stderr),
        std::fs::read_to_string(h.home.join("run/broker.log")).unwrap_or_default()
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Waits until `cond` holds, for at most `secs`.
pub(crate) fn wait_for(secs: u64, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A request the policy refuses at once (`policy_block`, a reject for sudo_logsrvd).
pub(crate) const POLICY: &str = r#"{"version": 2, "deny": ["/usr/bin/rm"]}"#;

/// The test policy (rm denied) and a broker.json forwarding to sudo_logsrvd on `port`.
fn forward_to_logsrvd(h: &AgentHome, port: u16) {
    h.write_security("command-policy.json", POLICY);
    h.write_security(
        "broker.json",
        &format!(
            r#"{{"audit": {{"forward": [{{"type": "logsrvd", "address": "127.0.0.1:{port}"}}]}}}}"#
        ),
    );
}

#[test]
fn forwards_accept_reject_and_exit_to_real_sudo_logsrvd_and_drains_after_a_restart() {
    let Some(ids) = ready() else { return };
    if !have_logsrvd() {
        return;
    }
    let mut server = Logsrvd::start();
    let h = AgentHome::new(ids);
    forward_to_logsrvd(&h, server.port);

    // A run (accept, then accept + exit), a denial and a policy block (rejects).
    let id = pending_id(&h.sudo(&["-n", "/usr/bin/id", "-u"], &[]));
    assert!(h.occ(&["approve", "--yes", &id]).status.success());
    let ran = h.sudo(&["-n", "/usr/bin/id", "-u"], &[]);
    assert_eq!(text(&ran.stdout), "0\n", "{}", text(&ran.stderr));
    let denied = pending_id(&h.sudo(&["-n", "/usr/bin/id", "-g"], &[]));
    assert!(h.occ(&["deny", &denied]).status.success());
    let blocked = h.sudo(&["-n", "/usr/bin/rm", "/nonexistent"], &[]);
    assert_eq!(blocked.status.code(), Some(1));

    let local = h.events();
    let find = |t: &str| {
        local
            .iter()
            .find(|e| e["event_type"] == t)
            .unwrap_or_else(|| panic!("no {t} in the local log"))
            .clone()
    };
    let (start, finish, deny, block) = (
        find("exec_start"),
        find("exec_finish"),
        find("approval_denied"),
        find("policy_block"),
    );
    wait_for(15, "four sessions at sudo_logsrvd", || {
        server
            .records()
            .iter()
            .filter(|(k, _)| k == "accept" || k == "reject")
            .count()
            >= 4
    });
    let recs = server.records();
    let by_seq = |e: &Value| {
        let n = recs
            .iter()
            .position(|(_, r)| r.get("occ_seq") == Some(&e["seq"]))
            .unwrap_or_else(|| panic!("seq {} not at sudo_logsrvd: {recs:?}", e["seq"]));
        (n, recs[n].0.clone(), recs[n].1.clone())
    };
    // exec_start: an accept with sudo's keys and occ's.
    let (_, kind, r) = by_seq(&start);
    assert_eq!(kind, "accept");
    assert_eq!(r["occ_event"], "exec_start");
    assert_eq!(r["occ_chain_hash"], start["chain_hash"]);
    assert_eq!(r["occ_request_id"], start["request_id"]);
    assert_eq!(r["submituser"], "occ-agent");
    assert_eq!(r["runuser"], "root");
    assert_eq!(r["runuid"], 0);
    assert_eq!(r["submituid"], ids.0);
    assert_eq!(r["runargv"], start["runargv"]);
    assert_eq!(r["command"], start["command"]);
    assert_eq!(r["runcwd"], start["runcwd"]);
    assert_eq!(r["occ_grant_scope"], start["grant_scope"]);
    // Who approved the run, on the run's own record.
    assert_eq!(start["approver"], "occ-agent", "{start}");
    assert_eq!(r["occ_approver"], "occ-agent");
    assert!(r["submithost"].as_str().is_some_and(|h| !h.is_empty()));
    // exec_finish: an accept, then the exit in the same session (one uuid).
    let (n, kind, r) = by_seq(&finish);
    assert_eq!(
        (kind.as_str(), &r["occ_event"]),
        ("accept", &Value::from("exec_finish"))
    );
    let (exit_kind, exit) = &recs[n + 1];
    assert_eq!(exit_kind, "exit", "{recs:?}");
    assert_eq!(exit["uuid"], r["uuid"]);
    assert_eq!(exit["exit_value"], 0);
    // The denial and the policy block: rejects with the reason.
    let (_, kind, r) = by_seq(&deny);
    assert_eq!(
        (kind.as_str(), &r["occ_event"]),
        ("reject", &Value::from("approval_denied"))
    );
    assert_eq!(r["occ_request_id"], Value::from(denied.clone()));
    let (_, kind, r) = by_seq(&block);
    assert_eq!(kind, "reject");
    assert_eq!(r["occ_reason_code"], block["reason_code"]);
    assert!(r["reason"].as_str().is_some_and(|s| !s.is_empty()), "{r:?}");
    let st = status(&h);
    let fw = &st["audit"]["forward"][0];
    assert_eq!(fw["state"], "connected", "{st}");
    assert_eq!(fw["backlog"], 0, "{st}");

    // The server goes away mid-stream: requests are answered at once all the same.
    let before = server.records().len();
    server.kill();
    for _ in 0..20 {
        let t0 = Instant::now();
        let out = h.sudo(&["-n", "/usr/bin/rm", "/nonexistent"], &[]);
        assert_eq!(out.status.code(), Some(1));
        assert!(
            t0.elapsed() < Duration::from_secs(3),
            "a down server slowed a request"
        );
    }
    wait_for(10, "the forwarder to notice", || {
        status(&h)["audit"]["forward"][0]["state"] == "retrying"
    });
    let st = status(&h);
    let fw = &st["audit"]["forward"][0];
    assert!(fw["backlog"].as_u64().unwrap_or(0) >= 20, "{st}");
    assert!(
        fw["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("connect")),
        "{st}"
    );
    let plain = text(&h.occ(&["status"]).stdout);
    assert!(
        plain.contains(&format!(
            "forward logsrvd 127.0.0.1:{}: retrying (last error: ",
            server.port
        )),
        "{plain}"
    );
    assert_eq!(server.records().len(), before);

    server.restart();
    wait_for(20, "the spool to drain", || {
        status(&h)["audit"]["forward"][0]["backlog"] == 0
    });
    h.stop_broker();
    // Everything arrived, in seq order: every local command event, and nothing else.
    let carried: Vec<u64> = h
        .events()
        .iter()
        .filter(|e| {
            occ_audit::witness::logsrvd_message(e["event_type"].as_str().unwrap_or("")).is_some()
        })
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    let mut got: Vec<u64> = server
        .records()
        .iter()
        .filter_map(|(_, r)| r.get("occ_seq").and_then(Value::as_u64))
        .collect();
    assert!(
        got.windows(2).all(|w| w[0] <= w[1]),
        "out of order: {got:?}"
    );
    got.dedup();
    assert_eq!(got, carried);
    let spool: Vec<_> = std::fs::read_dir(h.home.join("security/spool"))
        .unwrap()
        .flat_map(|d| std::fs::read_dir(d.unwrap().path()).unwrap())
        .collect();
    assert!(spool.is_empty(), "spool not drained: {spool:?}");
    // The copy at sudo_logsrvd is a witness the local chain agrees with (fetched from the
    // server, as an admin would, to where the agent can read it).
    let witness = h.home.parent().unwrap().join("events.json");
    std::fs::copy(server.events_file(), &witness).unwrap();
    std::fs::set_permissions(&witness, std::fs::Permissions::from_mode(0o644)).unwrap();
    let v = h.occ(&["audit", "verify", "--witness", witness.to_str().unwrap()]);
    assert_eq!(
        v.status.code(),
        Some(0),
        "{}{}",
        text(&v.stdout),
        text(&v.stderr)
    );
    assert!(
        text(&v.stdout).contains("witness: agrees"),
        "{}",
        text(&v.stdout)
    );
}

/// A test-owned syslog receiver on a Unix datagram socket the agent's broker can write to.
struct DevLog {
    _dir: tempfile::TempDir,
    path: PathBuf,
    got: Arc<Mutex<Vec<String>>>,
}

impl DevLog {
    fn new() -> DevLog {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = dir.path().join("log.sock");
        let sock = UnixDatagram::bind(&path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
        let got = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&got);
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 65536];
            while let Ok(n) = sock.recv(&mut buf) {
                sink.lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(&buf[..n]).into_owned());
            }
        });
        DevLog {
            _dir: dir,
            path,
            got,
        }
    }

    fn lines(&self) -> Vec<String> {
        self.got.lock().unwrap().clone()
    }
}

/// The broker-forwarded events of the local log (what a syslog witness must hold).
fn forwarded(events: &[Value]) -> Vec<Value> {
    events
        .iter()
        .filter(|e| occ_audit::witness::forwarded(e["event_type"].as_str().unwrap_or("")))
        .cloned()
        .collect()
}

fn assert_5424_matches(lines: &[String], local: &[Value]) {
    assert_eq!(lines.len(), local.len(), "{lines:#?}");
    for (l, e) in lines.iter().zip(local) {
        // authpriv (10): <84> warning or <85> notice; version 1; the event's own timestamp.
        assert!(l.starts_with("<84>1 ") || l.starts_with("<85>1 "), "{l}");
        let want = format!(
            "[occ@32473 seq=\"{}\" event_type=\"{}\" chain_hash=\"{}\"",
            e["seq"],
            e["event_type"].as_str().unwrap(),
            e["chain_hash"].as_str().unwrap()
        );
        assert!(l.contains(&want), "{l}\nwant {want}");
        assert!(
            l.contains(&format!(" {} ", e["timestamp"].as_str().unwrap())),
            "{l}"
        );
        let body: Value = serde_json::from_str(&l[l.find("] {").unwrap() + 2..]).unwrap();
        assert_eq!(body["chain_hash"], e["chain_hash"], "{l}");
        assert_eq!(body["runargv"], e["runargv"], "{l}");
    }
}

#[test]
fn forwards_rfc5424_to_a_unix_socket_and_to_tcp_once_it_listens() {
    let Some(ids) = ready() else { return };
    let devlog = DevLog::new();
    let port = free_port();
    let h = AgentHome::new(ids);
    h.write_security("command-policy.json", POLICY);
    h.write_security(
        "broker.json",
        &format!(
            r#"{{"audit": {{"forward": [{{"type": "syslog", "socket": "{}"}},
                {{"type": "syslog", "address": "127.0.0.1:{port}", "protocol": "tcp"}}]}}}}"#,
            devlog.path.display()
        ),
    );
    let id = pending_id(&h.sudo(&["-n", "/usr/bin/id", "-u"], &[]));
    assert!(h.occ(&["approve", "--yes", &id]).status.success());
    assert!(h.sudo(&["-n", "/usr/bin/id", "-u"], &[]).status.success());
    for _ in 0..5 {
        assert_eq!(
            h.sudo(&["-n", "/usr/bin/rm", "/x"], &[]).status.code(),
            Some(1)
        );
    }
    // The TCP receiver is not there yet: its events wait in the spool.
    wait_for(10, "the tcp forwarder to retry", || {
        status(&h)["audit"]["forward"][1]["state"] == "retrying"
    });
    let backlog = status(&h)["audit"]["forward"][1]["backlog"]
        .as_u64()
        .unwrap();
    assert!(backlog >= 10, "{backlog}");
    let want = forwarded(&h.events());
    wait_for(10, "the datagrams", || devlog.lines().len() >= want.len());
    assert_5424_matches(&devlog.lines(), &want);

    // Now it listens: the spool drains over one connection, RFC 6587 octet counting, in order.
    let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
    let (mut conn, _) = listener.accept().unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut frames = Vec::new();
    let mut buf = Vec::new();
    while frames.len() < want.len() {
        let mut chunk = [0u8; 65536];
        let n = conn.read(&mut chunk).expect("tcp frames");
        assert!(n > 0, "closed after {} frames", frames.len());
        buf.extend_from_slice(&chunk[..n]);
        while let Some(sp) = buf.iter().position(|&b| b == b' ') {
            let len: usize = std::str::from_utf8(&buf[..sp]).unwrap().parse().unwrap();
            if buf.len() < sp + 1 + len {
                break;
            }
            frames.push(String::from_utf8(buf[sp + 1..sp + 1 + len].to_vec()).unwrap());
            buf.drain(..sp + 1 + len);
        }
    }
    assert_5424_matches(&frames[..want.len()], &want);
    wait_for(10, "the tcp backlog to drain", || {
        status(&h)["audit"]["forward"][1]["backlog"] == 0
    });
}

#[test]
fn witness_catches_the_user_mode_rewrite() {
    let Some(ids) = ready() else { return };
    let devlog = DevLog::new();
    let h = AgentHome::new(ids);
    h.write_security("command-policy.json", POLICY);
    h.write_security(
        "broker.json",
        &format!(
            r#"{{"audit": {{"forward": [{{"type": "syslog", "socket": "{}"}}]}}}}"#,
            devlog.path.display()
        ),
    );
    let id = pending_id(&h.sudo(&["-n", "/usr/bin/id", "-u"], &[]));
    assert!(h.occ(&["approve", "--yes", &id]).status.success());
    assert!(h.sudo(&["-n", "/usr/bin/id", "-u"], &[]).status.success());
    assert_eq!(
        h.sudo(&["-n", "/usr/bin/rm", "/x"], &[]).status.code(),
        Some(1)
    );
    h.stop_broker();
    let original = h.events();
    wait_for(10, "the datagrams", || {
        devlog.lines().len() >= forwarded(&original).len()
    });
    let witness = h.home.parent().unwrap().join("witness.log");
    std::fs::write(&witness, devlog.lines().join("\n") + "\n").unwrap();

    // The untampered log agrees with its witness.
    let agree = h.occ(&["audit", "verify", "--witness", witness.to_str().unwrap()]);
    assert_eq!(agree.status.code(), Some(0), "{}", text(&agree.stdout));

    // The agent rewrites its own log: drops the approval and the run, re-chains the rest with
    // valid hashes, and rewrites audit-head.json. Local verification cannot tell.
    let kept: Vec<&Value> = original
        .iter()
        .filter(|e| {
            !matches!(
                e["event_type"].as_str(),
                Some("approval_granted" | "exec_start" | "exec_finish")
            )
        })
        .collect();
    assert!(kept.len() + 3 <= original.len());
    let forged = tempfile::tempdir().unwrap();
    let forged_log = forged.path().join("privileged-audit.jsonl");
    {
        let mut w = occ_audit::Writer::open(&forged_log, occ_audit::Options::default()).unwrap();
        for e in &kept {
            let mut fields = std::collections::BTreeMap::new();
            for (k, v) in e.as_object().unwrap() {
                if [
                    "seq",
                    "timestamp",
                    "event_type",
                    "prev_hash",
                    "chain_hash",
                    "seal",
                ]
                .contains(&k.as_str())
                {
                    continue;
                }
                fields.insert(k.clone(), to_value(v));
            }
            w.append(e["event_type"].as_str().unwrap(), fields).unwrap();
        }
        w.sync().unwrap();
    }
    let sec = h.home.join("security");
    std::fs::copy(&forged_log, sec.join("privileged-audit.jsonl")).unwrap();
    std::fs::copy(
        forged.path().join("audit-head.json"),
        sec.join("audit-head.json"),
    )
    .unwrap();
    h.chown_all();
    let local = h.occ(&["audit", "verify"]);
    assert_eq!(
        local.status.code(),
        Some(0),
        "the forgery verifies locally: {}",
        text(&local.stdout)
    );

    let caught = h.occ(&["audit", "verify", "--witness", witness.to_str().unwrap()]);
    let out = text(&caught.stdout);
    assert_eq!(caught.status.code(), Some(1), "{out}");
    assert!(out.contains("witness: DISAGREES"), "{out}");
    assert!(out.contains(": witness_mismatch: "), "{out}");
    assert!(out.contains(": missing_locally: "), "{out}");
    let json = h.occ(&[
        "audit",
        "verify",
        "--json",
        "--witness",
        witness.to_str().unwrap(),
    ]);
    let v: Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v["intact"], true);
    assert_eq!(v["witness"]["agrees"], false);
    // The last original events are gone locally; the witness still holds them.
    let last = original.last().unwrap()["seq"].as_u64().unwrap();
    assert!(
        v["witness"]["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["reason"] == "missing_locally" && f["seq"] == last),
        "{v}"
    );
}

fn to_value(v: &Value) -> occ_audit::Value {
    match v {
        Value::Null => occ_audit::Value::Null,
        Value::Bool(b) => occ_audit::Value::Bool(*b),
        Value::Number(n) => occ_audit::Value::Int(n.as_i64().unwrap()),
        Value::String(s) => occ_audit::Value::Str(s.clone()),
        Value::Array(a) => occ_audit::Value::Array(a.iter().map(to_value).collect()),
        Value::Object(o) => {
            occ_audit::Value::Object(o.iter().map(|(k, v)| (k.clone(), to_value(v))).collect())
        }
    }
}

#[test]
fn a_full_spool_drops_copies_never_requests_and_records_forward_overflow() {
    let Some(ids) = ready() else { return };
    let port = free_port();
    let h = AgentHome::new(ids);
    h.write_security("command-policy.json", POLICY);
    h.write_security(
        "broker.json",
        &format!(
            r#"{{"audit": {{"spool_max_events": 3, "forward": [
                {{"type": "syslog", "address": "127.0.0.1:{port}", "protocol": "tcp"}}]}}}}"#
        ),
    );
    for _ in 0..3 {
        assert_eq!(
            h.sudo(&["-n", "/usr/bin/rm", "/x"], &[]).status.code(),
            Some(1)
        );
    }
    let st = status(&h);
    let fw = &st["audit"]["forward"][0];
    assert_eq!(fw["backlog"], 3, "{st}");
    let before = forwarded(&h.events());
    let dropped = before.len() as u64 - 3;
    assert_eq!(fw["dropped_pending_record"], dropped, "{st}");

    let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
    let (mut conn, _) = listener.accept().unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut got = String::new();
    while !got.contains("forward_overflow") {
        let mut chunk = [0u8; 65536];
        let n = conn.read(&mut chunk).expect("frames");
        assert!(n > 0, "closed: {got}");
        got.push_str(&String::from_utf8_lossy(&chunk[..n]));
    }
    let overflow = h
        .events()
        .into_iter()
        .find(|e| e["event_type"] == "forward_overflow")
        .expect("forward_overflow on record");
    assert_eq!(overflow["dropped"], dropped);
    assert_eq!(overflow["first_dropped_seq"], before[3]["seq"]);
    assert_eq!(overflow["last_dropped_seq"], before.last().unwrap()["seq"]);
    assert_eq!(overflow["spool_max_events"], 3);
    assert_eq!(
        overflow["forwarder"],
        format!("syslog 127.0.0.1:{port}/tcp")
    );
    // The first three reached the receiver, then the overflow record itself.
    for e in &before[..3] {
        assert!(got.contains(&format!(
            "chain_hash=\"{}\"",
            e["chain_hash"].as_str().unwrap()
        )));
    }
    assert!(!got.contains(&format!(
        "chain_hash=\"{}\"",
        before[3]["chain_hash"].as_str().unwrap()
    )));
}

#[test]
fn spooled_events_survive_a_broker_restart_and_all_arrive_once_in_order() {
    let Some(ids) = ready() else { return };
    if !have_logsrvd() {
        return;
    }
    let mut server = Logsrvd::start();
    server.kill();
    let h = AgentHome::new(ids);
    forward_to_logsrvd(&h, server.port);
    // The server is down: a run and ten blocks wait in the spool.
    let id = pending_id(&h.sudo(&["-n", "/usr/bin/id", "-u"], &[]));
    assert!(h.occ(&["approve", "--yes", &id]).status.success());
    assert!(h.sudo(&["-n", "/usr/bin/id", "-u"], &[]).status.success());
    for _ in 0..10 {
        assert_eq!(
            h.sudo(&["-n", "/usr/bin/rm", "/x"], &[]).status.code(),
            Some(1)
        );
    }
    wait_for(10, "the forwarder to retry", || {
        status(&h)["audit"]["forward"][0]["state"] == "retrying"
    });
    let spooled = |h: &AgentHome| -> usize {
        std::fs::read_dir(h.home.join("security/spool"))
            .unwrap()
            .flat_map(|d| std::fs::read_dir(d.unwrap().path()).unwrap())
            .count()
    };
    let before = spooled(&h);
    assert!(before >= 12, "{before} spool files");

    // SIGTERM; the spool stays on disk. The next request starts a new broker, which sends
    // what the old one left, then its own events, once the server is back.
    h.stop_broker();
    assert!(
        !h.home.join("run/broker.pid").exists(),
        "the broker did not stop"
    );
    // (plus the broker's own stop event)
    assert!(spooled(&h) >= before, "{} < {before}", spooled(&h));
    // The shim starts a new broker at once, even while the old one is still letting go of its
    // lock, and that broker refuses the request.
    let blocked = h.sudo(&["-n", "/usr/bin/rm", "/y"], &[]);
    assert_eq!(blocked.status.code(), Some(1));
    assert!(
        text(&blocked.stderr).contains("(occ: policy_block)"),
        "{}",
        text(&blocked.stderr)
    );
    assert!(
        status(&h)["audit"]["forward"][0]["backlog"]
            .as_u64()
            .unwrap()
            > before as u64
    );
    server.restart();
    wait_for(30, "the spool to drain", || {
        status(&h)["audit"]["forward"][0]["backlog"] == 0
    });
    h.stop_broker();
    let carried: Vec<u64> = h
        .events()
        .iter()
        .filter(|e| {
            occ_audit::witness::logsrvd_message(e["event_type"].as_str().unwrap_or("")).is_some()
        })
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(
        carried.len(),
        13,
        "exec_start, exec_finish and eleven blocks"
    );
    // Every event, once each (a clean stop loses no deletion), in seq order.
    let got: Vec<u64> = server
        .records()
        .iter()
        .filter(|(k, _)| k != "exit")
        .filter_map(|(_, r)| r.get("occ_seq").and_then(Value::as_u64))
        .collect();
    assert_eq!(got, carried);
    assert_eq!(spooled(&h), 0);
}

/// A sudoers drop-in, checked with `visudo -cf`, removed when dropped.
struct SudoersDropIn(PathBuf);

impl SudoersDropIn {
    fn new(name: &str, body: &str) -> SudoersDropIn {
        let path = Path::new("/etc/sudoers.d").join(name);
        std::fs::write(&path, body).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o440)).unwrap();
        let guard = SudoersDropIn(path);
        let out = Command::new("visudo")
            .arg("-cf")
            .arg(&guard.0)
            .output()
            .expect("run visudo");
        assert!(out.status.success(), "visudo: {}", text(&out.stderr));
        guard
    }
}

impl Drop for SudoersDropIn {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn common_fields_match_what_the_real_sudo_sends_for_the_same_command() {
    let Some(ids) = ready() else { return };
    if !have_logsrvd() {
        return;
    }
    // The command runs as a user no other test runs the real sudo as, so the log_servers line
    // below, scoped to it, touches no other test's sudo.
    let target = crate::system_mode::world::ensure_user("occ-systarget");
    let server = Logsrvd::start();
    let h = AgentHome::new(ids);
    forward_to_logsrvd(&h, server.port);
    let argv = ["-n", "-u", "occ-systarget", "/usr/bin/id", "-u"];
    let id = pending_id(&h.sudo(&argv, &[]));
    assert!(h.occ(&["approve", "--yes", &id]).status.success());
    let ran = h.sudo(&argv, &[]);
    assert_eq!(
        text(&ran.stdout),
        format!("{}\n", target.uid),
        "{}",
        text(&ran.stderr)
    );
    let accepts = |server: &Logsrvd| -> Vec<serde_json::Map<String, Value>> {
        server
            .records()
            .into_iter()
            .filter(|(k, _)| k == "accept")
            .map(|(_, r)| r)
            .collect()
    };
    wait_for(15, "occ's exec_start at sudo_logsrvd", || {
        accepts(&server)
            .iter()
            .any(|r| r.get("occ_event") == Some(&Value::from("exec_start")))
    });

    // The real sudo, for the same command from the same directory, logging to the same server.
    let drop_in = SudoersDropIn::new(
        &format!("occ-test-log-servers-{}", server.port),
        &format!(
            "Defaults>occ-systarget log_servers=127.0.0.1:{}\n",
            server.port
        ),
    );
    let real = h
        .cmd(Path::new("/usr/bin/sudo"))
        .args(argv)
        .output()
        .unwrap();
    assert_eq!(
        text(&real.stdout),
        format!("{}\n", target.uid),
        "{}",
        text(&real.stderr)
    );
    wait_for(15, "the real sudo's accept at sudo_logsrvd", || {
        accepts(&server)
            .iter()
            .any(|r| !r.contains_key("occ_event"))
    });
    let recs = accepts(&server);
    let occ = recs
        .iter()
        .find(|r| r.get("occ_event") == Some(&Value::from("exec_start")))
        .unwrap();
    let sudo = recs.iter().find(|r| !r.contains_key("occ_event")).unwrap();
    // Per-session fields the server or the moment gives; everything else both carry must agree.
    let own = ["uuid", "server_time", "submit_time", "peeraddr"];
    let common: Vec<&String> = occ
        .keys()
        .filter(|k| sudo.contains_key(*k) && !own.contains(&k.as_str()))
        .collect();
    for k in &common {
        assert_eq!(occ[*k], sudo[*k], "{k}: occ {occ:?}\nsudo {sudo:?}");
    }
    for k in [
        "command",
        "runargv",
        "runcwd",
        "runuid",
        "runuser",
        "submitcwd",
        "submithost",
        "submituser",
    ] {
        assert!(
            common.iter().any(|c| c.as_str() == k),
            "{k} is not in both: occ {occ:?}\nsudo {sudo:?}"
        );
    }
    assert_eq!(sudo["runuser"], "occ-systarget");
    assert_eq!(sudo["runargv"], serde_json::json!(["/usr/bin/id", "-u"]));

    // (The real sudo sends no exit record without I/O logging, so exits are not compared.)

    // A refusal: occ's denial and the real sudo's own refusal of a command its rules do not
    // allow (whoami) are both rejects with the same command fields; only the reason's words
    // differ.
    let refused = ["-n", "-u", "occ-systarget", "/usr/bin/whoami"];
    let id = pending_id(&h.sudo(&refused, &[]));
    assert!(h.occ(&["deny", &id]).status.success());
    let real = h
        .cmd(Path::new("/usr/bin/sudo"))
        .args(refused)
        .output()
        .unwrap();
    drop(drop_in);
    assert_ne!(real.status.code(), Some(0), "{}", text(&real.stdout));
    let rejects = |server: &Logsrvd| -> Vec<serde_json::Map<String, Value>> {
        server
            .records()
            .into_iter()
            .filter(|(k, _)| k == "reject")
            .map(|(_, r)| r)
            .collect()
    };
    wait_for(15, "both rejects", || {
        let r = rejects(&server);
        r.iter().any(|r| r.contains_key("occ_event"))
            && r.iter().any(|r| !r.contains_key("occ_event"))
    });
    let recs = rejects(&server);
    let occ = recs.iter().find(|r| r.contains_key("occ_event")).unwrap();
    let sudo = recs.iter().find(|r| !r.contains_key("occ_event")).unwrap();
    let common: Vec<&String> = occ
        .keys()
        .filter(|k| sudo.contains_key(*k) && !own.contains(&k.as_str()) && *k != "reason")
        .collect();
    for k in &common {
        assert_eq!(occ[*k], sudo[*k], "{k}: occ {occ:?}\nsudo {sudo:?}");
    }
    for k in [
        "command",
        "runargv",
        "runuser",
        "submituser",
        "submithost",
        "reason",
    ] {
        assert!(
            occ.contains_key(k) && sudo.contains_key(k),
            "{k} is not in both: occ {occ:?}\nsudo {sudo:?}"
        );
    }
}

/// sudo_logsrvd is killed in the middle of 500 requests and started again 100 requests later:
/// every one of the 500 rejects arrives, in the order of the local log (delivery is at least
/// once, so a record the server stored just before it died may come twice, never out of order).
#[test]
fn kill_sudo_logsrvd_in_the_middle_of_500_requests_and_all_500_arrive_in_order() {
    let Some(ids) = ready() else { return };
    if !have_logsrvd() {
        return;
    }
    let mut server = Logsrvd::start();
    let h = AgentHome::new(ids);
    h.write_security("command-policy.json", POLICY);
    h.write_security(
        "broker.json",
        &format!(
            r#"{{"audit": {{"fsync": "batch", "forward": [{{"type": "logsrvd", "address": "127.0.0.1:{}"}}]}}}}"#,
            server.port
        ),
    );
    for i in 0..500 {
        if i == 250 {
            server.kill();
        }
        if i == 350 {
            server.restart();
        }
        let out = h.sudo(&["-n", "/usr/bin/rm", &format!("/nonexistent-{i}")], &[]);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    }
    let local: Vec<Value> = h
        .events()
        .into_iter()
        .filter(|e| e["event_type"] == "policy_block")
        .map(|e| e["seq"].clone())
        .collect();
    assert_eq!(local.len(), 500);
    let rejects = |server: &Logsrvd| -> Vec<Value> {
        let mut seqs: Vec<Value> = server
            .records()
            .into_iter()
            .filter(|(k, _)| k == "reject")
            .map(|(_, r)| r.get("occ_seq").cloned().unwrap_or(Value::Null))
            .collect();
        // At least once: a copy sent again right after its first lands next to it.
        seqs.dedup();
        seqs
    };
    wait_for(120, "500 rejects at sudo_logsrvd", || {
        rejects(&server).len() >= 500
    });
    assert_eq!(rejects(&server), local);
    let st = status(&h);
    assert_eq!(st["audit"]["forward"][0]["backlog"], 0, "{st}");
}

/// The `sudo_logsrvd.conf` the README shows, as it is written there (only its port and the
/// event log's path moved to free ones), runs the real sudo_logsrvd and receives occ's records.
#[test]
fn the_readmes_sudo_logsrvd_conf_runs_and_receives_occs_records() {
    let Some(ids) = ready() else { return };
    if !have_logsrvd() {
        return;
    }
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md"))
            .unwrap();
    let after = readme
        .split("A `sudo_logsrvd.conf` that works with it")
        .nth(1)
        .expect("the README's sudo_logsrvd.conf paragraph");
    let conf = after
        .split("```ini\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("an ini block after it");
    assert!(
        conf.contains("listen_address = 127.0.0.1:30343\n"),
        "{conf}"
    );
    assert!(
        conf.contains("path = /var/log/sudo_logsrvd/events.json\n"),
        "{conf}"
    );
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let events = dir.path().join("events.json");
    let conf = conf
        .replace("127.0.0.1:30343", &format!("127.0.0.1:{port}"))
        .replace(
            "/var/log/sudo_logsrvd/events.json",
            &events.display().to_string(),
        );
    let conf_file = dir.path().join("sudo_logsrvd.conf");
    std::fs::write(&conf_file, conf).unwrap();
    let mut child = Command::new(LOGSRVD)
        .arg("-n")
        .arg("-f")
        .arg(&conf_file)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    struct Kill<'a>(&'a mut Child);
    impl Drop for Kill<'_> {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _kill = Kill(&mut child);
    wait_for(10, "sudo_logsrvd to listen", || {
        TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    let h = AgentHome::new(ids);
    forward_to_logsrvd(&h, port);
    let out = h.sudo(&["-n", "/usr/bin/rm", "/nonexistent"], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    wait_for(15, "the reject in events.json", || {
        std::fs::read(&events)
            .ok()
            .and_then(|b| occ_audit::witness::logsrvd_records(&b).ok())
            .is_some_and(|r| r.iter().any(|(k, _)| k == "reject"))
    });
}

/// A request typed on a terminal carries sudo's `ttyname`, `columns` and `lines` (and the
/// caller's `submitcwd`) into the audit log and to sudo_logsrvd.
#[test]
fn a_request_from_a_terminal_carries_ttyname_columns_and_lines_to_sudo_logsrvd() {
    let Some(ids) = ready() else { return };
    if !have_logsrvd() {
        return;
    }
    let server = Logsrvd::start();
    let h = AgentHome::new(ids);
    forward_to_logsrvd(&h, server.port);
    // script(1) gives the shim a pseudo-terminal; stty sets its size first.
    let out = h
        .cmd(Path::new("/usr/bin/script"))
        .args([
            "-qec",
            "stty cols 101 rows 37; sudo -n /usr/bin/rm /nonexistent",
            "/dev/null",
        ])
        .output()
        .unwrap();
    assert!(
        text(&out.stdout).contains("(occ: policy_block)"),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let block = h
        .events()
        .into_iter()
        .find(|e| e["event_type"] == "policy_block")
        .expect("the block");
    let tty = block["ttyname"].as_str().unwrap_or_default().to_string();
    assert!(tty.starts_with("/dev/pts/"), "{block}");
    assert_eq!(
        (&block["columns"], &block["lines"]),
        (&serde_json::json!(101), &serde_json::json!(37))
    );
    assert_eq!(block["submitcwd"], h.home.display().to_string());
    wait_for(15, "the reject at sudo_logsrvd", || {
        server.records().iter().any(|(k, _)| k == "reject")
    });
    let recs = server.records();
    let (_, r) = recs.iter().find(|(k, _)| k == "reject").unwrap();
    assert_eq!(r["ttyname"], tty.as_str(), "{r:?}");
    assert_eq!(r["columns"], 101, "{r:?}");
    assert_eq!(r["lines"], 37, "{r:?}");
    assert_eq!(r["submitcwd"], h.home.display().to_string());
}

/// An approval that expires is a reject at sudo_logsrvd (`approval_expired`), and a refused
/// request's `NAME=value` assignments are its `runenv`.
#[test]
fn an_expired_approval_is_a_reject_and_assignments_are_runenv() {
    let Some(ids) = ready() else { return };
    if !have_logsrvd() {
        return;
    }
    let server = Logsrvd::start();
    let h = AgentHome::with_test_clock(ids);
    forward_to_logsrvd(&h, server.port);
    let id = pending_id(&h.sudo(&["-n", "/usr/bin/id", "-u"], &[]));
    h.advance_minutes(31);
    let blocked = h.sudo(&["-n", "FOO=bar", "/usr/bin/rm", "/nonexistent"], &[]);
    assert_eq!(blocked.status.code(), Some(1), "{}", text(&blocked.stderr));
    let rejected = |event: &str| {
        server
            .records()
            .into_iter()
            .find(|(k, r)| k == "reject" && r.get("occ_event") == Some(&Value::from(event)))
            .map(|(_, r)| r)
    };
    // Every event of a request names the requester's uid, the expiry too.
    let local = h
        .events()
        .into_iter()
        .find(|e| e["event_type"] == "approval_expired")
        .expect("approval_expired");
    assert_eq!(local["peer_uid"], ids.0, "{local}");
    assert_eq!(local["runuser"], "root", "{local}");
    wait_for(20, "both rejects at sudo_logsrvd", || {
        rejected("approval_expired").is_some() && rejected("policy_block").is_some()
    });
    let expired = rejected("approval_expired").unwrap();
    assert_eq!(expired["occ_request_id"], id.as_str(), "{expired:?}");
    assert_eq!(expired["runargv"], serde_json::json!(["/usr/bin/id", "-u"]));
    let block = rejected("policy_block").unwrap();
    assert_eq!(block["runenv"], serde_json::json!(["FOO=bar"]), "{block:?}");
}

/// A record sudo_logsrvd refuses (here one whose spool copy lost its `runuser`, which the
/// server requires) is tried three times, then skipped and put on record as `forward_refused`;
/// the events after it still arrive, so one bad record never stalls the spool.
#[test]
fn a_record_the_server_refuses_is_skipped_on_record_and_the_rest_arrive() {
    let Some(ids) = ready() else { return };
    if !have_logsrvd() {
        return;
    }
    let mut server = Logsrvd::start();
    let h = AgentHome::new(ids);
    forward_to_logsrvd(&h, server.port);
    server.kill();
    let out = h.sudo(&["-n", "/usr/bin/rm", "/refused"], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    h.stop_broker();
    let seq = h
        .events()
        .iter()
        .find(|e| e["event_type"] == "policy_block")
        .map(|e| e["seq"].as_u64().unwrap())
        .expect("the block");
    let spool = std::fs::read_dir(h.home.join("security/spool"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("logsrvd-")
        })
        .expect("the logsrvd spool");
    let copy = spool.join(format!("{seq:020}.json"));
    let mut ev: Value = serde_json::from_slice(&std::fs::read(&copy).unwrap()).unwrap();
    ev.as_object_mut().unwrap().remove("runuser");
    std::fs::write(&copy, serde_json::to_vec(&ev).unwrap()).unwrap();

    server.restart();
    let out = h.sudo(&["-n", "/usr/bin/rm", "/after"], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    wait_for(20, "the reject after the refused record", || {
        server.records().iter().any(|(k, r)| {
            k == "reject" && r.get("runargv") == Some(&serde_json::json!(["/usr/bin/rm", "/after"]))
        })
    });
    assert!(
        !server
            .records()
            .iter()
            .any(|(_, r)| r.get("occ_seq") == Some(&Value::from(seq))),
        "the refused record was stored after all"
    );
    wait_for(10, "forward_refused on record", || {
        h.events()
            .iter()
            .any(|e| e["event_type"] == "forward_refused")
    });
    let refused = h
        .events()
        .into_iter()
        .find(|e| e["event_type"] == "forward_refused")
        .unwrap();
    assert_eq!(refused["refused_seq"], seq, "{refused}");
    assert!(
        refused["error"]
            .as_str()
            .unwrap_or_default()
            .contains("server error"),
        "{refused}"
    );
    assert!(
        refused["forwarder"]
            .as_str()
            .unwrap_or_default()
            .starts_with("logsrvd 127.0.0.1:"),
        "{refused}"
    );
}
