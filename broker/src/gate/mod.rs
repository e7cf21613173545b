//! The approval gate: the broker's [`RequestHandler`]. It turns each shim request into a policy
//! evaluation, runs the approval stack, asks a human through the queue, writes every step to
//! the audit log, and composes the exact real-sudo argv it grants. It must fail closed: a
//! broken file, a failed audit write or anything unexpected is a refusal, never a grant.
//!
//! One request goes, in order, through:
//! - [`understand`]: raw frame → policy evaluation and the request approvers see;
//! - the decision: refused, answered by the broker (`-l`, `-V`, …), or on to
//! - [`approval`]: the PAM-style stack, the queue and the opt-in [`tty`] channel;
//! - [`exec`]: the grant that lets the approved command run, and how the run ended.
//!
//! Beside them: [`admin`] answers approvers, [`notify`] tells them a request is waiting,
//! [`watch`] pushes the live queue to `occ approvals --watch`,
//! [`snapshot`] carries grants over a restart,
//! [`sink`] writes [`events`] to the audit log, and [`refusal`] names every reason code.

pub mod access;
pub mod admin;
mod approval;
#[cfg(test)]
mod containment;
pub mod events;
mod exec;
mod grants;
mod notify;
pub mod refusal;
mod signed;
mod sink;
mod snapshot;
mod spawn;
mod system;
mod tty;
mod understand;
mod watch;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use occ_audit::Writer;
use occ_policy::file::{BrokerConfig, FileError, Fsync, PolicyConfig};
use occ_policy::Decision;
use occ_proto::{Output, Request};

use crate::clock::now_ms;
use crate::daemon::conn::{Conn, PeerCred};
use crate::daemon::handler::{ProtocolError, RequestHandler, StartInfo, StopCause};
use crate::escape::escape_text;
use crate::layout::{Layout, Mode};
use crate::session::Store;

use events::{int, opt, s, strs, Event, Fields};
use refusal::Refusal;
pub use sink::FLUSH_EVERY;
pub use understand::broker_digest;

/// State shared by the connection threads and the maintenance thread: the approval store and
/// the audit log.
pub struct Core {
    layout: Layout,
    /// System mode: the policy as last loaded (at start or on SIGHUP). A bad new file keeps
    /// the old policy. User mode reads the files on every request instead.
    loaded: Mutex<Option<PolicyConfig>>,
    store: Mutex<Store>,
    decided: Condvar,
    audit: Mutex<Option<Writer>>,
    /// Records appended since the head checkpoint was last brought up to date.
    audit_dirty: AtomicBool,
    /// Records appended since the log was last made durable.
    audit_unsynced: AtomicBool,
    /// `audit.fsync` in broker.json is `always` (the default): every event is durable before
    /// the broker answers anyone, not only `exec_start` and the approvals.
    fsync_always: AtomicBool,
    /// Syncs [`Core::settle`] made (shown by `occ status`).
    answer_syncs: AtomicU64,
    /// `audit.seal` in broker.json: events may only be written sealed.
    seal_required: AtomicBool,
    /// `audit.forward`: copies of every event to sudo_logsrvd and syslog, spooled.
    forward: crate::forward::Forwarders,
    /// One past the seq of the last event this broker appended.
    appended_next: AtomicU64,
    /// System mode: how often strangers' refusals are audited.
    refusals: access::RateLimit,
    /// Both modes: how often refusals over broker.json's `limits` are audited.
    limit_refusals: access::RateLimit,
    /// `approval.notify`: the bounded queue to the notifier thread.
    notifications: notify::Notifications,
    /// `occ approvals --watch`: the live queue's watchers.
    watchers: watch::Watchers,
}

/// The broker's approval gate: the shared [`Core`] plus what only request handling needs.
pub struct Gate {
    core: Arc<Core>,
    uid: u32,
    /// Legacy `OPENCLAW_APPROVAL_TOKEN` from the broker's own start environment or a 0600
    /// `$OCC_HOME/env`, never from a caller. Kept only as its digest.
    legacy_token_sha256: Option<String>,
}

impl std::ops::Deref for Gate {
    type Target = Core;
    fn deref(&self) -> &Core {
        &self.core
    }
}

impl Gate {
    /// A gate for `$OCC_HOME` served by a broker running as `uid`.
    pub fn new(layout: Layout, uid: u32, legacy_token_sha256: Option<String>) -> Gate {
        let cfg = load_policy(&layout.config_dir, uid, &|_| None).ok();
        let fsync_always = cfg
            .as_ref()
            .is_none_or(|c| c.broker.audit.fsync == Fsync::Always);
        let seal_required = cfg.as_ref().is_some_and(|c| c.broker.audit.seal);
        let (expiry, idle) = cfg
            .as_ref()
            .map(|c| {
                (
                    c.broker.approval.pending_expiry_minutes,
                    c.broker.session.idle_timeout_minutes,
                )
            })
            .unwrap_or((30, 30));
        let layout_spool = layout.state_dir.join("spool");
        Gate {
            core: Arc::new(Core {
                loaded: Mutex::new(cfg.clone().filter(|_| layout.mode == Mode::System)),
                layout,
                store: Mutex::new(Store::new(expiry, idle)),
                decided: Condvar::new(),
                audit: Mutex::new(None),
                audit_dirty: AtomicBool::new(false),
                audit_unsynced: AtomicBool::new(false),
                fsync_always: AtomicBool::new(fsync_always),
                answer_syncs: AtomicU64::new(0),
                seal_required: AtomicBool::new(seal_required),
                refusals: access::RateLimit::default(),
                limit_refusals: access::RateLimit::default(),
                notifications: notify::Notifications::default(),
                watchers: watch::Watchers::default(),
                forward: crate::forward::Forwarders::new(layout_spool),
                appended_next: AtomicU64::new(0),
            }),
            uid,
            legacy_token_sha256,
        }
    }

    /// Starts the maintenance thread: every [`FLUSH_EVERY`] it group-commits the audit log,
    /// and every second it expires pending requests and idle sessions, so those events are on
    /// record even when no request comes in.
    fn start_maintenance(&self) {
        let core = Arc::clone(&self.core);
        let _ = std::thread::Builder::new()
            .name("occ-maintenance".into())
            .spawn(move || {
                let mut last_sweep = std::time::Instant::now();
                loop {
                    std::thread::sleep(FLUSH_EVERY);
                    if last_sweep.elapsed() >= Duration::from_secs(1) {
                        core.sweep();
                        last_sweep = std::time::Instant::now();
                    }
                    core.flush_audit();
                    core.record_forward_overflows();
                }
            });
    }

    /// The policy files as the broker reads them now, tightened by `caller_env`.
    fn policy(
        &self,
        caller_env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<PolicyConfig, Vec<FileError>> {
        match self.layout.mode {
            Mode::User => {
                occ_policy::file::load_user(&self.layout.config_dir, self.uid, caller_env)
            }
            Mode::System => {
                let loaded = self.loaded.lock().unwrap_or_else(|p| p.into_inner());
                let mut cfg = loaded.clone().ok_or_else(|| {
                    load_policy(&self.layout.config_dir, self.uid, &|_| None)
                        .err()
                        .unwrap_or_default()
                })?;
                cfg.broker.tighten_from_env(caller_env);
                Ok(cfg)
            }
        }
    }

    /// One reading of `broker.json` as the policy files say now, without copying the whole
    /// policy (its compiled rules) when the system broker has it cached: the per-connection
    /// and per-request checks need a list or a number, not the rules.
    fn broker_setting<T>(
        &self,
        read: impl FnOnce(&BrokerConfig) -> T,
    ) -> Result<T, Vec<FileError>> {
        if self.system() {
            let loaded = self.loaded.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(cfg) = loaded.as_ref() {
                return Ok(read(&cfg.broker));
            }
            drop(loaded);
            return self.policy(&|_| None).map(|c| read(&c.broker));
        }
        // User mode: broker.json alone, as it is now (the limits are read on every accept).
        let file = self.layout.config_dir.join(occ_policy::file::BROKER_CONFIG);
        match BrokerConfig::load(&file, self.uid) {
            Ok(Some(cfg)) => Ok(read(&cfg)),
            Ok(None) => Ok(read(&BrokerConfig::default())),
            Err(e) => Err(vec![e]),
        }
    }

    /// Refuses the request on `conn` with `reason`, recording `event`. The refusal stands even
    /// if it cannot be recorded; the message then says so.
    fn refuse(&self, conn: &mut Conn, fields: Fields, event: Event, reason: Refusal, msg: &str) {
        let mut fields = fields;
        fields.insert("reason_code".into(), s(reason.code()));
        fields.insert("message".into(), s(msg));
        let msg = match self.audit(event, fields) {
            Ok(_) => msg.to_string(),
            Err(e) => format!("{msg} ({e})"),
        };
        let _ = conn.refuse(&msg, reason.code());
    }

    /// Refuses a request over one of broker.json's `limits` with `reason`. The refusal is
    /// audited at a bounded rate per uid (one per window, with how many were left out), so a
    /// flood of refusals cannot fill the log.
    fn refuse_over_limit(
        &self,
        conn: &mut Conn,
        peer: &PeerCred,
        fields: Fields,
        reason: Refusal,
        msg: &str,
    ) {
        if let Some(suppressed) = self.limit_refusals.admit(peer.uid, now_ms()) {
            let mut fields = fields;
            fields.insert("suppressed".into(), int(suppressed));
            self.refuse(conn, fields, Event::PolicyBlock, reason, msg);
        } else {
            let _ = conn.refuse(msg, reason.code());
        }
    }

    /// One request, answered (the [`RequestHandler::handle`] body).
    fn serve(&self, conn: &mut Conn, req: Request) {
        self.sweep();
        let peer = conn.peer();
        if self.system() {
            if let Err((reason, msg)) = self.check_requester(&peer) {
                let _ = conn.refuse(&msg, reason.code());
                return;
            }
        }
        // Both modes: in user mode the one uid is the agent's, and the cap keeps a flooding
        // agent from growing the broker without bound.
        let limit = match self.broker_setting(|b| b.limits.request_bytes) {
            Ok(l) => l,
            Err(errs) => {
                let msg = errs.first().map(|e| e.to_string()).unwrap_or_default();
                let f = events::peer(&peer);
                self.refuse(conn, f, Event::PolicyBlock, Refusal::PolicyInvalid, &msg);
                return;
            }
        };
        let size = req.argv.iter().map(Vec::len).sum::<usize>()
            + req.cwd.len()
            + req
                .env
                .iter()
                .map(|(k, v)| k.len() + v.len())
                .sum::<usize>();
        if size > limit {
            let mut f = events::peer(&peer);
            f.insert("request_bytes".into(), int(size));
            let msg = format!(
                "the request is {size} bytes, over broker.json's limits.request_bytes ({limit})"
            );
            self.refuse_over_limit(conn, &peer, f, Refusal::RequestTooLarge, &msg);
            return;
        }
        let u = match self.understand(&peer, &req) {
            Ok(u) => u,
            Err((reason, msg)) => {
                let f = events::peer(&peer);
                self.refuse(conn, f, Event::ProtocolError, reason, &msg);
                return;
            }
        };
        let mut f = u.fields(&peer, None);
        f.insert("submit_argv".into(), strs(&u.raw_argv));
        if let Err(e) = self.audit(Event::RequestReceived, f) {
            let _ = conn.refuse(&format!("refusing: {e}"), Refusal::AuditFailed.code());
            return;
        }
        let outcome = &u.eval.outcome;
        match outcome.decision {
            Decision::Deny => {
                let mut f = u.fields(&peer, None);
                f.insert("rule".into(), opt(outcome.rule.clone()));
                // Usage errors and unknown commands or users are answered as sudo answers
                // them: its text on stderr, exit 1.
                let answer_as_sudo = match &u.eval.usage_text {
                    Some(text) => Some((Refusal::Usage, text.clone())),
                    None => matches!(
                        outcome.reason_code,
                        "command_not_found" | "unknown_user" | "unknown_group"
                    )
                    .then(|| {
                        (
                            Refusal::Policy(outcome.reason_code),
                            format!("{}\n", outcome.message),
                        )
                    }),
                };
                if let Some((reason, text)) = answer_as_sudo {
                    f.insert("reason_code".into(), s(reason.code()));
                    let _ = self.audit(Event::PolicyBlock, f);
                    let _ = conn.output(Output {
                        stdout: Vec::new(),
                        stderr: text.into_bytes(),
                        exit_code: 1,
                    });
                    return;
                }
                let event = if outcome.reason_code == "session_required" {
                    Event::SessionMissing
                } else {
                    Event::PolicyBlock
                };
                let reason = Refusal::Policy(outcome.reason_code);
                self.refuse(conn, f, event, reason, &escape_text(&outcome.message));
            }
            Decision::Allow => self.answer_by_broker(conn, &peer, &u),
            Decision::ApprovalRequired => {
                let cfg = match self.policy(&|k| {
                    req.env
                        .iter()
                        .find(|(n, _)| n.as_slice() == k.as_bytes())
                        .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
                }) {
                    Ok(c) => c,
                    Err(errs) => {
                        let msg = errs.first().map(|e| e.to_string()).unwrap_or_default();
                        let f = u.fields(&peer, None);
                        self.refuse(conn, f, Event::PolicyBlock, Refusal::PolicyInvalid, &msg);
                        return;
                    }
                };
                if let Some((reason, msg)) = &u.exe_error {
                    let f = u.fields(&peer, None);
                    self.refuse(conn, f, Event::PolicyBlock, *reason, msg);
                    return;
                }
                if u.script {
                    let f = u.fields(&peer, None);
                    let msg = format!(
                        "{} is a #! script; the system broker runs approved files by descriptor, \
                         so ask for its interpreter with the script as an argument \
                         (sudo /bin/sh {})",
                        escape_text(&u.info.command.first().cloned().unwrap_or_default()),
                        escape_text(&u.info.command.first().cloned().unwrap_or_default())
                    );
                    self.refuse(conn, f, Event::PolicyBlock, Refusal::ScriptRefused, &msg);
                    return;
                }
                if u.eval.sudo.as_ref().is_some_and(|r| r.reset_timestamp) {
                    // `-k CMD`: forget the caller's grants first; only a --once approval of
                    // exactly this request (made for this run) survives.
                    self.store()
                        .drop_caller_keeping_once(peer.uid, &u.info.digest);
                    self.persist();
                }
                self.run_stack(conn, &peer, &u, &cfg);
            }
        }
    }
}

impl Core {
    fn audit_log(&self) -> PathBuf {
        self.layout.audit_log.clone()
    }

    fn store(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sweeps expired pending requests and idle sessions, auditing each.
    pub fn sweep(&self) {
        let now = now_ms();
        let (expired, sessions, grants) = {
            let mut st = self.store();
            (
                st.expire(now),
                st.expire_sessions(now),
                st.expire_grants(now),
            )
        };
        if !expired.is_empty() || !sessions.is_empty() || !grants.is_empty() {
            self.decided.notify_all();
            self.persist();
        }
        for p in expired {
            let _ = self.audit(Event::ApprovalExpired, events::expired(&p));
        }
        for sid in sessions {
            let mut f = Fields::new();
            f.insert("session_id".into(), s(sid));
            let _ = self.audit(Event::SessionTimeout, f);
        }
        for g in grants {
            let _ = self.audit(Event::GrantExpired, events::grant(&g));
        }
        self.settle();
    }
}

/// Loads every policy file in `config_dir` as a broker running as `uid` reads them.
pub fn load_policy(
    config_dir: &Path,
    uid: u32,
    caller_env: &dyn Fn(&str) -> Option<String>,
) -> Result<PolicyConfig, Vec<FileError>> {
    occ_policy::file::load(config_dir, uid, caller_env)
}

impl RequestHandler for Gate {
    fn started(&self, info: &StartInfo) {
        self.start_maintenance();
        self.start_notifier();
        self.start_watch_hub();
        // Threads start here, after the daemon has detached (a fork keeps only its caller's
        // thread), before the first event is written.
        if let Ok(audit) = self.broker_setting(|b| b.audit.clone()) {
            self.forward.follow(&audit);
        }
        let restored = if self.system() {
            self.restore_system_state()
        } else {
            self.restore_state()
        };
        let unknown_runs = if self.system() {
            self.unknown_runs()
        } else {
            Vec::new()
        };
        let mut f = Fields::new();
        f.insert("pid".into(), int(info.pid));
        f.insert("uid".into(), int(info.uid));
        f.insert("mode".into(), s(self.layout.mode.name()));
        f.insert("socket".into(), s(info.socket.display().to_string()));
        if let Err(e) = self.audit(Event::BrokerStarted, f) {
            tracing::error!("{e}");
        }
        for (event, fields) in restored {
            let _ = self.audit(event, fields);
        }
        if self.system() {
            self.reload_config();
            self.record_unknown_runs(unknown_runs);
        }
        // The head checkpoint exists from the first event on, so `occ audit verify` never
        // finds a log without one.
        self.flush_audit();
        tracing::info!(pid = info.pid, "broker_started");
    }

    fn handle(&self, conn: &mut Conn, req: Request) {
        let core = Arc::clone(&self.core);
        conn.before_answer(Box::new(move || core.settle()));
        self.serve(conn, req);
        // Events after the last answer: `exec_finish`, `exec_outcome_unknown`.
        self.settle();
    }

    fn admin(&self, conn: &mut Conn, body: Vec<u8>) {
        let core = Arc::clone(&self.core);
        conn.before_answer(Box::new(move || core.settle()));
        self.serve_admin(conn, body);
    }

    fn protocol_error(&self, peer: &PeerCred, err: &ProtocolError) {
        let mut f = events::peer(peer);
        f.insert("kind".into(), s(err.kind));
        f.insert("detail".into(), s(err.detail.clone()));
        let _ = self.audit(Event::ProtocolError, f);
        self.settle();
    }

    fn peer_refused(&self, peer: &PeerCred, broker_uid: u32) {
        let mut f = events::peer(peer);
        f.insert("reason_code".into(), s(Refusal::PeerUidMismatch.code()));
        f.insert("broker_uid".into(), int(broker_uid));
        let _ = self.audit(Event::PolicyBlock, f);
        self.settle();
    }

    fn connections_per_uid(&self, admin: bool) -> usize {
        let limits = self
            .broker_setting(|b| b.limits.clone())
            .unwrap_or_default();
        if admin {
            limits.admin_connections_per_uid
        } else {
            limits.connections_per_uid
        }
    }

    fn over_connection_limit(&self, peer: &PeerCred, key: &'static str, limit: usize) {
        if let Some(suppressed) = self.limit_refusals.admit(peer.uid, now_ms()) {
            let mut f = events::peer(peer);
            f.insert("reason_code".into(), s(Refusal::BrokerBusy.code()));
            f.insert("limit".into(), s(key));
            f.insert("connections".into(), int(limit));
            f.insert("suppressed".into(), int(suppressed));
            let _ = self.audit(Event::PolicyBlock, f);
            self.settle();
        }
    }

    fn reload(&self) {
        self.reload_config();
    }

    fn stopping(&self, cause: StopCause) {
        if self.system() {
            // Pending requests survive a restart; waiting callers see the broker stopping.
            self.decided.notify_all();
            self.persist();
            self.settle();
            tracing::info!(?cause, "stopping");
            return;
        }
        // Pending requests survive a clean stop in the restart snapshot (`stopped`); waiting
        // callers see the broker stopping.
        self.store().stop_waiters();
        self.decided.notify_all();
        self.settle();
        tracing::info!(?cause, "stopping");
    }

    fn stopped(&self) {
        let mut f = Fields::new();
        f.insert("pid".into(), int(std::process::id()));
        if self.system() {
            self.persist();
        } else if let Some(sha) = self.save_state() {
            f.insert("snapshot_sha256".into(), s(sha));
        }
        let _ = self.audit(Event::BrokerStopped, f);
        self.flush_audit();
        // Whatever the destinations can take now, broker_stopped included, goes before exit.
        self.forward.finish();
    }
}
