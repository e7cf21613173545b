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
    w.verify_intact(&[]);
}
