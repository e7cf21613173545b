//! Typed refusals: every reason code the gate answers a requester with. A code is part of the
//! wire and audit contract (`(occ: CODE)` on the agent's terminal, `reason_code` in the log),
//! so each one is named here once and never built from a string.

/// Why the gate refused a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The request is not valid UTF-8 or otherwise unusable.
    MalformedRequest,
    /// The event that would let this happen could not be written.
    AuditFailed,
    /// A policy file or the approval stack is broken.
    PolicyInvalid,
    /// `session.require_session_id` and no task session id.
    SessionMissing,
    /// No live grant covers the request (the `grant` module).
    NoGrant,
    /// An approver denied it, or withdrew the approval.
    ApprovalDenied,
    /// It expired without a decision.
    ApprovalExpired,
    /// A token is configured and no token-verified approval exists.
    TokenFailed,
    /// The broker is shutting down.
    BrokerStopping,
    /// The caller hung up while waiting.
    ClientGone,
    /// The real sudo in broker.json is not a root-owned, root-only file.
    RealSudoUnsafe,
    /// User mode: the real sudo would ask a password for the approved run (`sudo -n -l CMD`
    /// fails), so the grant is kept rather than spent on a prompt nobody can answer.
    RealSudoNeedsPassword,
    /// A sudo usage error, answered with sudo's usage text.
    Usage,
    /// The connecting uid is not the broker's.
    PeerUidMismatch,
    /// The gate reached a state it never should; refused rather than guessed.
    InternalError,
    /// System mode: the approved file could not be started.
    ExecFailed,
    /// System mode: a `#!` script; it runs by descriptor only as an interpreter's argument.
    ScriptRefused,
    /// System mode: the caller is not in `requesters`.
    NotARequester,
    /// System mode: the admin caller is not in `approvers` (nor root).
    NotAnApprover,
    /// System mode: the requester tried to approve its own request.
    SelfApproval,
    /// This uid already has `limits.pending_per_uid` requests waiting (both modes).
    TooManyPending,
    /// The request is larger than `limits.request_bytes` (both modes).
    RequestTooLarge,
    /// Refused for load: this uid already holds `limits.connections_per_uid` (or, on the
    /// admin path, `limits.admin_connections_per_uid`) connections (both modes), or the broker
    /// serves its most connections at once.
    BrokerBusy,
    /// The policy engine's own code (`denied_by_rule`, `shell_denied`, …).
    Policy(&'static str),
}

impl Refusal {
    /// The `reason_code` as written on the wire and in the log.
    pub fn code(self) -> &'static str {
        match self {
            Refusal::MalformedRequest => "malformed_request",
            Refusal::AuditFailed => "audit_failed",
            Refusal::PolicyInvalid => "policy_invalid",
            Refusal::SessionMissing => "session_missing",
            Refusal::NoGrant => "no_grant",
            Refusal::ApprovalDenied => "approval_denied",
            Refusal::ApprovalExpired => "approval_expired",
            Refusal::TokenFailed => "token_failed",
            Refusal::BrokerStopping => "broker_stopping",
            Refusal::ClientGone => "client_gone",
            Refusal::RealSudoUnsafe => "real_sudo_unsafe",
            Refusal::RealSudoNeedsPassword => "real_sudo_needs_password",
            Refusal::Usage => "usage",
            Refusal::PeerUidMismatch => "peer_uid_mismatch",
            Refusal::InternalError => "internal_error",
            Refusal::ExecFailed => "exec_failed",
            Refusal::ScriptRefused => "script_refused",
            Refusal::NotARequester => "not_a_requester",
            Refusal::NotAnApprover => "not_an_approver",
            Refusal::SelfApproval => "self_approval_refused",
            Refusal::TooManyPending => "too_many_pending",
            Refusal::RequestTooLarge => "request_too_large",
            Refusal::BrokerBusy => "broker_busy",
            Refusal::Policy(code) => code,
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}
