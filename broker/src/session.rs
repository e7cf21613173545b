//! Pending requests, grants and task sessions, held in the broker's memory. It owns the rules
//! for ids, expiry, `--once`/`--session` scope and the idle timeout; it must never let a grant
//! cover a request whose digest differs, or a session grant cover a code-running or untrusted
//! request. Time is always passed in (milliseconds since the epoch), so every rule is testable.

use std::collections::{BTreeMap, HashMap, HashSet};

#[cfg(test)]
mod grant_tests;
mod request;
mod terms;
#[cfg(test)]
mod tests;
pub use request::{random_id, RequestInfo};
pub use terms::{duration_text, parse_duration, single_run_reason, Denial, Terms, Vote, Voter};

/// SHA-256 digest binding a grant to exactly one request (see `occ_policy`'s grant digest).
pub type Digest = [u8; 32];

/// How long an approval lasts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Consumed by one run (the default).
    Once,
    /// Lasts until the task session has been idle for the configured timeout.
    Session,
    /// `--uses N` and/or `--for D`: a number of runs, until a time (see [`Grant::uses_left`]
    /// and [`Grant::expires_ms`]).
    Limited,
}

impl Scope {
    /// The name used in audit events (`grant_scope`) and output.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Once => "once",
            Scope::Session => "session",
            Scope::Limited => "limited",
        }
    }
}

/// A request waiting for a human.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pending {
    pub id: String,
    pub info: RequestInfo,
    pub created_ms: u64,
    pub expires_ms: u64,
    /// `approval.quorum` above 1: the approvers who voted for it so far, one per uid.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub votes: Vec<Vote>,
    /// The terms the first vote asked for; every later vote must ask for the same.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terms: Option<Terms>,
}

/// What one approval did: a grant, or (under a quorum) one vote of several.
#[derive(Clone, Debug)]
pub enum Decision {
    Granted(Box<Pending>, Box<Grant>),
    Voted { votes: usize, quorum: u32 },
}

/// How a pending request ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Approved {
        scope: Scope,
    },
    Denied {
        note: Option<String>,
    },
    Expired,
    /// The broker is shutting down.
    Stopping,
}

/// A live approval for one digest.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Grant {
    #[serde(with = "hex_digest")]
    pub digest: Digest,
    /// [`RequestInfo::view_hash`] of what the approver approved: a request is covered only
    /// when its own view hashes the same, so a pending request whose shown command and digest
    /// disagree (a forged restart snapshot) never grants what was not shown. A grant kept
    /// from before this field covers nothing.
    #[serde(default, with = "hex_digest")]
    pub view: Digest,
    pub scope: Scope,
    pub request_id: String,
    pub caller_uid: u32,
    pub session_id: Option<String>,
    pub created_ms: u64,
    /// A limited grant: the runs it still covers (`None`: no count, only a time). A limited
    /// grant with neither a count nor a time (a damaged snapshot) covers nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uses_left: Option<u32>,
    /// A limited grant: when it ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_ms: Option<u64>,
    /// What it covers, for `occ grants` (empty in a grant kept from before these fields).
    #[serde(default)]
    pub command: Vec<String>,
    #[serde(default)]
    pub runuser: String,
    #[serde(default)]
    pub submituser: String,
    /// Who approved it: the approver's user (or signer principal), every voter's under a
    /// quorum, in vote order. Runs under the grant name them (`exec_start`'s `approver`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approvers: Vec<String>,
}

/// Why an approval was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ApproveError {
    #[error("no pending request with id {0}: list them with `occ approvals`")]
    UnknownId(String),
    #[error("request {0} comes from an untrusted source: re-run with --confirm-untrusted after reading it")]
    UntrustedNotConfirmed(String),
    #[error("--session refused for request {id}: {why}; approve it --once instead")]
    SessionRefused { id: String, why: String },
    #[error(
        "{terms} refused for request {id}: {why}, so one approval covers one run only; \
         approve it --once (or with --uses 1)"
    )]
    RepeatRefused {
        id: String,
        terms: String,
        why: String,
    },
    #[error("{name} (uid {uid}) already voted for request {id}; another approver must vote")]
    AlreadyVoted { id: String, name: String, uid: u32 },
    #[error("request {id} has a vote for `{first}`; vote with the same terms, or deny it")]
    TermsDiffer { id: String, first: String },
}

/// A session's liveness, for `occ status`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionSummary {
    pub session_id: String,
    pub idle_ms: u64,
    pub grants: usize,
}

/// Snapshot written for a restart: grants, session activity, pending requests and issued ids.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Snapshot {
    pub version: u32,
    pub grants: Vec<Grant>,
    pub sessions: BTreeMap<String, u64>,
    /// Requests still waiting for a human, and every id issued (so an id is never reused
    /// across a restart).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending: Vec<Pending>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub issued: Vec<String>,
    /// Denied requests still answered with their denial.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub denied: Vec<Denial>,
}

/// All in-memory approval state of one broker.
#[derive(Debug)]
pub struct Store {
    pending: BTreeMap<String, Pending>,
    outcomes: HashMap<String, Outcome>,
    issued: HashSet<String>,
    grants: HashMap<Digest, Grant>,
    /// session id → last activity (ms).
    sessions: HashMap<String, u64>,
    /// Denials answered to the same request until the denied request's expiry.
    denied: Vec<Denial>,
    pending_expiry_ms: u64,
    idle_timeout_ms: u64,
}

impl Store {
    /// A store with the configured expiry of pending requests and session idle timeout.
    pub fn new(pending_expiry_minutes: u64, idle_timeout_minutes: u64) -> Store {
        Store {
            pending: BTreeMap::new(),
            outcomes: HashMap::new(),
            issued: HashSet::new(),
            grants: HashMap::new(),
            sessions: HashMap::new(),
            denied: Vec::new(),
            pending_expiry_ms: pending_expiry_minutes.saturating_mul(60_000),
            idle_timeout_ms: idle_timeout_minutes.saturating_mul(60_000),
        }
    }

    /// Files a request. An identical request that is still pending gets the same id; otherwise
    /// `new_id` is asked for fresh random ids until one was never issued before.
    /// Returns the id and whether it is new.
    pub fn submit(
        &mut self,
        info: RequestInfo,
        now_ms: u64,
        mut new_id: impl FnMut() -> String,
    ) -> (String, bool) {
        if let Some(p) = self
            .pending
            .values()
            .find(|p| p.info.digest == info.digest && p.expires_ms > now_ms)
        {
            return (p.id.clone(), false);
        }
        let id = loop {
            let candidate = new_id();
            if !self.issued.contains(&candidate) {
                break candidate;
            }
        };
        self.issued.insert(id.clone());
        let pending = Pending {
            id: id.clone(),
            info,
            created_ms: now_ms,
            expires_ms: now_ms.saturating_add(self.pending_expiry_ms),
            votes: Vec::new(),
            terms: None,
        };
        self.pending.insert(id.clone(), pending);
        (id, true)
    }

    /// Pending requests, oldest first.
    pub fn pending(&self) -> impl Iterator<Item = &Pending> {
        let mut all: Vec<&Pending> = self.pending.values().collect();
        all.sort_by(|a, b| (a.created_ms, &a.id).cmp(&(b.created_ms, &b.id)));
        all.into_iter()
    }

    /// One pending request.
    pub fn pending_by_id(&self, id: &str) -> Option<&Pending> {
        self.pending.get(id)
    }

    /// How a request ended, once it has.
    pub fn outcome(&self, id: &str) -> Option<&Outcome> {
        self.outcomes.get(id)
    }

    /// Removes and returns every pending request past its expiry.
    pub fn expire(&mut self, now_ms: u64) -> Vec<Pending> {
        let gone: Vec<String> = self
            .pending
            .values()
            .filter(|p| p.expires_ms <= now_ms)
            .map(|p| p.id.clone())
            .collect();
        gone.into_iter()
            .filter_map(|id| {
                self.outcomes.insert(id.clone(), Outcome::Expired);
                self.pending.remove(&id)
            })
            .collect()
    }

    /// Approves a pending request at once (no quorum), creating its grant.
    pub fn approve(
        &mut self,
        id: &str,
        scope: Scope,
        confirm_untrusted: bool,
        now_ms: u64,
    ) -> Result<(Pending, Grant), ApproveError> {
        let voter = Voter {
            uid: u32::MAX,
            name: String::new(),
        };
        match self.vote(id, Terms::of(scope), confirm_untrusted, &voter, 1, now_ms)? {
            Decision::Granted(p, g) => Ok((*p, *g)),
            Decision::Voted { .. } => Err(ApproveError::UnknownId(id.to_string())),
        }
    }

    /// One approver's vote for a pending request under `quorum` (1: the vote decides). The
    /// vote that reaches the quorum creates the grant, on the terms every vote asked for; an
    /// approver who already voted is refused, so no one counts twice.
    pub fn vote(
        &mut self,
        id: &str,
        terms: Terms,
        confirm_untrusted: bool,
        voter: &Voter,
        quorum: u32,
        now_ms: u64,
    ) -> Result<Decision, ApproveError> {
        let p = self
            .pending
            .get(id)
            .filter(|p| p.expires_ms > now_ms)
            .ok_or_else(|| ApproveError::UnknownId(id.to_string()))?;
        if p.info.untrusted && !confirm_untrusted {
            return Err(ApproveError::UntrustedNotConfirmed(id.to_string()));
        }
        if terms.scope == Scope::Session {
            let why = single_run_reason(&p.info).or_else(|| {
                p.info
                    .session_id
                    .is_none()
                    .then(|| "the request has no session id".to_string())
            });
            if let Some(why) = why {
                return Err(ApproveError::SessionRefused {
                    id: id.to_string(),
                    why,
                });
            }
        }
        if terms.scope == Scope::Limited && terms.repeats() {
            if let Some(why) = single_run_reason(&p.info) {
                return Err(ApproveError::RepeatRefused {
                    id: id.to_string(),
                    terms: terms.describe(),
                    why,
                });
            }
        }
        if quorum > 1 {
            if p.votes
                .iter()
                .any(|v| v.uid == voter.uid && v.name == voter.name)
            {
                return Err(ApproveError::AlreadyVoted {
                    id: id.to_string(),
                    name: voter.name.clone(),
                    uid: voter.uid,
                });
            }
            if let Some(first) = p.terms.filter(|t| *t != terms) {
                return Err(ApproveError::TermsDiffer {
                    id: id.to_string(),
                    first: first.describe(),
                });
            }
            let p = self
                .pending
                .get_mut(id)
                .ok_or_else(|| ApproveError::UnknownId(id.to_string()))?;
            p.terms = Some(terms);
            p.votes.push(Vote {
                uid: voter.uid,
                name: voter.name.clone(),
                at_ms: now_ms,
            });
            if p.votes.len() < quorum as usize {
                return Ok(Decision::Voted {
                    votes: p.votes.len(),
                    quorum,
                });
            }
        }
        let p = self
            .pending
            .remove(id)
            .ok_or_else(|| ApproveError::UnknownId(id.to_string()))?;
        let limited = terms.scope == Scope::Limited;
        let approvers: Vec<String> = if quorum > 1 {
            p.votes.iter().map(|v| v.name.clone()).collect()
        } else {
            vec![voter.name.clone()]
        };
        let grant = Grant {
            digest: p.info.digest,
            view: p.info.view_hash(),
            scope: terms.scope,
            request_id: p.id.clone(),
            caller_uid: p.info.peer_uid,
            session_id: p.info.session_id.clone(),
            created_ms: now_ms,
            uses_left: terms.uses.filter(|_| limited),
            expires_ms: terms
                .for_ms
                .filter(|_| limited)
                .map(|ms| now_ms.saturating_add(ms)),
            command: p.info.command.clone(),
            runuser: p.info.runuser.clone(),
            submituser: p.info.submituser.clone(),
            approvers: approvers.into_iter().filter(|n| !n.is_empty()).collect(),
        };
        if let Some(s) = &grant.session_id {
            self.sessions.insert(s.clone(), now_ms);
        }
        self.grants.insert(grant.digest, grant.clone());
        self.outcomes
            .insert(p.id.clone(), Outcome::Approved { scope: terms.scope });
        Ok(Decision::Granted(Box::new(p), Box::new(grant)))
    }

    /// Denies a pending request. The same request from the same caller is answered with this
    /// denial until the denied request would have expired.
    pub fn deny(&mut self, id: &str, note: Option<String>) -> Result<Pending, ApproveError> {
        let p = self
            .pending
            .remove(id)
            .ok_or_else(|| ApproveError::UnknownId(id.to_string()))?;
        self.denied.push(Denial {
            digest: p.info.digest,
            view: p.info.view_hash(),
            caller_uid: p.info.peer_uid,
            request_id: p.id.clone(),
            note: note.clone(),
            until_ms: p.expires_ms,
        });
        self.outcomes.insert(p.id.clone(), Outcome::Denied { note });
        Ok(p)
    }

    /// Denies an approved grant that has not run yet (or has runs left): it ends, and the
    /// same request is answered with the denial for one pending-expiry window from `now_ms`.
    pub fn deny_grant(&mut self, id: &str, note: Option<String>, now_ms: u64) -> Option<Grant> {
        let g = self.revoke_id(id)?;
        self.denied.push(Denial {
            digest: g.digest,
            view: g.view,
            caller_uid: g.caller_uid,
            request_id: g.request_id.clone(),
            note,
            until_ms: now_ms.saturating_add(self.pending_expiry_ms),
        });
        Some(g)
    }

    /// Takes back `uid`'s vote on pending request `id` (its audit record failed).
    pub fn withdraw_vote(&mut self, id: &str, uid: u32) {
        if let Some(p) = self.pending.get_mut(id) {
            p.votes.retain(|v| v.uid != uid);
            if p.votes.is_empty() {
                p.terms = None;
            }
        }
    }

    /// Forgets the denial of `id` (a request withdrawn for the broker's own failure, not by
    /// an approver).
    pub fn forget_denial(&mut self, id: &str) {
        self.denied.retain(|d| d.request_id != id);
    }

    /// The live denial of this request, if an approver denied it within its window.
    pub fn denial_of(&self, info: &RequestInfo, now_ms: u64) -> Option<&Denial> {
        self.denied.iter().find(|d| d.matches(info, now_ms))
    }

    /// Ends the grant approved for request `id`.
    pub fn revoke_id(&mut self, id: &str) -> Option<Grant> {
        let digest = self
            .grants
            .values()
            .find(|g| g.request_id == id)
            .map(|g| g.digest)?;
        self.grants.remove(&digest)
    }

    /// Ends every grant of one session (and the session), or every grant: the grants ended,
    /// oldest first.
    pub fn revoke(&mut self, session_id: Option<&str>) -> Vec<Grant> {
        let mut gone: Vec<Grant> = self
            .grants
            .values()
            .filter(|g| session_id.is_none_or(|s| g.session_id.as_deref() == Some(s)))
            .cloned()
            .collect();
        match session_id {
            Some(s) => {
                self.drop_session(s);
            }
            None => {
                self.drop_all();
            }
        }
        gone.sort_by(|a, b| (a.created_ms, &a.request_id).cmp(&(b.created_ms, &b.request_id)));
        gone
    }

    /// Live grants, oldest first, for `occ grants`.
    pub fn grants(&self, now_ms: u64) -> Vec<Grant> {
        let mut all: Vec<Grant> = self
            .grants
            .keys()
            .filter_map(|d| self.peek_grant(d, now_ms).cloned())
            .collect();
        all.sort_by(|a, b| (a.created_ms, &a.request_id).cmp(&(b.created_ms, &b.request_id)));
        all
    }

    /// Removes limited grants past their time, and denials past their window; returns the
    /// grants that ended.
    pub fn expire_grants(&mut self, now_ms: u64) -> Vec<Grant> {
        self.denied.retain(|d| d.until_ms > now_ms);
        let gone: Vec<Digest> = self
            .grants
            .values()
            .filter(|g| g.scope == Scope::Limited && g.expires_ms.is_some_and(|e| e <= now_ms))
            .map(|g| g.digest)
            .collect();
        gone.iter().filter_map(|d| self.grants.remove(d)).collect()
    }

    /// Answers every waiting caller with `Stopping` but keeps the pending requests, so the
    /// restart snapshot carries them (user mode's clean stop).
    pub fn stop_waiters(&mut self) {
        for id in self.pending.keys() {
            self.outcomes.insert(id.clone(), Outcome::Stopping);
        }
    }

    /// Answers every pending request with `Stopping` (broker shutdown).
    pub fn stop_all(&mut self) -> Vec<Pending> {
        let all: Vec<Pending> = std::mem::take(&mut self.pending).into_values().collect();
        for p in &all {
            self.outcomes.insert(p.id.clone(), Outcome::Stopping);
        }
        all
    }

    /// Whether a live grant covers this digest, without using it.
    pub fn peek_grant(&self, digest: &Digest, now_ms: u64) -> Option<&Grant> {
        let g = self.grants.get(digest)?;
        if g.view == [0u8; 32] {
            return None;
        }
        match g.scope {
            Scope::Once => Some(g),
            Scope::Session => {
                let s = g.session_id.as_ref()?;
                let last = *self.sessions.get(s)?;
                (now_ms.saturating_sub(last) < self.idle_timeout_ms).then_some(g)
            }
            Scope::Limited => {
                let bounded = g.uses_left.is_some() || g.expires_ms.is_some();
                let runs_left = g.uses_left != Some(0);
                let in_time = g.expires_ms.is_none_or(|e| now_ms < e);
                (bounded && runs_left && in_time).then_some(g)
            }
        }
    }

    /// Uses the grant covering this digest: a `--once` grant is consumed, a `--session` grant
    /// refreshes its session's activity. Untrusted requests never reuse a grant beyond once,
    /// which `approve` already guarantees by refusing `--session` for them.
    /// `view` is the live request's [`RequestInfo::view_hash`]: it must be what was approved.
    pub fn take_grant(&mut self, digest: &Digest, view: &Digest, now_ms: u64) -> Option<Grant> {
        let g = self.peek_grant(digest, now_ms)?.clone();
        if g.view != *view {
            return None;
        }
        match g.scope {
            Scope::Once => {
                self.grants.remove(digest);
            }
            Scope::Session => {
                if let Some(s) = &g.session_id {
                    self.sessions.insert(s.clone(), now_ms);
                }
            }
            Scope::Limited => {
                if let Some(live) = self.grants.get_mut(digest) {
                    match live.uses_left {
                        Some(n) if n <= 1 => {
                            self.grants.remove(digest);
                        }
                        Some(n) => live.uses_left = Some(n - 1),
                        None => {}
                    }
                }
            }
        }
        Some(g)
    }

    /// Puts back a once-grant that [`Store::take_grant`] took for a run that never started
    /// (user mode: the real sudo would have asked a password). A grant filed since for the
    /// same digest wins; a session grant was never taken away.
    pub fn put_back(&mut self, grant: Grant) {
        match grant.scope {
            Scope::Once => {
                self.grants.entry(grant.digest).or_insert(grant);
            }
            Scope::Limited => match self.grants.get_mut(&grant.digest) {
                Some(live) if live.request_id == grant.request_id => {
                    live.uses_left = live.uses_left.map(|n| n.saturating_add(1));
                }
                Some(_) => {}
                None => {
                    self.grants.insert(grant.digest, grant);
                }
            },
            Scope::Session => {}
        }
    }

    /// Ends sessions idle for the timeout, dropping their grants; returns their ids.
    pub fn expire_sessions(&mut self, now_ms: u64) -> Vec<String> {
        let idle = self.idle_timeout_ms;
        let gone: Vec<String> = self
            .sessions
            .iter()
            .filter(|(_, last)| now_ms.saturating_sub(**last) >= idle)
            .map(|(s, _)| s.clone())
            .collect();
        for s in &gone {
            self.drop_session(s);
        }
        gone
    }

    /// Drops every grant of one session; returns how many.
    pub fn drop_session(&mut self, session_id: &str) -> usize {
        let before = self.grants.len();
        self.grants
            .retain(|_, g| g.session_id.as_deref() != Some(session_id));
        self.sessions.remove(session_id);
        before - self.grants.len()
    }

    /// Drops every grant held for one caller uid (`sudo -k`/`-K`); returns how many.
    pub fn drop_caller(&mut self, uid: u32) -> usize {
        let before = self.grants.len();
        self.grants.retain(|_, g| g.caller_uid != uid);
        before - self.grants.len()
    }

    /// `sudo -k CMD`: drops the caller's grants except a `--once` grant for exactly this
    /// request, which an approver made for this very run. Returns how many were dropped.
    pub fn drop_caller_keeping_once(&mut self, uid: u32, digest: &Digest) -> usize {
        let before = self.grants.len();
        self.grants
            .retain(|d, g| g.caller_uid != uid || (d == digest && g.scope == Scope::Once));
        before - self.grants.len()
    }

    /// Drops every grant; returns how many.
    pub fn drop_all(&mut self) -> usize {
        let n = self.grants.len();
        self.grants.clear();
        self.sessions.clear();
        n
    }

    /// Live sessions with idle time and grant counts, for `occ status`.
    pub fn sessions(&self, now_ms: u64) -> Vec<SessionSummary> {
        let mut out: Vec<SessionSummary> = self
            .sessions
            .iter()
            .map(|(s, last)| SessionSummary {
                session_id: s.clone(),
                idle_ms: now_ms.saturating_sub(*last),
                grants: self
                    .grants
                    .values()
                    .filter(|g| g.session_id.as_deref() == Some(s))
                    .count(),
            })
            .collect();
        out.sort_by(|a, b| a.session_id.cmp(&b.session_id));
        out
    }

    /// Number of live grants.
    pub fn grant_count(&self) -> usize {
        self.grants.len()
    }

    /// The restart snapshot: grants and session activity.
    pub fn snapshot(&self) -> Snapshot {
        let mut grants: Vec<Grant> = self.grants.values().cloned().collect();
        grants.sort_by(|a, b| a.request_id.cmp(&b.request_id));
        Snapshot {
            version: 1,
            grants,
            sessions: self.sessions.iter().map(|(k, v)| (k.clone(), *v)).collect(),
            pending: Vec::new(),
            issued: Vec::new(),
            denied: self.denied.clone(),
        }
    }

    /// The system broker's state: the snapshot plus pending requests and issued ids.
    pub fn state(&self) -> Snapshot {
        let mut snap = self.snapshot();
        snap.pending = self.pending.values().cloned().collect();
        snap.issued = self.issued.iter().cloned().collect();
        snap.issued.sort();
        snap
    }

    /// Pending requests of one requesting uid.
    pub fn pending_of(&self, uid: u32) -> usize {
        self.pending
            .values()
            .filter(|p| p.info.peer_uid == uid)
            .count()
    }

    /// Restores grants from a snapshot the caller has already checked (owner, mode); session
    /// grants whose session is idle past the timeout are not restored.
    pub fn restore(&mut self, snap: Snapshot, now_ms: u64) {
        self.issued.extend(snap.issued);
        // Expired ones too: the next sweep records their expiry.
        for p in snap.pending {
            self.issued.insert(p.id.clone());
            self.pending.insert(p.id.clone(), p);
        }
        for (s, last) in snap.sessions {
            if now_ms.saturating_sub(last) < self.idle_timeout_ms {
                self.sessions.insert(s, last);
            }
        }
        self.denied
            .extend(snap.denied.into_iter().filter(|d| d.until_ms > now_ms));
        for g in snap.grants {
            let live = match (&g.scope, &g.session_id) {
                (Scope::Once, _) => true,
                (Scope::Limited, _) => {
                    (g.uses_left.is_some() || g.expires_ms.is_some())
                        && g.uses_left != Some(0)
                        && g.expires_ms.is_none_or(|e| now_ms < e)
                }
                (Scope::Session, Some(s)) => self.sessions.contains_key(s),
                (Scope::Session, None) => false,
            };
            if live {
                self.issued.insert(g.request_id.clone());
                self.grants.insert(g.digest, g);
            }
        }
    }
}

mod hex_digest {
    use super::Digest;

    pub fn serialize<S: serde::Serializer>(d: &Digest, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&occ_base::hex::encode(d))
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Digest, D::Error> {
        let s: String = serde::Deserialize::deserialize(d)?;
        occ_base::hex::decode32(s.as_bytes())
            .ok_or_else(|| serde::de::Error::custom("digest must be 64 hex characters"))
    }
}
