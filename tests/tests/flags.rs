//! Risk flags end to end: `occ explain --json` through the built binary, and (as the agent
//! user, user mode) the broker's approver view, its `--session` refusal and the audit log.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

use crate::approval::{pending_id, ready, text, AgentHome};

/// `occ explain --json -- ARGS` as root with a fresh home, stdin not a terminal.
fn explain_as_root(home: &Path, sudo_args: &[&str]) -> Value {
    let out = Command::new(occ_tests::bin("occ"))
        .args(["explain", "--json", "--"])
        .args(sudo_args)
        .env_remove("OPENCLAW_REQUIRE_POLICY_FILES")
        .env_remove("OPENCLAW_REQUIRE_SESSION_ID")
        .env("OCC_HOME", home)
        .env("OCC_MODE", "user")
        .current_dir("/")
        .stdin(Stdio::null())
        .output()
        .expect("run occ");
    json(&out)
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {} {}",
            text(&out.stdout),
            text(&out.stderr)
        )
    })
}

fn names(v: &Value) -> Vec<String> {
    v["flags"]
        .as_array()
        .unwrap_or_else(|| panic!("flags is an array: {v}"))
        .iter()
        .map(|f| f.as_str().expect("a flag name").to_string())
        .collect()
}

#[test]
fn explain_flags_a_writer_fed_from_a_pipe_and_ex_as_a_code_runner() {
    let home = tempfile::tempdir().expect("home");
    let v = explain_as_root(home.path(), &["tee", "/etc/occ-flags-test"]);
    assert_eq!(names(&v), ["writes_files", "stdin_from_requester"], "{v}");
    assert_eq!(v["runs_arbitrary_code"], false);
    assert_eq!(
        v["requester_writable"],
        serde_json::json!([]),
        "root is never judged"
    );

    let v = explain_as_root(home.path(), &["cat", "/etc/hosts"]);
    assert_eq!(names(&v), Vec::<String>::new(), "{v}");

    if !Path::new("/usr/bin/ex").exists() {
        occ_tests::skip("needs /usr/bin/ex (vim) to show ex is flagged like vi");
        return;
    }
    let v = explain_as_root(home.path(), &["ex", "/etc/hosts"]);
    assert_eq!(v["runs_arbitrary_code"], true, "{v}");
    assert!(
        names(&v).contains(&"runs_arbitrary_code".to_string()),
        "{v}"
    );
}

#[test]
fn requester_writable_input_is_shown_refused_for_sessions_and_audited() {
    let Some(ids) = ready() else { return };
    let h = AgentHome::new(ids);
    // A script in the agent's own directory: the agent can change it after approval.
    let job = h.home.join("job.sh");
    std::fs::write(&job, "#!/bin/sh\ntrue\n").unwrap();
    std::fs::set_permissions(&job, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::chown(&job, Some(h.uid), Some(h.gid)).unwrap();
    let job_s = job.to_string_lossy().into_owned();

    // occ explain as the agent.
    let out = h.occ(&[
        "explain",
        "--json",
        "--",
        "/usr/bin/setarch",
        "x86_64",
        &job_s,
    ]);
    let v = json(&out);
    assert_eq!(v["requester_writable"], serde_json::json!([job_s]), "{v}");
    let flags = names(&v);
    for f in ["runs_arbitrary_code", "requester_writable_input"] {
        assert!(flags.contains(&f.to_string()), "{f} in {v}");
    }

    // Through the shim: the approver sees the flag and the path, and --session is refused
    // for that reason (cat runs no code, so that is the only reason).
    let sid = [("OPENCLAW_TASK_SESSION_ID", "t-flags")];
    let id = pending_id(&h.sudo(&["-n", "/usr/bin/cat", &job_s], &sid));
    let p = h.pending();
    assert_eq!(p.len(), 1);
    assert_eq!(p[0]["requester_writable"], serde_json::json!([job_s]));
    assert_eq!(names(&p[0]), ["requester_writable_input"], "{}", p[0]);
    let shown = h.occ(&["approvals"]);
    assert!(
        text(&shown.stdout).contains(&format!(
            "WARNING: what runs can change after approval: the requester can write {}",
            serde_json::json!([job_s])
        )),
        "{}",
        text(&shown.stdout)
    );
    let out = h.occ(&["approve", "--yes", &id, "--session"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!(
            "what runs can change after approval: the requester can write {job_s}"
        )),
        "{err}"
    );
    assert_eq!(h.pending().len(), 1, "still pending after the refusal");

    // A writer fed from the agent's stdin (the shim's stdin is not a terminal here).
    let _ = pending_id(&h.sudo(&["-n", "/usr/bin/tee", "/etc/occ-flags-test"], &sid));
    let tee = h
        .pending()
        .into_iter()
        .find(|p| p["command"][0] == "/usr/bin/tee")
        .expect("the tee request");
    assert_eq!(
        names(&tee),
        ["writes_files", "stdin_from_requester"],
        "{tee}"
    );

    h.stop_broker();
    let audited = h.events().into_iter().any(|e| {
        e["flags"]
            .as_array()
            .is_some_and(|f| f.iter().any(|x| x == "requester_writable_input"))
            && e["requester_writable"] == serde_json::json!([job_s])
    });
    assert!(audited, "an audit event carries the flags and the path");
    h.verify_intact();
}
