//! Typed audit events: every event the gate writes is an [`Event`], and the field sets that
//! several events share (peer, request, pending request, approver) are built only here. It
//! decides nothing; it names what happened.

use std::collections::BTreeMap;

use occ_audit::Value;
use occ_policy::Caller;

use crate::daemon::conn::PeerCred;
use crate::session::{Grant, Pending, RequestInfo};

/// Audit fields under construction.
pub type Fields = BTreeMap<String, Value>;

/// Every event type the gate writes, by its name in the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    BrokerStarted,
    BrokerStopped,
    RequestReceived,
    ProtocolError,
    PolicyBlock,
    SessionMissing,
    ApprovalRequested,
    ApprovalGranted,
    ApprovalDenied,
    ApprovalExpired,
    TokenOk,
    TokenFailed,
    UntrustedSourceConfirmed,
    UntrustedSourceBlock,
    GrantsDropped,
    GrantsRestored,
    StateRejected,
    SessionTimeout,
    ExecStart,
    ExecFinish,
    ExecOutcomeUnknown,
    ExecAbandoned,
    ExecFailed,
    SelfApprovalRefused,
    SignedApprovalRefused,
    ConfigLoaded,
    ConfigReloadFailed,
    TokenSet,
    TokenCleared,
    StateRestored,
    PendingRestored,
    ForwardOverflow,
    ForwardRefused,
    ApprovalVote,
    GrantRevoked,
    GrantExpired,
    DenialRepeated,
    NotifySent,
    NotifyFailed,
}

impl Event {
    /// The `event_type` written to the log (DESIGN.md's event table).
    pub fn name(self) -> &'static str {
        match self {
            Event::BrokerStarted => "broker_started",
            Event::BrokerStopped => "broker_stopped",
            Event::RequestReceived => "request_received",
            Event::ProtocolError => "protocol_error",
            Event::PolicyBlock => "policy_block",
            Event::SessionMissing => "session_missing",
            Event::ApprovalRequested => "approval_requested",
            Event::ApprovalGranted => "approval_granted",
            Event::ApprovalDenied => "approval_denied",
            Event::ApprovalExpired => "approval_expired",
            Event::TokenOk => "token_ok",
            Event::TokenFailed => "token_failed",
            Event::UntrustedSourceConfirmed => "untrusted_source_confirmed",
            Event::UntrustedSourceBlock => "untrusted_source_block",
            Event::GrantsDropped => "grants_dropped",
            Event::GrantsRestored => "grants_restored",
            Event::StateRejected => "state_rejected",
            Event::SessionTimeout => "session_timeout",
            Event::ExecStart => "exec_start",
            Event::ExecFinish => "exec_finish",
            Event::ExecOutcomeUnknown => "exec_outcome_unknown",
            Event::ExecAbandoned => "exec_abandoned",
            Event::ExecFailed => "exec_failed",
            Event::SelfApprovalRefused => "self_approval_refused",
            Event::SignedApprovalRefused => "signed_approval_refused",
            Event::ConfigLoaded => "config_loaded",
            Event::ConfigReloadFailed => "config_reload_failed",
            Event::TokenSet => "token_set",
            Event::TokenCleared => "token_cleared",
            Event::StateRestored => "state_restored",
            Event::PendingRestored => "pending_restored",
            Event::ForwardOverflow => "forward_overflow",
            Event::ForwardRefused => "forward_refused",
            Event::ApprovalVote => "approval_vote",
            Event::GrantRevoked => "grant_revoked",
            Event::GrantExpired => "grant_expired",
            Event::DenialRepeated => "denial_repeated",
            Event::NotifySent => "notify_sent",
            Event::NotifyFailed => "notify_failed",
        }
    }
}

/// A string value.
pub fn s(v: impl Into<String>) -> Value {
    Value::Str(v.into())
}

/// A string, or `null`.
pub fn opt(v: Option<impl Into<String>>) -> Value {
    v.map(|x| Value::Str(x.into())).unwrap_or(Value::Null)
}

/// An array of strings.
pub fn strs(v: &[String]) -> Value {
    Value::Array(v.iter().map(|x| Value::Str(x.clone())).collect())
}

/// An integer, or `null` when it does not fit an i64.
pub fn int(v: impl TryInto<i64>) -> Value {
    v.try_into().map(Value::Int).unwrap_or(Value::Null)
}

/// Who is on the other end of a request connection.
pub fn peer(peer: &PeerCred) -> Fields {
    let caller = Caller::from_uid(peer.uid);
    let mut f = Fields::new();
    f.insert("submituser".into(), s(caller.user));
    f.insert("peer_pid".into(), int(peer.pid));
    f.insert("peer_uid".into(), int(peer.uid));
    f.insert("peer_gid".into(), int(peer.gid));
    f
}

/// A request as the broker understood it, with its pending id once it has one.
pub fn request(p: &PeerCred, i: &RequestInfo, id: Option<&str>) -> Fields {
    let mut f = peer(p);
    f.insert("request_id".into(), opt(id));
    f.insert("session_id".into(), opt(i.session_id.clone()));
    f.insert("command".into(), opt(i.command.first().cloned()));
    f.insert("runargv".into(), strs(&i.command));
    f.insert("runuser".into(), s(i.runuser.clone()));
    f.insert("rungroup".into(), opt(i.rungroup.clone()));
    f.insert("runcwd".into(), s(i.runcwd.clone()));
    f.insert(
        "runenv".into(),
        Value::Array(i.env.iter().map(|(k, v)| s(format!("{k}={v}"))).collect()),
    );
    f.insert("reason".into(), opt(i.reason.clone()));
    f.insert("untrusted".into(), Value::Bool(i.untrusted));
    f.insert("source".into(), source(i.source.as_ref()));
    f.insert(
        "runs_arbitrary_code".into(),
        Value::Bool(i.runs_arbitrary_code),
    );
    f.insert("flags".into(), strs(&i.flags));
    f.insert("requester_writable".into(), strs(&i.requester_writable));
    f
}

/// The caller's terminal: `ttyname` (null without one), and `columns` and `lines` when its
/// size is known, named as sudo names them.
pub fn terminal(f: &mut Fields, ttyname: Option<&str>, winsize: Option<(u16, u16)>) {
    f.insert("ttyname".into(), opt(ttyname));
    if let Some((columns, lines)) = winsize {
        f.insert("columns".into(), int(columns));
        f.insert("lines".into(), int(lines));
    }
}

/// A pending request, as approvals and expiries name it.
pub fn pending(p: &Pending) -> Fields {
    let mut f = Fields::new();
    f.insert("request_id".into(), s(p.id.clone()));
    f.insert("submituser".into(), s(p.info.submituser.clone()));
    f.insert("peer_uid".into(), int(p.info.peer_uid));
    f.insert("peer_pid".into(), int(p.info.peer_pid));
    f.insert("session_id".into(), opt(p.info.session_id.clone()));
    f.insert("command".into(), opt(p.info.command.first().cloned()));
    f.insert("runargv".into(), strs(&p.info.command));
    f.insert("runuser".into(), s(p.info.runuser.clone()));
    f.insert("rungroup".into(), opt(p.info.rungroup.clone()));
    f.insert("runcwd".into(), s(p.info.runcwd.clone()));
    f.insert(
        "runenv".into(),
        Value::Array(
            p.info
                .env
                .iter()
                .map(|(k, v)| s(format!("{k}={v}")))
                .collect(),
        ),
    );
    f.insert("untrusted".into(), Value::Bool(p.info.untrusted));
    f.insert("source".into(), source(p.info.source.as_ref()));
    f
}

/// Where OpenClaw says a request came from, as its own object (`null` when it says nothing).
fn source(src: Option<&occ_policy::Source>) -> Value {
    let Some(src) = src else { return Value::Null };
    let mut f = Fields::new();
    for (k, v) in [
        ("channel", &src.channel),
        ("sender", &src.sender),
        ("chat", &src.chat),
        ("agent", &src.agent),
        ("session_key", &src.session_key),
        ("context_error", &src.context_error),
    ] {
        if let Some(v) = v {
            f.insert(k.into(), s(v.clone()));
        }
    }
    Value::Object(f)
}

/// A grant, as revocations and expiries name it: its request, scope, what is left of it and
/// what it covers.
pub fn grant(g: &Grant) -> Fields {
    let mut f = Fields::new();
    f.insert("request_id".into(), s(g.request_id.clone()));
    f.insert("grant_scope".into(), s(g.scope.as_str()));
    f.insert(
        "uses_left".into(),
        g.uses_left.map(int).unwrap_or(Value::Null),
    );
    f.insert(
        "grant_expires_ms".into(),
        g.expires_ms.map(int).unwrap_or(Value::Null),
    );
    f.insert("session_id".into(), opt(g.session_id.clone()));
    f.insert("peer_uid".into(), int(g.caller_uid));
    f.insert("runargv".into(), strs(&g.command));
    f.insert("runuser".into(), s(g.runuser.clone()));
    f
}

/// A pending request that expired, with the fields the expiry sweep records.
pub fn expired(p: &Pending) -> Fields {
    let mut f = pending(p);
    f.insert("reason_code".into(), s("approval_expired"));
    f
}

/// Who decided, and through which channel.
pub fn approver(peer: &PeerCred, channel: &str) -> Fields {
    let name = Caller::from_uid(peer.uid).user;
    let mut f = Fields::new();
    f.insert("channel".into(), s(channel));
    if channel == "tty" {
        // A keypress on the requester's terminal: no approver process to name.
        f.insert(
            "approver".into(),
            s(format!("{name} at the requester's terminal")),
        );
        f.insert("approver_pid".into(), Value::Null);
    } else {
        f.insert(
            "approver".into(),
            s(format!("{name} (uid {}, pid {})", peer.uid, peer.pid)),
        );
        f.insert("approver_pid".into(), int(peer.pid));
    }
    f.insert("approver_uid".into(), int(peer.uid));
    f
}
