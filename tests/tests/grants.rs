//! Grants after the approval, end to end through the real shim and `occ` as the agent user:
//! `occ approve` shows the request and asks on a terminal; `--uses` and `--for` grants run the
//! approved request a number of times or until a time, never for code runners; `occ grants`
//! lists them and `occ revoke`/`occ deny` end them; a denied request is answered with its
//! denial. Every step is checked in the audit log.

use std::path::Path;
use std::process::{Output, Stdio};

use serde_json::Value;

use crate::approval::{pending_id, pending_line, pty_ready, ready, text, types, AgentHome};

const ID_U: [&str; 3] = ["-n", "/usr/bin/id", "-u"];

fn ok(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what}: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

fn grants(h: &AgentHome) -> Vec<Value> {
    let out = h.occ(&["grants", "--json"]);
    ok(&out, "occ grants --json");
    serde_json::from_slice::<Value>(&out.stdout)
        .unwrap()
        .as_array()
        .cloned()
        .unwrap()
}

fn of_type(events: &[Value], t: &str) -> Vec<Value> {
    events
        .iter()
        .filter(|e| e["event_type"] == t)
        .cloned()
        .collect()
}

/// The runs, `--uses 3`: three runs of exactly the approved request, each counted down in
/// `occ grants`, then the next one is pending again. `#ID` is accepted as `occ approvals`
/// prints it, and the pending line names the expiry `occ approvals` shows.
#[test]
fn uses_runs_the_request_n_times_then_it_is_pending_again() {
    let Some(ids) = ready() else { return };
    let h = AgentHome::new(ids);
    let line = pending_line(&h.sudo(&ID_U, &[]));
    assert!(!line.confirm_untrusted);
    let listed = h.pending();
    assert_eq!(listed[0]["expires_at"], line.expires_at.as_str());
    let id = line.id;

    let out = h.occ(&["approve", "--yes", &format!("#{id}"), "--uses", "3"]);
    ok(&out, "occ approve #ID --uses 3");
    let shown = text(&out.stdout);
    assert!(
        shown.contains(&format!("#{id}  ")) && shown.contains("command: [\"/usr/bin/id\", \"-u\"]"),
        "the request is shown first: {shown}"
    );
    assert!(
        shown.contains(&format!("approved #{id} (--uses 3)")),
        "{shown}"
    );
    let g = grants(&h);
    assert_eq!(g.len(), 1, "{g:?}");
    assert_eq!(g[0]["id"], id.as_str());
    assert_eq!(g[0]["scope"], "limited");
    assert_eq!(g[0]["uses_left"], 3);
    assert_eq!(g[0]["command"], serde_json::json!(["/usr/bin/id", "-u"]));

    for left in [2, 1, 0] {
        let ran = h.sudo(&ID_U, &[]);
        assert_eq!(text(&ran.stdout), "0\n", "{}", text(&ran.stderr));
        let g = grants(&h);
        if left == 0 {
            assert!(g.is_empty(), "the last use removes the grant: {g:?}");
        } else {
            assert_eq!(g[0]["uses_left"], left, "{g:?}");
        }
    }
    // A different request was never covered; the fourth run is a new pending request.
    pending_id(&h.sudo(&["-n", "/usr/bin/id", "-g"], &[]));
    let again = pending_id(&h.sudo(&ID_U, &[]));
    assert_ne!(again, id);
    let listing = h.occ(&["grants"]);
    assert_eq!(text(&listing.stdout), "no live grants\n");

    h.stop_broker();
    let ev = h.events();
    let granted = of_type(&ev, "approval_granted");
    assert_eq!(granted.len(), 1);
    assert_eq!(granted[0]["grant_scope"], "limited");
    assert_eq!(granted[0]["uses_left"], 3);
    assert_eq!(of_type(&ev, "exec_start").len(), 3);
    h.verify_intact();
}

/// `--for`: any number of runs until the time, shown in `occ grants`; then `grant_expired`
/// and pending again. `approval.max_grant_minutes` caps it, naming the key.
#[test]
fn for_lasts_until_its_time_and_is_capped_by_max_grant_minutes() {
    let Some(ids) = ready() else { return };
    let h = AgentHome::with_test_clock(ids);
    h.write_security("broker.json", r#"{"approval": {"max_grant_minutes": 20}}"#);
    let id = pending_id(&h.sudo(&ID_U, &[]));
    let over = h.occ(&["approve", "--yes", &id, "--for", "1h"]);
    assert_eq!(over.status.code(), Some(1), "{}", text(&over.stderr));
    assert!(
        text(&over.stderr).contains("approval.max_grant_minutes (20)"),
        "{}",
        text(&over.stderr)
    );
    assert_eq!(h.pending().len(), 1, "still pending");
    let bad_unit = h.occ(&["approve", "--yes", &id, "--for", "10d"]);
    assert_eq!(bad_unit.status.code(), Some(2));

    ok(
        &h.occ(&["approve", "--yes", &id, "--for", "10m"]),
        "--for 10m",
    );
    let g = grants(&h);
    assert_eq!(g[0]["scope"], "limited");
    assert_eq!(g[0]["uses_left"], Value::Null);
    assert!(
        g[0]["expires_at"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z')),
        "{g:?}"
    );
    for _ in 0..3 {
        let ran = h.sudo(&ID_U, &[]);
        assert_eq!(text(&ran.stdout), "0\n", "{}", text(&ran.stderr));
    }
    h.advance_minutes(11);
    let late = h.sudo(&ID_U, &[]);
    assert_ne!(pending_id(&late), id);
    assert!(grants(&h).is_empty());
    h.stop_broker();
    let ev = h.events();
    assert_eq!(of_type(&ev, "exec_start").len(), 3);
    let expired = of_type(&ev, "grant_expired");
    assert_eq!(expired.len(), 1, "{expired:?}");
    assert_eq!(expired[0]["request_id"], id.as_str());
}

/// A request that runs arbitrary code never gets more than one run from one approval.
#[test]
fn uses_and_for_are_refused_for_code_runners() {
    let Some(ids) = ready() else { return };
    let h = AgentHome::new(ids);
    let sh = ["-n", "/bin/sh", "-c", "id -u"];
    let id = pending_id(&h.sudo(&sh, &[]));
    for terms in [["--uses", "3"], ["--for", "5m"]] {
        let out = h.occ(&["approve", "--yes", &id, terms[0], terms[1]]);
        assert_eq!(out.status.code(), Some(1), "{terms:?}");
        let err = text(&out.stderr);
        assert!(
            err.contains("the command can run arbitrary code")
                && err.contains("one approval covers one run only"),
            "{err}"
        );
    }
    assert_eq!(h.pending().len(), 1);
    assert!(grants(&h).is_empty());
    ok(
        &h.occ(&["approve", "--yes", &id, "--uses", "1"]),
        "--uses 1",
    );
    assert_eq!(text(&h.sudo(&sh, &[]).stdout), "0\n");
    pending_id(&h.sudo(&sh, &[]));
    h.stop_broker();
    assert_eq!(of_type(&h.events(), "exec_start").len(), 1);
}

/// One request: the shim's arguments and the environment added.
type Req<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)]);

/// `occ revoke ID`, `--session S` and `--all` each end grants before they run, audited.
#[test]
fn revoke_by_id_by_session_and_all() {
    let Some(ids) = ready() else { return };
    let h = AgentHome::new(ids);
    let s1 = [("OPENCLAW_TASK_SESSION_ID", "s1")];
    let s2 = [("OPENCLAW_TASK_SESSION_ID", "s2")];
    let reqs: [Req; 4] = [
        (&["-n", "/usr/bin/id", "-u"], &s1),
        (&["-n", "/usr/bin/id", "-g"], &s1),
        (&["-n", "/usr/bin/id", "-G"], &s1),
        (&["-n", "/usr/bin/id", "-u"], &s2),
    ];
    let mut made = Vec::new();
    for (args, env) in reqs {
        let id = pending_id(&h.sudo(args, env));
        ok(&h.occ(&["approve", "--yes", &id, "--uses", "2"]), "approve");
        made.push(id);
    }
    assert_eq!(grants(&h).len(), 4);
    let text_list = text(&h.occ(&["grants"]).stdout);
    assert!(
        text_list.contains(&format!(
            "#{}  limited  uses left 2  expires -  session s1",
            made[0]
        )),
        "{text_list}"
    );

    ok(&h.occ(&["revoke", &format!("#{}", made[0])]), "revoke ID");
    let missing = h.occ(&["revoke", &made[0]]);
    assert_eq!(missing.status.code(), Some(1));
    ok(&h.occ(&["revoke", "--session", "s1"]), "revoke --session");
    let left: Vec<Value> = grants(&h);
    assert_eq!(left.len(), 1);
    assert_eq!(left[0]["id"], made[3].as_str());
    ok(&h.occ(&["revoke", "--all"]), "revoke --all");
    assert!(grants(&h).is_empty());
    // A revoked grant covers nothing.
    pending_id(&h.sudo(reqs[0].0, reqs[0].1));

    h.stop_broker();
    let ev = h.events();
    let revoked = of_type(&ev, "grant_revoked");
    let by: Vec<(&str, &str)> = revoked
        .iter()
        .map(|e| {
            (
                e["request_id"].as_str().unwrap_or(""),
                e["revoked_by"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        by,
        vec![
            (made[0].as_str(), "id"),
            (made[1].as_str(), "session"),
            (made[2].as_str(), "session"),
            (made[3].as_str(), "all"),
        ]
    );
    assert!(of_type(&ev, "exec_start").is_empty());
    h.verify_intact();
}

/// `occ deny` of an approved grant that has not run ends it, and the agent learns the denial
/// with its note instead of filing the request again.
#[test]
fn deny_of_an_approved_grant_revokes_it_and_the_agent_learns_why() {
    let Some(ids) = ready() else { return };
    let h = AgentHome::new(ids);
    let id = pending_id(&h.sudo(&ID_U, &[]));
    ok(&h.occ(&["approve", "--yes", &id]), "approve");
    let out = h.occ(&["deny", &format!("#{id}"), "--note", "changed my mind"]);
    ok(&out, "deny");
    assert_eq!(
        text(&out.stdout),
        format!("denied #{id} (its approved grant is revoked)\n")
    );
    assert!(grants(&h).is_empty());
    let refused = h.sudo(&ID_U, &[]);
    assert_eq!(
        text(&refused.stderr),
        "sudo: an approver denied this request: changed my mind (occ: approval_denied)\n"
    );
    assert_eq!(refused.status.code(), Some(1));
    assert!(refused.stdout.is_empty());
    assert!(h.pending().is_empty());
    h.stop_broker();
    let ev = h.events();
    let revoked = of_type(&ev, "grant_revoked");
    assert_eq!(revoked.len(), 1);
    assert_eq!(revoked[0]["revoked_by"], "deny");
    assert_eq!(revoked[0]["note"], "changed my mind");
    assert_eq!(of_type(&ev, "denial_repeated").len(), 1);
    assert!(of_type(&ev, "exec_start").is_empty());
}

/// Without a terminal and without `--yes`, `occ approve` shows the request and refuses,
/// saying to pass --yes.
#[test]
fn approve_without_a_terminal_or_yes_refuses() {
    let Some(ids) = ready() else { return };
    let h = AgentHome::new(ids);
    let id = pending_id(&h.sudo(&ID_U, &[]));
    let out = h.occ(&["approve", &id]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("pass --yes"),
        "{}",
        text(&out.stderr)
    );
    assert!(
        text(&out.stdout).contains("command: [\"/usr/bin/id\", \"-u\"]"),
        "shown first: {}",
        text(&out.stdout)
    );
    assert_eq!(h.pending().len(), 1, "still pending");
    assert!(grants(&h).is_empty());
}

/// `occ approve ID` on a terminal: it prints the request as `occ approvals` does, asks
/// `Approve? [y/N]`; "n" leaves it pending, "y" approves it.
#[test]
fn approve_asks_y_n_on_a_terminal() {
    let Some(ids) = pty_ready() else { return };
    let h = AgentHome::new(ids);
    let id = pending_id(&h.sudo(&ID_U, &[]));
    let listing = text(&h.occ(&["approvals"]).stdout);
    let on_pty = |answer: &str| {
        let mut c = h.cmd(Path::new("/usr/bin/script"));
        c.args([
            "-qec",
            &format!("{} approve {id}", h.home.join("bin/occ").display()),
            "/dev/null",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut child = c.spawn().unwrap();
        use std::io::Write as _;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(answer.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    };
    let no = on_pty("n\n");
    let shown = text(&no.stdout).replace("\r\n", "\n");
    // The same renderer: every line `occ approvals` shows but the age is there.
    for l in listing.lines().filter(|l| !l.starts_with('#')) {
        assert!(shown.contains(l), "{l:?} missing from {shown:?}");
    }
    assert!(shown.contains("Approve? [y/N] "), "{shown:?}");
    assert_ne!(no.status.code(), Some(0), "{shown:?}");
    assert_eq!(h.pending().len(), 1, "n leaves it pending");

    let yes = on_pty("y\n");
    let shown = text(&yes.stdout);
    assert!(
        shown.contains(&format!("approved #{id} (once)")),
        "{shown:?}"
    );
    assert!(h.pending().is_empty());
    assert_eq!(text(&h.sudo(&ID_U, &[]).stdout), "0\n");
    h.stop_broker();
    assert_eq!(
        types(&h.events())
            .iter()
            .filter(|t| *t == "approval_granted")
            .count(),
        1
    );
}

/// A user-mode broker refuses `approval.quorum` above 1, naming the key: its only approver is
/// the requester itself.
#[test]
fn quorum_above_one_is_refused_in_user_mode() {
    let Some(ids) = ready() else { return };
    let h = AgentHome::new(ids);
    h.write_security("broker.json", r#"{"approval": {"quorum": 2}}"#);
    let out = h.sudo(&ID_U, &[]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("approval.quorum")
            && err.contains("system mode")
            && err.contains("(occ: policy_invalid)"),
        "{err}"
    );
    assert!(out.stdout.is_empty());
}
