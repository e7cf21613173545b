//! Approved runs: another user's approval lets the agent's command run, once, as root or the
//! `-u` user, with its stdio, exit status and signals passed through; a shim that vanishes gets
//! its command hung up; and the file that runs is the one approved, even when its path is
//! swapped.

use std::io::Write as _;
use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;

use serde_json::{json, Value};

use super::world::{self, events_of, wait_event, World, TARGET};
use crate::approval::{pending_id, text};

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
    // An approved shell reads the caller's stdin and writes its stdout and stderr; its exit
    // status is the shim's. As root, then through -u as the target.
    let round = |args: &[&str]| {
        let id = pending_id(&w.sudo(&w.agent, args, &[]));
        w.approve(&id, &[]);
        let mut child = w
            .as_user(&w.agent, w.agent.shim())
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(b"hello\n").unwrap();
        let out = child.wait_with_output().unwrap();
        assert_eq!(text(&out.stderr), "err\n");
        (text(&out.stdout), out.status.code())
    };
    let script = "cat; id -u; echo err >&2; exit 7";
    assert_eq!(
        round(&["-n", "/bin/sh", "-c", script]),
        ("hello\n0\n".to_string(), Some(7))
    );
    assert_eq!(
        round(&["-n", "-u", TARGET, "/bin/sh", "-c", script]),
        (format!("hello\n{}\n", w.target.uid), Some(7))
    );

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
/// (SIGHUP to its process group), kills it if it ignores that for the grace period (2 s), and
/// records `exec_abandoned` with the signal that ended it.
#[test]
fn system_shim_killed_mid_run_gets_its_command_hung_up_and_audited_abandoned() {
    let Some(w) = World::started(&[]) else { return };
    const GRACE_MS: i64 = 2_000;
    let cases: &[(&str, &[&str], i64)] = &[
        ("dies of SIGHUP", &["-n", "/usr/bin/sleep", "30"], 1),
        (
            "ignores SIGHUP",
            &["-n", "/bin/sh", "-c", "trap '' HUP; exec /usr/bin/sleep 30"],
            9,
        ),
    ];
    for (what, args, signal) in cases {
        let id = pending_id(&w.sudo(&w.agent, args, &[]));
        w.approve(&id, &[]);
        let mut shim = w
            .as_user(&w.agent, w.agent.shim())
            .args(*args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let start = wait_event("exec_start", |e| {
            e["event_type"] == "exec_start" && e["request_id"] == json!(id)
        });
        let pid = start["pid"].as_i64().unwrap();
        // Once it is sleep, the command has set up whatever it does about SIGHUP.
        world::wait_for("the command to be sleep", || {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .ok()
                .as_deref()
                == Some(b"/usr/bin/sleep\x0030\x00".as_slice())
        });
        shim.kill().unwrap();
        shim.wait().unwrap();
        let abandoned = wait_event("exec_abandoned", |e| {
            e["event_type"] == "exec_abandoned" && e["run_id"] == start["run_id"]
        });
        assert_eq!(abandoned["pid"], json!(pid), "{what}");
        assert_eq!(abandoned["signal"], json!(signal), "{what}: {abandoned}");
        let run_time = abandoned["run_time"].as_i64().unwrap();
        assert_eq!(run_time >= GRACE_MS, *signal == 9, "{what}: {abandoned}");
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "{what}: the command is gone"
        );
    }
    assert!(events_of("exec_finish").is_empty());
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
    let last = shown.lines().map(str::trim).rfind(|l| !l.is_empty());
    assert_eq!(last, Some("0"), "id ran, not echo: {shown:?}");
    assert!(!shown.contains("-u"), "{shown:?}");
    assert_eq!(out.status.code(), Some(0), "{shown:?}");
}

/// A `#!` script is refused with `script_refused` (its interpreter would open it again by path,
/// so the approved file would not be what runs); asking for the interpreter with the script as
/// its argument is an ordinary request.
#[test]
fn system_script_is_refused_and_its_interpreter_can_be_asked_for_instead() {
    let Some(w) = World::started(&[]) else { return };
    let staging = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(staging.path(), "#!/bin/sh\necho script ran as $(id -u)\n").unwrap();
    let script = world::install_root_exe(staging.path(), "script");
    let script = script.to_str().unwrap();
    let out = w.sudo(&w.agent, &["-n", script], &[]);
    world::refused(&out, "script_refused");
    assert!(
        text(&out.stderr).contains(&format!("sudo /bin/sh {script}")),
        "{}",
        text(&out.stderr)
    );
    assert!(w.approvals().is_empty(), "nothing filed");
    let via_sh = ["-n", "/bin/sh", script];
    let id = pending_id(&w.sudo(&w.agent, &via_sh, &[]));
    w.approve(&id, &[]);
    let ran = w.sudo(&w.agent, &via_sh, &[]);
    assert_eq!(
        text(&ran.stdout),
        "script ran as 0\n",
        "{}",
        text(&ran.stderr)
    );
}

/// What the broker's child sets up before the approved file runs, seen from inside it: a new
/// session and process group of its own, nothing but descriptors 0-2, and for a target other
/// than root an empty bounding and ambient capability set and `no_new_privs`, so a setuid file
/// it runs gains nothing. Also `-g` (the group) and an approved `NAME=value` reach it.
#[test]
fn system_command_runs_in_its_own_session_with_only_stdio_and_no_privileges_to_regain() {
    let Some(w) = World::started(&[]) else { return };
    let probe = world::install_root_exe(occ_tests::bin("occ-argv-probe"), "argv-probe");
    let probe = probe.to_str().unwrap();
    let run = |args: &[&str]| -> Value {
        let id = pending_id(&w.sudo(&w.agent, args, &[]));
        w.approve(&id, &[]);
        let ran = w.sudo(&w.agent, args, &[]);
        assert_eq!(ran.status.code(), Some(0), "{}", text(&ran.stderr));
        serde_json::from_slice(&ran.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&ran.stdout)))
    };
    let target = w.target.clone();
    for (what, args) in [
        ("root", vec!["-n", probe]),
        ("-u", vec!["-n", "-u", TARGET, probe]),
        (
            "-g",
            vec!["-n", "-u", TARGET, "-g", TARGET, "OCC_PROBE=set", probe],
        ),
    ] {
        let p = run(&args);
        assert_eq!(p["sid"], p["pid"], "{what}: a session of its own: {p}");
        assert_eq!(p["pgid"], p["pid"], "{what}: its own process group: {p}");
        assert_eq!(p["fds"], json!([0, 1, 2]), "{what}: only stdio: {p}");
        if what == "root" {
            assert_eq!(p["uid"], 0, "{p}");
            continue;
        }
        assert_eq!(p["uid"], target.uid, "{what}: {p}");
        assert_eq!(p["cap_bnd"], "0000000000000000", "{what}: {p}");
        assert_eq!(p["cap_amb"], "0000000000000000", "{what}: {p}");
        assert_eq!(p["no_new_privs"], "1", "{what}: {p}");
        if what == "-g" {
            assert_eq!(p["gid"], target.gid, "{p}");
            assert_eq!(p["env"]["OCC_PROBE"], "set", "{p}");
        }
    }
}

/// The caller's kept variables are part of what was approved: the same command with another
/// `LANG` (kept by the default env_keep) is a new request, and the approved one runs with the
/// approved value.
#[test]
fn system_kept_variables_are_bound_into_the_grant() {
    let Some(w) = World::started(&[]) else { return };
    let probe = world::install_root_exe(occ_tests::bin("occ-argv-probe"), "argv-probe");
    let args = ["-n", probe.to_str().unwrap()];
    let c = [("LANG", "C")];
    let id = pending_id(&w.sudo(&w.agent, &args, &c));
    w.approve(&id, &[]);
    // Another LANG: not what was approved, a new pending request; the grant is not spent.
    let other = w.sudo(&w.agent, &args, &[("LANG", "C.UTF-8")]);
    assert_ne!(pending_id(&other), id);
    assert!(other.stdout.is_empty(), "nothing ran");
    let ran = w.sudo(&w.agent, &args, &c);
    assert_eq!(ran.status.code(), Some(0), "{}", text(&ran.stderr));
    let p: Value = serde_json::from_slice(&ran.stdout).unwrap();
    assert_eq!(p["env"]["LANG"], "C", "{p}");
}
