//! The attacks that work against user mode, replayed against system mode, where each fails:
//! clearing the token, a socket proxy, a forged grant, a rewritten log, and starving the broker.

use std::process::Stdio;

use serde_json::{json, Value};

use super::world::{self, agent_tries, events_of, refused, World};
use crate::approval::{pending_id, text};

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
        &["approve", "--yes", &id],
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
    approve
        .args(["approve", "--yes", &own_id])
        .env("OCC_MODE", "user");
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
    // The agent's own broker asks the real sudo first (`sudo -n -l`), which says no: the
    // approval is kept and nothing runs.
    assert!(
        text(&ran.stderr).contains("(occ: real_sudo_needs_password)"),
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

/// How large one request may be in the request-size test.
const REQUEST_BYTES: usize = 512;

/// A request larger than `limits.request_bytes` (argv, cwd and forwarded environment) is
/// refused with `request_too_large` and audited; nothing is filed.
#[test]
fn system_request_over_the_configured_size_is_refused_request_too_large() {
    let Some(w) = World::started_with(&[], |b| {
        b["limits"] = json!({"request_bytes": REQUEST_BYTES});
    }) else {
        return;
    };
    let big = "x".repeat(REQUEST_BYTES);
    refused(
        &w.sudo(&w.agent, &["-n", "/usr/bin/echo", &big], &[]),
        "request_too_large",
    );
    assert!(w.approvals().is_empty(), "nothing filed");
    let blocks: Vec<Value> = events_of("policy_block")
        .into_iter()
        .filter(|e| e["reason_code"] == "request_too_large")
        .collect();
    assert_eq!(blocks.len(), 1, "{blocks:?}");
    assert!(blocks[0]["request_bytes"].as_u64().unwrap() > REQUEST_BYTES as u64);
    pending_id(&w.sudo(&w.agent, &["-n", "/usr/bin/echo", "small"], &[]));
}
