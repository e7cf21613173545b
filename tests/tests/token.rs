//! The approval token end to end (issue 12, item 8), in user mode as the agent user: changing
//! or clearing a token needs the current one, the broker checks it and audits the change with
//! the caller's uid and pid, a chosen token is kept only as a salted argon2id hash and must be
//! at least 20 characters, and approvals check it.

use std::io::Write;
use std::process::{Output, Stdio};

use serde_json::Value;

use crate::approval::{pending_id, ready, text, AgentHome};

/// `occ ARGS` as the agent with `stdin` piped in; returns the output and the process's pid.
fn occ_in(h: &AgentHome, args: &[&str], stdin: &str) -> (Output, u32) {
    let mut c = h.cmd(&h.home.join("bin/occ"));
    c.args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    let pid = child.id();
    let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
    (child.wait_with_output().unwrap(), pid)
}

fn broker_json(h: &AgentHome) -> String {
    std::fs::read_to_string(h.home.join("security/broker.json")).unwrap_or_default()
}

fn approval_cfg(h: &AgentHome) -> Value {
    let v: Value = serde_json::from_str(&broker_json(h)).unwrap();
    v["approval"].clone()
}

/// The last event of `kind`.
fn last(h: &AgentHome, kind: &str) -> Option<Value> {
    h.events()
        .into_iter()
        .rev()
        .find(|e| e["event_type"] == kind)
}

fn count(h: &AgentHome, kind: &str) -> usize {
    h.events()
        .iter()
        .filter(|e| e["event_type"] == kind)
        .count()
}

/// The event names the caller: its uid and the pid of the `occ` process.
fn assert_caller(e: &Value, uid: u32, pid: u32) {
    assert_eq!(e["approver_uid"], Value::from(uid), "{e}");
    assert_eq!(e["approver_pid"], Value::from(pid), "{e}");
}

const CHOSEN: &str = "plum-kettle-orbit-9-lantern";

#[test]
fn changing_or_clearing_the_token_needs_the_current_one_and_is_audited() {
    let Some(ids) = ready() else { return };
    let h = AgentHome::new(ids);

    // No token yet: setting one needs nothing, and starts the broker if none runs.
    let (out, pid) = occ_in(&h, &["token", "set", "--generate", "--json"], "");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let generated = v["token"].as_str().unwrap().to_string();
    assert_eq!(v["token_key"], "token_sha256");
    let set = last(&h, "token_set").expect("token_set audited");
    assert_caller(&set, h.uid, pid);
    assert_eq!(set["token_key"], "token_sha256");
    let before = broker_json(&h);

    // With a token set: no current token, or a wrong one, changes nothing and is audited.
    for (stdin, args) in [
        ("", vec!["token", "set", "--generate"]),
        ("wrong-token\n", vec!["token", "set", "--generate"]),
        ("wrong-token\n", vec!["token", "clear"]),
        (
            &format!("not-{generated}\n{CHOSEN}\n") as &str,
            vec!["token", "set"],
        ),
    ] {
        let failed = count(&h, "token_failed");
        let (out, pid) = occ_in(&h, &args, stdin);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(
            text(&out.stderr).contains("current approval token; nothing changed"),
            "{}",
            text(&out.stderr)
        );
        assert_eq!(broker_json(&h), before, "{args:?} changed broker.json");
        assert_eq!(count(&h, "token_failed"), failed + 1, "{args:?} audited");
        assert_caller(&last(&h, "token_failed").unwrap(), h.uid, pid);
    }

    // A chosen token shorter than 20 characters is refused before anything is sent.
    let (out, _) = occ_in(
        &h,
        &["token", "set"],
        &format!("{generated}\nshort-token-19-char\n"),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("at least 20 characters"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(broker_json(&h), before);

    // The right current token and a chosen one: kept as argon2id only.
    let (out, pid) = occ_in(&h, &["token", "set"], &format!("{generated}\n{CHOSEN}\n"));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("salted argon2id hash"));
    let a = approval_cfg(&h);
    let phc = a["token_argon2id"].as_str().expect("token_argon2id");
    assert!(phc.starts_with("$argon2id$v=19$m="), "{phc}");
    assert!(a.get("token_sha256").is_none(), "{a}");
    assert!(!broker_json(&h).contains(CHOSEN));
    let set = last(&h, "token_set").unwrap();
    assert_caller(&set, h.uid, pid);
    assert_eq!(set["token_key"], "token_argon2id");

    // Approvals check the argon2id token.
    let id = pending_id(&h.sudo(&["-n", "/usr/bin/true"], &[]));
    let (bad, _) = occ_in(&h, &["approve", "--yes", &id], &format!("{generated}\n"));
    assert_eq!(
        bad.status.code(),
        Some(1),
        "the old token no longer approves"
    );
    let (bad, _) = occ_in(
        &h,
        &["approve", "--yes", &id],
        "plum-kettle-orbit-9-lanter\n",
    );
    assert_eq!(bad.status.code(), Some(1));
    assert_eq!(h.pending().len(), 1, "still pending");
    let (good, _) = occ_in(&h, &["approve", "--yes", &id], &format!("{CHOSEN}\n"));
    assert!(good.status.success(), "{}", text(&good.stderr));
    let ran = h.sudo(&["-n", "/usr/bin/true"], &[]);
    assert_eq!(ran.status.code(), Some(0), "{}", text(&ran.stderr));

    // Clearing needs it too, and is audited.
    let (out, _) = occ_in(&h, &["token", "clear"], "");
    assert_eq!(out.status.code(), Some(1));
    assert!(approval_cfg(&h).get("token_argon2id").is_some());
    let (out, pid) = occ_in(&h, &["token", "clear"], &format!("{CHOSEN}\n"));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(approval_cfg(&h), serde_json::json!({}));
    assert_caller(
        &last(&h, "token_cleared").expect("token_cleared"),
        h.uid,
        pid,
    );

    h.stop_broker();
    let log = std::fs::read_to_string(h.home.join("security/privileged-audit.jsonl")).unwrap();
    for secret in [generated.as_str(), CHOSEN] {
        assert!(!log.contains(secret), "a token reached the audit log");
    }
    h.verify_intact();
}

#[test]
fn both_token_keys_at_once_are_refused_naming_them() {
    let Some(ids) = ready() else { return };
    let h = AgentHome::new(ids);
    h.write_security(
        "broker.json",
        r#"{"version": 1, "approval": {
            "token_sha256": "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
            "token_argon2id": "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2g"}}"#,
    );
    let out = h.sudo(&["-n", "/usr/bin/true"], &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("approval.token_argon2id") && err.contains("approval.token_sha256"),
        "{err}"
    );
}

#[test]
fn the_broker_itself_refuses_a_short_chosen_token_and_a_change_without_the_current_one() {
    // Straight onto the socket, past `occ`'s own checks: the broker is the judge.
    let Some(ids) = ready() else { return };
    let h = AgentHome::new(ids);
    pending_id(&h.sudo(&["-n", "/usr/bin/true"], &[]));
    occ_tests::copy_exe(
        occ_tests::bin("occ-sock-probe"),
        h.home.join("bin/occ-sock-probe"),
    );
    h.chown_all();
    let admin = |body: &str| -> Value {
        let out = h
            .cmd(&h.home.join("bin/occ-sock-probe"))
            .arg("admin")
            .arg(h.home.join("run/broker.sock"))
            .arg(body)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let short = admin(r#"{"op":"token","chosen":"nineteen-characters"}"#);
    assert_eq!(short["ok"], false, "{short}");
    assert!(short["reply"]["error"]
        .as_str()
        .unwrap()
        .contains("at least 20"));
    let both = admin(&format!(
        r#"{{"op":"token","chosen":"{CHOSEN}","sha256":"{}"}}"#,
        "a".repeat(64)
    ));
    assert_eq!(both["ok"], false, "{both}");
    assert_eq!(approval_cfg_or_null(&h), Value::Null, "nothing written yet");

    let set = admin(&format!(r#"{{"op":"token","chosen":"{CHOSEN}"}}"#));
    assert_eq!(set["ok"], true, "{set}");
    assert_eq!(set["reply"]["token_key"], "token_argon2id");
    let before = broker_json(&h);
    for body in [
        r#"{"op":"token"}"#.to_string(),
        format!(r#"{{"op":"token","sha256":"{}"}}"#, "b".repeat(64)),
        format!(r#"{{"op":"token","current":"x{CHOSEN}"}}"#),
    ] {
        let r = admin(&body);
        assert_eq!(r["ok"], false, "{body}: {r}");
        assert_eq!(broker_json(&h), before, "{body} changed the token");
    }
    assert_eq!(count(&h, "token_failed"), 3);
    let cleared = admin(&format!(r#"{{"op":"token","current":"{CHOSEN}"}}"#));
    assert_eq!(cleared["ok"], true, "{cleared}");
    assert!(last(&h, "token_cleared").is_some());
}

/// broker.json's `approval`, or null when the file does not exist.
fn approval_cfg_or_null(h: &AgentHome) -> Value {
    let text = broker_json(h);
    if text.is_empty() {
        return Value::Null;
    }
    let v: Value = serde_json::from_str(&text).unwrap();
    v["approval"].clone()
}
