//! The system broker's life: a clean stop, a crash mid-run and the restart after it, answering
//! only once its state is back, and reloading its configuration on SIGHUP.

use std::process::Stdio;

use serde_json::{json, Value};

use super::world::{self, events_of, refused, wait_count, wait_event, KillOnDrop, World};
use crate::approval::{pending_id, text};

/// SIGTERM stops the system broker at once and cleanly, although it serves two sockets (each
/// accept loop must see the one shutdown wake-up): exit 0, `broker_stopped`, sockets gone.
#[test]
fn system_sigterm_stops_the_broker_serving_both_sockets() {
    let Some(mut w) = World::started(&[]) else {
        return;
    };
    let pid = w.broker_pid();
    let begun = std::time::Instant::now();
    w.stop();
    assert!(
        begun.elapsed() < std::time::Duration::from_secs(5),
        "took {:?}",
        begun.elapsed()
    );
    let stopped = events_of("broker_stopped");
    assert_eq!(stopped.len(), 1, "{stopped:?}");
    assert_eq!(stopped[0]["pid"], json!(pid));
    for sock in [world::REQUEST_SOCKET, world::ADMIN_SOCKET] {
        assert!(!std::path::Path::new(sock).exists(), "{sock} removed");
    }
    w.verify_intact(&[]);
}

/// A crash (SIGKILL) while an approved command runs loses nothing: after a restart the log
/// verifies, `exec_outcome_unknown` names the run's pid as still running, a request pending
/// before the crash can still be approved, and an unused `--session` grant still covers its
/// command.
#[test]
fn system_broker_crash_keeps_log_pending_requests_and_grants_and_names_the_orphaned_run() {
    let Some(mut w) = World::started(&[]) else {
        return;
    };
    let session = [("OPENCLAW_TASK_SESSION_ID", "task-42")];
    let id_u = ["-n", "/usr/bin/id", "-u"];
    let granted = pending_id(&w.sudo(&w.agent, &id_u, &session));
    w.approve(&granted, &["--session"]);
    let waiting = pending_id(&w.sudo(&w.agent, &["-n", "/usr/bin/true"], &[]));
    let sleep = ["-n", "/usr/bin/sleep", "30"];
    let id = pending_id(&w.sudo(&w.agent, &sleep, &[]));
    w.approve(&id, &[]);
    // The shim's stderr is a file: the orphaned command keeps the descriptor open, and a pipe
    // would not end before it does.
    let stderr = tempfile::NamedTempFile::new().unwrap();
    let mut shim = w
        .as_user(&w.agent, w.agent.shim())
        .args(sleep)
        .stdout(Stdio::null())
        .stderr(stderr.reopen().unwrap())
        .spawn()
        .unwrap();
    let start = wait_event("exec_start for sleep", |e| {
        e["event_type"] == "exec_start" && e["request_id"] == json!(id)
    });
    let pid = start["pid"].as_i64().unwrap();
    let _orphan = KillOnDrop(pid);
    world::wait_for("the command to run", || {
        std::fs::read(format!("/proc/{pid}/cmdline"))
            .ok()
            .as_deref()
            == Some(b"/usr/bin/sleep\x0030\x00".as_slice())
    });

    w.crash();
    let out = std::process::Output {
        status: shim.wait().unwrap(),
        stdout: Vec::new(),
        stderr: std::fs::read(stderr.path()).unwrap(),
    };
    refused(&out, "broker_unavailable");
    assert!(
        std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "the command outlived it"
    );

    w.start();
    let unknown = wait_event("exec_outcome_unknown for the orphaned run", |e| {
        e["event_type"] == "exec_outcome_unknown" && e["run_id"] == start["run_id"]
    });
    assert_eq!(unknown["pid"], json!(pid), "{unknown}");
    assert_eq!(unknown["still_running"], true, "{unknown}");
    assert_eq!(unknown["request_id"], json!(id), "{unknown}");
    let v = w.verify_intact(&[]);
    let recovered = events_of("log_recovered").len();
    assert!(recovered <= 1, "at most a torn tail was recovered: {v}");

    let pending: Vec<Value> = w.approvals().iter().map(|p| p["id"].clone()).collect();
    assert_eq!(
        pending,
        [json!(waiting)],
        "the pending request survived the crash"
    );
    w.approve(&waiting, &[]);
    let ran = w.sudo(&w.agent, &["-n", "/usr/bin/true"], &[]);
    assert_eq!(ran.status.code(), Some(0), "{}", text(&ran.stderr));
    for _ in 0..2 {
        let ran = w.sudo(&w.agent, &id_u, &session);
        assert_eq!(
            text(&ran.stdout),
            "0\n",
            "the session grant: {}",
            text(&ran.stderr)
        );
    }
    w.verify_intact(&[]);
}

/// The admin socket answers only once the broker has restored its state: an approver who asks
/// the moment the broker is up sees the pending requests it restored, never an empty queue. (A
/// long-lived broker's state is large: every id it ever issued is kept, so ids are never
/// reused; restoring it takes a moment.)
#[test]
fn system_broker_answers_approvers_only_once_its_state_is_restored() {
    let Some(mut w) = World::started(&[]) else {
        return;
    };
    let id = pending_id(&w.sudo(&w.agent, &["-n", "/usr/bin/true"], &[]));
    w.stop();
    let mut state: Value =
        serde_json::from_str(&std::fs::read_to_string(world::STATE_FILE).unwrap()).unwrap();
    let issued = state["issued"].as_array_mut().unwrap();
    issued.extend((0..300_000u32).map(|n| json!(format!("{n:08x}"))));
    world::write_root_file(
        std::path::Path::new(world::STATE_FILE),
        &serde_json::to_vec(&state).unwrap(),
        0o600,
    );
    // Ask as early as the socket takes connections: the first answer is the one that counts.
    w.spawn_broker();
    let list = loop {
        if let Ok((ok, list)) = world::admin_call(&json!({"op": "approvals"})) {
            assert!(ok, "{list}");
            break list;
        }
        w.assert_broker_runs();
    };
    let ids: Vec<Value> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].clone())
        .collect();
    assert_eq!(
        ids,
        [json!(id)],
        "the first answer already has the restored request"
    );
}

/// SIGHUP reloads /etc/occ. A broken broker.json (not JSON, an unknown key, writable by
/// others) is `config_reload_failed` with its sha256 and the old configuration keeps working;
/// a fixed one is `config_loaded` with the new sha256, and takes effect.
#[test]
fn system_sighup_with_a_broken_config_keeps_the_old_one_and_a_fixed_one_loads() {
    let Some(w) = World::started(&[]) else { return };
    let broker_json = std::path::Path::new(world::BROKER_JSON);
    let loaded = wait_count("config_loaded", 1);
    assert_eq!(
        loaded[0]["broker_sha256"],
        json!(world::sha256_of(broker_json))
    );
    for f in ["command_policy_sha256", "prompt_policy_sha256"] {
        assert_eq!(
            loaded[0][f].as_str().map(str::len),
            Some(64),
            "{f}: {}",
            loaded[0]
        );
    }

    // Each broken file would drop the agent from requesters, if it were loaded.
    let mut without_agent = world::default_broker_json();
    without_agent["requesters"] = json!([world::OTHER]);
    let unknown_key = json!({"requesters": [world::OTHER], "requestors": [world::AGENT]});
    let broken: &[(&str, String, u32)] = &[
        ("not JSON", r#"{"requesters": ["#.to_string(), 0o600),
        ("an unknown key", unknown_key.to_string(), 0o600),
        ("writable by others", without_agent.to_string(), 0o666),
    ];
    for (n, (what, body, mode)) in broken.iter().enumerate() {
        world::write_root_file(broker_json, body.as_bytes(), *mode);
        w.hup();
        let failed = wait_count("config_reload_failed", n + 1);
        let f = &failed[n];
        assert_eq!(f["kept_previous"], true, "{what}: {f}");
        assert_eq!(
            f["broker_sha256"],
            json!(world::sha256_of(broker_json)),
            "{what}"
        );
        assert!(!f["errors"].as_array().unwrap().is_empty(), "{what}: {f}");
        let out = w.sudo(&w.agent, &["-n", "/usr/bin/true"], &[]);
        pending_id(&out);
    }
    assert_eq!(events_of("config_loaded").len(), 1);

    world::write_root_file(broker_json, without_agent.to_string().as_bytes(), 0o600);
    w.hup();
    let loaded = wait_count("config_loaded", 2);
    assert_eq!(
        loaded[1]["broker_sha256"],
        json!(world::sha256_of(broker_json))
    );
    assert_ne!(loaded[1]["broker_sha256"], loaded[0]["broker_sha256"]);
    refused(
        &w.sudo(&w.agent, &["-n", "/usr/bin/true"], &[]),
        "not_a_requester",
    );
    pending_id(&w.sudo(&w.other, &["-n", "/usr/bin/true"], &[]));
    w.verify_intact(&[]);
}

/// A clean stop (SIGTERM) while an approved command runs: the command goes on (the broker does
/// not kill what a human approved), the shim is told `broker_stopping`, and the next start
/// records the run `exec_outcome_unknown`, still running.
#[test]
fn system_clean_stop_mid_run_tells_the_shim_and_the_next_start_names_the_run() {
    let Some(mut w) = World::started(&[]) else {
        return;
    };
    let sleep = ["-n", "/usr/bin/sleep", "30"];
    let id = pending_id(&w.sudo(&w.agent, &sleep, &[]));
    w.approve(&id, &[]);
    let stderr = tempfile::NamedTempFile::new().unwrap();
    let mut shim = w
        .as_user(&w.agent, w.agent.shim())
        .args(sleep)
        .stdout(Stdio::null())
        .stderr(stderr.reopen().unwrap())
        .spawn()
        .unwrap();
    let start = wait_event("exec_start for sleep", |e| {
        e["event_type"] == "exec_start" && e["request_id"] == json!(id)
    });
    let pid = start["pid"].as_i64().unwrap();
    let _command = KillOnDrop(pid);
    world::wait_for("the command to run", || {
        std::fs::read(format!("/proc/{pid}/cmdline"))
            .ok()
            .as_deref()
            == Some(b"/usr/bin/sleep\x0030\x00".as_slice())
    });

    w.stop();
    let out = std::process::Output {
        status: shim.wait().unwrap(),
        stdout: Vec::new(),
        stderr: std::fs::read(stderr.path()).unwrap(),
    };
    refused(&out, "broker_stopping");
    assert!(
        std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "the command goes on"
    );

    w.start();
    let unknown = wait_event("exec_outcome_unknown", |e| {
        e["event_type"] == "exec_outcome_unknown" && e["run_id"] == start["run_id"]
    });
    assert_eq!(unknown["pid"], json!(pid), "{unknown}");
    assert_eq!(unknown["still_running"], true, "{unknown}");
    w.verify_intact(&[]);
}

/// A request pending when the system broker stops cleanly survives the restart (issue 15): the
/// approver still lists it under its old id and expiry, the new broker audits it
/// `pending_restored`, the approver approves it after the restart, and the agent's retry runs.
#[test]
fn system_pending_request_survives_a_restart_and_is_approved_after_it() {
    let Some(mut w) = World::started(&[]) else {
        return;
    };
    let id_u = ["-n", "/usr/bin/id", "-u"];
    let id = pending_id(&w.sudo(&w.agent, &id_u, &[]));
    let before = w.approvals();
    assert_eq!(before.len(), 1, "{before:?}");
    assert_eq!(before[0]["id"], json!(id));
    assert!(events_of("pending_restored").is_empty());

    w.stop();
    w.start();
    let after = w.approvals();
    assert_eq!(after.len(), 1, "the pending request survived: {after:?}");
    assert_eq!(after[0]["id"], before[0]["id"]);
    assert_eq!(after[0]["expires_at"], before[0]["expires_at"]);
    let restored = events_of("pending_restored");
    assert_eq!(restored.len(), 1, "{restored:?}");
    assert_eq!(restored[0]["request_id"], json!(id), "{}", restored[0]);

    w.approve(&id, &[]);
    let ran = w.sudo(&w.agent, &id_u, &[]);
    assert_eq!(text(&ran.stdout), "0\n", "{}", text(&ran.stderr));
    let started = events_of("exec_start");
    assert!(
        started.iter().any(|e| e["request_id"] == json!(id)),
        "{started:?}"
    );
    assert!(w.approvals().is_empty());
    w.verify_intact(&[]);
}

/// Every policy file is checked when the broker starts: a broker.json the agent could change
/// (owned by it) refuses every request naming the file and the fix, and runs nothing.
#[test]
fn system_broker_started_with_an_unsafe_config_refuses_every_request() {
    let Some(mut w) = World::new(&[]) else { return };
    let b = std::path::Path::new(world::BROKER_JSON);
    std::os::unix::fs::chown(b, Some(w.agent.uid), Some(w.agent.gid)).unwrap();
    w.spawn_broker();
    std::thread::sleep(std::time::Duration::from_millis(500));
    let out = w.sudo(&w.agent, &["-n", "/usr/bin/id", "-u"], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    let err = text(&out.stderr);
    assert!(err.contains(world::BROKER_JSON), "{err}");
    assert!(out.stdout.is_empty(), "nothing ran");
    std::os::unix::fs::chown(b, Some(0), Some(0)).unwrap();
}
