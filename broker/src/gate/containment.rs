//! Containment through the broker's own path: each request is evaluated by the policy, turned
//! into the [`RequestInfo`] the gate files (with its grant digest), approved in the real
//! [`Store`] and looked up as the `grant` module looks it up. Allowing a wrapper once must
//! never let another command through it, and a wrapper never gets a `--session` grant
//! (regressions from agent tools: OpenClaw #23276, PR #57871, PR #93362, the `time` advisory).

use std::collections::BTreeMap;
use std::path::PathBuf;

use occ_policy::{Caller, Context, PolicyConfig};

use super::understand::request_info;
use crate::daemon::conn::PeerCred;
use crate::session::{ApproveError, RequestInfo, Scope, Store};

const NOW: u64 = 1_800_000_000_000;

/// `sudo WORDS…` from the current user in task session `task-1`, as the gate understands it.
fn understood(words: &[&str]) -> RequestInfo {
    let uid = nix::unistd::geteuid().as_raw();
    let caller = Caller::from_uid(uid);
    let env = BTreeMap::from([("OPENCLAW_TASK_SESSION_ID".to_string(), "task-1".to_string())]);
    let ctx = Context::new(caller, PathBuf::from("/"), env);
    let eval = occ_policy::evaluate(words, &ctx, &Ok(PolicyConfig::default()));
    assert!(eval.request.is_some(), "{words:?}: {:?}", eval.outcome);
    let peer = PeerCred {
        pid: 4242,
        uid,
        gid: 0,
    };
    request_info(&eval, &ctx, &peer, "/", None, BTreeMap::new())
}

/// Files `info` and approves it with `scope`.
fn approve(store: &mut Store, info: &RequestInfo, scope: Scope) -> Result<(), ApproveError> {
    let (id, _) = store.submit(info.clone(), NOW, || "id-approved".to_string());
    store.approve(&id, scope, false, NOW).map(|_| ())
}

/// Approving `approved` once covers exactly one run of it and nothing of `other`.
fn assert_contained(approved: &[&str], other: &[&str]) {
    let a = understood(approved);
    let b = understood(other);
    assert!(a.runs_arbitrary_code, "{approved:?} must be flagged");
    assert!(b.runs_arbitrary_code, "{other:?} must be flagged");
    let mut store = Store::new(30, 30);
    assert!(
        matches!(
            approve(&mut store, &a, Scope::Session),
            Err(ApproveError::SessionRefused { .. })
        ),
        "no --session grant for {approved:?}"
    );
    approve(&mut store, &a, Scope::Once).expect("a once approval");
    assert!(
        store.take_grant(&b.digest, &b.view_hash(), NOW).is_none(),
        "{other:?} rode on the grant for {approved:?}"
    );
    assert!(
        store.take_grant(&a.digest, &a.view_hash(), NOW).is_some(),
        "{approved:?}"
    );
    assert!(
        store.take_grant(&a.digest, &a.view_hash(), NOW).is_none(),
        "a once grant is consumed by one run"
    );
}

#[test]
fn rejects_env_wrapper_bypass() {
    assert_contained(&["env", "X=1", "true"], &["env", "X=1", "rm", "-rf", "/"]);
}

#[test]
fn rejects_nice_and_nohup_wrapper_bypass() {
    assert_contained(&["nice", "true"], &["nice", "rm", "-rf", "/"]);
    assert_contained(&["nohup", "true"], &["nohup", "sh"]);
}

#[test]
fn rejects_timeout_and_flock_wrapper_bypass() {
    assert_contained(&["timeout", "5", "true"], &["timeout", "5", "sh"]);
    assert_contained(
        &["flock", "/run/x.lock", "true"],
        &["flock", "/run/x.lock", "rm", "-rf", "/"],
    );
}

#[test]
fn rejects_xargs_and_sh_c_wrapper_bypass() {
    assert_contained(&["xargs", "true"], &["xargs", "rm"]);
    assert_contained(&["sh", "-c", "true"], &["sh", "-c", "true; rm -rf /"]);
}

#[test]
fn session_grants_cover_only_the_same_plain_command_in_the_same_session() {
    let a = understood(&["id", "-u"]);
    assert!(!a.runs_arbitrary_code);
    let mut store = Store::new(30, 30);
    approve(&mut store, &a, Scope::Session).expect("a session grant");
    for _ in 0..3 {
        assert!(
            store.take_grant(&a.digest, &a.view_hash(), NOW).is_some(),
            "reused"
        );
    }
    let other = understood(&["id", "-g"]);
    assert!(store
        .take_grant(&other.digest, &other.view_hash(), NOW)
        .is_none());
    // Thirty idle minutes end it.
    let later = NOW + 30 * 60_000;
    assert!(store.take_grant(&a.digest, &a.view_hash(), later).is_none());
}

#[test]
fn untrusted_requests_never_share_a_trusted_grant() {
    let trusted = understood(&["id", "-u"]);
    let uid = nix::unistd::geteuid().as_raw();
    let env = BTreeMap::from([
        ("OPENCLAW_TASK_SESSION_ID".to_string(), "task-1".to_string()),
        ("OPENCLAW_UNTRUSTED_SOURCE".to_string(), "1".to_string()),
    ]);
    let ctx = Context::new(Caller::from_uid(uid), PathBuf::from("/"), env);
    let eval = occ_policy::evaluate(&["id", "-u"], &ctx, &Ok(PolicyConfig::default()));
    let peer = PeerCred {
        pid: 4242,
        uid,
        gid: 0,
    };
    let real_untrusted = request_info(&eval, &ctx, &peer, "/", None, BTreeMap::new());
    assert_ne!(real_untrusted.digest, trusted.digest);
    let mut store = Store::new(30, 30);
    approve(&mut store, &trusted, Scope::Session).expect("a session grant");
    assert!(store
        .take_grant(&real_untrusted.digest, &real_untrusted.view_hash(), NOW)
        .is_none());
}
