//! The stack and approval: runs the PAM-style approval stack for one understood request, files
//! it in the queue, and waits for a human (or the opt-in terminal prompt). It must never end in
//! an allow unless a live grant or a decided, token-checked approval covers the exact digest.

use std::time::Duration;

use occ_policy::file::{Channel, PolicyConfig};

use super::events::{opt, s, Event};
use super::refusal::Refusal;
use super::tty::{TtyAnswer, TtyPrompt};
use super::understand::Understood;
use super::Gate;
use crate::clock::now_ms;
use crate::daemon::conn::{Conn, PeerCred, Wait};
use crate::escape::escape_text;
use crate::session::{self, Outcome as PendingOutcome, Scope};
use crate::stack::{self, Module, Verdict};

impl Gate {
    /// Runs the approval stack for a request the policy sends to approval.
    pub(super) fn run_stack(
        &self,
        conn: &mut Conn,
        peer: &PeerCred,
        u: &Understood,
        cfg: &PolicyConfig,
    ) {
        if let Err(e) = stack::check(&cfg.broker.approval.stack) {
            let f = u.fields(peer, None);
            self.refuse(conn, f, Event::PolicyBlock, Refusal::PolicyInvalid, &e);
            return;
        }
        let mut request_id: Option<String> = None;
        let mut taken: Option<session::Grant> = None;
        let outcome = stack::evaluate(&cfg.broker.approval.stack, |m| {
            self.run_module(m, conn, peer, u, cfg, &mut request_id, &mut taken)
        });
        let mut fields = u.fields(peer, request_id.as_deref());
        match outcome {
            stack::Outcome::Pending { id } => {
                let (expires_ms, untrusted) = self
                    .store()
                    .pending_by_id(&id)
                    .map(|p| (p.expires_ms, p.info.untrusted))
                    .unwrap_or((now_ms(), u.info.untrusted));
                let at = std::time::UNIX_EPOCH + Duration::from_millis(expires_ms);
                let at = humantime::format_rfc3339_seconds(at).to_string();
                let _ = conn.pending(&id, &at, untrusted);
            }
            stack::Outcome::Deny {
                module,
                reason,
                message,
            } => {
                let event = match reason {
                    Refusal::BrokerStopping => {
                        let _ = conn.refuse_stopping();
                        return;
                    }
                    Refusal::ClientGone => return,
                    Refusal::ApprovalDenied | Refusal::ApprovalExpired => {
                        // Already recorded by the approver's command or the expiry sweep.
                        let _ = conn.refuse(&message, reason.code());
                        return;
                    }
                    Refusal::TooManyPending => {
                        fields.insert("module".into(), s(module.name()));
                        self.refuse_over_limit(conn, peer, fields, reason, &message);
                        return;
                    }
                    Refusal::SessionMissing => Event::SessionMissing,
                    Refusal::TokenFailed => Event::TokenFailed,
                    _ => Event::PolicyBlock,
                };
                fields.insert("module".into(), s(module.name()));
                self.refuse(conn, fields, event, reason, &message);
            }
            stack::Outcome::Allow { .. } => {
                fields.insert(
                    "grant_scope".into(),
                    opt(taken.as_ref().map(|g| g.scope.as_str())),
                );
                // Who approved what runs (sudo_logsrvd's accept record carries it as
                // `occ_approver`).
                if let Some(g) = taken.as_ref().filter(|g| !g.approvers.is_empty()) {
                    fields.insert("approver".into(), s(g.approvers.join(", ")));
                }
                self.exec(conn, fields, u, cfg, taken);
            }
        }
    }

    /// One module of the stack. `request_id` and `taken` (the grant used) carry what the grant
    /// and approve modules learned to the modules after them.
    #[allow(clippy::too_many_arguments)] // reason: one module's whole context, named
    fn run_module(
        &self,
        m: Module,
        conn: &mut Conn,
        peer: &PeerCred,
        u: &Understood,
        cfg: &PolicyConfig,
        request_id: &mut Option<String>,
        taken: &mut Option<session::Grant>,
    ) -> Verdict {
        let token_set = self.stored_token(cfg).is_some();
        match m {
            // Files and policy were decided by the evaluation already (a load failure or a
            // refusal never reaches the stack).
            Module::Files | Module::Policy => Verdict::Success,
            Module::Session => {
                if cfg.broker.session.require_session_id && u.info.session_id.is_none() {
                    Verdict::fail(
                        Refusal::SessionMissing,
                        "a task session id is required: set OPENCLAW_TASK_SESSION_ID",
                    )
                } else {
                    Verdict::Success
                }
            }
            // Untrusted requests go on to a human who must confirm (`--confirm-untrusted`);
            // their digest differs from a trusted one, so no trusted grant covers them.
            Module::Untrusted => Verdict::Success,
            Module::Grant => match self.take_grant(&u.info) {
                Some(g) => {
                    *request_id = Some(g.request_id.clone());
                    *taken = Some(g);
                    Verdict::Success
                }
                None => Verdict::fail(Refusal::NoGrant, "no live grant covers this request"),
            },
            Module::Approve => {
                let verdict = self.approve_module(conn, peer, u, cfg, token_set);
                if let Some(id) = verdict.1 {
                    *request_id = Some(id);
                }
                if let Some(g) = verdict.2 {
                    *taken = Some(g);
                }
                verdict.0
            }
            Module::Token => {
                // The approve command checks the token before it grants anything; a grant
                // exists only if that check passed (or no token is configured).
                if token_set && taken.is_none() {
                    Verdict::fail(Refusal::TokenFailed, "no token-verified approval")
                } else {
                    Verdict::Success
                }
            }
        }
    }

    /// The `approve` module: files the request and, when the caller waits, waits for the
    /// decision. Returns the verdict, the request id and the grant it took.
    fn approve_module(
        &self,
        conn: &mut Conn,
        peer: &PeerCred,
        u: &Understood,
        cfg: &PolicyConfig,
        token_set: bool,
    ) -> (Verdict, Option<String>, Option<session::Grant>) {
        let wait_secs = cfg.broker.approval.wait_seconds;
        let not_waiting =
            u.eval.sudo.as_ref().is_some_and(|r| r.non_interactive) || !u.tty || wait_secs == 0;
        // An approver denied this very request (same digest, view and caller) within its
        // window: the caller learns the denial instead of filing it again.
        if let Some((msg, denied_id)) = self.denial_answer(&u.info) {
            let mut f = u.fields(peer, None);
            f.insert("denied_request_id".into(), s(denied_id));
            f.insert("reason_code".into(), s(Refusal::ApprovalDenied.code()));
            f.insert("message".into(), s(msg.clone()));
            if let Err(e) = self.audit(Event::DenialRepeated, f) {
                let v = Verdict::fail(Refusal::AuditFailed, format!("audit write failed: {e}"));
                return (v, None, None);
            }
            return (Verdict::fail(Refusal::ApprovalDenied, msg), None, None);
        }
        // Both modes: in user mode the cap keeps a flooding agent from filling the queue.
        {
            let store = self.store();
            let filed = store.pending().any(|p| p.info.digest == u.info.digest);
            let limit = cfg.broker.limits.pending_per_uid;
            if !filed && store.pending_of(peer.uid) >= limit {
                let msg = format!(
                    "this user already has {limit} requests waiting for an approver \
                     (broker.json limits.pending_per_uid); wait for a decision"
                );
                return (Verdict::fail(Refusal::TooManyPending, msg), None, None);
            }
        }
        let (id, new) = {
            let mut store = self.store();
            let mut fallback = now_ms();
            store.submit(u.info.clone(), now_ms(), || {
                // Ids name requests; they are not secrets. If the OS random source fails, a
                // counter still gives fresh ids, so submit always ends.
                session::random_id().unwrap_or_else(|_| {
                    fallback = fallback.wrapping_add(1);
                    format!("{:08x}", fallback & 0xffff_ffff)
                })
            })
        };
        if new {
            self.persist();
            let f = u.fields(peer, Some(&id));
            if self.audit(Event::ApprovalRequested, f).is_err() {
                let mut st = self.store();
                let _ = st.deny(&id, Some("audit write failed".into()));
                st.forget_denial(&id);
                drop(st);
                let v = Verdict::fail(Refusal::AuditFailed, "audit write failed");
                return (v, Some(id), None);
            }
            // Watchers learn of it (the watch thread waits on `decided`); the notifier is
            // offered it without waiting.
            self.decided.notify_all();
            let filed = self.store().pending_by_id(&id).cloned();
            if let Some(p) = filed {
                self.offer_notification(&p);
            }
        }
        let wait = Duration::from_secs(wait_secs);
        if not_waiting || conn.waiting(&id, wait).is_err() {
            return (Verdict::Pending { id: id.clone() }, Some(id), None);
        }
        // Untrusted requests are never offered on the terminal: they need
        // `occ approve --confirm-untrusted`. The system broker never offers it: the requester's
        // terminal is the agent's, and approvers are other users.
        let tty_channel = cfg.broker.approval.channels.contains(&Channel::Tty) && !self.system();
        let mut tty = (tty_channel && !u.info.untrusted)
            .then(|| {
                let view = crate::view::PendingView::of_info(&u.info);
                TtyPrompt::open(
                    conn,
                    &format!(
                        "{}occ: run {} as {} in {}? [y/N] ",
                        view.extras(),
                        crate::escape::argv_list(&u.info.command),
                        view.target(),
                        escape_text(&u.info.runcwd)
                    ),
                )
            })
            .flatten();
        let verdict = match self.wait_decision(conn, &id, wait, &mut tty, token_set) {
            Wait::Decided(PendingOutcome::Approved { .. }) => match self.take_grant(&u.info) {
                Some(g) => return (Verdict::Success, Some(id), Some(g)),
                None => Verdict::fail(Refusal::ApprovalDenied, "the approval was withdrawn"),
            },
            Wait::Decided(PendingOutcome::Denied { note }) => Verdict::fail(
                Refusal::ApprovalDenied,
                match note {
                    Some(n) => format!("an approver denied this request: {}", escape_text(&n)),
                    None => "an approver denied this request".into(),
                },
            ),
            Wait::Decided(PendingOutcome::Expired) => Verdict::fail(
                Refusal::ApprovalExpired,
                "the request expired without a decision",
            ),
            Wait::Decided(PendingOutcome::Stopping) | Wait::Stopping => {
                Verdict::fail(Refusal::BrokerStopping, "the broker is stopping")
            }
            Wait::TimedOut => Verdict::Pending { id: id.clone() },
            Wait::ClientGone => Verdict::fail(Refusal::ClientGone, "the caller hung up"),
        };
        (verdict, Some(id), None)
    }

    /// Takes the live grant for this request (its digest, and what it shows the approver),
    /// if any; a spent once-grant is saved at once (system mode), so a restart cannot bring it
    /// back. The store's lock is released before saving.
    fn take_grant(&self, info: &crate::session::RequestInfo) -> Option<crate::session::Grant> {
        let taken = self
            .store()
            .take_grant(&info.digest, &info.view_hash(), now_ms());
        if taken.as_ref().is_some_and(|g| g.scope != Scope::Session) {
            self.persist();
        }
        taken
    }

    /// Waits for a human's decision on `id`, up to `wait`: from the queue, or from the
    /// caller's terminal when the `tty` channel is on.
    fn wait_decision(
        &self,
        conn: &Conn,
        id: &str,
        wait: Duration,
        tty: &mut Option<TtyPrompt>,
        token_set: bool,
    ) -> Wait<PendingOutcome> {
        conn.wait_with(wait, |slice| {
            if let Some(o) = self.store().outcome(id) {
                return Some(o.clone());
            }
            let answer = match tty.as_mut() {
                Some(t) => t.step(slice, token_set),
                None => {
                    let store = self.store();
                    let (store, _) = self
                        .decided
                        .wait_timeout(store, slice)
                        .unwrap_or_else(|p| p.into_inner());
                    return store.outcome(id).cloned();
                }
            };
            let tty_peer = PeerCred {
                pid: 0,
                uid: self.uid,
                gid: 0,
            };
            match answer {
                Some(TtyAnswer::Yes { token }) => {
                    let approval = super::admin::Approval {
                        id: id.to_string(),
                        scope: Scope::Once,
                        confirm_untrusted: false,
                        note: None,
                        token,
                        signed: None,
                        uses: None,
                        for_seconds: None,
                        view_sha256: None,
                    };
                    if let Err(msg) = self.approve_as(&tty_peer, "tty", approval) {
                        if let Some(t) = tty.as_mut() {
                            t.say(&format!("occ: {msg}"));
                        }
                        *tty = None;
                    }
                }
                Some(TtyAnswer::No) => {
                    let note = Some("declined on the terminal".into());
                    let _ = self.deny_as(&tty_peer, "tty", id, note);
                }
                None => {}
            }
            self.store().outcome(id).cloned()
        })
    }
}
