//! Signed approvals on the gate: the statement the broker builds for a pending request, and
//! the check of a submitted statement and SSHSIG before the decision goes through the same
//! approve and deny paths as every other channel (`signed` carries who signed into them).
//! Every refusal is audited as `signed_approval_refused` with its `reason_code`.

use serde_json::{json, Value as Json};

use super::admin::{Approval, SignedBy};
use super::events::{self, opt, s, Event};
use super::Gate;
use crate::clock::now_ms;
use crate::daemon::conn::PeerCred;
use crate::layout::Mode;
use crate::session::Scope;
use crate::signed::{self, replay, statement, AllowedSigners, Asked};

/// This host's name, as statements name it (the name forwarded events carry too).
pub fn host_name() -> String {
    crate::forward::hostname()
}

impl Gate {
    /// `occ approvals --statement ID`: the statement for `id` deciding `scope`.
    pub(super) fn statement_json(&self, id: &str, scope: &str) -> Result<Json, String> {
        let asked = Asked::parse(scope)?;
        let id = id.trim_start_matches('#');
        let p = self.store().pending_by_id(id).cloned().ok_or_else(|| {
            format!("no pending request with id {id:?}: list them with `occ approvals`")
        })?;
        Ok(json!({
            "id": p.id,
            "scope": asked.text(),
            "statement": statement::build(&p, &host_name(), &asked),
        }))
    }

    /// The configured signers; the file is read afresh for every submission.
    fn allowed_signers(&self) -> Result<AllowedSigners, String> {
        let path = self.layout.config_dir.join(signed::ALLOWED_SIGNERS);
        AllowedSigners::load(&path, self.uid)?.ok_or_else(|| {
            format!(
                "no {} : add each approver's public key with namespaces=\"occ-approval\" \
                 (see `man occ-policy`, section allowed_signers)",
                path.display()
            )
        })
    }

    /// `occ approve ID --signature`: checks the statement and signature, then decides.
    pub(super) fn approve_signed(
        &self,
        peer: &PeerCred,
        id: &str,
        statement_text: String,
        signature: String,
    ) -> Result<Json, String> {
        let id = id.trim_start_matches('#').to_string();
        let mut f = events::approver(peer, "signature");
        f.insert("request_id".into(), s(id.clone()));
        f.insert(
            "signer_fingerprint".into(),
            opt(signed::fingerprint_of(&signature)),
        );
        let refuse = |code: &str, msg: String, mut f: events::Fields| {
            f.insert("reason_code".into(), s(code));
            f.insert("reason".into(), s(msg.clone()));
            self.audit_durable(Event::SignedApprovalRefused, f)?;
            Err(format!("{msg} ({code})"))
        };
        let named = match statement::named(&statement_text) {
            Ok(n) => n,
            Err(e) => return refuse("statement_mismatch", e, f),
        };
        if named.request != id {
            let msg = format!(
                "the statement is for request {}, not {id}",
                escape(&named.request)
            );
            return refuse("statement_mismatch", msg, f);
        }
        // A statement this key signed and that was used already: refused whatever became of
        // its request (the key is looked up before the signature is checked, and recorded only
        // after, so only a verified use is ever in the set).
        let mut used = match replay::Used::load(&self.layout.state_dir) {
            Ok(u) => u,
            Err(msg) => return refuse("signers_unreadable", msg, f),
        };
        if let Some(fp) = signed::fingerprint_of(&signature) {
            if used.contains(&replay::key(&fp, &statement_text)) {
                return refuse(
                    "signature_replayed",
                    "this signed statement was already used".into(),
                    f,
                );
            }
        }
        let now = now_ms();
        if now >= named.expires_ms {
            return refuse("statement_expired", "the statement has expired".into(), f);
        }
        let Some(p) = self.store().pending_by_id(&id).cloned() else {
            let msg = format!("no pending request with id {id:?}: it was decided or expired");
            return refuse("statement_mismatch", msg, f);
        };
        f.extend(events::pending(&p));
        let expected = statement::build(&p, &host_name(), &named.asked);
        if expected != statement_text {
            let msg = "the statement differs from the one this broker builds for the request \
                       (edited, or for another host or request); print it again with `occ \
                       approvals --statement ID`"
                .to_string();
            return refuse("statement_mismatch", msg, f);
        }
        let signers = match self.allowed_signers() {
            Ok(a) => a,
            Err(msg) => return refuse("signers_unreadable", msg, f),
        };
        let signer =
            match signed::verify(&signers, statement_text.as_bytes(), &signature, now / 1000) {
                Ok(who) => who,
                Err(e) => return refuse(e.code(), e.to_string(), f),
            };
        f.insert("signer_principal".into(), s(signer.principal.clone()));
        if self.layout.mode == Mode::System && signer.approver == p.info.submituser {
            self.audit_durable(Event::SelfApprovalRefused, f.clone())?;
            return refuse(
                "self_approval_refused",
                format!(
                    "the signer {} is the requesting user; another approver must sign",
                    escape(&signer.principal)
                ),
                f,
            );
        }
        let key = replay::key(&signer.fingerprint, &statement_text);
        // Used before it counts: a crash after this line loses the approval, never repeats it.
        if let Err(msg) = used.record(key, named.expires_ms, now) {
            return refuse("signers_unreadable", msg, f);
        }
        let by = SignedBy {
            statement: statement_text,
            signature,
            signer,
        };
        let (scope, uses, for_seconds) = match named.asked {
            Asked::Deny => {
                let note = Some(format!("signed by {}", by.signer.principal));
                return self.deny_signed(peer, &id, note, Some(&by));
            }
            Asked::Once => (Scope::Once, None, None),
            Asked::Session => (Scope::Session, None, None),
            Asked::Limited { uses, for_secs } => (Scope::Limited, uses, for_secs),
        };
        let approval = Approval {
            id,
            scope,
            // The statement names the request's flags, `untrusted` among them: signing it is
            // the confirmation.
            confirm_untrusted: true,
            note: None,
            token: None,
            uses,
            for_seconds,
            // The statement carries the view hash, and matched the request byte for byte.
            view_sha256: None,
            signed: Some(by),
        };
        self.approve_as(peer, "signature", approval)
    }
}

fn escape(s: &str) -> String {
    crate::escape::escape_text(s)
}
