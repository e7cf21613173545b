//! The store's rules: ids, expiry, scopes, the idle timeout, votes, and restarts.

use super::*;

const MIN: u64 = 60_000;

/// A pending request whose shown command and digest disagree (what a forged restart
/// snapshot can hold) is approved for what it shows, never for the digest's command.
#[test]
fn an_approval_covers_only_what_the_approver_was_shown() {
    let mut shown = info(1);
    shown.command = vec!["/usr/bin/id".into(), "-u".into()];
    let mut hidden = info(1);
    hidden.command = vec!["/usr/bin/rm".into(), "-rf".into(), "/".into()];
    assert_eq!(
        shown.digest, hidden.digest,
        "the forgery: one digest, two views"
    );
    let mut s = Store::new(30, 30);
    let (id, _) = s.submit(shown.clone(), 0, || "forged01".into());
    s.approve(&id, Scope::Once, false, 1).expect("approved");
    assert!(
        s.take_grant(&hidden.digest, &hidden.view_hash(), 2)
            .is_none(),
        "the hidden command rides on nothing"
    );
    assert!(s.take_grant(&shown.digest, &shown.view_hash(), 2).is_some());
    // A grant kept from before views were bound covers nothing.
    let old: Grant = serde_json::from_value(serde_json::json!({
        "digest": occ_base::hex::encode(&[3u8; 32]),
        "scope": "once",
        "request_id": "old00001",
        "caller_uid": 1001,
        "session_id": null,
        "created_ms": 0,
    }))
    .expect("an old grant parses");
    s.grants.insert(old.digest, old);
    assert!(s.peek_grant(&[3; 32], 1).is_none());
}

fn info(d: u8) -> RequestInfo {
    RequestInfo {
        digest: [d; 32],
        submituser: "agent".into(),
        peer_uid: 1001,
        peer_pid: 42,
        session_id: Some("task-1".into()),
        command: vec!["/usr/bin/true".into()],
        runuser: "root".into(),
        rungroup: None,
        runcwd: "/".into(),
        env: BTreeMap::new(),
        reason: None,
        untrusted: false,
        runs_arbitrary_code: false,
        flags: Vec::new(),
        requester_writable: Vec::new(),
        kept_env: BTreeMap::new(),
        ..RequestInfo::default()
    }
}

#[test]
fn system_state_round_trips_pending_requests_and_ids() {
    let mut st = Store::new(30, 30);
    let mut n = 0;
    let (a, _) = st.submit(info(1), 1_000, || {
        n += 1;
        format!("id{n}")
    });
    let (b, _) = st.submit(info(2), 1_000, || "idb".into());
    st.approve(&b, Scope::Once, false, 2_000).unwrap();
    let text = serde_json::to_string(&st.state()).unwrap();
    let mut back = Store::new(30, 30);
    back.restore(serde_json::from_str(&text).unwrap(), 3_000);
    assert_eq!(back.pending_by_id(&a).map(|p| p.info.digest), Some([1; 32]));
    assert!(
        back.take_grant(&[2; 32], &info(2).view_hash(), 3_000)
            .is_some(),
        "the once grant"
    );
    // An issued id is never handed out again, even after the restart.
    let (c, _) = back.submit(info(3), 4_000, {
        let mut tries = vec!["idb".to_string(), "id1".to_string(), "fresh".to_string()];
        move || tries.remove(0)
    });
    assert_eq!(c, "fresh");
}

fn ids() -> impl FnMut() -> String {
    let mut n = 0;
    move || {
        n += 1;
        format!("id{n:06}")
    }
}

#[test]
fn identical_pending_request_gets_the_same_id() {
    let mut s = Store::new(30, 30);
    let mut gen = ids();
    let (a, new_a) = s.submit(info(1), 0, &mut gen);
    let (b, new_b) = s.submit(info(1), 1000, &mut gen);
    let (c, _) = s.submit(info(2), 1000, &mut gen);
    assert_eq!((a.as_str(), new_a, new_b), (b.as_str(), true, false));
    assert_ne!(a, c);
}

#[test]
fn ids_are_never_reused_even_when_the_generator_repeats() {
    let mut s = Store::new(30, 30);
    let seq = ["aaaaaaaa", "aaaaaaaa", "bbbbbbbb"];
    let mut i = 0;
    let mut gen = || {
        i += 1;
        seq[i - 1].to_string()
    };
    let (a, _) = s.submit(info(1), 0, &mut gen);
    s.deny(&a, None).unwrap();
    let (b, _) = s.submit(info(2), 0, &mut gen);
    assert_eq!((a.as_str(), b.as_str()), ("aaaaaaaa", "bbbbbbbb"));
}

#[test]
fn pending_requests_expire() {
    let mut s = Store::new(30, 30);
    let (id, _) = s.submit(info(1), 0, ids());
    assert!(s.expire(30 * MIN - 1).is_empty());
    let gone = s.expire(30 * MIN);
    assert_eq!(gone.len(), 1);
    assert_eq!(s.outcome(&id), Some(&Outcome::Expired));
    assert!(matches!(
        s.approve(&id, Scope::Once, false, 30 * MIN),
        Err(ApproveError::UnknownId(_))
    ));
}

#[test]
fn once_grant_is_consumed_by_one_run() {
    let mut s = Store::new(30, 30);
    let (id, _) = s.submit(info(1), 0, ids());
    s.approve(&id, Scope::Once, false, 0).unwrap();
    assert!(s.take_grant(&[1; 32], &info(1).view_hash(), 1).is_some());
    assert!(s.take_grant(&[1; 32], &info(1).view_hash(), 2).is_none());
}

#[test]
fn grant_never_covers_a_different_digest() {
    let mut s = Store::new(30, 30);
    let (id, _) = s.submit(info(1), 0, ids());
    s.approve(&id, Scope::Session, false, 0).unwrap();
    assert!(s.take_grant(&[2; 32], &info(2).view_hash(), 1).is_none());
}

#[test]
fn session_grant_slides_and_ends_after_idle_timeout() {
    let mut s = Store::new(30, 30);
    let (id, _) = s.submit(info(1), 0, ids());
    s.approve(&id, Scope::Session, false, 0).unwrap();
    assert!(s
        .take_grant(&[1; 32], &info(1).view_hash(), 20 * MIN)
        .is_some());
    assert!(
        s.take_grant(&[1; 32], &info(1).view_hash(), 49 * MIN)
            .is_some(),
        "activity slides the window"
    );
    assert!(
        s.take_grant(&[1; 32], &info(1).view_hash(), 79 * MIN)
            .is_none(),
        "idle 30 minutes"
    );
    assert_eq!(s.expire_sessions(79 * MIN), vec!["task-1".to_string()]);
    assert_eq!(s.grant_count(), 0);
}

#[test]
fn session_scope_refused_for_code_runners_untrusted_and_sessionless() {
    type Tweak = fn(&mut RequestInfo);
    let tweaks: [(Tweak, bool); 3] = [
        (|i| i.runs_arbitrary_code = true, false),
        (|i| i.untrusted = true, true),
        (|i| i.session_id = None, false),
    ];
    for (tweak, confirm) in tweaks {
        let mut s = Store::new(30, 30);
        let mut i = info(1);
        tweak(&mut i);
        let (id, _) = s.submit(i, 0, ids());
        assert!(matches!(
            s.approve(&id, Scope::Session, confirm, 0),
            Err(ApproveError::SessionRefused { .. })
        ));
        assert!(s.approve(&id, Scope::Once, confirm, 0).is_ok());
    }
}

/// What runs can change after approval: the requester can write an argument's file, or
/// feeds a writer's stdin. One line per case: the flags, the paths, words the why names.
#[test]
fn session_scope_refused_when_the_requester_can_change_what_runs() {
    let cases: [(&[&str], &[&str], &str); 3] = [
        (
            &["requester_writable_input"],
            &["/home/agent/job.sh"],
            "the requester can write /home/agent/job.sh",
        ),
        (
            &["writes_files", "stdin_from_requester"],
            &[],
            "the requester supplies the content on stdin",
        ),
        (
            &["writes_files", "requester_writable_input"],
            &["/tmp/a", "/tmp/b"],
            "the requester can write /tmp/a, /tmp/b",
        ),
    ];
    for (flags, paths, why_has) in cases {
        let mut s = Store::new(30, 30);
        let mut i = info(1);
        i.flags = flags.iter().map(|f| f.to_string()).collect();
        i.requester_writable = paths.iter().map(|p| p.to_string()).collect();
        let (id, _) = s.submit(i, 0, ids());
        match s.approve(&id, Scope::Session, false, 0) {
            Err(e @ ApproveError::SessionRefused { .. }) => {
                let msg = e.to_string();
                assert!(msg.contains("what runs can change after approval"), "{msg}");
                assert!(msg.contains(why_has), "{msg}");
            }
            other => panic!("{flags:?}: {other:?}"),
        }
        let (_, g) = s.approve(&id, Scope::Once, false, 0).expect("once is fine");
        assert_eq!(g.scope, Scope::Once);
    }
    // Writing alone (stdin a terminal) keeps --session.
    let mut s = Store::new(30, 30);
    let mut i = info(1);
    i.flags = vec!["writes_files".into()];
    let (id, _) = s.submit(i, 0, ids());
    assert!(s.approve(&id, Scope::Session, false, 0).is_ok());
}

#[test]
fn untrusted_request_needs_confirmation() {
    let mut s = Store::new(30, 30);
    let mut i = info(1);
    i.untrusted = true;
    let (id, _) = s.submit(i, 0, ids());
    assert!(matches!(
        s.approve(&id, Scope::Once, false, 0),
        Err(ApproveError::UntrustedNotConfirmed(_))
    ));
    assert!(s.approve(&id, Scope::Once, true, 0).is_ok());
}

#[test]
fn drops_by_session_caller_and_all() {
    let mut s = Store::new(30, 30);
    let mut gen = ids();
    for d in 1..=3 {
        let mut i = info(d);
        i.peer_uid = if d == 3 { 7 } else { 1001 };
        i.session_id = Some(format!("s{}", d % 2));
        let (id, _) = s.submit(i, 0, &mut gen);
        s.approve(&id, Scope::Once, false, 0).unwrap();
    }
    assert_eq!(s.drop_caller(7), 1);
    assert_eq!(s.drop_session("s1"), 1);
    assert_eq!(s.drop_all(), 1);
}

#[test]
fn reset_timestamp_keeps_only_the_once_grant_for_this_request() {
    let mut s = Store::new(30, 30);
    let mut gen = ids();
    let (a, _) = s.submit(info(1), 0, &mut gen);
    s.approve(&a, Scope::Once, false, 0).unwrap();
    let (b, _) = s.submit(info(2), 0, &mut gen);
    s.approve(&b, Scope::Session, false, 0).unwrap();
    assert_eq!(s.drop_caller_keeping_once(1001, &[1; 32]), 1);
    assert!(s.take_grant(&[1; 32], &info(1).view_hash(), 1).is_some());
    assert!(s.take_grant(&[2; 32], &info(2).view_hash(), 1).is_none());
    // A session grant for this very request is dropped too: -k means ask again.
    let (c, _) = s.submit(info(3), 0, &mut gen);
    s.approve(&c, Scope::Session, false, 0).unwrap();
    assert_eq!(s.drop_caller_keeping_once(1001, &[3; 32]), 1);
}

#[test]
fn snapshot_round_trips_live_grants_only() {
    let mut s = Store::new(30, 30);
    let (id, _) = s.submit(info(1), 0, ids());
    s.approve(&id, Scope::Session, false, 0).unwrap();
    let json = serde_json::to_string(&s.snapshot()).unwrap();
    let snap: Snapshot = serde_json::from_str(&json).unwrap();
    let mut fresh = Store::new(30, 30);
    fresh.restore(snap, 10 * MIN);
    assert!(fresh.peek_grant(&[1; 32], 10 * MIN).is_some());
    let snap: Snapshot = serde_json::from_str(&json).unwrap();
    let mut late = Store::new(30, 30);
    late.restore(snap, 31 * MIN);
    assert_eq!(late.grant_count(), 0);
}

#[test]
fn random_ids_match_the_documented_shape() {
    for _ in 0..100 {
        let id = random_id().unwrap();
        assert_eq!(id.len(), 8);
        assert!(id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()));
    }
}
