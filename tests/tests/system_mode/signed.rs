//! Signed approvals in system mode: the agent, who may not approve, relays an approver's
//! signature over the admin socket and its command runs; a signature by a key whose principal
//! is the requesting user is refused as self-approval, whoever submits it.

use serde_json::Value;

use super::world::{events_of, World};
use crate::approval::{pending_id, text};
use crate::signed::Signer;

#[test]
fn the_agent_relays_an_approvers_signature_but_its_own_key_cannot_approve() {
    let Some(s) = Signer::new() else { return };
    let Some(w) = World::started(&[]) else { return };
    let approver_key = s.keygen("approver");
    let agent_key = s.keygen("agent");
    w.write_config(
        "allowed_signers",
        &format!(
            "{}@example.com namespaces=\"occ-approval\" {approver_key}\n\
             {} namespaces=\"occ-approval\" {agent_key}\n",
            w.approver.name, w.agent.name
        ),
    );
    let id_u = ["-n", "/usr/bin/id", "-u"];
    let id = pending_id(&w.sudo(&w.agent, &id_u, &[]));

    // The agent may not read the queue, so the approver prints the statement.
    assert_eq!(
        w.occ(&w.agent, &["approvals", "--statement", &id])
            .status
            .code(),
        Some(1)
    );
    let out = w.occ(&w.approver, &["approvals", "--statement", &id]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stmt = text(&out.stdout);
    assert!(stmt.contains(&format!(
        "requester: {} (uid {})\n",
        w.agent.name, w.agent.uid
    )));

    // Signed with a key that maps to the requester: self-approval, refused and audited.
    let own = s.sign("agent", "occ-approval", &stmt);
    let out = w.occ_with_stdin(
        &w.agent,
        &["approve", &id, "--signature", "-"],
        &format!("{stmt}{own}"),
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("(self_approval_refused)"),
        "{}",
        text(&out.stderr)
    );
    let refused: Vec<Value> = events_of("signed_approval_refused");
    assert_eq!(
        refused.last().unwrap()["reason_code"],
        "self_approval_refused"
    );
    assert_eq!(events_of("self_approval_refused").len(), 1);
    assert_eq!(w.approvals().len(), 1, "still pending");

    // The approver's signature, relayed by the agent: approved, and the command runs as root.
    let good = s.sign("approver", "occ-approval", &stmt);
    let out = w.occ_with_stdin(
        &w.agent,
        &["approve", &id, "--signature", "-"],
        &format!("{stmt}{good}"),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let granted = events_of("approval_granted");
    assert_eq!(granted.len(), 1);
    assert_eq!(granted[0]["approver"], w.approver.name.as_str());
    assert_eq!(
        granted[0]["approver_uid"], w.agent.uid,
        "the submitter is recorded too"
    );
    let ran = w.sudo(&w.agent, &id_u, &[]);
    assert_eq!(text(&ran.stdout), "0\n", "{}", text(&ran.stderr));

    // allowed_signers owned by anyone but root steers nothing: the same good signature on a
    // new request is refused, naming the file.
    let signers = std::path::Path::new(super::world::CONFIG_DIR).join("allowed_signers");
    std::os::unix::fs::chown(&signers, Some(w.approver.uid), Some(w.approver.gid)).unwrap();
    let id = pending_id(&w.sudo(&w.agent, &["-n", "/usr/bin/id", "-g"], &[]));
    let out = w.occ(&w.approver, &["approvals", "--statement", &id]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stmt = text(&out.stdout);
    let good = s.sign("approver", "occ-approval", &stmt);
    let out = w.occ_with_stdin(
        &w.agent,
        &["approve", &id, "--signature", "-"],
        &format!("{stmt}{good}"),
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains("(signers_unreadable)") && err.contains("/etc/occ/allowed_signers"),
        "{err}"
    );
    assert_eq!(w.approvals().len(), 1, "still pending");
    w.verify_intact(&[]);
}

/// `approval.require_signature` with `approval.quorum: 2`: two distinct signers, each vote
/// audited; one signer twice counts once; a plain `occ approve` is refused; the grant's terms
/// come from the statements (`uses=2`).
#[test]
fn two_distinct_signers_make_a_quorum_and_signatures_are_the_only_way() {
    let Some(s) = Signer::new() else { return };
    let Some(w) = World::started_with(&[], |b| {
        b["approval"]["quorum"] = serde_json::json!(2);
        b["approval"]["require_signature"] = serde_json::json!(true);
    }) else {
        return;
    };
    let a = s.keygen("a");
    let b = s.keygen("b");
    w.write_config(
        "allowed_signers",
        &format!(
            "{} namespaces=\"occ-approval\" {a}\n{} namespaces=\"occ-approval\" {b}\n",
            w.approver.name, w.other.name
        ),
    );
    let id_u = ["-n", "/usr/bin/id", "-u"];
    let id = pending_id(&w.sudo(&w.agent, &id_u, &[]));
    let plain = w.occ(&w.approver, &["approve", "--yes", &id]);
    assert_eq!(plain.status.code(), Some(1), "{}", text(&plain.stderr));
    assert!(text(&plain.stderr).contains("(signature_required)"));

    let out = w.occ(
        &w.approver,
        &["approvals", "--statement", &id, "--scope", "uses=2"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stmt = text(&out.stdout);
    let relay =
        |bundle: String| w.occ_with_stdin(&w.agent, &["approve", &id, "--signature", "-"], &bundle);
    let first = s.sign("a", "occ-approval", &stmt);
    let out = relay(format!("{stmt}{first}"));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("1 of 2"),
        "{}",
        text(&out.stdout)
    );
    // The same signer again: the same statement is a replay; the vote counts once.
    let again = relay(format!("{stmt}{first}"));
    assert_eq!(again.status.code(), Some(1));
    assert!(
        text(&again.stderr).contains("(signature_replayed)"),
        "{}",
        text(&again.stderr)
    );
    assert_eq!(pending_id(&w.sudo(&w.agent, &id_u, &[])), id, "not yet");

    let second = s.sign("b", "occ-approval", &stmt);
    let out = relay(format!("{stmt}{second}"));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let granted = events_of("approval_granted");
    assert_eq!(granted.len(), 1);
    assert_eq!(
        granted[0]["approvers"],
        serde_json::json!([w.approver.name, w.other.name])
    );
    assert_eq!(granted[0]["grant_terms"], "--uses 2", "{}", granted[0]);
    assert_eq!(events_of("approval_vote").len(), 2);
    // Each signer's vote is re-checked from the log, not only the one the grant names.
    let out = w.occ_root(&["audit", "approvals", "--verify", "--json"]);
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let votes: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|v: &serde_json::Value| v["decision"] == "vote")
        .collect();
    let signers: Vec<(&str, &str)> = votes
        .iter()
        .map(|v| {
            (
                v["signer_principal"].as_str().unwrap_or("-"),
                v["result"].as_str().unwrap_or("-"),
            )
        })
        .collect();
    assert_eq!(
        signers,
        [
            (w.approver.name.as_str(), "verified"),
            (w.other.name.as_str(), "verified")
        ],
        "{}",
        text(&out.stdout)
    );
    for _ in 0..2 {
        let ran = w.sudo(&w.agent, &id_u, &[]);
        assert_eq!(text(&ran.stdout), "0\n", "{}", text(&ran.stderr));
    }
    assert_ne!(
        pending_id(&w.sudo(&w.agent, &id_u, &[])),
        id,
        "two uses, then pending again"
    );
    w.verify_intact(&[]);
}
