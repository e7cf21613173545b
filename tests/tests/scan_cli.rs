//! `occ-scan ports | baseline | egress | sockets` through the real binary: exit codes 0/1/2,
//! JSON shapes, strict monitoring files, 0600 atomic baselines, lsof parity, and a scan run as
//! the unprivileged `occ-agent` user that sees root's sockets with an unknown owner.

use std::fs;
use std::net::TcpListener;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn occ_scan() -> Command {
    let mut c = Command::new(occ_tests::bin("occ-scan"));
    // A user-mode home, even while a system-mode test has /etc/occ in place.
    c.env("OCC_MODE", "user");
    c
}

fn run(args: &[&str], home: &Path) -> Output {
    occ_scan()
        .args(args)
        .env("OCC_HOME", home)
        .output()
        .unwrap()
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

const TCP_HEADER: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n";

/// A captured-style proc tree: node (pid 300) listening on 127.0.0.1:18789 and connected out
/// to 162.220.34.34:443; nothing else.
fn fake_proc(dir: &Path) -> PathBuf {
    let root = dir.join("proc");
    fs::create_dir_all(root.join("net")).unwrap();
    fs::write(
        root.join("net/tcp"),
        format!(
            "{TCP_HEADER}\
   0: 0100007F:4965 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 5001 1 0000000000000000 100 0 0 10 0\n\
   1: 0200000A:D431 2222DCA2:01BB 01 00000000:00000000 02:000A7E21 00000000  1000        0 5002 2 0000000000000000 20 4 30 10 -1\n"
        ),
    )
    .unwrap();
    fs::write(root.join("net/udp"), TCP_HEADER).unwrap();
    let p = root.join("300");
    fs::create_dir_all(p.join("fd")).unwrap();
    fs::create_dir_all(p.join("ns")).unwrap();
    symlink("net:[4026531840]", p.join("ns/net")).unwrap();
    symlink("socket:[5001]", p.join("fd/20")).unwrap();
    symlink("socket:[5002]", p.join("fd/21")).unwrap();
    symlink("/usr/bin/node", p.join("exe")).unwrap();
    fs::write(p.join("comm"), "node\n").unwrap();
    fs::write(
        p.join("status"),
        "Name:\tnode\nUid:\t1000\t1000\t1000\t1000\n",
    )
    .unwrap();
    fs::write(p.join("cmdline"), "node\0gateway.js\0").unwrap();
    symlink("300", root.join("self")).unwrap();
    root
}

fn security(home: &Path, name: &str, text: &str) -> PathBuf {
    let p = home.join("security").join(name);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(&p, text).unwrap();
    p
}

#[test]
fn scan_help_works_for_every_subcommand() {
    for sub in [
        &[][..],
        &["ports"],
        &["baseline"],
        &["egress"],
        &["sockets"],
    ] {
        let out = occ_scan().args(sub).arg("--help").output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{sub:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("Usage"), "{sub:?}: {text}");
        if !sub.is_empty() {
            assert!(text.contains("--json"), "{sub:?} lacks --json: {text}");
        }
    }
    let out = occ_scan()
        .args(["ports", "--method", "netstat"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn scan_ports_exit_0_clean_1_findings_2_failed() {
    let d = tempfile::tempdir().unwrap();
    let root = fake_proc(d.path());
    let root = root.to_str().unwrap();
    let args = ["ports", "--json", "--method", "proc", "--proc-root", root];

    // No approved file: the listener is unapproved, and the finding names address, pid, exe.
    let out = run(&args, d.path());
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = json(&out);
    assert_eq!(v["status"], "ok");
    assert_eq!(v["approved_file_present"], false);
    assert_eq!(v["tool"], "proc");
    let f = &v["findings"][0];
    assert_eq!(f["type"], "unapproved-port");
    assert_eq!(f["address"], "127.0.0.1");
    assert_eq!(f["port"], 18789);
    assert_eq!(f["pid"], 300);
    assert_eq!(f["exe"], "/usr/bin/node");
    assert_eq!(v["findings"].as_array().unwrap().len(), 1);
    let s = &v["listening_services"][0];
    for key in [
        "address",
        "port",
        "protocol",
        "family",
        "pid",
        "comm",
        "path",
        "uid",
        "state",
        "net_namespace",
    ] {
        assert!(s.get(key).is_some(), "entry lacks {key}: {s}");
    }
    assert_eq!(
        (s["protocol"].as_str(), s["family"].as_str()),
        (Some("tcp"), Some("ipv4"))
    );
    assert_eq!(s["net_namespace"], 4026531840u64);

    // Approved (host is read as bind): clean, exit 0.
    security(
        d.path(),
        "approved_ports.json",
        r#"[{"port": 18789, "protocol": "tcp", "command": "node", "host": "127.0.0.1", "pid": 1, "user": "alice"}]"#,
    );
    let out = run(&args, d.path());
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(json(&out)["findings"], serde_json::json!([]));

    // Text mode says the same.
    let out = run(
        &["ports", "--method", "proc", "--proc-root", root],
        d.path(),
    );
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("Findings: 0"));

    // /proc unreadable and lsof not allowed: the scan failed, exit 2, never "clean".
    let out = run(
        &[
            "ports",
            "--json",
            "--method",
            "proc",
            "--proc-root",
            "/nonexistent/proc",
        ],
        d.path(),
    );
    assert_eq!(out.status.code(), Some(2));
    let v = json(&out);
    assert_eq!(v["status"], "error");
    assert!(
        v["error"].as_str().unwrap().contains("--method lsof"),
        "{v}"
    );

    // No /proc and no lsof (automatic method): exit 2 naming both.
    let out = run(
        &[
            "ports",
            "--json",
            "--proc-root",
            "/nonexistent/proc",
            "--lsof",
            "/nonexistent/lsof",
        ],
        d.path(),
    );
    assert_eq!(out.status.code(), Some(2));
    let e = json(&out)["error"].as_str().unwrap().to_owned();
    assert!(
        e.contains("no socket source works") && e.contains("lsof"),
        "{e}"
    );
}

#[test]
fn scan_monitoring_files_are_strict() {
    let d = tempfile::tempdir().unwrap();
    let root = fake_proc(d.path());
    let root = root.to_str().unwrap();
    let p = security(
        d.path(),
        "approved_ports.json",
        r#"[{"port": 22, "comand": "sshd"}]"#,
    );
    let out = run(
        &["ports", "--json", "--method", "proc", "--proc-root", root],
        d.path(),
    );
    assert_eq!(out.status.code(), Some(2));
    let e = json(&out)["error"].as_str().unwrap().to_owned();
    assert!(
        e.contains(p.to_str().unwrap()) && e.contains("\"comand\""),
        "{e}"
    );

    let p = security(
        d.path(),
        "egress_allowlist.json",
        r#"[{"host_regex": "api\\.example\\.com", "hosts": "x"}]"#,
    );
    let out = run(
        &["egress", "--json", "--method", "proc", "--proc-root", root],
        d.path(),
    );
    assert_eq!(out.status.code(), Some(2));
    let e = json(&out)["error"].as_str().unwrap().to_owned();
    assert!(
        e.contains(p.to_str().unwrap()) && e.contains("\"hosts\""),
        "{e}"
    );
}

#[test]
fn scan_baseline_writes_0600_atomically_and_refuses_to_overwrite() {
    let d = tempfile::tempdir().unwrap();
    let root = fake_proc(d.path());
    let root = root.to_str().unwrap();
    let src = ["--method", "proc", "--proc-root", root];
    let out = run(&[&["baseline", "--json"][..], &src].concat(), d.path());
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = json(&out);
    assert_eq!(v["rules"], 1);
    let path = d.path().join("security/approved_ports.json");
    assert_eq!(v["output"], path.to_str().unwrap());
    assert_eq!(
        fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let rules: Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    assert_eq!(rules[0]["port"], 18789);
    assert_eq!(rules[0]["bind"], "127.0.0.1");
    assert_eq!(rules[0]["command"], "node");
    assert_eq!(rules[0]["exe"], "/usr/bin/node");
    // No temp files left behind.
    let names: Vec<_> = fs::read_dir(path.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");

    // The baseline approves what listens: ports is now clean.
    let out = run(&[&["ports", "--json"][..], &src].concat(), d.path());
    assert_eq!(out.status.code(), Some(0));

    // An existing file is not replaced without --force (exit 1, a refusal).
    fs::write(&path, "[]").unwrap();
    let out = run(&[&["baseline"][..], &src].concat(), d.path());
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--force"));
    assert_eq!(fs::read(&path).unwrap(), b"[]");
    let out = run(&[&["baseline", "--force"][..], &src].concat(), d.path());
    assert_eq!(out.status.code(), Some(0));
    assert_ne!(fs::read(&path).unwrap(), b"[]");
}

#[test]
fn scan_egress_exit_codes_and_best_effort_resolution() {
    let d = tempfile::tempdir().unwrap();
    let root = fake_proc(d.path());
    let root = root.to_str().unwrap();
    let args = ["egress", "--json", "--method", "proc", "--proc-root", root];
    let out = run(&args, d.path());
    assert_eq!(out.status.code(), Some(1));
    let v = json(&out);
    assert_eq!(v["findings"][0]["type"], "unapproved-egress");
    assert_eq!(v["findings"][0]["remote_host"], "162.220.34.34");
    assert_eq!(v["findings"][0]["remote_port"], 443);
    assert_eq!(v["findings"][0]["pid"], 300);
    assert_eq!(v["findings"][0]["exe"], "/usr/bin/node");
    assert_eq!(v["resolution"]["best_effort"], true);
    assert!(v["blind_spots"]
        .as_array()
        .unwrap()
        .iter()
        .any(|b| b.as_str().unwrap().contains("short")));
    assert_eq!(
        v["method"].as_str().map(|m| m.contains("/proc")),
        Some(true)
    );

    security(
        d.path(),
        "egress_allowlist.json",
        r#"[{"cidr": "162.220.34.0/24", "port": 443, "protocol": "tcp", "exe": "/usr/bin/node"}]"#,
    );
    let out = run(&args, d.path());
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(json(&out)["connections"][0]["allowed_by"], 0);

    // A host rule whose name does not resolve allows nothing, and says so.
    security(
        d.path(),
        "egress_allowlist.json",
        r#"[{"host": "occ-scan-test.invalid", "port": 443}]"#,
    );
    let out = run(&args, d.path());
    assert_eq!(out.status.code(), Some(1));
    let v = json(&out);
    assert!(
        v["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w.as_str().unwrap().contains("occ-scan-test.invalid")),
        "{v}"
    );
}

/// Copies the binary where occ-agent can run it (the target dir may be private).
fn agent_copy(dir: &Path) -> PathBuf {
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).unwrap();
    let bin = dir.join("occ-scan");
    occ_tests::copy_exe(occ_tests::bin("occ-scan"), &bin);
    fs::set_permissions(&bin, fs::Permissions::from_mode(0o755)).unwrap();
    bin
}

#[test]
fn scan_as_unprivileged_user_reports_unknown_owner_needs_root() {
    if !occ_tests::is_root() {
        occ_tests::skip("needs root (runs the scan as occ-agent)");
        return;
    }
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let d = tempfile::tempdir().unwrap();
    let bin = agent_copy(d.path());
    let home = d.path().join("home");
    fs::create_dir(&home).unwrap();
    fs::set_permissions(&home, fs::Permissions::from_mode(0o777)).unwrap();
    let out = Command::new("runuser")
        .args(["-u", "occ-agent", "--"])
        .arg(&bin)
        .args(["ports", "--json", "--method", "proc"])
        .env("OCC_HOME", &home)
        .output()
        .unwrap();
    // Findings (our listener is unapproved), not a failed scan.
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = json(&out);
    let s = v["listening_services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["port"] == port && s["address"] == "127.0.0.1")
        .unwrap_or_else(|| panic!("root's listener on {port} is not listed: {v}"))
        .clone();
    assert_eq!(s["pid"], Value::Null, "{s}");
    assert_eq!(s["comm"], Value::Null);
    assert_eq!(s["path"], Value::Null);
    assert_eq!(s["uid"], Value::Null);
    assert_eq!(
        s["socket_uid"], 0,
        "the kernel's socket uid is a fact, not a guess"
    );
    let vis = &v["visibility"];
    assert_eq!(vis["complete"], false);
    assert_eq!(vis["root"], false);
    assert!(vis["unknown_owner_sockets"].as_u64().unwrap() >= 1);
    assert!(vis["processes_uninspectable"].as_u64().unwrap() >= 1);
    let notes = vis["notes"].to_string();
    assert!(
        notes.contains("unknown owner") && notes.contains("run as root"),
        "{notes}"
    );
    let f = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["port"] == port)
        .unwrap();
    assert_eq!(f["pid"], Value::Null);

    // Text mode states the reduced visibility too.
    let out = Command::new("runuser")
        .args(["-u", "occ-agent", "--"])
        .arg(&bin)
        .args(["ports", "--method", "proc"])
        .env("OCC_HOME", &home)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("Visibility: REDUCED") && text.contains("unknown owner"),
        "{text}"
    );
    drop(l);
}

#[test]
fn scan_lsof_and_proc_agree_on_a_live_socket() {
    if Command::new("lsof").arg("-v").output().is_err()
        && !Path::new("/usr/sbin/lsof").exists()
        && !Path::new("/usr/bin/lsof").exists()
    {
        occ_tests::skip("lsof is not installed (apt-get install lsof)");
        return;
    }
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let d = tempfile::tempdir().unwrap();
    let entry = |method: &str| {
        let out = run(
            &["sockets", "--json", "--listening", "--method", method],
            d.path(),
        );
        assert_eq!(
            out.status.code(),
            Some(0),
            "{method}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v = json(&out);
        assert_eq!(v["method"], method);
        v["sockets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["port"] == port)
            .unwrap_or_else(|| panic!("{method} did not list port {port}"))
            .clone()
    };
    let (a, b) = (entry("proc"), entry("lsof"));
    for key in [
        "address", "port", "protocol", "family", "pid", "comm", "path", "uid", "state", "socket",
        "fd",
    ] {
        assert_eq!(a[key], b[key], "{key}: proc {a} vs lsof {b}");
    }
    assert_eq!(a["pid"], std::process::id());
}

#[test]
fn scan_falls_back_to_lsof_without_proc_and_saves_reports_0600() {
    if Command::new("lsof").arg("-v").output().is_err() {
        occ_tests::skip("lsof is not installed (apt-get install lsof)");
        return;
    }
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let d = tempfile::tempdir().unwrap();
    // No /proc at the given root: the automatic method uses lsof and says so.
    let out = run(
        &[
            "ports",
            "--json",
            "--save",
            "--proc-root",
            "/nonexistent/proc",
        ],
        d.path(),
    );
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = json(&out);
    assert_eq!(v["tool"], "lsof");
    assert!(v["listening_services"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s["port"] == port && s["pid"] == std::process::id()));
    let saved = d.path().join("assessments/port-monitor-latest.json");
    assert_eq!(
        fs::metadata(&saved).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let on_disk: Value = serde_json::from_slice(&fs::read(&saved).unwrap()).unwrap();
    assert_eq!(on_disk["tool"], "lsof");
}
