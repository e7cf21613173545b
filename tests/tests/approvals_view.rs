//! The approver's view end to end (issue 12, item 6): `occ approvals` and `--json` show every
//! part of the grant, and a list of any length reaches the approver (10,000 pending requests,
//! or 200 with a thousand arguments each, are far past one frame).
//!
//! User mode, as the agent user; needs what `approval.rs` needs.

use std::collections::HashSet;
use std::process::Output;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::approval::{pending_id, ready, text, AgentHome};

/// Puts `occ-sock-probe` in the agent's home, for [`file_requests`].
fn install_probe(h: &AgentHome) {
    occ_tests::copy_exe(
        occ_tests::bin("occ-sock-probe"),
        h.home.join("bin/occ-sock-probe"),
    );
    h.chown_all();
}

/// `occ-sock-probe file …` as the agent: files `n` distinct requests of `args` extra arguments
/// straight onto the broker's socket; returns its JSON summary.
fn file_requests(h: &AgentHome, n: u64, args: u64, tag: &str) -> Value {
    let probe = h.home.join("bin/occ-sock-probe");
    let out = h
        .cmd(&probe)
        .args(["file"])
        .arg(h.home.join("run/broker.sock"))
        .args([n.to_string(), args.to_string(), tag.to_string()])
        .output()
        .unwrap();
    assert!(out.status.success(), "probe: {}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out.stdout)))
}

/// `occ ARGS` as the agent, with how long it took.
fn timed(h: &AgentHome, args: &[&str]) -> (Output, Duration) {
    let t = Instant::now();
    let out = h.occ(args);
    (out, t.elapsed())
}

/// A broker configuration that lets one uid hold many pending requests and does not fsync
/// before every answer (the list, not the disk, is under test).
const MANY_PENDING: &str = r#"{"version": 1, "limits": {"pending_per_uid": 20000},
    "audit": {"fsync": "batch"}}"#;

#[test]
fn approvals_show_group_home_groups_chdir_assignments_and_preserved_env() {
    let Some(ids) = ready() else { return };
    let h = AgentHome::new(ids);
    h.write_security(
        "broker.json",
        r#"{"version": 1, "allow_preserve_env": ["OPENCLAW_TARGET"]}"#,
    );
    let id = pending_id(&h.sudo(
        &[
            "-n",
            "-g",
            "root",
            "-H",
            "-P",
            "-D",
            "/tmp",
            "--preserve-env=OPENCLAW_TARGET",
            "A=1 B=2",
            "/usr/bin/id",
        ],
        &[("OPENCLAW_TARGET", "blue")],
    ));
    let all = h.pending();
    assert_eq!(all.len(), 1);
    let p = &all[0];
    assert_eq!(p["id"], id.as_str());
    assert_eq!(
        p["runuser"], "occ-agent",
        "-g alone keeps the caller as user"
    );
    assert_eq!(p["rungroup"], "root");
    assert_eq!(p["set_home"], true);
    assert_eq!(p["preserve_groups"], true);
    assert_eq!(p["chdir"], "/tmp");
    assert_eq!(p["runcwd"], "/tmp");
    assert_eq!(p["env"], serde_json::json!({"A": "1 B=2"}));
    assert_eq!(
        p["preserved_env"],
        serde_json::json!({"OPENCLAW_TARGET": "blue"})
    );
    for key in ["flags", "wraps", "requester_writable"] {
        assert!(p[key].is_array(), "{key} in {p}");
    }
    for key in [
        "age_seconds",
        "expires_at",
        "submituser",
        "peer_pid",
        "session_id",
        "command",
        "reason",
        "untrusted",
        "runs_arbitrary_code",
        "kept_env",
    ] {
        assert!(p.get(key).is_some(), "{key} missing from {p}");
    }

    let out = h.occ(&["approvals"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let shown = text(&out.stdout);
    let lines: Vec<&str> = shown.lines().collect();
    assert!(
        lines[0].starts_with(&format!("#{id}  occ-agent → occ-agent:root  age ")),
        "{shown}"
    );
    for want in [
        "    command: [\"/usr/bin/id\"]",
        "    cwd: /tmp",
        "    chdir (-D): /tmp",
        "    home (-H): HOME is set to occ-agent's home directory",
        "    groups (-P): the requester's supplementary groups are kept",
        "    env: A=1 B=2",
        "    preserved env (-E): OPENCLAW_TARGET=blue",
    ] {
        assert!(lines.contains(&want), "{want:?} missing from:\n{shown}");
    }
}

/// A wrapped command: the approver sees what really runs, level by level, and the wrapper's
/// deny-rule check reaches the wrapped command through the real shim and broker.
#[test]
fn the_approver_sees_what_a_wrapper_runs_and_denials_reach_inside() {
    let Some(ids) = ready() else { return };
    let h = AgentHome::new(ids);
    h.write_security(
        "command-policy.json",
        r#"{"version": 2, "deny": ["rm (-r|-R|--recursive) /*"]}"#,
    );
    pending_id(&h.sudo(&["-n", "nice", "-n", "5", "env", "-i", "id", "-u"], &[]));
    let all = h.pending();
    assert_eq!(all.len(), 1);
    let wraps = &all[0]["wraps"];
    assert_eq!(
        wraps[0].as_array().map(|a| a[1..].to_vec()),
        Some(vec![Value::from("-i"), "id".into(), "-u".into()]),
        "{wraps}"
    );
    assert!(
        wraps[0][0].as_str().is_some_and(|s| s.ends_with("/env")),
        "{wraps}"
    );
    assert!(
        wraps[1][0].as_str().is_some_and(|s| s.ends_with("/id")) && wraps[1][1] == "-u",
        "{wraps}"
    );
    let shown = text(&h.occ(&["approvals"]).stdout);
    let id_path = wraps[1][0].as_str().unwrap_or_default();
    assert!(
        shown.contains(&format!("    wraps, really runs: [\"{id_path}\", \"-u\"]")),
        "{shown}"
    );
    // The deny rule holds through wrappers and every spelling, and nothing is filed.
    for line in [
        &["-n", "setarch", "x86_64", "/bin/rm", "-r", "-f", "/"][..],
        &["-n", "env", "rm", "--recursive", "--force", "/"],
        &[
            "-n",
            "/usr/bin/ld.so",
            "/usr/bin/rm",
            "-rf",
            "--no-preserve-root",
            "/",
        ],
    ] {
        let out = h.sudo(line, &[]);
        assert_eq!(out.status.code(), Some(1));
        let err = text(&out.stderr);
        assert!(err.contains("(occ: policy_block)"), "{line:?}: {err}");
    }
    assert_eq!(h.pending().len(), 1, "refused requests are never filed");
}

#[test]
fn a_spoofing_argument_is_escaped_and_marked_in_the_list() {
    let Some(ids) = ready() else { return };
    let h = AgentHome::new(ids);
    // A Cyrillic "а" in "pаsswd", a tag character and a Hangul filler.
    let arg = "/etc/p\u{430}sswd\u{e0041}\u{3164}";
    pending_id(&h.sudo(&["-n", "/usr/bin/cat", arg], &[]));
    let shown = text(&h.occ(&["approvals"]).stdout);
    assert!(
        shown.contains("    command: [\"/usr/bin/cat\", \"/etc/p\u{430}sswd⚠mixed-script\\u{e0041}\\u{3164}\"]"),
        "{shown}"
    );
    assert!(
        shown.contains("\n    note: ⚠mixed-script follows a word"),
        "{shown}"
    );
    assert!(!shown.contains('\u{e0041}') && !shown.contains('\u{3164}'));
}

#[test]
fn ten_thousand_pending_requests_list_in_full() {
    let Some(ids) = ready() else { return };
    let h = AgentHome::new(ids);
    h.write_security("broker.json", MANY_PENDING);
    // The first through the real shim starts the broker; the rest straight onto its socket.
    let first = pending_id(&h.sudo(&["-n", "/usr/bin/true"], &[]));
    install_probe(&h);
    let t = Instant::now();
    // Two filers at once, one per core.
    let filers: Vec<Value> = std::thread::scope(|s| {
        let running: Vec<_> = ["a", "b"]
            .into_iter()
            .map(|tag| s.spawn(|| file_requests(&h, 5_000, 0, tag)))
            .collect();
        running.into_iter().map(|r| r.join().unwrap()).collect()
    });
    for f in &filers {
        assert_eq!(f["pending"], 5_000, "{f}");
        assert_eq!(f["unique"], 5_000, "{f}");
    }
    eprintln!("filed 10,000 in {:?}", t.elapsed());

    let (out, took) = timed(&h, &["approvals", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let all: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(all.len(), 10_001);
    let unique: HashSet<&str> = all.iter().filter_map(|p| p["id"].as_str()).collect();
    assert_eq!(unique.len(), 10_001, "ids are unique");
    assert!(unique.contains(first.as_str()));
    assert!(took < Duration::from_secs(60), "--json took {took:?}");
    eprintln!(
        "occ approvals --json: {} bytes in {took:?}",
        out.stdout.len()
    );

    let (out, took) = timed(&h, &["approvals"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let shown = text(&out.stdout);
    let headers: HashSet<&str> = shown
        .lines()
        .filter_map(|l| l.strip_prefix('#'))
        .filter_map(|l| l.split("  ").next())
        .collect();
    assert_eq!(headers, unique, "the text lists every id once");
    assert_eq!(shown.lines().filter(|l| l.starts_with('#')).count(), 10_001);
    assert!(took < Duration::from_secs(60), "text took {took:?}");
}

#[test]
fn two_hundred_pending_requests_of_a_thousand_arguments_list_in_full() {
    let Some(ids) = ready() else { return };
    let h = AgentHome::new(ids);
    h.write_security("broker.json", MANY_PENDING);
    pending_id(&h.sudo(&["-n", "/usr/bin/true"], &[]));
    install_probe(&h);
    let f = file_requests(&h, 200, 1_000, "big");
    assert_eq!(f["pending"], 200, "{f}");

    let out = h.occ(&["approvals", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(out.stdout.len() > 1 << 20, "past one frame's worth");
    let all: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(all.len(), 201);
    let big: Vec<&Value> = all
        .iter()
        .filter(|p| p["command"].as_array().is_some_and(|c| c.len() == 1_002))
        .collect();
    assert_eq!(big.len(), 200);
    assert!(big
        .iter()
        .all(|p| p["command"][1_001] == "arg999" && p["command"][0] == "/usr/bin/true"));

    let out = h.occ(&["approvals"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let shown = text(&out.stdout);
    assert_eq!(shown.lines().filter(|l| l.starts_with('#')).count(), 201);
    assert_eq!(shown.matches(", \"arg999\"]").count(), 200);
}
