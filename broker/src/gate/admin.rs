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
use crate::session::{Decision, Scope, Voter};
use crate::token::Stored;
use crate::view::PendingView;
use occ_policy::Caller;

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
        /// `--uses N`: a limited grant of N runs.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        uses: Option<u32>,
        /// `--for D`: a limited grant living this many seconds.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        for_seconds: Option<u64>,
        /// The `view_sha256` the approver was shown: refused when the request's differs.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        view_sha256: Option<String>,
    },
    /// The live grants.
    Grants,
    /// End grants: the one approved for request `id`, one session's, or all.
    Revoke {
        #[serde(default)]
        id: Option<String>,
        #[serde(default)]
        session: Option<String>,
        #[serde(default)]
        all: bool,
    },
    /// Deny a pending request, or end an approved grant that has runs left.
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
    /// The approval statement of a pending request for `scope` (`once`, `session`, `deny`,
    /// `uses=N`, `for=30m`, `uses=N,for=30m`), to be signed with an SSH key.
    Statement { id: String, scope: String },
    /// A signed statement and its armored SSHSIG. Anyone who reaches the admin socket may
    /// submit one (the approver, a bot, the agent relaying it); the signature decides.
    Signed {
        id: String,
        statement: String,
        signature: String,
    },
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
    pub uses: Option<u32>,
    pub for_seconds: Option<u64>,
    pub view_sha256: Option<String>,
    /// The signed statement this approval came with, once checked.
    pub signed: Option<SignedBy>,
}

/// Who signed an approval, with what they signed: carried into `approval_granted`.
#[derive(Clone, Debug)]
pub struct SignedBy {
    pub statement: String,
    pub signature: String,
    pub signer: crate::signed::Signer,
}

impl SignedBy {
    /// The audit fields: the statement, the armored signature, the principal and the key.
    fn fields(&self, f: &mut super::events::Fields) {
        f.insert("approver".into(), s(self.signer.approver.clone()));
        f.insert("signer_principal".into(), s(self.signer.principal.clone()));
        f.insert(
            "signer_fingerprint".into(),
            s(self.signer.fingerprint.clone()),
        );
        f.insert("statement".into(), s(self.statement.clone()));
        f.insert("signature".into(), s(self.signature.clone()));
    }
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
        // A signature decides by itself who approved: anyone may carry it here.
        let carried = matches!(req, AdminRequest::Signed { .. });
        if self.system() && !carried {
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
                uses,
                for_seconds,
                view_sha256,
            } => {
                let approval = Approval {
                    id,
                    scope,
                    confirm_untrusted,
                    note,
                    token,
                    uses,
                    for_seconds,
                    view_sha256,
                    signed: None,
                };
                self.approve_as(peer, "queue", approval)
            }
            AdminRequest::Grants => Ok(self.grants_json()),
            AdminRequest::Revoke { id, session, all } => self.revoke(peer, id, session, all),
            AdminRequest::Statement { id, scope } => self.statement_json(&id, &scope),
            AdminRequest::Signed {
                id,
                statement,
                signature,
            } => self.approve_signed(peer, &id, statement, signature),
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
        if let Some(by) = &a.signed {
            by.fields(&mut f);
        }
        let shown = occ_base::hex::encode(&p.info.view_hash());
        if a.view_sha256.as_ref().is_some_and(|v| *v != shown) {
            return Err(format!(
                "request {} is not what was shown (its view hash differs); look at it again \
                 with `occ approve {}`",
                a.id, a.id
            ));
        }
        if self.system() && peer.uid == p.info.peer_uid && a.signed.is_none() {
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
        if cfg.broker.approval.require_signature && a.signed.is_none() {
            let mut f = f.clone();
            f.insert("reason_code".into(), s("signature_required"));
            self.audit_durable(Event::SignedApprovalRefused, f)?;
            return Err(format!(
                "approval.require_signature is set: approve {} with a signed statement \
                 (`occ approvals --statement {}`, sign it, then `occ approve {} --signature \
                 FILE`) (signature_required)",
                a.id, a.id, a.id
            ));
        }
        // A signature stands in for the token: whoever carries it need not know the token.
        if let Some(stored) = self.stored_token(&cfg).filter(|_| a.signed.is_none()) {
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
        let terms = self.terms_for(&a, &cfg)?;
        let quorum = if self.system() {
            cfg.broker.approval.quorum
        } else {
            1
        };
        if p.info.untrusted {
            let event = if a.confirm_untrusted {
                Event::UntrustedSourceConfirmed
            } else {
                Event::UntrustedSourceBlock
            };
            self.audit(event, f.clone())?;
        }
        let voter = match &a.signed {
            // A signer votes as the approver its principal names (a user of this host, or
            // not: then it is counted by name alone).
            Some(by) => Voter {
                uid: nix::unistd::User::from_name(&by.signer.approver)
                    .ok()
                    .flatten()
                    .map_or(u32::MAX, |u| u.uid.as_raw()),
                name: by.signer.approver.clone(),
            },
            None => Voter {
                uid: peer.uid,
                name: Caller::from_uid(peer.uid).user,
            },
        };
        let result = self
            .store()
            .vote(&a.id, terms, a.confirm_untrusted, &voter, quorum, now_ms());
        let g = match result.map_err(|e| e.to_string())? {
            Decision::Voted { votes, quorum } => {
                return self.record_vote(&a.id, &voter, f, terms, votes, quorum);
            }
            Decision::Granted(p, g) => {
                if quorum > 1 {
                    let voted =
                        self.record_vote(&a.id, &voter, f.clone(), terms, p.votes.len(), quorum);
                    if let Err(e) = voted {
                        self.store().revoke_id(&a.id);
                        self.persist();
                        return Err(format!("approval withdrawn: {e}"));
                    }
                    let names: Vec<String> = p.votes.iter().map(|v| v.name.clone()).collect();
                    f.insert("approvers".into(), events::strs(&names));
                }
                *g
            }
        };
        f.insert("grant_scope".into(), s(g.scope.as_str()));
        f.insert("grant_terms".into(), s(terms.describe()));
        f.insert(
            "uses_left".into(),
            g.uses_left.map(int).unwrap_or(occ_audit::Value::Null),
        );
        f.insert(
            "grant_expires_ms".into(),
            g.expires_ms.map(int).unwrap_or(occ_audit::Value::Null),
        );
        if let Err(e) = self.audit_durable(Event::ApprovalGranted, f) {
            self.store().drop_all();
            self.persist();
            return Err(format!("approval withdrawn: {e}"));
        }
        self.persist();
        self.decided.notify_all();
        Ok(json!({
            "approved": a.id,
            "scope": g.scope.as_str(),
            "terms": terms.describe(),
            "grant": crate::view::GrantView::of(&g),
        }))
    }

    /// Denies through `channel`.
    pub(super) fn deny_as(
        &self,
        peer: &PeerCred,
        channel: &str,
        id: &str,
        note: Option<String>,
    ) -> Result<Json, String> {
        self.deny_with(peer, channel, id, note, None)
    }

    /// Denies with a checked signature (`scope: deny`).
    pub(super) fn deny_signed(
        &self,
        peer: &PeerCred,
        id: &str,
        note: Option<String>,
        by: Option<&SignedBy>,
    ) -> Result<Json, String> {
        self.deny_with(peer, "signature", id, note, by)
    }

    fn deny_with(
        &self,
        peer: &PeerCred,
        channel: &str,
        id: &str,
        note: Option<String>,
        by: Option<&SignedBy>,
    ) -> Result<Json, String> {
        let denied = self.store().deny(id, note.clone());
        let p = match denied {
            Ok(p) => p,
            Err(e) => {
                return self
                    .deny_grant(peer, channel, id, note)
                    .ok_or(e.to_string())?
            }
        };
        self.persist();
        let mut f = events::pending(&p);
        f.extend(events::approver(peer, channel));
        f.insert("note".into(), opt(note));
        if let Some(by) = by {
            by.fields(&mut f);
        }
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
        let quorum = self.quorum();
        let st = self.store();
        let items: Vec<Json> = st
            .pending()
            .map(|p| serde_json::to_value(PendingView::of(p, now, quorum)).unwrap_or(Json::Null))
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
                    uses: None,
                    for_seconds: None,
                    view_sha256: None,
                },
            ),
            (
                r#"{"op":"approve","id":"ab12","scope":"once","uses":3,"for_seconds":60,"view_sha256":"ff"}"#,
                AdminRequest::Approve {
                    id: "ab12".into(),
                    scope: Scope::Once,
                    confirm_untrusted: false,
                    note: None,
                    token: None,
                    uses: Some(3),
                    for_seconds: Some(60),
                    view_sha256: Some("ff".into()),
                },
            ),
            (r#"{"op":"grants"}"#, AdminRequest::Grants),
            (
                r#"{"op":"revoke","session":"s1"}"#,
                AdminRequest::Revoke {
                    id: None,
                    session: Some("s1".into()),
                    all: false,
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
            (
                r#"{"op":"approve","id":"x","scope":"once","uses":-1}"#,
                "invalid value",
            ),
            (r#"{"op":"revoke","ids":["x"]}"#, "unknown field"),
            (r#"{"id":"x"}"#, "missing field `op`"),
            (r#"{"op":7}"#, ""),
        ];
        for (body, why) in refused {
            let e = parse(body).expect_err(body);
            assert!(e.contains(why), "{body}: {e}");
        }
    }
}
