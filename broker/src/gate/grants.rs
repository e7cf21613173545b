//! Grants after the approval: the terms an approval may ask for (`--for` capped by
//! `approval.max_grant_minutes`), the votes of a quorum, `occ grants`, `occ revoke`, a deny
//! that ends an approved grant, and the denial a repeated request is answered with. Every
//! change is audited; none of it ever widens what a grant covers.

use serde_json::{json, Value as Json};

use super::admin::Approval;
use super::events::{self, int, opt, s, Event, Fields};
use super::Gate;
use crate::clock::now_ms;
use crate::daemon::conn::PeerCred;
use crate::escape::escape_text;
use crate::session::{duration_text, Grant, RequestInfo, Terms, Voter};
use crate::view::GrantView;

impl Gate {
    /// The terms approval `a` asks for, within `approval.max_grant_minutes`: a `--for` above
    /// the cap is refused naming the key; a `--uses` grant without `--for` ends at the cap.
    pub(super) fn terms_for(
        &self,
        a: &Approval,
        cfg: &occ_policy::PolicyConfig,
    ) -> Result<Terms, String> {
        let for_ms = a.for_seconds.map(|s| s.saturating_mul(1000));
        let mut terms = Terms::new(a.scope, a.uses, for_ms)?;
        if let (Some(max), crate::session::Scope::Limited) =
            (cfg.broker.approval.max_grant_minutes, terms.scope)
        {
            let cap = max.saturating_mul(60_000);
            match terms.for_ms {
                Some(ms) if ms > cap => {
                    return Err(format!(
                        "--for {} is longer than approval.max_grant_minutes ({max}) in \
                         broker.json allows; ask for at most {}",
                        duration_text(ms),
                        duration_text(cap)
                    ))
                }
                Some(_) => {}
                None => terms.for_ms = Some(cap),
            }
        }
        Ok(terms)
    }

    /// How many approvers a request needs: `approval.quorum` in system mode, else 1 (a
    /// broken configuration answers 1 here; approving then refuses on the broken policy).
    pub(super) fn quorum(&self) -> u32 {
        if !self.system() {
            return 1;
        }
        self.broker_setting(|b| b.approval.quorum).unwrap_or(1)
    }

    /// Audits one vote of a quorum (`approval_vote`, durable before it counts) and answers
    /// the approver; a vote that cannot be recorded is taken back.
    pub(super) fn record_vote(
        &self,
        id: &str,
        voter: &Voter,
        mut f: Fields,
        terms: Terms,
        votes: usize,
        quorum: u32,
    ) -> Result<Json, String> {
        f.insert("votes".into(), int(votes));
        f.insert("quorum".into(), int(quorum));
        f.insert("grant_terms".into(), s(terms.describe()));
        if let Err(e) = self.audit_durable(Event::ApprovalVote, f) {
            self.store().withdraw_vote(id, voter.uid);
            self.persist();
            return Err(format!("vote withdrawn: {e}"));
        }
        self.persist();
        Ok(json!({"voted": id, "votes": votes, "quorum": quorum}))
    }

    /// The live grants, oldest first, as [`GrantView`]s.
    pub(super) fn grants_json(&self) -> Json {
        let grants = self.store().grants(now_ms());
        Json::Array(
            grants
                .iter()
                .map(|g| serde_json::to_value(GrantView::of(g)).unwrap_or(Json::Null))
                .collect(),
        )
    }

    /// `occ revoke ID|--session S|--all`: ends grants, one `grant_revoked` event each.
    pub(super) fn revoke(
        &self,
        peer: &PeerCred,
        id: Option<String>,
        session: Option<String>,
        all: bool,
    ) -> Result<Json, String> {
        let gone = {
            let mut st = self.store();
            match (&id, &session, all) {
                (Some(id), None, false) => match st.revoke_id(id) {
                    Some(g) => vec![g],
                    None => {
                        return Err(format!(
                            "no live grant for request {id:?}: list them with `occ grants`"
                        ))
                    }
                },
                (None, Some(sid), false) => st.revoke(Some(sid)),
                (None, None, true) => st.revoke(None),
                _ => return Err("say what to revoke: ID, --session S or --all (one)".into()),
            }
        };
        self.persist();
        let by = match (&id, &session) {
            (Some(_), _) => "id",
            (None, Some(_)) => "session",
            (None, None) => "all",
        };
        for g in &gone {
            self.audit_revoked(peer, "queue", g, by, None)?;
        }
        self.decided.notify_all();
        let ids: Vec<&str> = gone.iter().map(|g| g.request_id.as_str()).collect();
        Ok(json!({"revoked": ids}))
    }

    /// `occ deny ID` for a request already approved: its grant ends before (more) runs, and
    /// the same request is answered with the denial. `None` when no grant has that id.
    pub(super) fn deny_grant(
        &self,
        peer: &PeerCred,
        channel: &str,
        id: &str,
        note: Option<String>,
    ) -> Option<Result<Json, String>> {
        let g = self.store().deny_grant(id, note.clone(), now_ms())?;
        self.persist();
        if let Err(e) = self.audit_revoked(peer, channel, &g, "deny", note) {
            return Some(Err(e));
        }
        self.decided.notify_all();
        Some(Ok(json!({"denied": id, "revoked": true})))
    }

    fn audit_revoked(
        &self,
        peer: &PeerCred,
        channel: &str,
        g: &Grant,
        by: &str,
        note: Option<String>,
    ) -> Result<(), String> {
        let mut f = events::grant(g);
        f.extend(events::approver(peer, channel));
        f.insert("revoked_by".into(), s(by));
        f.insert("note".into(), opt(note));
        self.audit(Event::GrantRevoked, f).map(|_| ())
    }

    /// The denial this request is answered with, if an approver denied the same request from
    /// the same caller within the denied request's window: `(message, denied request id)`.
    pub(super) fn denial_answer(&self, info: &RequestInfo) -> Option<(String, String)> {
        let st = self.store();
        let d = st.denial_of(info, now_ms())?;
        let msg = match &d.note {
            Some(n) => format!("an approver denied this request: {}", escape_text(n)),
            None => "an approver denied this request".to_string(),
        };
        Some((msg, d.request_id.clone()))
    }
}
