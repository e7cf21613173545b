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
    // exec_start is on record before the command may exec: the pid becomes the command.
    world::wait_for("the exec_start pid to be the command", || {
        std::fs::read(format!("/proc/{pid}/cmdline"))
            .ok()
            .as_deref()
            == Some(b"/usr/bin/sleep\x0030\x00".as_slice())
    });
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

/// The shim's refusal: exit 1, nothing on stdout, and its last line `sudo: … (occ: CODE)`.
fn refused(out: &std::process::Output, code: &str) {
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
    let last = err.lines().last().unwrap_or("");
    assert!(
        last.starts_with("sudo: ") && last.ends_with(&format!("(occ: {code})")),
        "want a {code} refusal: {err:?}"
    );
}

/// Runs `program ARGS` as the agent; returns whether it succeeded and its stderr.
fn agent_tries(w: &World, program: &str, args: &[&str]) -> (bool, String) {
    let out = w.as_user(&w.agent, program).args(args).output().unwrap();
    (out.status.success(), text(&out.stderr))
}

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

    let out = w.occ(&w.agent, &["approve", &id]);
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
    let out = w.occ_with_stdin(&w.agent, &["approve", &id], &format!("{token}\n"));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("self_approval_refused"),
        "{}",
        text(&out.stderr)
    );
    let out = w.occ_with_stdin(
        &w.agent,
        &["approve", &id, "--session"],
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
    let out = w.occ_with_stdin(&w.approver, &["approve", &id], &format!("{token}\n"));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&w.sudo(&w.agent, &req, &[]).stdout), "0\n");
    let set = events_of("token_set");
    assert_eq!(set.len(), 1);
    assert_eq!(set[0]["approver_uid"], 0, "root set it");
    w.verify_intact(&[]);
}

/// An agent that is only a requester gets nothing on the admin socket: it cannot approve,
/// deny, list, or clear the token (the user-mode attack `occ token clear`); the refusals are
/// audited once a minute per uid, with a count of the rest.
#[test]
fn system_agent_cannot_approve_list_or_clear_the_token_on_the_admin_socket() {
    let Some(w) = World::started(&[]) else { return };
    let id = pending_id(&w.sudo(&w.agent, &["-n", "/usr/bin/true"], &[]));
    let set = w.occ_root(&["token", "set", "--generate", "--json"]);
    assert!(set.status.success(), "{}", text(&set.stderr));
    let tries: &[&[&str]] = &[
        &["approve", &id],
        &["deny", &id],
        &["approvals", "--json"],
        &["status", "--json"],
        &["token", "clear"],
        &["token", "set", "--generate"],
    ];
    for args in tries {
        let out = w.occ(&w.agent, args);
        assert_ne!(out.status.code(), Some(0), "{args:?}");
        let said = format!("{}{}", text(&out.stdout), text(&out.stderr));
        assert!(said.contains("not_an_approver"), "{args:?}: {said}");
    }
    // Only root changes the token, not even an approver.
    let out = w.occ(&w.approver, &["token", "clear"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("only root"),
        "{}",
        text(&out.stderr)
    );

    assert_eq!(
        w.status()["token_required"],
        true,
        "the token is still required"
    );
    let cfg: Value =
        serde_json::from_str(&std::fs::read_to_string(world::BROKER_JSON).unwrap()).unwrap();
    assert!(cfg["approval"]["token_sha256"].is_string(), "{cfg}");
    assert!(events_of("token_cleared").is_empty());
    let list = w.approvals();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["id"], json!(id), "still pending");

    let blocks: Vec<Value> = events_of("policy_block")
        .into_iter()
        .filter(|e| e["reason_code"] == "not_an_approver")
        .collect();
    assert_eq!(
        blocks.len(),
        1,
        "one audited refusal per minute: {blocks:?}"
    );
    assert_eq!(blocks[0]["approver_uid"], json!(w.agent.uid));
    assert_eq!(blocks[0]["suppressed"], 0);
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

/// The user-mode socket-proxy attack, replayed: the agent cannot move, remove or shadow
/// /run/occ/broker.sock, nor bind anything in /run/occ. And a broker of its own (`OCC_MODE=user`,
/// which it can approve itself) gets it nothing: the granted real sudo refuses an agent with no
/// sudo rights.
#[test]
fn system_agent_cannot_move_remove_or_shadow_the_broker_socket() {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let Some(w) = World::started(&["/usr/bin/sudo"]) else {
        return;
    };
    let before = std::fs::symlink_metadata(world::REQUEST_SOCKET).unwrap();
    let run = std::fs::metadata(world::RUN_DIR).unwrap();
    assert_eq!((run.uid(), run.mode() & 0o7777), (0, 0o755));
    let probe = occ_tests::bin("occ-sock-probe");
    let probe = probe.to_str().unwrap();
    let tries: &[(&str, &[&str])] = &[
        ("/bin/mv", &[world::REQUEST_SOCKET, "/run/occ/moved.sock"]),
        ("/bin/rm", &["-f", world::REQUEST_SOCKET]),
        ("/bin/rm", &["-f", world::ADMIN_SOCKET]),
        ("/bin/ln", &["-sf", "/tmp/evil.sock", world::REQUEST_SOCKET]),
        (probe, &["bind", world::REQUEST_SOCKET]),
        (probe, &["bind", "/run/occ/evil.sock"]),
    ];
    for (program, args) in tries {
        let out = w.as_user(&w.agent, program).args(*args).output().unwrap();
        assert!(!out.status.success(), "{program} {args:?} succeeded");
        let said = format!("{}{}", text(&out.stdout), text(&out.stderr));
        assert!(
            said.contains("Permission denied") || said.contains("in use"),
            "{program} {args:?}: {said}"
        );
    }
    let after = std::fs::symlink_metadata(world::REQUEST_SOCKET).unwrap();
    assert!(after.file_type().is_socket());
    assert_eq!(
        (after.ino(), after.uid()),
        (before.ino(), 0),
        "the same socket"
    );
    assert!(!std::path::Path::new("/run/occ/evil.sock").exists());
    pending_id(&w.sudo(&w.agent, &["-n", "/usr/bin/id", "-u"], &[]));

    // A broker of the agent's own: it approves itself, and the real sudo says no.
    let listed = std::process::Command::new("/usr/bin/sudo")
        .args(["-n", "-l", "-U", world::AGENT])
        .output()
        .unwrap();
    assert!(
        text(&listed.stdout).contains("is not allowed to run sudo"),
        "the agent has no sudo rights: {}",
        text(&listed.stdout)
    );
    occ_tests::copy_exe(occ_tests::bin("occ"), w.agent.bin().join("occ"));
    std::os::unix::fs::chown(w.agent.bin().join("occ"), Some(w.agent.uid), None).unwrap();
    let user_mode = [("OCC_MODE", "user")];
    let own = w.sudo(&w.agent, &["-n", "/usr/bin/id", "-u"], &user_mode);
    let own_id = pending_id(&own);
    let mut approve = w.as_user(&w.agent, w.agent.bin().join("occ"));
    approve.args(["approve", &own_id]).env("OCC_MODE", "user");
    let approved = approve.output().unwrap();
    assert!(approved.status.success(), "{}", text(&approved.stderr));
    let ran = w.sudo(&w.agent, &["-n", "/usr/bin/id", "-u"], &user_mode);
    let own_pid = std::fs::read_to_string(w.agent.home.join(".openclaw/run/broker.pid"));
    if let Ok(pid) = own_pid {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", pid.trim()])
            .status();
    }
    assert_eq!(ran.status.code(), Some(1), "{}", text(&ran.stderr));
    assert!(
        ran.stdout.is_empty(),
        "nothing ran as root: {}",
        text(&ran.stdout)
    );
    assert!(
        text(&ran.stderr).contains("password is required"),
        "{}",
        text(&ran.stderr)
    );
}

/// The user-mode forged-grant attack, replayed: the agent cannot write the state file, and a
/// state file root did not write (owned by the agent, or writable by others, as after a
/// compromise) is rejected at restart (`state_rejected`) and grants nothing, while an intact
/// one brings its grant back.
#[test]
fn system_state_file_not_written_by_root_is_rejected_at_restart_and_grants_nothing() {
    let Some(mut w) = World::started(&[]) else {
        return;
    };
    let req = ["-n", "/usr/bin/id", "-u"];
    let id = pending_id(&w.sudo(&w.agent, &req, &[]));
    w.approve(&id, &[]);
    let (ok, err) = agent_tries(
        &w,
        "/bin/sh",
        &["-c", &format!(": > {}", world::STATE_FILE)],
    );
    assert!(!ok && err.contains("Permission denied"), "{err}");

    // Intact: the unused grant survives a restart.
    w.stop();
    w.start();
    let restored = events_of("state_restored");
    assert_eq!(restored.len(), 1, "{restored:?}");
    assert_eq!(restored[0]["grants"], 1, "{}", restored[0]);

    let agent = (w.agent.uid, w.agent.gid);
    let tampers: &[(&str, &dyn Fn())] = &[
        ("owned by the agent", &|| {
            std::os::unix::fs::chown(world::STATE_FILE, Some(agent.0), Some(agent.1)).unwrap()
        }),
        ("writable by others", &|| {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::Permissions::from_mode(0o666);
            std::fs::set_permissions(world::STATE_FILE, mode).unwrap()
        }),
    ];
    for (n, (what, tamper)) in tampers.iter().enumerate() {
        w.stop();
        tamper();
        w.start();
        let rejected = events_of("state_rejected");
        assert_eq!(rejected.len(), n + 1, "{what}: {rejected:?}");
        assert_eq!(rejected[n]["file"], world::STATE_FILE);
        assert!(
            !rejected[n]["reason"].as_str().unwrap_or("").is_empty(),
            "{what}: the reason is named: {}",
            rejected[n]
        );
        assert!(w.approvals().is_empty(), "{what}: nothing restored");
        let out = w.sudo(&w.agent, &req, &[]);
        let next = pending_id(&out);
        assert!(out.stdout.is_empty(), "{what}: the grant did not come back");
        // Approve it, so the next tamper has a grant to carry.
        w.approve(&next, &[]);
    }
    w.verify_intact(&[]);
}

/// The user-mode log-rewrite attack, replayed: the agent cannot open the log for writing,
/// truncate it, or move it, and `occ audit verify` of the system log says intact; a rewrite
/// (by root, on a copy) is caught, so that verdict means something.
#[test]
fn system_audit_log_is_closed_to_the_agent_and_verifies_intact() {
    let Some(w) = World::started(&[]) else { return };
    let req = ["-n", "/usr/bin/id", "-u"];
    let id = pending_id(&w.sudo(&w.agent, &req, &[]));
    w.approve(&id, &[]);
    assert_eq!(text(&w.sudo(&w.agent, &req, &[]).stdout), "0\n");
    let log = world::AUDIT_LOG;
    let tries: &[(&str, &[&str])] = &[
        ("/bin/sh", &["-c", &format!(": >> {log}")]),
        ("/usr/bin/truncate", &["-s", "0", log]),
        ("/bin/mv", &[log, "/tmp/occ-moved.jsonl"]),
    ];
    for (program, args) in tries {
        let (ok, err) = agent_tries(&w, program, args);
        assert!(
            !ok && err.contains("Permission denied"),
            "{program} {args:?}: {err}"
        );
    }
    let v = w.verify_intact(&[]);
    let events = world::events();
    assert_eq!(v["events"], json!(events.len()), "{v}");

    let copy = std::path::Path::new(world::LOG_DIR).join("rewritten.jsonl");
    let original = std::fs::read_to_string(log).unwrap();
    let start = events
        .iter()
        .position(|e| e["event_type"] == "exec_start")
        .unwrap();
    let lines: Vec<String> = original
        .lines()
        .enumerate()
        .map(|(i, l)| {
            if i == start {
                l.replace("\"root\"", "\"nobody\"")
            } else {
                l.to_string()
            }
        })
        .collect();
    assert_ne!(
        lines.join("\n") + "\n",
        original,
        "the rewrite changed something"
    );
    std::fs::write(&copy, lines.join("\n") + "\n").unwrap();
    let out = w.occ_root(&["audit", "verify", "--json", "--log", copy.to_str().unwrap()]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["intact"], false, "{v}");
    assert_eq!(v["breaks"][0]["reason"], "content_hash_mismatch", "{v}");
    assert_eq!(v["breaks"][0]["line"], json!(start + 1), "{v}");
}

/// How many connections one uid may hold on each socket in the starvation test.
const CONNECTIONS_PER_UID: usize = 16;

/// The starvation attack: the agent opens 600 idle connections to each socket. Past its
/// `connections_per_uid` it gets `broker_busy` (and its own requests too), but the other
/// requester is still served, and the approver's `occ approvals` and `occ status` answer at once.
#[test]
fn system_agent_flooding_both_sockets_starves_only_itself() {
    let Some(w) = World::started_with(&[], |b| {
        b["limits"] = json!({
            "connections_per_uid": CONNECTIONS_PER_UID,
            "admin_connections_per_uid": CONNECTIONS_PER_UID,
        });
    }) else {
        return;
    };
    const FLOOD: usize = 600;
    let hold = |socket: &str| {
        let mut c = w.as_user(&w.agent, occ_tests::bin("occ-sock-probe"));
        c.args(["hold", socket, &FLOOD.to_string(), "1000"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped());
        let mut child = c.spawn().unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.as_mut().unwrap()),
            &mut line,
        )
        .unwrap();
        let got: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
        (child, got)
    };
    let (requests, on_requests) = hold(world::REQUEST_SOCKET);
    let (admin, on_admin) = hold(world::ADMIN_SOCKET);
    // While the agent still holds its connections (the broker drops a silent one after 5 s):
    let begun = std::time::Instant::now();
    refused(
        &w.sudo(&w.agent, &["-n", "/usr/bin/true"], &[]),
        "broker_busy",
    );
    pending_id(&w.sudo(&w.other, &["-n", "/usr/bin/true"], &[]));
    assert_eq!(w.approvals().len(), 1);
    assert_eq!(w.status()["broker"], "up");
    let took = begun.elapsed();
    for (socket, got) in [("request", &on_requests), ("admin", &on_admin)] {
        assert_eq!(got["connected"], json!(FLOOD), "{socket}: {got}");
        assert_eq!(got["held"], json!(CONNECTIONS_PER_UID), "{socket}: {got}");
        assert_eq!(
            got["busy"],
            json!(FLOOD - CONNECTIONS_PER_UID),
            "{socket}: {got}"
        );
    }
    assert!(
        took < std::time::Duration::from_secs(3),
        "the others waited {took:?}"
    );
    for mut c in [requests, admin] {
        drop(c.stdin.take());
        assert!(c.wait().unwrap().success());
    }
}

/// How many requests one uid may leave pending in the pending-cap test.
const PENDING_PER_UID: usize = 4;

/// Past `limits.pending_per_uid` distinct pending requests, a new one is refused with
/// `too_many_pending`; asking again for one already filed still answers its id, another
/// requester is not affected, and a decision makes room.
#[test]
fn system_pending_requests_per_uid_are_capped_at_the_configured_number() {
    let Some(w) = World::started_with(&[], |b| {
        b["limits"] = json!({"pending_per_uid": PENDING_PER_UID});
    }) else {
        return;
    };
    let ask = |n: usize| w.sudo(&w.agent, &["-n", "/usr/bin/echo", &n.to_string()], &[]);
    let ids: Vec<String> = (0..PENDING_PER_UID).map(|n| pending_id(&ask(n))).collect();
    let mut distinct = ids.clone();
    distinct.dedup();
    assert_eq!(distinct.len(), PENDING_PER_UID);
    refused(&ask(PENDING_PER_UID), "too_many_pending");
    assert_eq!(pending_id(&ask(0)), ids[0], "a filed request keeps its id");
    assert_eq!(w.approvals().len(), PENDING_PER_UID);
    pending_id(&w.sudo(&w.other, &["-n", "/usr/bin/echo", "other"], &[]));
    let out = w.occ(&w.approver, &["deny", &ids[0]]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    pending_id(&ask(PENDING_PER_UID));
    refused(&ask(PENDING_PER_UID + 1), "too_many_pending");
}

/// Kills a process the test started (through the broker) when the test ends, however it ends.
struct KillOnDrop(i64);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill")
            .args(["-KILL", &self.0.to_string()])
            .stderr(Stdio::null())
            .status();
    }
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

/// Waits until the log holds `n` events of `event_type`; returns them.
fn wait_count(event_type: &str, n: usize) -> Vec<Value> {
    world::wait_for(&format!("{n} {event_type} events"), || {
        events_of(event_type).len() >= n
    });
    let got = events_of(event_type);
    assert_eq!(got.len(), n, "{got:?}");
    got
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

/// Puts `src` in place of `path` the way a package upgrade does: a new file renamed over it.
fn swap_in(src: &str, path: &std::path::Path) {
    let staged = world::install_root_exe(src, "swap.staging");
    std::fs::rename(&staged, path).unwrap();
}

/// A grant names the file it approved (device and inode), not the path: after root renames
/// another executable into the approved path, the agent's next `sudo -n` of that path is a new
/// pending request, and the new file never runs.
#[test]
fn system_binary_swapped_after_approval_is_a_new_request_and_never_runs() {
    let Some(w) = World::started(&[]) else { return };
    let tool = world::install_root_exe("/usr/bin/id", "tool");
    let tool_s = tool.to_str().unwrap();
    let req = ["-n", tool_s, "-u"];
    let id = pending_id(&w.sudo(&w.agent, &req, &[]));
    w.approve(&id, &[]);
    // /usr/bin/echo prints "-u" where id prints "0": a run of the new file would show.
    swap_in("/usr/bin/echo", &tool);
    let out = w.sudo(&w.agent, &req, &[]);
    let next = pending_id(&out);
    assert_ne!(next, id, "a new request for the new file");
    assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
    let list = w.approvals();
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0]["id"], json!(next));
    assert_eq!(list[0]["command"], json!([tool_s, "-u"]));
    assert!(events_of("exec_start").is_empty(), "nothing ran");
}

/// The file swapped while the request waits for its approver: the broker already holds the
/// file it resolved, so the approved (original) file runs, never the new one.
#[test]
fn system_binary_swapped_while_waiting_runs_the_approved_file_not_the_new_one() {
    let Some(w) = World::started_with(&["/usr/bin/script"], |b| {
        b["approval"]["wait_seconds"] = json!(30);
    }) else {
        return;
    };
    let tool = world::install_root_exe("/usr/bin/id", "tool");
    let waiting = w
        .as_user(&w.agent, "/usr/bin/script")
        .args([
            "-qec",
            &format!("{} {} -u", w.agent.shim().display(), tool.display()),
            "/dev/null",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut id = String::new();
    world::wait_for("the waiting request", || {
        let list = w.approvals();
        id = list
            .first()
            .and_then(|p| p["id"].as_str())
            .unwrap_or("")
            .to_string();
        !id.is_empty()
    });
    swap_in("/usr/bin/echo", &tool);
    w.approve(&id, &[]);
    let out = waiting.wait_with_output().unwrap();
    let shown = text(&out.stdout);
    assert!(
        shown.contains(&format!(
            "sudo: waiting for approval (occ #{id}): occ approve {id}"
        )),
        "{shown:?}"
    );
    let last = shown
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .last();
    assert_eq!(last, Some("0"), "id ran, not echo: {shown:?}");
    assert!(!shown.contains("-u"), "{shown:?}");
    assert_eq!(out.status.code(), Some(0), "{shown:?}");
}

/// A sudoers drop-in for one test, checked with `visudo -c`, removed when dropped.
struct SudoersDropIn(std::path::PathBuf);

impl SudoersDropIn {
    fn new(name: &str, line: &str) -> SudoersDropIn {
        let path = std::path::Path::new("/etc/sudoers.d").join(name);
        world::write_root_file(&path, line.as_bytes(), 0o440);
        let d = SudoersDropIn(path);
        let check = std::process::Command::new("/usr/sbin/visudo")
            .arg("-cf")
            .arg(&d.0)
            .output()
            .unwrap();
        assert!(check.status.success(), "{}", text(&check.stderr));
        d
    }
}

impl Drop for SudoersDropIn {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// What the real sudo keeps, under Debian's default sudoers, that the system broker does not
/// pass on, each with why. Everything else the approved command sees must be what sudo gives.
const ENV_DIFFERENCES: &[(&str, &str)] = &[
    (
        "DISPLAY",
        "points a root command at the requester's X server: a GUI run as root would take input \
         the agent can forge",
    ),
    (
        "XAUTHORITY",
        "a file the requester names and may have written, read by root (and the X cookie in it)",
    ),
    ("XAUTHORIZATION", "the X cookie, as XAUTHORITY"),
    (
        "KRB5CCNAME",
        "a credential cache the requester chooses, used by root's Kerberos clients",
    ),
    (
        "PS1",
        "shells expand prompt strings ($(...)), so the requester would choose code run as root",
    ),
    ("PS2", "as PS1"),
    (
        "HOSTNAME",
        "cosmetic; each variable the shim forwards is one more requester-chosen input to root's \
         command, and the shim forwards only what the grant binds (OPENCLAW_*, terminal, locale, \
         time zone)",
    ),
    ("LS_COLORS", "cosmetic, as HOSTNAME"),
    ("COLORS", "cosmetic, as HOSTNAME"),
    ("DPKG_COLORS", "cosmetic, as HOSTNAME"),
    ("XDG_CURRENT_DESKTOP", "cosmetic, as HOSTNAME"),
];

/// The caller's variables: sudo's checked set (terminal, locale, time zone) with safe values,
/// its default env_keep set, and some that neither passes.
const SAFE_ENV: &[(&str, &str)] = &[
    ("TERM", "xterm-256color"),
    ("LANG", "C.UTF-8"),
    ("LC_ALL", "C.UTF-8"),
    ("LC_TIME", "C"),
    ("LANGUAGE", "en_US:en"),
    ("LINGUAS", "en"),
    ("COLORTERM", "truecolor"),
    ("TZ", "Europe/Paris"),
    ("DISPLAY", ":0"),
    ("XAUTHORITY", "/tmp/occ-agent-xauth"),
    ("XAUTHORIZATION", "MIT-MAGIC-COOKIE-1"),
    ("KRB5CCNAME", "FILE:/tmp/occ-agent-krb5cc"),
    ("PS1", "$(id)# "),
    ("PS2", "> "),
    ("HOSTNAME", "agent-box"),
    ("LS_COLORS", "di=01;34"),
    ("COLORS", "/etc/DIR_COLORS"),
    ("DPKG_COLORS", "always"),
    ("XDG_CURRENT_DESKTOP", "GNOME"),
    ("FOO", "bar"),
    ("PYTHONPATH", "/tmp"),
    ("BASH_ENV", "/tmp/occ-agent-rc"),
    ("OPENCLAW_TASK_SESSION_ID", "s1"),
];

/// The checked set with values sudo refuses (`/`, `%`, a time zone outside the zone database
/// or with a `..` element), and a time zone path it accepts.
const UNSAFE_ENV: &[(&str, &str)] = &[
    ("TERM", "../../tmp/term"),
    ("LANG", "C%n"),
    ("LC_ALL", "/tmp/locale"),
    ("LC_CTYPE", "C.UTF-8"),
    ("LANGUAGE", "en/../x"),
    ("LINGUAS", "%s"),
    ("COLORTERM", "a/b"),
    ("TZ", ":/usr/share/zoneinfo/../../../tmp/tz"),
];

const ZONE_PATH_ENV: &[(&str, &str)] = &[("TZ", ":/usr/share/zoneinfo/UTC"), ("TERM", "vt100")];

/// The approved command sees what `/usr/bin/sudo` gives the same user for the same call under
/// a default sudoers (env_reset, secure_path): the same argv, uid, gid, cwd and environment,
/// but for [`ENV_DIFFERENCES`], each with its reason, for root and for `-u`, with safe and
/// unsafe terminal, locale and time-zone values.
#[test]
fn system_command_environment_matches_the_real_sudo_but_for_documented_differences() {
    let Some(w) = World::started(&["/usr/bin/sudo", "/usr/sbin/visudo"]) else {
        return;
    };
    let probe = world::install_root_exe(occ_tests::bin("occ-argv-probe"), "argv-probe");
    let probe = probe.to_str().unwrap();
    // The comparison user is a requester too, so both calls come from the same user.
    let _sudoers = SudoersDropIn::new(
        "occ-systests-probe",
        &format!("{} ALL=(ALL) NOPASSWD: {probe}\n", world::OTHER),
    );
    let cases: &[(&str, &[&str], &[(&str, &str)])] = &[
        ("root, safe values", &[], SAFE_ENV),
        ("root, unsafe values", &[], UNSAFE_ENV),
        ("root, a zone file path", &[], ZONE_PATH_ENV),
        ("-u, safe values", &["-u", TARGET], SAFE_ENV),
    ];
    for (what, opts, env) in cases {
        let mut args = vec!["-n"];
        args.extend_from_slice(opts);
        args.extend_from_slice(&[probe, "one", "two words", ""]);
        let id = pending_id(&w.sudo(&w.other, &args, env));
        w.approve(&id, &[]);
        let occ = w.sudo(&w.other, &args, env);
        assert!(occ.status.success(), "{what}: {}", text(&occ.stderr));
        let sudo = w
            .as_user(&w.other, "/usr/bin/sudo")
            .args(&args)
            .envs(env.iter().copied())
            .output()
            .unwrap();
        assert!(sudo.status.success(), "{what}: {}", text(&sudo.stderr));
        let mut occ: Value = serde_json::from_slice(&occ.stdout).unwrap();
        let mut sudo: Value = serde_json::from_slice(&sudo.stdout).unwrap();
        let sudo_env = sudo["env"].as_object_mut().unwrap();
        for (name, why) in ENV_DIFFERENCES {
            if env.iter().any(|(k, _)| k == name) {
                assert!(
                    sudo_env.remove(*name).is_some(),
                    "{what}: sudo no longer keeps {name}; drop it from ENV_DIFFERENCES"
                );
                assert!(
                    occ["env"].get(*name).is_none(),
                    "{what}: occ passes {name} ({why})"
                );
            }
        }
        assert_eq!(occ, sudo, "{what}");
    }
}
