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
    assert!(ok(&h.occ(&["audit", "verify"])).starts_with("intact: 1 event in 1 file"));

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
