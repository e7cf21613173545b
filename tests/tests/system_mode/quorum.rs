//! The two-person rule: with `approval.quorum: 2` a request runs only after two distinct
//! approvers (neither the requester) voted for it; one approver voting twice counts once, each
//! vote is audited, `occ approvals` shows `1 of 2`, and a deny from either ends the request.

use serde_json::{json, Value};

use super::world::{events_of, World, APPROVER, OTHER};
use crate::approval::{pending_id, text};

fn quorum_world() -> Option<World> {
    World::started_with(&[], |b| {
        b["approvers"] = json!([APPROVER, OTHER]);
        b["approval"]["quorum"] = json!(2);
    })
}

#[test]
fn system_quorum_needs_two_distinct_approvers_and_audits_each_vote() {
    let Some(w) = quorum_world() else { return };
    let id_u = ["-n", "/usr/bin/id", "-u"];
    let id = pending_id(&w.sudo(&w.agent, &id_u, &[]));
    let list = w.approvals();
    assert_eq!(list[0]["quorum"], 2);
    assert_eq!(list[0]["votes"], json!([]));

    let first = w.occ(&w.approver, &["approve", "--yes", &id]);
    assert!(first.status.success(), "{}", text(&first.stderr));
    assert!(
        text(&first.stdout).contains(&format!("voted for #{id}: 1 of 2 approvals")),
        "{}",
        text(&first.stdout)
    );
    // `occ approvals` shows 1 of 2 and who voted.
    let shown = text(&w.occ(&w.other, &["approvals"]).stdout);
    assert!(
        shown.contains(&format!("    approvals: 1 of 2 (voted: {APPROVER})")),
        "{shown}"
    );
    // Not yet: the agent's request is still the same pending one.
    assert_eq!(pending_id(&w.sudo(&w.agent, &id_u, &[])), id);
    // The same approver again does not count twice.
    let twice = w.occ(&w.approver, &["approve", "--yes", &id]);
    assert_eq!(twice.status.code(), Some(1));
    assert!(
        text(&twice.stderr).contains("already voted"),
        "{}",
        text(&twice.stderr)
    );
    assert_eq!(w.approvals()[0]["votes"], json!([APPROVER]));
    // Different terms from the second approver are refused: both must approve the same thing.
    let other_terms = w.occ(&w.other, &["approve", "--yes", &id, "--uses", "2"]);
    assert_eq!(other_terms.status.code(), Some(1));
    assert!(
        text(&other_terms.stderr).contains("has a vote for `once`"),
        "{}",
        text(&other_terms.stderr)
    );

    let second = w.occ(&w.other, &["approve", "--yes", &format!("#{id}")]);
    assert!(second.status.success(), "{}", text(&second.stderr));
    assert!(text(&second.stdout).contains(&format!("approved #{id} (once)")));
    let ran = w.sudo(&w.agent, &id_u, &[]);
    assert_eq!(text(&ran.stdout), "0\n", "{}", text(&ran.stderr));

    let votes = events_of("approval_vote");
    let voters: Vec<(&Value, &Value)> = votes
        .iter()
        .map(|e| (&e["approver_uid"], &e["votes"]))
        .collect();
    assert_eq!(
        voters,
        vec![
            (&json!(w.approver.uid), &json!(1)),
            (&json!(w.other.uid), &json!(2))
        ]
    );
    let granted = events_of("approval_granted");
    assert_eq!(granted.len(), 1);
    assert_eq!(granted[0]["approvers"], json!([APPROVER, OTHER]));
    let started = events_of("exec_start");
    assert_eq!(started.len(), 1);
    // The run names both approvers.
    assert_eq!(
        started[0]["approver"],
        format!("{APPROVER}, {OTHER}"),
        "{}",
        started[0]
    );
    w.verify_intact(&[]);
}

#[test]
fn system_quorum_deny_from_either_approver_ends_the_request() {
    let Some(w) = quorum_world() else { return };
    let id_u = ["-n", "/usr/bin/id", "-u"];
    let id = pending_id(&w.sudo(&w.agent, &id_u, &[]));
    w.approve(&id, &[]);
    let out = w.occ(&w.other, &["deny", &id, "--note", "not on a Friday"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(w.approvals().is_empty());
    let again = w.sudo(&w.agent, &id_u, &[]);
    assert_eq!(
        text(&again.stderr),
        "sudo: an approver denied this request: not on a Friday (occ: approval_denied)\n"
    );
    assert_eq!(again.status.code(), Some(1));
    let late = w.occ(&w.other, &["approve", "--yes", &id]);
    assert_eq!(late.status.code(), Some(1));
    assert_eq!(events_of("approval_vote").len(), 1);
    assert!(events_of("approval_granted").is_empty());
    assert!(events_of("exec_start").is_empty());
}

/// Every view of a pending request says the same quorum: the list, the notifier's message and
/// a watcher's event all carry `"quorum": 2`, and the watcher sees the first vote.
#[test]
fn system_quorum_is_in_the_notifiers_message_and_the_watchers_events() {
    use std::os::unix::fs::PermissionsExt;
    use std::time::{Duration, Instant};

    use crate::notify::{next_json, watch_json};

    // The notifier runs as the approver and appends each message to a file it can write.
    let dir = tempfile::Builder::new()
        .prefix("occ-quorum-notify")
        .tempdir()
        .unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o1777)).unwrap();
    let sink = dir.path().join("messages.jsonl");
    let sink_arg = sink.display().to_string();
    let Some(w) = World::started_with(&[], |b| {
        b["approvers"] = json!([APPROVER, OTHER]);
        b["approval"]["quorum"] = json!(2);
        b["approval"]["notify"] = json!({
            "argv": ["/usr/bin/tee", "-a", sink_arg],
            "user": APPROVER,
            "timeout_seconds": 10,
        });
    }) else {
        return;
    };
    let (mut watch, rx, deadline) = watch_json(w.occ_cmd(&w.other));
    assert_eq!(next_json(&rx, deadline)["event"], "watching");

    let id = pending_id(&w.sudo(&w.agent, &["-n", "/usr/bin/id", "-u"], &[]));
    let added = next_json(&rx, deadline);
    assert_eq!(
        (added["event"].as_str(), added["id"].as_str()),
        (Some("added"), Some(id.as_str()))
    );
    assert_eq!(added["request"]["quorum"], 2, "{added}");
    assert_eq!(w.approvals()[0]["quorum"], 2);

    let message: Value = loop {
        if let Some(line) = std::fs::read_to_string(&sink)
            .ok()
            .and_then(|t| t.lines().next().map(str::to_owned))
        {
            break serde_json::from_str(&line).unwrap();
        }
        assert!(Instant::now() < deadline, "the notifier wrote nothing");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(message["id"], id.as_str());
    assert_eq!(message["quorum"], 2, "{message}");
    let _ = watch.kill();
    let _ = watch.wait();
}
