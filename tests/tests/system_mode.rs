//! System mode end to end, as root, with real users, real sockets and real processes: the agent
//! (`occ-sysagent`, no sudo rights) asks through its shim, another user approves on the admin
//! socket, and the root broker runs the approved file itself. Each test gets a fresh world
//! ([`world::World`]): the real /etc/occ, /run/occ, /var/lib/occ and /var/log/occ, so the tests
//! run one at a time.

mod world;

use std::io::Write as _;
use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;

use serde_json::{json, Value};

use crate::approval::{pending_id, text};
use world::{events_of, wait_event, World, TARGET};

/// The agent files a request; only another user's approval lets it run, once, as root; with
/// `-u` it runs as that user with that user's groups.
#[test]
fn system_request_approved_by_another_user_runs_as_root_then_as_the_sudo_u_user() {
    let Some(w) = World::started(&[]) else { return };
    let id_u = ["-n", "/usr/bin/id", "-u"];
    let first = w.sudo(&w.agent, &id_u, &[]);
    let id = pending_id(&first);
    assert!(first.stdout.is_empty(), "nothing ran before approval");

    let list = w.approvals();
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0]["id"], json!(id));
    assert_eq!(list[0]["submituser"], json!(w.agent.name));
    assert_eq!(list[0]["command"], json!(["/usr/bin/id", "-u"]));
    assert_eq!(list[0]["runuser"], "root");
    assert_eq!(list[0]["runcwd"], json!(w.agent.home));

    w.approve(&id, &[]);
    let ran = w.sudo(&w.agent, &id_u, &[]);
    assert_eq!(text(&ran.stdout), "0\n", "stderr: {}", text(&ran.stderr));
    assert_eq!(ran.status.code(), Some(0));
    let again = pending_id(&w.sudo(&w.agent, &id_u, &[]));
    assert_ne!(again, id, "a --once grant is spent by one run");

    // -u: the target's uid, gid and groups, exactly as `id USER` reports them.
    let as_target = ["-n", "-u", TARGET, "/usr/bin/id"];
    let id = pending_id(&w.sudo(&w.agent, &as_target, &[]));
    assert_eq!(
        w.approvals().iter().find(|p| p["id"] == json!(id)).unwrap()["runuser"],
        TARGET
    );
    w.approve(&id, &[]);
    let ran = w.sudo(&w.agent, &as_target, &[]);
    let want = std::process::Command::new("/usr/bin/id")
        .arg(TARGET)
        .output()
        .unwrap();
    assert_eq!(
        text(&ran.stdout),
        text(&want.stdout),
        "{}",
        text(&ran.stderr)
    );
    assert!(text(&ran.stdout).starts_with(&format!("uid={}(", w.target.uid)));
    assert_eq!(ran.status.code(), Some(0));

    let granted = events_of("approval_granted");
    assert_eq!(granted.len(), 2, "{granted:?}");
    for g in &granted {
        assert_eq!(g["approver_uid"], json!(w.approver.uid), "{g}");
        assert_eq!(g["submituser"], json!(w.agent.name), "{g}");
    }
    let starts = events_of("exec_start");
    let runusers: Vec<&Value> = starts.iter().map(|e| &e["runuser"]).collect();
    assert_eq!(runusers, [&json!("root"), &json!(TARGET)]);
    w.verify_intact(&[]);
}

/// What a caller of sudo relies on passes through the broker: stdin reaches the command, its
/// stdout and stderr come out, its exit status is the shim's, and a signal sent to the shim
/// reaches the command, which dies of it, and the shim ends by that same signal.
#[test]
fn system_stdio_exit_status_and_signals_pass_through_the_broker() {
    let Some(w) = World::started(&[]) else { return };
    let script = ["-n", "/bin/sh", "-c", "cat; echo err >&2; exit 7"];
    let id = pending_id(&w.sudo(&w.agent, &script, &[]));
    w.approve(&id, &[]);
    let mut child = w
        .as_user(&w.agent, w.agent.shim())
        .args(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"hello\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(text(&out.stdout), "hello\n");
    assert_eq!(text(&out.stderr), "err\n");
    assert_eq!(out.status.code(), Some(7));

    let sleep = ["-n", "/usr/bin/sleep", "30"];
    let id = pending_id(&w.sudo(&w.agent, &sleep, &[]));
    w.approve(&id, &[]);
    let shim = w
        .as_user(&w.agent, w.agent.shim())
        .args(sleep)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = wait_event("exec_start for sleep", |e| {
        e["event_type"] == "exec_start" && e["request_id"] == json!(id)
    });
    let pid = start["pid"].as_i64().expect("exec_start names the pid");
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    assert_eq!(
        cmdline, b"/usr/bin/sleep\x0030\x00",
        "the pid is the command's"
    );
    let kill = std::process::Command::new("kill")
        .args(["-TERM", &shim.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let out = shim.wait_with_output().unwrap();
    assert_eq!(
        out.status.signal(),
        Some(15),
        "the shim ends by the command's signal: {:?} {}",
        out.status,
        text(&out.stderr)
    );
    let finish = wait_event("exec_finish for sleep", |e| {
        e["event_type"] == "exec_finish" && e["run_id"] == start["run_id"]
    });
    assert!(start["run_id"].as_str().is_some_and(|r| !r.is_empty()));
    assert_eq!(finish["pid"], json!(pid));
    assert_eq!(finish["signal"], 15, "{finish}");
    assert_eq!(finish["signals_relayed"], json!([15]), "{finish}");
    assert!(finish["run_time"].as_i64().unwrap() < 30_000, "{finish}");
    w.verify_intact(&[]);
}

/// A shim that vanishes mid-run (SIGKILL) leaves no command behind: the broker hangs it up
/// (SIGHUP to its process group) and records `exec_abandoned`.
#[test]
fn system_shim_killed_mid_run_gets_its_command_hung_up_and_audited_abandoned() {
    let Some(w) = World::started(&[]) else { return };
    let sleep = ["-n", "/usr/bin/sleep", "30"];
    let id = pending_id(&w.sudo(&w.agent, &sleep, &[]));
    w.approve(&id, &[]);
    let mut shim = w
        .as_user(&w.agent, w.agent.shim())
        .args(sleep)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = wait_event("exec_start for sleep", |e| {
        e["event_type"] == "exec_start" && e["request_id"] == json!(id)
    });
    let pid = start["pid"].as_i64().unwrap();
    shim.kill().unwrap();
    shim.wait().unwrap();
    let abandoned = wait_event("exec_abandoned", |e| {
        e["event_type"] == "exec_abandoned" && e["run_id"] == start["run_id"]
    });
    assert_eq!(abandoned["pid"], json!(pid));
    assert_eq!(abandoned["signal"], json!(1), "hung up: {abandoned}");
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "the command is gone"
    );
    assert!(events_of("exec_finish").is_empty());
    w.verify_intact(&[]);
}

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
