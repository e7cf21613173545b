//! Admin: the approver's side of the gate (`occ approvals`, `approve`, `deny`, `status`,
//! `drop`). Requests arrive as one typed [`AdminRequest`], the same enum `occ`'s CLI sends, so
//! an unknown op, field or scope is refused before anything is looked up. An approval checks
//! the token (when set) before any grant exists, and is durable on record before it counts.

use std::sync::atomic::Ordering;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value as Json};

use super::events::{self, int, opt, s, Event};
use super::refusal::Refusal;
use super::Gate;
use crate::clock::now_ms;
use crate::daemon::conn::{Conn, PeerCred};
use crate::session::Scope;
use crate::token::Stored;
use crate::view::PendingView;

/// One admin request, as `occ` sends it over the socket (`{"op": "approve", …}`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum AdminRequest {
    /// The pending requests.
    Approvals,
    /// Whether the broker is up, its mode, sessions and audit settings.
    Status,
    /// Approve a pending request.
    Approve {
        id: String,
        scope: Scope,
        #[serde(default)]
        confirm_untrusted: bool,
        #[serde(default)]
        note: Option<String>,
        #[serde(default)]
        token: Option<String>,
    },
    /// Deny a pending request.
    Deny {
        id: String,
        #[serde(default)]
        note: Option<String>,
    },
    /// Drop grants: one session's, or all.
    Drop {
        #[serde(default)]
        session: Option<String>,
        #[serde(default)]
        all: bool,
    },
    /// Set the approval token or clear it (neither `sha256` nor `chosen`). When a token is set,
    /// `current` must be it. System mode: root only.
    Token {
        /// A generated token's SHA-256 (64 hex digits).
        #[serde(default)]
        sha256: Option<String>,
        /// A token a human chose: the broker checks its length and keeps only its argon2id.
        #[serde(default)]
        chosen: Option<String>,
        /// The token set now, if any.
        #[serde(default)]
        current: Option<String>,
    },
    /// System mode, root only: read the configuration again (as SIGHUP does).
    Reload,
    /// Keep the connection and push every change to the pending queue as `AdminEvent` frames
    /// (`occ approvals --watch`); approvers and root only in system mode.
    Watch,
}

/// One approval's whole context, from whichever channel it came.
#[derive(Clone, Debug)]
pub struct Approval {
    pub id: String,
    pub scope: Scope,
    pub confirm_untrusted: bool,
    pub note: Option<String>,
    pub token: Option<String>,
}

impl Gate {
    /// One admin request body, answered on `conn`.
    pub(super) fn serve_admin(&self, conn: &mut Conn, body: Vec<u8>) {
        let peer = conn.peer();
        let (reply, ok) = match serde_json::from_slice::<AdminRequest>(&body) {
            Ok(AdminRequest::Watch) => match self.check_watcher(&peer) {
                Ok(()) => return self.watch(conn),
                Err(refused) => (refused, false),
            },
            Ok(req) => self.admin(&peer, req),
            Err(e) => (
                json!({"error": format!("refusing the admin request: {e}")}),
                false,
            ),
        };
        let _ = conn.admin_reply(ok, reply.to_string().into_bytes());
    }

    /// Answers one admin request from `peer`. Returns the JSON reply and whether it succeeded.
    pub fn admin(&self, peer: &PeerCred, req: AdminRequest) -> (Json, bool) {
        if self.system() {
            if let Err(msg) = self.check_approver(peer) {
                return (
                    json!({"error": msg, "reason_code": "not_an_approver"}),
                    false,
                );
            }
        }
        // Every admin command starts from an up-to-date store.
        self.sweep();
        let answer = match req {
            AdminRequest::Approvals => Ok(self.approvals_json()),
            AdminRequest::Status => Ok(self.status_json()),
            AdminRequest::Approve {
                id,
                scope,
                confirm_untrusted,
                note,
                token,
            } => {
                let approval = Approval {
                    id,
                    scope,
                    confirm_untrusted,
                    note,
                    token,
                };
                self.approve_as(peer, "queue", approval)
            }
            AdminRequest::Deny { id, note } => self.deny_as(peer, "queue", &id, note),
            AdminRequest::Drop { session, all } => self.drop_grants(peer, session, all),
            AdminRequest::Token {
                sha256,
                chosen,
                current,
            } => self.set_token(peer, sha256, chosen, current),
            // Served on the connection by `serve_admin`; a caller without one gets no stream.
            AdminRequest::Watch => {
                Err("watch needs its own connection (occ approvals --watch)".into())
            }
            AdminRequest::Reload => self.root_only(peer).and_then(|()| {
                if self.reload_config() {
                    Ok(json!({"reloaded": true}))
                } else {
                    Err(
                        "the new configuration is broken; the previous one stays (see the \
                         config_reload_failed event)"
                            .into(),
                    )
                }
            }),
        };
        match answer {
            Ok(v) => (v, true),
            Err(msg) => (json!({ "error": msg }), false),
        }
    }

    /// Who may watch the queue: as for `occ approvals` (system mode: approvers and root).
    fn check_watcher(&self, peer: &PeerCred) -> Result<(), Json> {
        if self.system() {
            if let Err(msg) = self.check_approver(peer) {
                return Err(json!({"error": msg, "reason_code": "not_an_approver"}));
            }
        }
        Ok(())
    }

    /// The configured token: broker.json's, else the legacy env file's digest.
    pub(super) fn stored_token(&self, cfg: &occ_policy::PolicyConfig) -> Option<Stored> {
        Stored::of(&cfg.broker.approval)
            .or_else(|| self.legacy_token_sha256.clone().map(Stored::Sha256))
    }

    /// Approves through `channel`; `Err` carries the message for the approver.
    pub(super) fn approve_as(
        &self,
        peer: &PeerCred,
        channel: &str,
        a: Approval,
    ) -> Result<Json, String> {
        let Some(p) = self.store().pending_by_id(&a.id).cloned() else {
            return Err(format!(
                "no pending request with id {:?}: list them with `occ approvals`",
                a.id
            ));
        };
        let mut f = events::pending(&p);
        f.extend(events::approver(peer, channel));
        f.insert("note".into(), opt(a.note.clone()));
        if self.system() && peer.uid == p.info.peer_uid {
            // Whatever the token: the requester never decides its own request.
            self.audit_durable(Event::SelfApprovalRefused, f)?;
            return Err(format!(
                "request {} was made by this user; another approver must decide it ({})",
                a.id,
                Refusal::SelfApproval.code()
            ));
        }
        let cfg = self.policy(&|_| None).map_err(|errs| {
            format!(
                "refusing to approve while the policy is broken: {}",
                errs.first().map(|e| e.to_string()).unwrap_or_default()
            )
        })?;
        if let Some(stored) = self.stored_token(&cfg) {
            let ok = a.token.as_deref().is_some_and(|t| stored.verify(t));
            let event = if ok {
                Event::TokenOk
            } else {
                Event::TokenFailed
            };
            self.audit_durable(event, f.clone())?;
            if !ok {
                return Err("the approval token is wrong; the request stays pending".into());
            }
        }
        if p.info.untrusted {
            let event = if a.confirm_untrusted {
                Event::UntrustedSourceConfirmed
            } else {
                Event::UntrustedSourceBlock
            };
            self.audit(event, f.clone())?;
        }
        let result = self
            .store()
            .approve(&a.id, a.scope, a.confirm_untrusted, now_ms());
        let (_, g) = result.map_err(|e| e.to_string())?;
        f.insert("grant_scope".into(), s(g.scope.as_str()));
        if let Err(e) = self.audit_durable(Event::ApprovalGranted, f) {
            self.store().drop_all();
            self.persist();
            return Err(format!("approval withdrawn: {e}"));
        }
        self.persist();
        self.decided.notify_all();
        Ok(json!({"approved": a.id, "scope": g.scope.as_str()}))
    }

    /// Denies through `channel`.
    pub(super) fn deny_as(
        &self,
        peer: &PeerCred,
        channel: &str,
        id: &str,
        note: Option<String>,
    ) -> Result<Json, String> {
        let p = self
            .store()
            .deny(id, note.clone())
            .map_err(|e| e.to_string())?;
        self.persist();
        let mut f = events::pending(&p);
        f.extend(events::approver(peer, channel));
        f.insert("note".into(), opt(note));
        let _ = self.audit(Event::ApprovalDenied, f);
        self.decided.notify_all();
        Ok(json!({"denied": id}))
    }

    fn drop_grants(
        &self,
        peer: &PeerCred,
        session: Option<String>,
        all: bool,
    ) -> Result<Json, String> {
        let n = {
            let mut st = self.store();
            match (&session, all) {
                (Some(sid), _) => st.drop_session(sid),
                (None, true) => st.drop_all(),
                (None, false) => return Err("say what to drop: --session ID or --all".into()),
            }
        };
        self.persist();
        let mut f = events::approver(peer, "queue");
        f.insert("grants".into(), int(n));
        f.insert("session_id".into(), opt(session.clone()));
        let scope = if session.is_some() { "session" } else { "all" };
        f.insert("scope".into(), s(scope));
        self.audit(Event::GrantsDropped, f)?;
        Ok(json!({"dropped": n}))
    }

    /// System mode: only root may change the token or reload.
    fn root_only(&self, peer: &PeerCred) -> Result<(), String> {
        if self.system() && peer.uid == 0 {
            Ok(())
        } else {
            Err(
                "only root may do this, and only on the system broker; a user broker's token \
                 is set with `occ token set` as its user"
                    .into(),
            )
        }
    }

    /// Sets (a generated token's SHA-256, or a chosen token kept as argon2id) or clears the
    /// token in broker.json, once the caller has shown the current one; audits `token_set` or
    /// `token_cleared` (a wrong current token: `token_failed`) with the caller's uid and pid.
    /// System mode: root only, and the configuration is reloaded.
    fn set_token(
        &self,
        peer: &PeerCred,
        sha256: Option<String>,
        chosen: Option<String>,
        current: Option<String>,
    ) -> Result<Json, String> {
        if self.system() {
            self.root_only(peer)?;
        }
        let new = match (sha256, chosen) {
            (Some(_), Some(_)) => {
                return Err("give a generated token's sha256 or a chosen token, not both".into())
            }
            (Some(d), None) => {
                if !crate::token::valid_digest_hex(&d) {
                    return Err("the token digest must be 64 hex digits".into());
                }
                Some(Stored::Sha256(d.to_ascii_lowercase()))
            }
            (None, Some(t)) => {
                if let Some(why) = crate::token::chosen_problem(&t) {
                    return Err(why);
                }
                Some(Stored::Argon2id(crate::token::hash_argon2id(&t)?))
            }
            (None, None) => None,
        };
        let cfg = self.policy(&|_| None).map_err(|errs| {
            format!(
                "refusing to change the token while the policy is broken: {}",
                errs.first().map(|e| e.to_string()).unwrap_or_default()
            )
        })?;
        let mut f = events::approver(peer, "admin");
        let action = if new.is_some() {
            "token_set"
        } else {
            "token_clear"
        };
        f.insert("action".into(), s(action));
        if let Some(stored) = self.stored_token(&cfg) {
            if !current.as_deref().is_some_and(|t| stored.verify(t)) {
                self.audit_durable(Event::TokenFailed, f)?;
                return Err(format!(
                    "{} current approval token; nothing changed",
                    if current.is_some() {
                        "that is not the"
                    } else {
                        "a token is set: give the"
                    }
                ));
            }
        }
        let file = self.layout.config_dir.join(occ_policy::file::BROKER_CONFIG);
        f.insert(
            "token_key".into(),
            opt(new.as_ref().map(|t| t.key().to_string())),
        );
        let event = if new.is_some() {
            Event::TokenSet
        } else {
            Event::TokenCleared
        };
        // On record before it counts.
        self.audit_durable(event, f)?;
        crate::token::write_stored(&file, new.as_ref())?;
        if self.system() && !self.reload_config() {
            return Err("the token was written but the configuration no longer loads".into());
        }
        Ok(json!({
            "file": file.display().to_string(),
            "token_set": new.is_some(),
            "token_key": new.as_ref().map(Stored::key),
        }))
    }

    /// The pending requests, oldest first, as [`PendingView`]s. However long the list, it
    /// reaches the client: `Conn::admin_reply` splits a long answer into parts.
    fn approvals_json(&self) -> Json {
        let now = now_ms();
        let st = self.store();
        let items: Vec<Json> = st
            .pending()
            .map(|p| serde_json::to_value(PendingView::of(p, now)).unwrap_or(Json::Null))
            .collect();
        Json::Array(items)
    }

    pub(super) fn status_json(&self) -> Json {
        let now = now_ms();
        let st = self.store();
        let sessions: Vec<Json> = st
            .sessions(now)
            .into_iter()
            .map(|s| {
                json!({
                    "session_id": s.session_id,
                    "idle_minutes": s.idle_ms / 60_000,
                    "grants": s.grants,
                })
            })
            .collect();
        let fsync = if self.fsync_always.load(Ordering::SeqCst) {
            "always"
        } else {
            "batch"
        };
        // Configured in broker.json, or by the legacy env file (as `token_sha256` decides).
        let legacy = self.legacy_token_sha256.is_some();
        let token_required = self
            .broker_setting(|b| Stored::of(&b.approval).is_some() || legacy)
            .unwrap_or(false);
        json!({
            "token_required": token_required,
            "broker": "up",
            "pid": std::process::id(),
            "mode": self.layout.mode.name(),
            "home": self.layout.home.display().to_string(),
            "pending": st.pending().count(),
            "grants": st.grant_count(),
            "sessions": sessions,
            "audit": {
                "fsync": fsync,
                "syncs_before_answers": self.answer_syncs.load(Ordering::SeqCst),
                "seal_required": self.seal_required.load(Ordering::SeqCst),
                "forward": self.forward.status(),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::AdminRequest;
    use crate::session::Scope;

    /// Parses an admin body; `Err` is the refusal text.
    fn parse(body: &str) -> Result<AdminRequest, String> {
        serde_json::from_str(body).map_err(|e| e.to_string())
    }

    #[test]
    fn admin_requests_parse_strictly() {
        let ok: &[(&str, AdminRequest)] = &[
            (r#"{"op":"approvals"}"#, AdminRequest::Approvals),
            (r#"{"op":"status"}"#, AdminRequest::Status),
            (
                r#"{"op":"approve","id":"ab12","scope":"session"}"#,
                AdminRequest::Approve {
                    id: "ab12".into(),
                    scope: Scope::Session,
                    confirm_untrusted: false,
                    note: None,
                    token: None,
                },
            ),
            (
                r#"{"op":"deny","id":"ab12","note":"no"}"#,
                AdminRequest::Deny {
                    id: "ab12".into(),
                    note: Some("no".into()),
                },
            ),
            (
                r#"{"op":"drop","all":true}"#,
                AdminRequest::Drop {
                    session: None,
                    all: true,
                },
            ),
        ];
        for (body, want) in ok {
            assert_eq!(parse(body).as_ref(), Ok(want), "{body}");
        }
    }

    #[test]
    fn unknown_ops_scopes_and_fields_are_refused() {
        let refused: &[(&str, &str)] = &[
            (r#"{"op":"advance_clock","ms":1}"#, "unknown variant"),
            (
                r#"{"op":"approve","id":"ab12","scope":"forever"}"#,
                "unknown variant",
            ),
            (
                r#"{"op":"approve","id":"ab12","scope":"Session"}"#,
                "unknown variant",
            ),
            (r#"{"op":"approve","id":"ab12"}"#, "missing field `scope`"),
            (r#"{"op":"approve","scope":"once"}"#, "missing field `id`"),
            (r#"{"op":"deny","id":"x","scope":"once"}"#, "unknown field"),
            (r#"{"id":"x"}"#, "missing field `op`"),
            (r#"{"op":7}"#, ""),
        ];
        for (body, why) in refused {
            let e = parse(body).expect_err(body);
            assert!(e.contains(why), "{body}: {e}");
        }
    }
}
