//! The store's rules for limited grants, revocation, denials and quorum votes.

use super::*;

const MIN: u64 = 60_000;

fn info(d: u8) -> RequestInfo {
    RequestInfo {
        digest: [d; 32],
        submituser: "agent".into(),
        peer_uid: 1001,
        session_id: Some("task-1".into()),
        command: vec!["/usr/bin/true".into()],
        runuser: "root".into(),
        runcwd: "/".into(),
        ..RequestInfo::default()
    }
}

fn ids() -> impl FnMut() -> String {
    let mut n = 0;
    move || {
        n += 1;
        format!("id{n:06}")
    }
}

fn voter(uid: u32) -> Voter {
    Voter {
        uid,
        name: format!("u{uid}"),
    }
}

fn limited(s: &mut Store, i: RequestInfo, uses: Option<u32>, for_ms: Option<u64>) -> Grant {
    let (id, _) = s.submit(i, 0, ids());
    let t = Terms::new(Scope::Once, uses, for_ms).unwrap();
    match s.vote(&id, t, false, &voter(0), 1, 0).unwrap() {
        Decision::Granted(_, g) => *g,
        other => panic!("{other:?}"),
    }
}

#[test]
fn uses_run_n_times_and_the_last_removes_the_grant() {
    let mut s = Store::new(30, 30);
    let g = limited(&mut s, info(1), Some(3), None);
    assert_eq!(
        (g.scope, g.uses_left, g.expires_ms),
        (Scope::Limited, Some(3), None)
    );
    let v = info(1).view_hash();
    for left in [2, 1] {
        assert!(s.take_grant(&[1; 32], &v, 1).is_some());
        assert_eq!(s.grants(1)[0].uses_left, Some(left));
    }
    assert!(s.take_grant(&[1; 32], &v, 1).is_some());
    assert_eq!(s.grant_count(), 0, "the last use removes it");
    assert!(s.take_grant(&[1; 32], &v, 1).is_none());
}

#[test]
fn a_taken_use_put_back_is_counted_again() {
    let mut s = Store::new(30, 30);
    limited(&mut s, info(1), Some(1), None);
    let g = s.take_grant(&[1; 32], &info(1).view_hash(), 1).unwrap();
    assert_eq!(s.grant_count(), 0);
    s.put_back(g);
    assert_eq!(s.grants(1)[0].uses_left, Some(1));
}

#[test]
fn for_lives_until_its_time_then_expires() {
    let mut s = Store::new(30, 30);
    limited(&mut s, info(1), None, Some(10 * MIN));
    let v = info(1).view_hash();
    for t in [1, 5 * MIN, 10 * MIN - 1] {
        assert!(s.take_grant(&[1; 32], &v, t).is_some(), "at {t}");
    }
    assert!(s.take_grant(&[1; 32], &v, 10 * MIN).is_none());
    assert_eq!(s.expire_grants(10 * MIN).len(), 1);
    assert_eq!(s.grant_count(), 0);
}

#[test]
fn repeats_are_refused_for_single_run_requests() {
    type Tweak = fn(&mut RequestInfo);
    let tweaks: [Tweak; 3] = [
        |i| i.runs_arbitrary_code = true,
        |i| i.untrusted = true,
        |i| {
            i.flags = vec!["requester_writable_input".into()];
            i.requester_writable = vec!["/tmp/x".into()];
        },
    ];
    for tweak in tweaks {
        for (uses, for_ms) in [(Some(3), None), (None, Some(MIN)), (Some(2), Some(MIN))] {
            let mut s = Store::new(30, 30);
            let mut i = info(1);
            tweak(&mut i);
            let (id, _) = s.submit(i, 0, ids());
            let t = Terms::new(Scope::Once, uses, for_ms).unwrap();
            let e = s.vote(&id, t, true, &voter(0), 1, 0).unwrap_err();
            assert!(matches!(e, ApproveError::RepeatRefused { .. }), "{e}");
            assert!(
                e.to_string().contains("one approval covers one run only"),
                "{e}"
            );
            let one = Terms::new(Scope::Once, Some(1), for_ms).unwrap();
            assert!(s.vote(&id, one, true, &voter(0), 1, 0).is_ok());
        }
    }
}

#[test]
fn revoke_by_id_session_and_all() {
    let mut s = Store::new(30, 30);
    let mut gen = ids();
    let mut made = Vec::new();
    for d in 1..=4 {
        let mut i = info(d);
        i.session_id = Some(format!("s{}", d % 2));
        let (id, _) = s.submit(i, 0, &mut gen);
        s.approve(&id, Scope::Once, false, 0).unwrap();
        made.push(id);
    }
    assert_eq!(s.revoke_id(&made[0]).map(|g| g.digest), Some([1; 32]));
    assert!(s.revoke_id(&made[0]).is_none());
    let gone: Vec<String> = s
        .revoke(Some("s0"))
        .into_iter()
        .map(|g| g.request_id)
        .collect();
    assert_eq!(gone, vec![made[1].clone(), made[3].clone()]);
    assert_eq!(s.revoke(None).len(), 1);
    assert_eq!(s.grant_count(), 0);
}

#[test]
fn a_denial_answers_the_same_request_from_the_same_caller_until_its_window_ends() {
    let mut s = Store::new(30, 30);
    let (id, _) = s.submit(info(1), 0, ids());
    s.deny(&id, Some("not now".into())).unwrap();
    let d = s.denial_of(&info(1), MIN).expect("remembered");
    assert_eq!(d.note.as_deref(), Some("not now"));
    let mut other_caller = info(1);
    other_caller.peer_uid = 7;
    assert!(s.denial_of(&other_caller, MIN).is_none());
    assert!(s.denial_of(&info(2), MIN).is_none());
    assert!(
        s.denial_of(&info(1), 30 * MIN).is_none(),
        "the window ended"
    );
    // A denied grant is remembered too, from the deny on.
    let (id, _) = s.submit(info(3), 0, ids());
    s.approve(&id, Scope::Once, false, 0).unwrap();
    assert!(s.deny_grant(&id, None, 5 * MIN).is_some());
    assert_eq!(s.grant_count(), 0);
    assert!(s.denial_of(&info(3), 34 * MIN).is_some());
    // Kept across a restart.
    let snap: Snapshot = serde_json::from_str(&serde_json::to_string(&s.state()).unwrap()).unwrap();
    let mut back = Store::new(30, 30);
    back.restore(snap, 6 * MIN);
    assert!(back.denial_of(&info(3), 6 * MIN).is_some());
}

#[test]
fn a_quorum_needs_distinct_voters_on_the_same_terms() {
    let mut s = Store::new(30, 30);
    let (id, _) = s.submit(info(1), 0, ids());
    let once = Terms::of(Scope::Once);
    match s.vote(&id, once, false, &voter(10), 2, 0).unwrap() {
        Decision::Voted { votes, quorum, .. } => assert_eq!((votes, quorum), (1, 2)),
        other => panic!("{other:?}"),
    }
    assert_eq!(s.grant_count(), 0);
    assert!(matches!(
        s.vote(&id, once, false, &voter(10), 2, 0),
        Err(ApproveError::AlreadyVoted { .. })
    ));
    let three = Terms::new(Scope::Once, Some(3), None).unwrap();
    assert!(matches!(
        s.vote(&id, three, false, &voter(11), 2, 0),
        Err(ApproveError::TermsDiffer { .. })
    ));
    match s.vote(&id, once, false, &voter(11), 2, 0).unwrap() {
        Decision::Granted(p, _) => assert_eq!(p.votes.len(), 2),
        other => panic!("{other:?}"),
    }
    assert_eq!(s.grant_count(), 1);
}

#[test]
fn old_snapshots_load_and_damaged_limited_grants_cover_nothing() {
    let old = serde_json::json!({
        "version": 1,
        "grants": [{
            "digest": occ_base::hex::encode(&[1u8; 32]),
            "view": occ_base::hex::encode(&info(1).view_hash()),
            "scope": "once", "request_id": "old00001", "caller_uid": 1001,
            "session_id": null, "created_ms": 0,
        }, {
            "digest": occ_base::hex::encode(&[2u8; 32]),
            "view": occ_base::hex::encode(&info(2).view_hash()),
            "scope": "limited", "request_id": "old00002", "caller_uid": 1001,
            "session_id": null, "created_ms": 0,
        }],
        "sessions": {},
        "pending": [{"id": "p1", "info": serde_json::to_value(info(4)).unwrap(),
                     "created_ms": 0, "expires_ms": 30 * MIN}],
    });
    let snap: Snapshot = serde_json::from_value(old).expect("an old snapshot parses");
    let mut s = Store::new(30, 30);
    s.restore(snap, 1);
    assert!(s.take_grant(&[1; 32], &info(1).view_hash(), 1).is_some());
    assert!(
        s.peek_grant(&[2; 32], 1).is_none(),
        "neither a count nor a time"
    );
    assert!(s.pending_by_id("p1").is_some_and(|p| p.votes.is_empty()));
}
