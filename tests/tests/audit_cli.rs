//! `occ audit …` end to end: the built binary, a temporary OCC_HOME, real files.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

struct Home {
    dir: tempfile::TempDir,
}

impl Home {
    fn new() -> Home {
        Home {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    fn log(&self) -> PathBuf {
        self.dir.path().join("security/privileged-audit.jsonl")
    }

    fn occ(&self, args: &[&str]) -> Output {
        self.cmd(args).output().expect("run occ")
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(occ_tests::bin("occ"));
        c.args(args)
            .env("OCC_HOME", self.dir.path())
            .env("OCC_MODE", "user")
            .stdin(Stdio::null());
        c
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn ok(o: &Output) -> String {
    assert_eq!(
        o.status.code(),
        Some(0),
        "stdout: {}\nstderr: {}",
        text(&o.stdout),
        text(&o.stderr)
    );
    text(&o.stdout)
}

fn code(o: &Output) -> Option<i32> {
    assert!(!text(&o.stderr).contains("panicked"), "{}", text(&o.stderr));
    o.status.code()
}

fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&o.stdout)))
}

/// init, then `init --seal` appends a second (sealed) event; returns k_0.
fn two_events(h: &Home) -> String {
    ok(&h.occ(&["audit", "init"]));
    let key = ok(&h.occ(&["audit", "init", "--seal"])).trim().to_owned();
    assert_eq!(key.len(), 64, "{key}");
    assert!(key.bytes().all(|c| c.is_ascii_hexdigit()));
    key
}

#[test]
fn audit_init_verify_and_json_shape() {
    let h = Home::new();
    let out = ok(&h.occ(&["audit", "init"]));
    assert!(out.contains("initialised"), "{out}");
    assert!(ok(&h.occ(&["audit", "init"])).contains("already initialised"));
    let out = ok(&h.occ(&["audit", "verify"]));
    assert!(out.starts_with("intact: 1 event in 1 file"), "{out}");
    // The one file it read is named, as every file of a longer history is.
    assert!(
        out.lines()
            .any(|l| l.starts_with("  read ") && l.ends_with("/privileged-audit.jsonl")),
        "{out}"
    );

    let o = h.occ(&["audit", "verify", "--json"]);
    assert_eq!(code(&o), Some(0));
    let v = json(&o);
    assert_eq!(v["intact"], true);
    assert_eq!(v["events"], 1);
    assert_eq!(v["files"][0], h.log().display().to_string());
    assert_eq!(v["breaks"], serde_json::json!([]));
    assert!(v["first_timestamp"]
        .as_str()
        .is_some_and(|t| t.ends_with('Z')));
    assert_eq!(v["first_timestamp"], v["last_timestamp"]);

    let meta = std::fs::metadata(h.log()).expect("stat");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
}

#[test]
fn audit_verify_reports_tampering_with_exit_1() {
    let h = Home::new();
    two_events(&h);
    let log = std::fs::read_to_string(h.log()).expect("read");
    std::fs::write(
        h.log(),
        log.replacen("\"sealed\": true", "\"sealed\": 1", 1),
    )
    .expect("write");
    let o = h.occ(&["audit", "verify", "--json"]);
    assert_eq!(code(&o), Some(1));
    let v = json(&o);
    assert_eq!(v["intact"], false);
    let b = &v["breaks"][0];
    assert_eq!(b["reason"], "content_hash_mismatch");
    assert_eq!(b["line"], 2);
    assert_eq!(b["seq"], 1);
    assert_eq!(b["file"], h.log().display().to_string());

    let o = h.occ(&["audit", "verify"]);
    assert_eq!(code(&o), Some(1));
    let out = text(&o.stdout);
    assert!(out.contains(":2: seq 1: content_hash_mismatch"), "{out}");
    assert!(out.contains("BROKEN: 1 break"), "{out}");
}

#[test]
fn audit_verify_exit_2_for_missing_file_and_usage_errors() {
    let h = Home::new();
    let o = h.occ(&["audit", "verify"]);
    assert_eq!(code(&o), Some(2));
    let err = text(&o.stderr);
    assert!(
        err.contains("no such file") && err.contains("occ audit init"),
        "{err}"
    );

    ok(&h.occ(&["audit", "init"]));
    let o = h.occ(&["audit", "verify", "--key", "00", "--key-file", "/x"]);
    assert_eq!(code(&o), Some(2));
    let o = h.occ(&["audit", "verify", "--key", "nothex"]);
    assert_eq!(code(&o), Some(2));
    assert!(text(&o.stderr).contains("64 hex"), "{}", text(&o.stderr));
    let o = h.occ(&["audit", "verify", "--head", "/nonexistent/head.json"]);
    assert_eq!(code(&o), Some(2));
    let o = h.occ(&["audit", "show", "--since", "yesterday-ish"]);
    assert_eq!(code(&o), Some(2));
}

#[test]
fn audit_sealed_log_verifies_only_with_the_right_key() {
    let h = Home::new();
    let key = two_events(&h);
    ok(&h.occ(&["audit", "verify", "--key", &key]));
    let kf = h.dir.path().join("k0.hex");
    std::fs::write(&kf, format!("{key}\n")).expect("write key");
    ok(&h.occ(&["audit", "verify", "--key-file", kf.to_str().expect("utf8")]));
    let wrong = "11".repeat(32);
    let o = h.occ(&["audit", "verify", "--json", "--key", &wrong]);
    assert_eq!(code(&o), Some(1));
    assert_eq!(json(&o)["breaks"][0]["reason"], "seal_mismatch");
    // Sealing twice is refused.
    let o = h.occ(&["audit", "init", "--seal"]);
    assert_eq!(code(&o), Some(2));
    assert!(text(&o.stderr).contains("already"), "{}", text(&o.stderr));
}

fn archives(h: &Home) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(h.log().parent().expect("dir"))
        .expect("ls")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("privileged-audit-") && n.ends_with(".jsonl"))
        })
        .collect();
    v.sort();
    v
}

#[test]
fn audit_rotate_links_files_in_order() {
    let h = Home::new();
    ok(&h.occ(&["audit", "init"]));
    let out = ok(&h.occ(&["audit", "rotate"]));
    assert!(out.contains("continues at seq 1"), "{out}");
    let arch = archives(&h);
    assert_eq!(arch.len(), 1);
    ok(&h.occ(&["audit", "verify"]));
    let a = arch[0].to_str().expect("utf8");
    let l = h.log();
    let l = l.to_str().expect("utf8");
    assert!(ok(&h.occ(&["audit", "verify", a, l])).contains("2 events in 2 files"));
    let o = h.occ(&["audit", "verify", "--json", l, a]);
    assert_eq!(code(&o), Some(1));
    let reasons: Vec<String> = json(&o)["breaks"]
        .as_array()
        .expect("array")
        .iter()
        .map(|b| b["reason"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert!(
        reasons.contains(&"rotation_link_mismatch".to_owned()),
        "{reasons:?}"
    );
}

#[test]
fn audit_show_filters_and_json() {
    let h = Home::new();
    two_events(&h);
    let out = ok(&h.occ(&["audit", "show"]));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(lines[0].contains("log_initialized") && lines[0].contains("sealed=false"));
    // Aligned: the event type starts in the same column on every line.
    let col = |l: &str| l.find("log_initialized");
    assert_eq!(col(lines[0]), col(lines[1]));

    let out = ok(&h.occ(&["audit", "show", "--limit", "1"]));
    assert_eq!(out.lines().count(), 1);
    assert!(out.contains("sealed=true"), "{out}");

    let out = ok(&h.occ(&["audit", "show", "--json"]));
    assert_eq!(out, std::fs::read_to_string(h.log()).expect("read"));

    assert_eq!(
        ok(&h.occ(&["audit", "show", "--since", "1h"]))
            .lines()
            .count(),
        2
    );
    assert_eq!(
        ok(&h.occ(&["audit", "show", "--since", "2999-01-01T00:00:00Z"]))
            .lines()
            .count(),
        0
    );
    assert_eq!(
        ok(&h.occ(&["audit", "show", "--event-type", "command_run"]))
            .lines()
            .count(),
        0
    );
    assert_eq!(
        ok(&h.occ(&[
            "audit",
            "show",
            "--event-type",
            "log_initialized",
            "--session",
            "s1"
        ]))
        .lines()
        .count(),
        0
    );
}

#[test]
fn audit_tail_prints_last_and_follows_rotation() {
    let h = Home::new();
    two_events(&h);
    let out = ok(&h.occ(&["audit", "tail", "-n", "1", "--json"]));
    let last = std::fs::read_to_string(h.log()).expect("read");
    assert_eq!(out, last.lines().last().expect("line").to_owned() + "\n");

    let mut child = h
        .cmd(&["audit", "tail", "-f", "-n", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn tail -f");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    std::thread::sleep(Duration::from_millis(400));
    ok(&h.occ(&["audit", "rotate"]));
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen = false;
    while Instant::now() < deadline {
        if let Ok(l) = rx.recv_timeout(Duration::from_millis(200)) {
            if l.contains("log_rotated") {
                seen = true;
                break;
            }
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(seen, "tail -f did not show the rotation's genesis");
}

#[test]
fn audit_refuses_symlinked_log() {
    let h = Home::new();
    ok(&h.occ(&["audit", "init"]));
    let link = h.dir.path().join("link.jsonl");
    std::os::unix::fs::symlink(h.log(), &link).expect("symlink");
    let l = link.to_str().expect("utf8");
    for args in [
        vec!["audit", "verify", "--log", l],
        vec!["audit", "init", "--log", l],
        vec!["audit", "show", "--log", l],
    ] {
        let o = h.occ(&args);
        assert_eq!(code(&o), Some(2), "{args:?}");
        assert!(text(&o.stderr).contains("symlink"), "{}", text(&o.stderr));
    }
}

#[test]
fn audit_refuses_foreign_owned_log_needs_root() {
    if !occ_tests::is_root() {
        occ_tests::skip("needs root to chown the log to another user");
        return;
    }
    let h = Home::new();
    ok(&h.occ(&["audit", "init"]));
    std::os::unix::fs::chown(h.log(), Some(65534), None).expect("chown");
    let o = h.occ(&["audit", "rotate"]);
    assert_eq!(code(&o), Some(2));
    let err = text(&o.stderr);
    assert!(
        err.contains("owned by uid 65534") && err.contains("chown"),
        "{err}"
    );
    // Reading it is still allowed: verify checks content, not ownership.
    ok(&h.occ(&["audit", "verify"]));
}

#[test]
fn audit_garbage_and_missing_head_are_breaks_not_crashes() {
    let h = Home::new();
    ok(&h.occ(&["audit", "init"]));
    std::fs::remove_file(h.log().with_file_name("audit-head.json")).expect("rm head");
    let o = h.occ(&["audit", "verify", "--json"]);
    assert_eq!(code(&o), Some(1));
    assert_eq!(json(&o)["breaks"][0]["reason"], "behind_head_checkpoint");

    let g = h.dir.path().join("garbage.bin");
    let bytes: Vec<u8> = (0..100_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(&g, bytes).expect("write");
    let o = h.occ(&["audit", "verify", g.to_str().expect("utf8")]);
    assert_eq!(code(&o), Some(1));
    let o = h.occ(&["audit", "show", "--log", g.to_str().expect("utf8")]);
    assert_eq!(code(&o), Some(0));
}

#[test]
fn audit_init_and_rotate_speak_json() {
    let h = Home::new();
    let v = json(&h.occ(&["audit", "init", "--json"]));
    assert_eq!(v["initialised"], true);
    assert_eq!(v["seq"], 0);
    assert_eq!(v["chain_hash"].as_str().map(str::len), Some(64));
    let v = json(&h.occ(&["audit", "init", "--json"]));
    assert_eq!(v["initialised"], false);
    assert_eq!(v["events"], 1);
    let v = json(&h.occ(&["audit", "init", "--seal", "--json"]));
    let k0 = v["k0"].as_str().expect("k0").to_owned();
    assert_eq!(k0.len(), 64);
    let v = json(&h.occ(&["audit", "rotate", "--json"]));
    assert_eq!(v["genesis_seq"], 2);
    let archive = PathBuf::from(v["archive"].as_str().expect("archive"));
    assert!(archive.is_file());
    let o = h.occ(&[
        "audit",
        "verify",
        "--key",
        &k0,
        archive.to_str().unwrap(),
        h.log().to_str().unwrap(),
    ]);
    assert_eq!(code(&o), Some(0), "{}", text(&o.stdout));
}

/// The whole history: verify follows the rotation links back to the first file and names every
/// file it read; a tampered archive breaks it; rotate refuses a broken log unless --force, which
/// records rotated_broken_log; seals without a key are said to be unchecked.
#[test]
fn verify_reads_the_whole_history_and_rotate_refuses_a_broken_log() {
    let h = Home::new();
    let key = two_events(&h);
    let mut archives = Vec::new();
    for _ in 0..2 {
        let v = json(&h.occ(&["audit", "rotate", "--json"]));
        assert_eq!(v["was_broken"], false, "{v}");
        archives.push(PathBuf::from(v["archive"].as_str().expect("archive")));
        std::thread::sleep(Duration::from_millis(5));
    }
    let v = json(&h.occ(&["audit", "verify", "--json"]));
    assert_eq!(v["intact"], true, "{v}");
    let files: Vec<String> = v["files"]
        .as_array()
        .expect("files")
        .iter()
        .map(|f| f.as_str().expect("str").to_owned())
        .collect();
    let want: Vec<String> = archives
        .iter()
        .chain(std::iter::once(&h.log()))
        .map(|p| p.display().to_string())
        .collect();
    assert_eq!(files, want);
    assert_eq!(v["seals"], "not_checked", "{v}");
    let out = ok(&h.occ(&["audit", "verify"]));
    assert!(out.starts_with("intact: 4 events in 3 files"), "{out}");
    for f in &want {
        assert!(out.contains(&format!("  read {f}")), "{out}");
    }
    assert!(out.contains("seals: not checked (no --key)"), "{out}");
    let out = ok(&h.occ(&["audit", "verify", "--key", &key]));
    assert!(out.contains("seals: checked"), "{out}");

    // Tamper with the oldest archive: the current file alone still verifies, the history not.
    let old = std::fs::read_to_string(&archives[0]).expect("read");
    std::fs::write(
        &archives[0],
        old.replacen("\"sealed\": true", "\"sealed\": false", 1),
    )
    .expect("write");
    let only_current = h.log().display().to_string();
    assert_eq!(code(&h.occ(&["audit", "verify", &only_current])), Some(0));
    let o = h.occ(&["audit", "verify", "--json"]);
    assert_eq!(code(&o), Some(1));
    let v = json(&o);
    assert_eq!(
        v["breaks"][0]["file"],
        archives[0].display().to_string(),
        "{v}"
    );

    let o = h.occ(&["audit", "rotate"]);
    assert_eq!(code(&o), Some(1), "{}", text(&o.stdout));
    let err = text(&o.stderr);
    assert!(
        err.contains("not rotated") && err.contains("--force"),
        "{err}"
    );
    let v = json(&h.occ(&["audit", "rotate", "--force", "--json"]));
    assert_eq!(v["was_broken"], true, "{v}");
    let now = std::fs::read_to_string(h.log()).expect("read");
    let last: serde_json::Value =
        serde_json::from_str(now.lines().last().expect("a line")).expect("json");
    assert_eq!(last["event_type"], "rotated_broken_log", "{now}");
    assert_eq!(last["breaks"], 1);
    assert_eq!(last["first_break_reason"], "content_hash_mismatch");

    // A deleted archive is a break that names the missing file.
    std::fs::remove_file(&archives[0]).expect("rm");
    let o = h.occ(&["audit", "verify"]);
    assert_eq!(code(&o), Some(1));
    let name = archives[0]
        .file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned();
    assert!(text(&o.stdout).contains(&name), "{}", text(&o.stdout));
}

/// A log of a few requests, written with the real writer: two users, two targets, a policy
/// block, a grant and a run.
fn requests_log(h: &Home) {
    use occ_audit::Value;
    std::fs::create_dir_all(h.log().parent().expect("dir")).expect("mkdir");
    let mut w = occ_audit::Writer::open(h.log(), occ_audit::Options::default()).expect("log");
    let ev = |w: &mut occ_audit::Writer,
              et: &str,
              user: &str,
              runuser: &str,
              argv: &[&str],
              id: &str,
              extra: &[(&str, Value)]| {
        let mut f = std::collections::BTreeMap::new();
        f.insert("submituser".to_owned(), Value::from(user));
        f.insert("runuser".to_owned(), Value::from(runuser));
        f.insert("runargv".to_owned(), Value::from(argv.to_vec()));
        f.insert("request_id".to_owned(), Value::from(id));
        f.insert("session_id".to_owned(), Value::from("s-1"));
        f.insert("peer_pid".to_owned(), Value::Int(4242));
        for (k, v) in extra {
            f.insert((*k).to_owned(), v.clone());
        }
        w.append(et, f).expect("append");
    };
    let sys = ["/usr/bin/systemctl", "restart", "nginx web"];
    ev(
        &mut w,
        "approval_requested",
        "agent",
        "root",
        &sys,
        "aaaa1111",
        &[],
    );
    ev(
        &mut w,
        "approval_granted",
        "agent",
        "root",
        &sys,
        "aaaa1111",
        &[("grant_scope", Value::from("once"))],
    );
    ev(
        &mut w,
        "exec_finish",
        "agent",
        "root",
        &sys,
        "aaaa1111",
        &[("exit_value", Value::Int(0))],
    );
    ev(
        &mut w,
        "policy_block",
        "intruder",
        "root",
        &["/usr/bin/rm", "-rf", "/"],
        "bbbb2222",
        &[("reason_code", Value::from("policy_block"))],
    );
    ev(
        &mut w,
        "approval_requested",
        "agent",
        "www-data",
        &["/usr/bin/id"],
        "cccc3333",
        &[],
    );
}

fn lines_of(h: &Home, args: &[&str]) -> Vec<String> {
    let mut all = vec!["audit", "show", "--no-pager"];
    all.extend(args);
    ok(&h.occ(&all)).lines().map(str::to_owned).collect()
}

/// `occ audit show` like journalctl: short lines that lead with time, event, user → runuser
/// and the command; every filter; every output form; no colour off a terminal.
#[test]
fn audit_show_filters_like_journalctl() {
    let h = Home::new();
    requests_log(&h);
    let all = lines_of(&h, &[]);
    assert_eq!(all.len(), 5, "{all:?}");
    let first = &all[0];
    assert!(first.len() > 20 && first.as_bytes()[10] == b' ', "{first}");
    let after_time = &first[21..];
    assert!(
        after_time.starts_with("approval_requested")
            && after_time
                .contains("agent → root  /usr/bin/systemctl restart 'nginx web'  #aaaa1111"),
        "{first}"
    );
    assert!(
        !first.contains('\x1b'),
        "no colour off a terminal: {first:?}"
    );

    let count = |args: &[&str]| lines_of(&h, args).len();
    assert!(
        all[2].contains("exec_finish") && all[2].contains("  exit_value=0"),
        "{}",
        all[2]
    );
    assert_eq!(count(&["--user", "intruder"]), 1);
    assert_eq!(count(&["--runuser", "www-data"]), 1);
    assert_eq!(count(&["--id", "aaaa1111"]), 3);
    assert_eq!(count(&["--command", "systemctl"]), 3);
    assert_eq!(count(&["--command", "*nginx*"]), 3);
    assert_eq!(count(&["--command", "/usr/bin/rm *"]), 1);
    assert_eq!(count(&["--event-type", "approval_requested"]), 2);
    assert_eq!(count(&["--session", "s-1", "--user", "agent"]), 4);
    for (since, until, want) in [
        ("today", "tomorrow", 5),
        ("yesterday", "now", 5),
        ("-1h", "+1h", 5),
        ("10m", "+1m", 5),
        ("2000-01-01", "2000-01-02", 0),
        ("tomorrow", "+2days", 0),
    ] {
        assert_eq!(
            count(&["--since", since, "--until", until]),
            want,
            "{since}..{until}"
        );
    }
    let bad = h.occ(&["audit", "show", "--since", "someday"]);
    assert_eq!(code(&bad), Some(2));
    assert!(
        text(&bad.stderr).contains("--since \"someday\""),
        "{}",
        text(&bad.stderr)
    );

    let json = lines_of(&h, &["-o", "json", "--id", "bbbb2222"]);
    let stored = std::fs::read_to_string(h.log()).expect("read");
    assert_eq!(json, vec![stored.lines().nth(3).expect("4th").to_owned()]);
    let cat = lines_of(&h, &["-o", "cat", "--id", "cccc3333"]);
    assert_eq!(cat, vec!["/usr/bin/id".to_owned()]);
    let verbose = ok(&h.occ(&["audit", "show", "-o", "verbose", "--id", "bbbb2222"]));
    assert!(verbose.starts_with("seq 3  "), "{verbose}");
    assert!(verbose.contains("\n    chain_hash="), "{verbose}");
    assert!(
        verbose.contains("\n    reason_code=policy_block"),
        "{verbose}"
    );

    let stats = ok(&h.occ(&["audit", "stats", "--json"]));
    let v: serde_json::Value = serde_json::from_str(&stats).expect("json");
    assert_eq!(v["events"], 5);
    assert_eq!(v["by_user"]["agent"], 4);
    assert_eq!(v["by_user"]["intruder"], 1);
    assert_eq!(v["by_outcome"]["approved"], 1);
    assert_eq!(v["by_outcome"]["refused"], 1);
    assert_eq!(v["by_outcome"]["ran"], 1);
    assert_eq!(v["by_event_type"]["approval_requested"], 2);
    let empty = ok(&h.occ(&["audit", "stats", "--json", "--until", "2000-01-01"]));
    assert!(empty.contains("\"events\":0"), "{empty}");
    let text_stats = ok(&h.occ(&["audit", "stats"]));
    assert!(text_stats.starts_with("5 events, "), "{text_stats}");
    assert!(text_stats.contains("by outcome:\n"), "{text_stats}");
}

/// On a terminal (script(1) gives it one): colour, and the pager `$PAGER`; `NO_COLOR` and
/// `--no-pager` are honoured.
#[test]
fn audit_show_colours_and_pages_on_a_terminal_only() {
    if !std::path::Path::new("/usr/bin/script").is_file() {
        occ_tests::skip("needs script(1) from util-linux");
        return;
    }
    let h = Home::new();
    requests_log(&h);
    let mark = h.dir.path().join("pager-ran");
    let on_tty = |extra_env: &str, args: &str| {
        let line = format!(
            "{extra_env} PAGER='sh -c \"touch {mark}; cat\"' {occ} audit show --log {log} {args}",
            mark = mark.display(),
            occ = occ_tests::bin("occ").display(),
            log = h.log().display(),
        );
        let out = Command::new("/usr/bin/script")
            .args(["-q", "-e", "-c", &line, "/dev/null"])
            .env_remove("NO_COLOR")
            .env("TERM", "xterm")
            .stdin(Stdio::null())
            .output()
            .expect("script");
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        text(&out.stdout)
    };
    let shown = on_tty("", "");
    assert!(shown.contains("\x1b[31mpolicy_block"), "{shown:?}");
    assert!(mark.exists(), "the pager ran");
    std::fs::remove_file(&mark).expect("rm");
    let plain = on_tty("NO_COLOR=1", "--no-pager");
    assert!(!plain.contains('\x1b'), "{plain:?}");
    assert!(plain.contains("policy_block"), "{plain:?}");
    assert!(!mark.exists(), "--no-pager writes to the terminal itself");
}
