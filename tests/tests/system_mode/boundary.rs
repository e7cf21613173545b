//! The boundary between the agent and the root broker: the agent never decides its own
//! request, cannot touch the broker's files, and a user who is not a requester gets nothing.

use serde_json::{json, Value};

use super::world::{self, agent_tries, events_of, refused, World};
use crate::approval::{pending_id, text};

/// Even an agent that an admin also listed as an approver never decides its own request:
/// `self_approval_refused`, audited, without a token and with the right one.
#[test]
fn system_agent_cannot_approve_its_own_request_even_with_the_token() {
    let Some(w) = World::started_with(&[], |b| {
        b["approvers"] = json!([world::APPROVER, world::AGENT]);
    }) else {
        return;
    };
    let req = ["-n", "/usr/bin/id", "-u"];
    let id = pending_id(&w.sudo(&w.agent, &req, &[]));

    let out = w.occ(&w.agent, &["approve", "--yes", &id]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("self_approval_refused"),
        "{}",
        text(&out.stderr)
    );

    let set = w.occ_root(&["token", "set", "--generate", "--json"]);
    assert!(set.status.success(), "{}", text(&set.stderr));
    let token = serde_json::from_slice::<Value>(&set.stdout).unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(w.status()["token_required"], true);
    let out = w.occ_with_stdin(&w.agent, &["approve", "--yes", &id], &format!("{token}\n"));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("self_approval_refused"),
        "{}",
        text(&out.stderr)
    );
    let out = w.occ_with_stdin(
        &w.agent,
        &["approve", "--yes", &id, "--session"],
        &format!("{token}\n"),
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));

    let refusals = events_of("self_approval_refused");
    assert_eq!(
        refusals.len(),
        3,
        "every attempt is on record: {refusals:?}"
    );
    for r in &refusals {
        assert_eq!(r["request_id"], json!(id), "{r}");
        assert_eq!(r["approver_uid"], json!(w.agent.uid), "{r}");
    }
    assert!(events_of("approval_granted").is_empty());
    assert_eq!(
        pending_id(&w.sudo(&w.agent, &req, &[])),
        id,
        "still pending, not run"
    );

    // The real approver, with the token, can.
    let out = w.occ_with_stdin(
        &w.approver,
        &["approve", "--yes", &id],
        &format!("{token}\n"),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&w.sudo(&w.agent, &req, &[]).stdout), "0\n");
    let set = events_of("token_set");
    assert_eq!(set.len(), 1);
    assert_eq!(set[0]["approver_uid"], 0, "root set it");
    w.verify_intact(&[]);
}

/// The config (with the token's hash), the state (pending requests and grants), the audit log,
/// its head and its seal key are root's alone: the agent can neither read nor write them, nor
/// list their directories.
#[test]
fn system_agent_cannot_read_or_write_config_state_audit_log_or_seal_key() {
    let Some(mut w) = World::new(&[]) else { return };
    // A sealed log, as an admin who wants forward-secure sealing sets it up.
    std::fs::create_dir_all(world::LOG_DIR).unwrap();
    let init = w.occ_root(&[
        "audit",
        "init",
        "--seal",
        "--json",
        "--log",
        world::AUDIT_LOG,
    ]);
    assert!(init.status.success(), "{}", text(&init.stderr));
    let k0 = serde_json::from_slice::<Value>(&init.stdout).unwrap()["k0"]
        .as_str()
        .unwrap()
        .to_string();
    let mut b = world::default_broker_json();
    b["audit"] = json!({"seal": true});
    w.write_broker_json(&b);
    w.start();
    assert!(w.occ_root(&["token", "set", "--generate"]).status.success());
    pending_id(&w.sudo(&w.agent, &["-n", "/usr/bin/true"], &[]));

    let log_dir = std::path::Path::new(world::LOG_DIR);
    let files = [
        world::BROKER_JSON.to_string(),
        "/etc/occ/command-policy.json".to_string(),
        world::STATE_FILE.to_string(),
        world::AUDIT_LOG.to_string(),
        log_dir.join("audit-head.json").display().to_string(),
        log_dir.join("audit-seal.key").display().to_string(),
    ];
    for f in &files {
        use std::os::unix::fs::MetadataExt;
        let md = std::fs::metadata(f).unwrap_or_else(|e| panic!("{f}: {e}"));
        assert_eq!(md.uid(), 0, "{f}");
        assert_eq!(md.mode() & 0o077, 0, "{f}: {:o}", md.mode());
        let (ok, err) = agent_tries(&w, "/bin/cat", &[f]);
        assert!(!ok && err.contains("Permission denied"), "read {f}: {err}");
        let (ok, err) = agent_tries(&w, "/bin/sh", &["-c", &format!(": >> {f}")]);
        assert!(!ok && err.contains("Permission denied"), "write {f}: {err}");
    }
    for d in [world::CONFIG_DIR, world::STATE_DIR, world::LOG_DIR] {
        use std::os::unix::fs::MetadataExt;
        let md = std::fs::metadata(d).unwrap();
        assert_eq!((md.uid(), md.mode() & 0o7777), (0, 0o700), "{d}");
        let (ok, err) = agent_tries(&w, "/bin/ls", &[d]);
        assert!(!ok && err.contains("Permission denied"), "list {d}: {err}");
    }
    w.verify_intact(&["--key", &k0]);
    // The seals are checked: another key breaks them.
    let wrong: String = k0.chars().rev().collect();
    let out = w.occ_root(&[
        "audit",
        "verify",
        "--json",
        "--log",
        world::AUDIT_LOG,
        "--key",
        &wrong,
    ]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["intact"], false, "{v}");
    assert_eq!(v["breaks"][0]["reason"], "seal_mismatch", "{v}");
}

/// A user not in `requesters` gets `not_a_requester` and nothing is filed; the refusal is
/// audited once a minute per uid.
#[test]
fn system_user_not_in_requesters_is_refused_and_audited_at_a_bounded_rate() {
    let Some(w) = World::started(&[]) else { return };
    for _ in 0..3 {
        refused(
            &w.sudo(&w.target, &["-n", "/usr/bin/id", "-u"], &[]),
            "not_a_requester",
        );
    }
    assert!(w.approvals().is_empty());
    let blocks: Vec<Value> = events_of("policy_block")
        .into_iter()
        .filter(|e| e["reason_code"] == "not_a_requester")
        .collect();
    assert_eq!(blocks.len(), 1, "{blocks:?}");
    assert_eq!(blocks[0]["peer_uid"], json!(w.target.uid));
    assert_eq!(blocks[0]["suppressed"], 0);
    assert!(events_of("request_received").is_empty());
}

/// System mode installed (/etc/occ exists) with its broker down: the shim refuses with
/// `broker_unavailable` and never starts a broker of its own, not even with an `occ` beside it,
/// as a user-mode shim would.
#[test]
fn system_shim_with_the_system_broker_down_refuses_and_starts_no_broker() {
    let Some(w) = World::new(&[]) else { return };
    let occ = w.agent.bin().join("occ");
    occ_tests::copy_exe(occ_tests::bin("occ"), &occ);
    std::os::unix::fs::chown(&occ, Some(w.agent.uid), Some(w.agent.gid)).unwrap();
    let out = w.sudo(&w.agent, &["-n", "/usr/bin/id", "-u"], &[]);
    refused(&out, "broker_unavailable");
    let run = w.agent.home.join(".openclaw/run");
    assert!(
        !run.exists(),
        "the shim started a broker of its own in {}",
        run.display()
    );
    assert!(!std::path::Path::new(world::REQUEST_SOCKET).exists());
}

/// An approver must run the `occ` root installed: a copy the approver can change is refused,
/// whoever runs it, and approves nothing.
#[test]
fn system_approver_running_an_occ_copy_it_can_change_is_refused() {
    let Some(w) = World::started(&[]) else { return };
    let id = pending_id(&w.sudo(&w.agent, &["-n", "/usr/bin/id", "-u"], &[]));
    let copy = w.approver.home.join("occ-copy");
    occ_tests::copy_exe(occ_tests::bin("occ"), &copy);
    std::os::unix::fs::chown(&copy, Some(w.approver.uid), Some(w.approver.gid)).unwrap();
    let out = w
        .as_user(&w.approver, &copy)
        .args(["approve", "--yes", &id])
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&copy);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    let err = text(&out.stderr);
    assert!(
        err.contains("which someone other than root can change")
            && err.contains("approve with the root-installed occ"),
        "{err}"
    );
    assert_eq!(w.approvals().len(), 1, "still pending");
    // The installed one works.
    w.approve(&id, &[]);
}

/// Only root sets or clears the approval token in system mode, and both are audited.
#[test]
fn system_root_sets_and_clears_the_token_and_both_are_audited() {
    let Some(w) = World::started(&[]) else { return };
    let set = w.occ_root(&["token", "set", "--generate", "--json"]);
    assert!(set.status.success(), "{}", text(&set.stderr));
    let token = serde_json::from_slice::<Value>(&set.stdout).unwrap()["token"]
        .as_str()
        .expect("the generated token, printed once")
        .to_string();
    assert_eq!(events_of("token_set").len(), 1);
    // Clearing it wants the current one, root or not.
    let mut clear = std::process::Command::new(occ_tests::bin("occ"));
    clear
        .args(["token", "clear"])
        .env_clear()
        .env("HOME", "/root")
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .current_dir("/")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = clear.spawn().unwrap();
    {
        use std::io::Write as _;
        let mut stdin = child.stdin.take().unwrap();
        writeln!(stdin, "{token}").unwrap();
    }
    let cleared = child.wait_with_output().unwrap();
    assert!(cleared.status.success(), "{}", text(&cleared.stderr));
    let ev = events_of("token_cleared");
    assert_eq!(ev.len(), 1, "{ev:?}");
    assert_eq!(ev[0]["approver_uid"], 0, "{}", ev[0]);
    // The approver cannot clear it (there is nothing to clear now; setting is refused too).
    let by_approver = w.occ(&w.approver, &["token", "set", "--generate"]);
    assert_ne!(
        by_approver.status.code(),
        Some(0),
        "{}",
        text(&by_approver.stdout)
    );
    assert_eq!(events_of("token_set").len(), 1, "nothing more was set");
}

/// `occ status` says which broker answered: the system one, in text and JSON.
#[test]
fn system_occ_status_says_system_mode() {
    let Some(w) = World::started(&[]) else { return };
    let out = w.occ(&w.approver, &["status"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("system mode"),
        "{}",
        text(&out.stdout)
    );
    let out = w.occ(&w.approver, &["status", "--json"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["mode"], "system", "{v}");
}
