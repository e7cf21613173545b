//! The approval gate: the broker's [`RequestHandler`]. It turns each shim request into a policy
//! evaluation, runs the approval stack, asks a human through the queue, writes every step to
//! the audit log, and composes the exact real-sudo argv it grants. It must fail closed: a
//! broken file, a failed audit write or anything unexpected is a refusal, never a grant.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use occ_audit::{Value, Writer};
use occ_policy::file::{Channel, FileError, Fsync, PolicyConfig};
use occ_policy::{Action, Caller, Context, Decision, Evaluation};
use occ_proto::{Output, Request};

use crate::daemon::conn::{Conn, ExecOutcome, PeerCred, Wait};
use crate::daemon::handler::{ProtocolError, RequestHandler, StartInfo, StopCause};
use crate::escape::escape_text;
use crate::session::{self, Digest, Outcome as PendingOutcome, RequestInfo, Scope, Store};
use crate::stack::{self, Module, Verdict};

/// Milliseconds since the epoch: the one clock every rule here reads. Builds with the
/// compile-time `test-clock` feature add an offset that tests advance through the admin socket;
/// no environment variable or file can move it.
pub fn now_ms() -> u64 {
    let real = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0);
    real.saturating_add(test_clock::offset_ms())
}

#[cfg(feature = "test-clock")]
mod test_clock {
    use std::sync::atomic::{AtomicU64, Ordering};

    static OFFSET_MS: AtomicU64 = AtomicU64::new(0);

    pub fn offset_ms() -> u64 {
        OFFSET_MS.load(Ordering::SeqCst)
    }

    pub fn advance(ms: u64) -> u64 {
        OFFSET_MS.fetch_add(ms, Ordering::SeqCst).saturating_add(ms)
    }
}

#[cfg(not(feature = "test-clock"))]
mod test_clock {
    pub fn offset_ms() -> u64 {
        0
    }
}

/// How often the flusher makes group-committed audit events durable and moves the head.
pub const FLUSH_EVERY: Duration = Duration::from_millis(200);

/// Audit fields under construction.
pub type Fields = BTreeMap<String, Value>;

fn s(v: impl Into<String>) -> Value {
    Value::Str(v.into())
}

fn opt(v: Option<impl Into<String>>) -> Value {
    v.map(|x| Value::Str(x.into())).unwrap_or(Value::Null)
}

fn strs(v: &[String]) -> Value {
    Value::Array(v.iter().map(|x| Value::Str(x.clone())).collect())
}

fn int(v: impl TryInto<i64>) -> Value {
    v.try_into().map(Value::Int).unwrap_or(Value::Null)
}

/// State shared by the connection threads and the maintenance thread: the approval store and
/// the audit log.
pub struct Core {
    home: PathBuf,
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

/// A request the gate has understood well enough to show an approver.
struct Understood {
    eval: Evaluation,
    info: RequestInfo,
    raw_argv: Vec<String>,
    tty: bool,
}

impl Gate {
    /// A gate for `$OCC_HOME` served by a broker running as `uid`.
    pub fn new(home: PathBuf, uid: u32, legacy_token_sha256: Option<String>) -> Gate {
        let cfg = load_policy(&home, uid, &|_| None).ok();
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
        Gate {
            core: Arc::new(Core {
                home,
                store: Mutex::new(Store::new(expiry, idle)),
                decided: Condvar::new(),
                audit: Mutex::new(None),
                audit_dirty: AtomicBool::new(false),
                audit_unsynced: AtomicBool::new(false),
                fsync_always: AtomicBool::new(fsync_always),
                answer_syncs: AtomicU64::new(0),
                seal_required: AtomicBool::new(seal_required),
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
                }
            });
    }
}

impl Core {
    fn security(&self) -> PathBuf {
        self.home.join("security")
    }

    fn store(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Appends one event, group-committed: written with one `write(2)` at once (so a crash of
    /// the broker loses nothing), fsynced with the next durable event or within 200 ms of
    /// appends. An `Err` means the event is not on record: the caller must not proceed with
    /// whatever the event was about.
    pub fn audit(&self, event_type: &str, fields: Fields) -> Result<u64, String> {
        self.append(event_type, fields, false)
    }

    /// Appends one event and makes it, and everything before it, durable before returning.
    /// Used for the events that let something happen: `exec_start`, approvals, tokens.
    pub fn audit_durable(&self, event_type: &str, fields: Fields) -> Result<u64, String> {
        self.append(event_type, fields, true)
    }

    fn append(&self, event_type: &str, fields: Fields, durable: bool) -> Result<u64, String> {
        let mut guard = self.audit.lock().unwrap_or_else(|p| p.into_inner());
        if guard.is_none() {
            let path = self.security().join("privileged-audit.jsonl");
            if let Some(dir) = path.parent() {
                create_private_dir(dir)?;
            }
            // Group commit is done here, not by the writer: the flusher thread syncs and
            // moves the head within FLUSH_EVERY, and durable events sync at once.
            let opts = occ_audit::Options {
                fsync: occ_audit::Fsync::Batch {
                    max_records: u32::MAX,
                    max_delay: Duration::from_secs(24 * 3600),
                },
                ..occ_audit::Options::default()
            };
            let w =
                Writer::open(&path, opts).map_err(|e| format!("cannot open the audit log: {e}"))?;
            *guard = Some(w);
        }
        let Some(w) = guard.as_mut() else {
            return Err("the audit log is not open".into());
        };
        if self.seal_required.load(Ordering::SeqCst) && !w.sealing() {
            // Fail closed: an unsealed record where sealing is required is not on record.
            return Err(format!(
                "broker.json sets audit.seal but {} is not sealed; run `occ audit init --seal` \
                 (or set audit.seal to false)",
                w.path().display()
            ));
        }
        let result = w.append(event_type, fields).and_then(|a| {
            if durable {
                w.sync_data()?;
            }
            Ok(a.seq)
        });
        self.audit_dirty.store(true, Ordering::SeqCst);
        self.audit_unsynced
            .store(!durable || result.is_err(), Ordering::SeqCst);
        result.map_err(|e| {
            // Reopen next time: the file may have been rotated or repaired.
            *guard = None;
            tracing::error!("audit write failed: {e}");
            format!("cannot write the audit log: {e}")
        })
    }

    /// Follows `audit.fsync` and `audit.seal` as the policy files now say.
    fn follow_audit_config(&self, cfg: &PolicyConfig) {
        self.fsync_always
            .store(cfg.broker.audit.fsync == Fsync::Always, Ordering::SeqCst);
        self.seal_required
            .store(cfg.broker.audit.seal, Ordering::SeqCst);
    }

    /// With `audit.fsync: always`, makes every appended event durable: called before each
    /// answer leaves the broker and after events nobody is answered about (expiry, the end of
    /// a run). With `batch` the maintenance thread does it within [`FLUSH_EVERY`].
    fn settle(&self) {
        if !self.fsync_always.load(Ordering::SeqCst)
            || !self.audit_unsynced.swap(false, Ordering::SeqCst)
        {
            return;
        }
        // Sync through a second handle, outside the lock: appends by other callers go on
        // meanwhile, and everything appended before the handle was taken becomes durable.
        let handle = {
            let guard = self.audit.lock().unwrap_or_else(|p| p.into_inner());
            guard.as_ref().map(Writer::data_handle)
        };
        let synced = match handle {
            None => return,
            Some(h) => h.map_err(|e| e.to_string()).and_then(|f| {
                f.sync_data()
                    .map_err(|e| format!("fdatasync of the audit log: {e}"))
            }),
        };
        match synced {
            Ok(()) => {
                self.answer_syncs.fetch_add(1, Ordering::SeqCst);
            }
            Err(e) => {
                tracing::error!("audit sync failed: {e}");
                self.audit_unsynced.store(true, Ordering::SeqCst);
            }
        }
    }

    /// Makes every appended event durable and brings the head checkpoint up to date, if
    /// anything was appended since the last time.
    fn flush_audit(&self) {
        if !self.audit_dirty.swap(false, Ordering::SeqCst) {
            return;
        }
        let mut guard = self.audit.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(w) = guard.as_mut() {
            match w.sync() {
                Ok(()) => self.audit_unsynced.store(false, Ordering::SeqCst),
                Err(e) => {
                    tracing::error!("audit sync failed: {e}");
                    self.audit_dirty.store(true, Ordering::SeqCst);
                }
            }
        }
    }

    /// Sweeps expired pending requests and idle sessions, auditing each.
    pub fn sweep(&self) {
        let now = now_ms();
        let (expired, sessions) = {
            let mut st = self.store();
            (st.expire(now), st.expire_sessions(now))
        };
        if !expired.is_empty() {
            self.decided.notify_all();
        }
        for p in expired {
            let mut f = Fields::new();
            f.insert("request_id".into(), s(p.id.clone()));
            f.insert("submituser".into(), s(p.info.submituser.clone()));
            f.insert("peer_pid".into(), int(p.info.peer_pid));
            f.insert("runargv".into(), strs(&p.info.command));
            f.insert("session_id".into(), opt(p.info.session_id.clone()));
            let _ = self.audit("approval_expired", f);
        }
        for sid in sessions {
            let mut f = Fields::new();
            f.insert("session_id".into(), s(sid));
            let _ = self.audit("session_timeout", f);
        }
        self.settle();
    }
}

impl Gate {
    fn peer_fields(peer: &PeerCred) -> Fields {
        let caller = Caller::from_uid(peer.uid);
        let mut f = Fields::new();
        f.insert("submituser".into(), s(caller.user));
        f.insert("peer_pid".into(), int(peer.pid));
        f.insert("peer_uid".into(), int(peer.uid));
        f.insert("peer_gid".into(), int(peer.gid));
        f
    }

    fn request_fields(&self, peer: &PeerCred, u: &Understood, id: Option<&str>) -> Fields {
        let mut f = Self::peer_fields(peer);
        let i = &u.info;
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
        f.insert(
            "runs_arbitrary_code".into(),
            Value::Bool(i.runs_arbitrary_code),
        );
        f
    }

    fn refuse(&self, conn: &mut Conn, fields: Fields, event: &str, code: &str, msg: &str) {
        let mut fields = fields;
        fields.insert("reason_code".into(), s(code));
        fields.insert("message".into(), s(msg));
        // The refusal stands even if it cannot be recorded; say so in the message.
        let msg = match self.audit(event, fields) {
            Ok(_) => msg.to_string(),
            Err(e) => format!("{msg} ({e})"),
        };
        let _ = conn.refuse(&msg, code);
    }

    fn understand(&self, peer: &PeerCred, req: &Request) -> Result<Understood, (String, String)> {
        let text = |b: &[u8], what: &str| {
            String::from_utf8(b.to_vec()).map_err(|_| {
                (
                    "malformed_request".to_string(),
                    format!("the {what} is not valid UTF-8"),
                )
            })
        };
        let raw_argv = req
            .argv
            .iter()
            .map(|a| text(a, "command line"))
            .collect::<Result<Vec<_>, _>>()?;
        let cwd = text(&req.cwd, "working directory")?;
        let mut env = BTreeMap::new();
        for (k, v) in &req.env {
            env.insert(text(k, "environment")?, text(v, "environment")?);
        }
        let caller = Caller::from_uid(peer.uid);
        let ctx = Context::new(caller.clone(), PathBuf::from(&cwd), env.clone());
        let policy = load_policy(&self.home, self.uid, &|k| env.get(k).cloned());
        if let Ok(cfg) = &policy {
            self.follow_audit_config(cfg);
        }
        let eval = occ_policy::evaluate(&raw_argv, &ctx, &policy, &[], SystemTime::now());
        let tty = req.isatty.iter().any(|t| *t);
        let (command, runuser, rungroup, runcwd, assigns, digest, code) = match &eval.request {
            Some(r) => (
                r.argv.clone(),
                r.target.user.clone(),
                r.target.group.clone(),
                r.cwd.to_string_lossy().into_owned(),
                r.sudo.env.iter().cloned().collect(),
                broker_digest(&r.digest(), ctx.untrusted),
                r.runs_arbitrary_code,
            ),
            None => (
                Vec::new(),
                eval.target
                    .as_ref()
                    .map(|t| t.user.clone())
                    .unwrap_or_else(|| "root".into()),
                None,
                cwd.clone(),
                BTreeMap::new(),
                [0u8; 32],
                false,
            ),
        };
        let reason = env
            .get("OPENCLAW_PRIV_REASON")
            .filter(|r| !r.is_empty())
            .cloned();
        let info = RequestInfo {
            digest,
            submituser: caller.user,
            peer_uid: peer.uid,
            peer_pid: peer.pid,
            session_id: ctx.session_id.clone(),
            command,
            runuser,
            rungroup,
            runcwd,
            env: assigns,
            reason,
            untrusted: ctx.untrusted,
            runs_arbitrary_code: code,
        };
        Ok(Understood {
            eval,
            info,
            raw_argv,
            tty,
        })
    }

    fn answer_by_broker(&self, conn: &mut Conn, peer: &PeerCred, u: &Understood) {
        let Some(sudo) = &u.eval.sudo else { return };
        let real_sudo = load_policy(&self.home, self.uid, &|_| None)
            .map(|c| c.broker.real_sudo)
            .unwrap_or_else(|_| PathBuf::from("/usr/bin/sudo"));
        let (stdout, code) = match sudo.action() {
            Action::Version => (
                format!(
                    "occ sudo shim {} (the privilege gate for AI agents)\nreal sudo: {}\n",
                    env!("CARGO_PKG_VERSION"),
                    real_sudo.display()
                ),
                0,
            ),
            Action::Help => (
                format!(
                    "occ {}: sudo requests from this agent go through occ's approval broker.\n\
                     usage: sudo [-nHk] [-u user] [-g group] [-D directory] [VAR=value] [--] command [arg ...]\n\
                     A human approves each request with `occ approve ID`; `occ explain -- ARGS` shows why.\n\
                     real sudo: {}\n",
                    env!("CARGO_PKG_VERSION"),
                    real_sudo.display()
                ),
                0,
            ),
            Action::Validate => (
                "occ approves each command separately; there is no cached credential to validate.\n"
                    .to_string(),
                0,
            ),
            Action::ResetTimestamp | Action::RemoveTimestamp => {
                let n = self.store().drop_caller(peer.uid);
                let mut f = Self::peer_fields(peer);
                f.insert("grants".into(), int(n));
                f.insert("scope".into(), s("caller"));
                if let Err(e) = self.audit("grants_dropped", f) {
                    let _ = conn.refuse(&e, "audit_failed");
                    return;
                }
                (String::new(), 0)
            }
            Action::List => (self.list_text(peer), 0),
            _ => (String::new(), 1),
        };
        let _ = conn.output(Output {
            stdout: stdout.into_bytes(),
            stderr: Vec::new(),
            exit_code: code,
        });
    }

    fn list_text(&self, peer: &PeerCred) -> String {
        let user = Caller::from_uid(peer.uid).user;
        match load_policy(&self.home, self.uid, &|_| None) {
            Err(errs) => format!(
                "occ: the policy cannot be read, so nothing may be run: {}\n",
                errs.first().map(|e| e.to_string()).unwrap_or_default()
            ),
            Ok(cfg) => {
                let mut out = format!(
                    "User {user} may request the following through occ; every run needs a human's \
                     approval (`occ approve ID`) or a live grant:\n"
                );
                if cfg.commands.allow.is_empty() {
                    out.push_str("    any command not denied by command-policy.json\n");
                } else {
                    for r in cfg.commands.allow.rules() {
                        out.push_str(&format!("    {}\n", escape_text(&r.text)));
                    }
                }
                for r in cfg.commands.deny.rules() {
                    out.push_str(&format!("    !{}\n", escape_text(&r.text)));
                }
                out
            }
        }
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
                    let (reply, ok) = self.admin_approve_as(
                        &tty_peer,
                        "tty",
                        id,
                        Scope::Once,
                        false,
                        None,
                        token,
                    );
                    if !ok {
                        if let Some(t) = tty.as_mut() {
                            use std::io::Write as _;
                            let msg = reply
                                .get("error")
                                .and_then(|e| e.as_str())
                                .unwrap_or("refused");
                            let _ = writeln!(t.out, "occ: {msg}");
                        }
                        *tty = None;
                    }
                }
                Some(TtyAnswer::No) => {
                    let _ = self.admin_deny_as(
                        &tty_peer,
                        "tty",
                        id,
                        Some("declined on the terminal".into()),
                    );
                }
                None => {}
            }
            self.store().outcome(id).cloned()
        })
    }

    fn run_stack(&self, conn: &mut Conn, peer: &PeerCred, u: &Understood, cfg: &PolicyConfig) {
        let base = self.request_fields(peer, u, None);
        if let Err(e) = stack::check(&cfg.broker.approval.stack) {
            self.refuse(conn, base, "policy_block", "policy_invalid", &e);
            return;
        }
        let wait_secs = cfg.broker.approval.wait_seconds;
        let not_waiting =
            u.eval.sudo.as_ref().is_some_and(|r| r.non_interactive) || !u.tty || wait_secs == 0;
        let token_set =
            cfg.broker.approval.token_sha256.is_some() || self.legacy_token_sha256.is_some();
        let mut request_id: Option<String> = None;
        let mut grant_scope: Option<Scope> = None;
        let mut refused_early: Option<(String, String)> = None;
        let outcome = stack::evaluate(&cfg.broker.approval.stack, |m| match m {
            // Files and policy were decided by the evaluation already (a load failure or a
            // refusal never reaches the stack).
            Module::Files | Module::Policy => Verdict::Success,
            Module::Session => {
                if cfg.broker.session.require_session_id && u.info.session_id.is_none() {
                    Verdict::fail(
                        "session_missing",
                        "a task session id is required: set OPENCLAW_TASK_SESSION_ID",
                    )
                } else {
                    Verdict::Success
                }
            }
            // Untrusted requests go on to a human who must confirm (`--confirm-untrusted`);
            // their digest differs from a trusted one, so no trusted grant covers them.
            Module::Untrusted => Verdict::Success,
            Module::Grant => match self.store().take_grant(&u.info.digest, now_ms()) {
                Some(g) => {
                    request_id = Some(g.request_id.clone());
                    grant_scope = Some(g.scope);
                    Verdict::Success
                }
                None => Verdict::fail("no_grant", "no live grant covers this request"),
            },
            Module::Approve => {
                let (id, new) = {
                    let mut store = self.store();
                    let mut fallback = now_ms();
                    store.submit(u.info.clone(), now_ms(), || {
                        // Ids name requests; they are not secrets. If the OS random source
                        // fails, a counter still gives fresh ids, so submit always ends.
                        session::random_id().unwrap_or_else(|_| {
                            fallback = fallback.wrapping_add(1);
                            format!("{:08x}", fallback & 0xffff_ffff)
                        })
                    })
                };
                request_id = Some(id.clone());
                if new {
                    let f = self.request_fields(peer, u, Some(&id));
                    if let Err(e) = self.audit("approval_requested", f) {
                        let _ = self.store().deny(&id, Some("audit write failed".into()));
                        refused_early = Some(("audit_failed".into(), e));
                        return Verdict::fail("audit_failed", "audit write failed");
                    }
                }
                if not_waiting {
                    return Verdict::Pending { id };
                }
                if conn.waiting(&id).is_err() {
                    return Verdict::Pending { id };
                }
                // Untrusted requests are never offered on the terminal: they need
                // `occ approve --confirm-untrusted`.
                let mut tty = (cfg.broker.approval.channels.contains(&Channel::Tty)
                    && !u.info.untrusted)
                    .then(|| {
                        TtyPrompt::open(
                            conn,
                            &format!(
                                "occ: run {} as {} in {}? [y/N] ",
                                crate::escape::argv_json(&u.info.command),
                                escape_text(&u.info.runuser),
                                escape_text(&u.info.runcwd)
                            ),
                        )
                    })
                    .flatten();
                match self.wait_decision(
                    conn,
                    &id,
                    Duration::from_secs(wait_secs),
                    &mut tty,
                    token_set,
                ) {
                    Wait::Decided(PendingOutcome::Approved { .. }) => {
                        match self.store().take_grant(&u.info.digest, now_ms()) {
                            Some(g) => {
                                grant_scope = Some(g.scope);
                                Verdict::Success
                            }
                            None => Verdict::fail("approval_denied", "the approval was withdrawn"),
                        }
                    }
                    Wait::Decided(PendingOutcome::Denied { note }) => Verdict::fail(
                        "approval_denied",
                        match note {
                            Some(n) => {
                                format!("an approver denied this request: {}", escape_text(&n))
                            }
                            None => "an approver denied this request".into(),
                        },
                    ),
                    Wait::Decided(PendingOutcome::Expired) => {
                        Verdict::fail("approval_expired", "the request expired without a decision")
                    }
                    Wait::Decided(PendingOutcome::Stopping) | Wait::Stopping => {
                        refused_early = Some(("broker_stopping".into(), String::new()));
                        Verdict::fail("broker_stopping", "the broker is stopping")
                    }
                    Wait::TimedOut => Verdict::Pending { id },
                    Wait::ClientGone => {
                        refused_early = Some(("client_gone".into(), String::new()));
                        Verdict::fail("client_gone", "the caller hung up")
                    }
                }
            }
            Module::Token => {
                // The approve command checks the token before it grants anything; a grant
                // exists only if that check passed (or no token is configured).
                if token_set && grant_scope.is_none() {
                    Verdict::fail("token_failed", "no token-verified approval")
                } else {
                    Verdict::Success
                }
            }
            _ => Verdict::fail("policy_invalid", "unknown approval module"),
        });
        let mut fields = self.request_fields(peer, u, request_id.as_deref());
        match outcome {
            stack::Outcome::Pending { id } => {
                let _ = conn.pending(&id);
            }
            stack::Outcome::Deny {
                module,
                reason_code,
                message,
            } => {
                match refused_early.as_ref().map(|(c, _)| c.as_str()) {
                    Some("broker_stopping") => {
                        let _ = conn.refuse_stopping();
                        return;
                    }
                    Some("client_gone") => return,
                    _ => {}
                }
                let event = match reason_code.as_str() {
                    "session_missing" => "session_missing",
                    "approval_denied" => "approval_denied",
                    "approval_expired" => "approval_expired",
                    "token_failed" => "token_failed",
                    _ => "policy_block",
                };
                fields.insert("module".into(), s(stack::module_name(module)));
                if event == "approval_denied" || event == "approval_expired" {
                    // Already recorded by the approver's command or the expiry sweep.
                    let _ = conn.refuse(&message, &reason_code);
                } else {
                    self.refuse(conn, fields, event, &reason_code, &message);
                }
            }
            stack::Outcome::Allow { .. } => {
                fields.insert("grant_scope".into(), opt(grant_scope.map(|s| s.as_str())));
                self.exec(conn, fields, u, cfg);
            }
        }
    }

    fn exec(&self, conn: &mut Conn, mut fields: Fields, u: &Understood, cfg: &PolicyConfig) {
        let Some(r) = &u.eval.request else {
            self.refuse(
                conn,
                fields,
                "policy_block",
                "internal_error",
                "nothing to run",
            );
            return;
        };
        if let Err(e) = check_real_sudo(&cfg.broker.real_sudo) {
            self.refuse(conn, fields, "policy_block", "real_sudo_unsafe", &e);
            return;
        }
        let names: Vec<String> = r.preserved_env.iter().map(|(k, _)| k.clone()).collect();
        let mut argv = vec![cfg.broker.real_sudo.to_string_lossy().into_owned()];
        argv.extend(occ_policy::options::pass_on(&r.sudo, &names));
        if !u.tty && !r.sudo.non_interactive {
            argv.push("-n".into());
        }
        argv.push("--".into());
        argv.extend(r.argv.iter().cloned());
        fields.insert("sudo_argv".into(), strs(&argv));
        fields.insert("submit_argv".into(), strs(&u.raw_argv));
        // exec_start must be durable before the grant leaves the broker.
        if let Err(e) = self.audit_durable("exec_start", fields.clone()) {
            let _ = conn.refuse(&format!("refusing to run unrecorded: {e}"), "audit_failed");
            return;
        }
        if conn
            .grant(argv.into_iter().map(String::into_bytes).collect())
            .is_err()
        {
            fields.insert(
                "detail".into(),
                s("the caller hung up before the grant arrived"),
            );
            let _ = self.audit("exec_outcome_unknown", fields);
            return;
        }
        match conn.recv_exit_report() {
            ExecOutcome::Finished { report, relayed } => {
                fields.insert("exit_value".into(), int(report.exit_value));
                fields.insert("signal".into(), int(report.signal));
                fields.insert("run_time".into(), int(report.run_time_ms));
                fields.insert(
                    "signals_relayed".into(),
                    Value::Array(relayed.into_iter().map(int).collect()),
                );
                let _ = self.audit("exec_finish", fields);
            }
            ExecOutcome::Unknown { detail, relayed } => {
                fields.insert("detail".into(), s(detail));
                fields.insert(
                    "signals_relayed".into(),
                    Value::Array(relayed.into_iter().map(int).collect()),
                );
                let _ = self.audit("exec_outcome_unknown", fields);
            }
        }
    }

    // ---- admin operations (`occ approvals`, `approve`, `deny`, `status`, `drop`) ----

    /// Answers one admin request from `peer`. Returns the JSON reply and whether it succeeded.
    pub fn admin_json(
        &self,
        peer: &PeerCred,
        req: &serde_json::Value,
    ) -> (serde_json::Value, bool) {
        let op = req.get("op").and_then(|v| v.as_str()).unwrap_or("");
        // Moving the test clock sweeps nothing itself, so tests see the maintenance thread's
        // sweep; every real admin command starts from an up-to-date store.
        if op != "advance_clock" {
            self.sweep();
        }
        let str_field = |k: &str| req.get(k).and_then(|v| v.as_str()).map(str::to_string);
        match op {
            "approvals" => (self.approvals_json(), true),
            #[cfg(feature = "test-clock")]
            "advance_clock" => {
                let ms = req.get("ms").and_then(|v| v.as_u64()).unwrap_or(0);
                let offset = test_clock::advance(ms);
                (serde_json::json!({ "offset_ms": offset }), true)
            }
            "status" => (self.status_json(), true),
            "approve" => self.admin_approve_as(
                peer,
                "queue",
                &str_field("id").unwrap_or_default(),
                if str_field("scope").as_deref() == Some("session") {
                    Scope::Session
                } else {
                    Scope::Once
                },
                req.get("confirm_untrusted")
                    .and_then(|v| v.as_bool())
                    .unwrap_or(false),
                str_field("note"),
                str_field("token"),
            ),
            "deny" => self.admin_deny_as(
                peer,
                "queue",
                &str_field("id").unwrap_or_default(),
                str_field("note"),
            ),
            "drop" => self.admin_drop(
                peer,
                str_field("session"),
                req.get("all").and_then(|v| v.as_bool()).unwrap_or(false),
            ),
            _ => (
                serde_json::json!({"error": format!("unknown admin operation {op:?}")}),
                false,
            ),
        }
    }

    fn approver_fields(peer: &PeerCred, channel: &str) -> Fields {
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

    fn pending_fields(p: &session::Pending) -> Fields {
        let mut f = Fields::new();
        f.insert("request_id".into(), s(p.id.clone()));
        f.insert("submituser".into(), s(p.info.submituser.clone()));
        f.insert("peer_pid".into(), int(p.info.peer_pid));
        f.insert("session_id".into(), opt(p.info.session_id.clone()));
        f.insert("command".into(), opt(p.info.command.first().cloned()));
        f.insert("runargv".into(), strs(&p.info.command));
        f.insert("runuser".into(), s(p.info.runuser.clone()));
        f.insert("untrusted".into(), Value::Bool(p.info.untrusted));
        f
    }

    #[allow(clippy::too_many_arguments)] // reason: one approval's whole context, named
    fn admin_approve_as(
        &self,
        peer: &PeerCred,
        channel: &str,
        id: &str,
        scope: Scope,
        confirm_untrusted: bool,
        note: Option<String>,
        token: Option<String>,
    ) -> (serde_json::Value, bool) {
        let fail = |msg: String| (serde_json::json!({ "error": msg }), false);
        let Some(p) = self.store().pending_by_id(id).cloned() else {
            return fail(format!(
                "no pending request with id {id:?}: list them with `occ approvals`"
            ));
        };
        let mut f = Self::pending_fields(&p);
        f.extend(Self::approver_fields(peer, channel));
        f.insert("note".into(), opt(note.clone()));
        let cfg = match load_policy(&self.home, self.uid, &|_| None) {
            Ok(c) => c,
            Err(errs) => {
                return fail(format!(
                    "refusing to approve while the policy is broken: {}",
                    errs.first().map(|e| e.to_string()).unwrap_or_default()
                ))
            }
        };
        let stored = cfg
            .broker
            .approval
            .token_sha256
            .clone()
            .or_else(|| self.legacy_token_sha256.clone());
        if let Some(stored) = stored {
            let ok = token
                .as_deref()
                .is_some_and(|t| crate::token::verify(t, &stored));
            if let Err(e) =
                self.audit_durable(if ok { "token_ok" } else { "token_failed" }, f.clone())
            {
                return fail(e);
            }
            if !ok {
                return fail("the approval token is wrong; the request stays pending".into());
            }
        }
        if p.info.untrusted {
            let event = if confirm_untrusted {
                "untrusted_source_confirmed"
            } else {
                "untrusted_source_block"
            };
            if let Err(e) = self.audit(event, f.clone()) {
                return fail(e);
            }
        }
        let result = self.store().approve(id, scope, confirm_untrusted, now_ms());
        match result {
            Ok((_, g)) => {
                f.insert("grant_scope".into(), s(g.scope.as_str()));
                if let Err(e) = self.audit_durable("approval_granted", f) {
                    self.store().drop_all();
                    return fail(format!("approval withdrawn: {e}"));
                }
                self.decided.notify_all();
                (
                    serde_json::json!({"approved": id, "scope": g.scope.as_str()}),
                    true,
                )
            }
            Err(e) => fail(e.to_string()),
        }
    }

    fn admin_deny_as(
        &self,
        peer: &PeerCred,
        channel: &str,
        id: &str,
        note: Option<String>,
    ) -> (serde_json::Value, bool) {
        let denied = self.store().deny(id, note.clone());
        match denied {
            Ok(p) => {
                let mut f = Self::pending_fields(&p);
                f.extend(Self::approver_fields(peer, channel));
                f.insert("note".into(), opt(note));
                let _ = self.audit("approval_denied", f);
                self.decided.notify_all();
                (serde_json::json!({"denied": id}), true)
            }
            Err(e) => (serde_json::json!({"error": e.to_string()}), false),
        }
    }

    fn admin_drop(
        &self,
        peer: &PeerCred,
        session: Option<String>,
        all: bool,
    ) -> (serde_json::Value, bool) {
        let n = {
            let mut st = self.store();
            match (&session, all) {
                (Some(sid), _) => st.drop_session(sid),
                (None, true) => st.drop_all(),
                (None, false) => {
                    return (
                        serde_json::json!({"error": "say what to drop: --session ID or --all"}),
                        false,
                    )
                }
            }
        };
        let mut f = Self::approver_fields(peer, "queue");
        f.insert("grants".into(), int(n));
        f.insert("session_id".into(), opt(session.clone()));
        f.insert(
            "scope".into(),
            s(if session.is_some() { "session" } else { "all" }),
        );
        if let Err(e) = self.audit("grants_dropped", f) {
            return (serde_json::json!({"error": e}), false);
        }
        (serde_json::json!({"dropped": n}), true)
    }

    fn approvals_json(&self) -> serde_json::Value {
        let now = now_ms();
        let st = self.store();
        let items: Vec<serde_json::Value> = st
            .pending()
            .map(|p| {
                serde_json::json!({
                    "id": p.id,
                    "age_seconds": now.saturating_sub(p.created_ms) / 1000,
                    "expires_at": humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_millis(p.expires_ms)).to_string(),
                    "submituser": p.info.submituser,
                    "peer_pid": p.info.peer_pid,
                    "session_id": p.info.session_id,
                    "command": p.info.command,
                    "runuser": p.info.runuser,
                    "rungroup": p.info.rungroup,
                    "runcwd": p.info.runcwd,
                    "env": p.info.env,
                    "reason": p.info.reason,
                    "untrusted": p.info.untrusted,
                    "runs_arbitrary_code": p.info.runs_arbitrary_code,
                })
            })
            .collect();
        serde_json::Value::Array(items)
    }

    fn status_json(&self) -> serde_json::Value {
        let now = now_ms();
        let st = self.store();
        let sessions: Vec<serde_json::Value> = st
            .sessions(now)
            .into_iter()
            .map(|s| {
                serde_json::json!({
                    "session_id": s.session_id,
                    "idle_minutes": s.idle_ms / 60_000,
                    "grants": s.grants,
                })
            })
            .collect();
        serde_json::json!({
            "broker": "up",
            "pid": std::process::id(),
            "mode": "user",
            "home": self.home.display().to_string(),
            "pending": st.pending().count(),
            "grants": st.grant_count(),
            "sessions": sessions,
            "audit": {
                "fsync": if self.fsync_always.load(Ordering::SeqCst) { "always" } else { "batch" },
                "syncs_before_answers": self.answer_syncs.load(Ordering::SeqCst),
                "seal_required": self.seal_required.load(Ordering::SeqCst),
            },
        })
    }
}

/// The broker's digest: the policy's grant digest, bound also to whether the request came
/// from an untrusted source, so a grant for a trusted request never covers an untrusted one.
pub fn broker_digest(policy_digest: &Digest, untrusted: bool) -> Digest {
    use sha2::{Digest as _, Sha256};
    let mut h = Sha256::new();
    h.update(b"occ-broker-grant-v1");
    h.update(policy_digest);
    h.update([u8::from(untrusted)]);
    h.finalize().into()
}

/// Loads every policy file as the broker reads them.
pub fn load_policy(
    home: &Path,
    uid: u32,
    caller_env: &dyn Fn(&str) -> Option<String>,
) -> Result<PolicyConfig, Vec<FileError>> {
    occ_policy::file::load(&home.join("security"), uid, caller_env)
}

/// The real sudo must be a root-owned regular file that only root can change.
pub fn check_real_sudo(path: &Path) -> Result<(), String> {
    let md = std::fs::metadata(path).map_err(|e| {
        format!(
            "broker.json real_sudo {}: {e}; install sudo or fix real_sudo",
            path.display()
        )
    })?;
    if !md.is_file() || md.uid() != 0 || md.mode() & 0o022 != 0 {
        return Err(format!(
            "broker.json real_sudo {} must be a root-owned file not writable by group or others; \
             fix: chown root {0} && chmod go-w {0}",
            path.display()
        ));
    }
    Ok(())
}

fn create_private_dir(dir: &Path) -> Result<(), String> {
    use std::os::unix::fs::DirBuilderExt;
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| format!("cannot create {}: {e}", dir.display()))
}

/// The opt-in `tty` channel: a prompt on the caller's own terminal, for a human sitting at it.
/// It runs inside the connection's wait loop, beside the queue; whichever decides first wins.
struct TtyPrompt {
    input: std::os::fd::OwnedFd,
    out: std::fs::File,
    line: Vec<u8>,
    /// The answer "y" was given and the token is being read (echo off).
    reading_token: Option<nix::sys::termios::Termios>,
}

/// What the person at the terminal said.
enum TtyAnswer {
    Yes { token: Option<String> },
    No,
}

impl TtyPrompt {
    fn open(conn: &Conn, prompt: &str) -> Option<TtyPrompt> {
        use std::io::Write as _;
        let input = conn.caller_stdio(0)?.try_clone_to_owned().ok()?;
        let output = conn.caller_stdio(2)?.try_clone_to_owned().ok()?;
        if nix::sys::termios::tcgetattr(&input).is_err() {
            return None; // not a terminal
        }
        let mut out = std::fs::File::from(output);
        let _ = write!(out, "{prompt}");
        let _ = out.flush();
        Some(TtyPrompt {
            input,
            out,
            line: Vec::new(),
            reading_token: None,
        })
    }

    /// Waits up to `slice` for input; returns an answer once a whole line (or two, with a
    /// token) has been typed.
    fn step(&mut self, slice: Duration, token_set: bool) -> Option<TtyAnswer> {
        use nix::sys::termios::{self, LocalFlags, SetArg};
        use std::io::{Read as _, Write as _};
        use std::os::fd::AsFd;
        match crate::sys::poll2(self.input.as_fd(), None, Some(slice)) {
            Ok([r, _]) if r.readable => {}
            _ => return None,
        }
        let mut buf = [0u8; 256];
        let n = std::fs::File::from(self.input.try_clone().ok()?)
            .read(&mut buf)
            .ok()?;
        if n == 0 {
            return Some(TtyAnswer::No);
        }
        self.line.extend_from_slice(&buf[..n]);
        if !self.line.contains(&b'\n') && self.line.len() < 4096 {
            return None;
        }
        let text = String::from_utf8_lossy(&self.line).trim().to_string();
        self.line.clear();
        if let Some(saved) = self.reading_token.take() {
            let _ = termios::tcsetattr(self.input.as_fd(), SetArg::TCSANOW, &saved);
            let _ = writeln!(self.out);
            return Some(TtyAnswer::Yes { token: Some(text) });
        }
        if !matches!(text.as_str(), "y" | "Y" | "yes" | "Yes" | "YES") {
            return Some(TtyAnswer::No);
        }
        if !token_set {
            return Some(TtyAnswer::Yes { token: None });
        }
        let saved = termios::tcgetattr(self.input.as_fd()).ok()?;
        let mut quiet = saved.clone();
        quiet.local_flags.remove(LocalFlags::ECHO);
        let _ = termios::tcsetattr(self.input.as_fd(), SetArg::TCSANOW, &quiet);
        self.reading_token = Some(saved);
        let _ = write!(self.out, "occ approval token: ");
        let _ = self.out.flush();
        None
    }
}

impl Drop for TtyPrompt {
    fn drop(&mut self) {
        if let Some(saved) = self.reading_token.take() {
            let _ = nix::sys::termios::tcsetattr(
                &self.input,
                nix::sys::termios::SetArg::TCSANOW,
                &saved,
            );
        }
    }
}

/// The restart snapshot of grants and sessions.
const STATE_FILE: &str = "root-session-state.json";

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest as _, Sha256};
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The last complete event of the audit log, parsed; `None` when there is none.
fn last_audit_event(log: &Path) -> Option<serde_json::Value> {
    use std::io::{Read as _, Seek as _, SeekFrom};
    let mut f = std::fs::File::open(log).ok()?;
    let len = f.metadata().ok()?.len();
    let start = len.saturating_sub(256 * 1024);
    f.seek(SeekFrom::Start(start)).ok()?;
    let mut tail = Vec::new();
    f.read_to_end(&mut tail).ok()?;
    let body = tail.strip_suffix(b"\n")?;
    let line = body.rsplit(|b| *b == b'\n').next()?;
    serde_json::from_slice(line).ok()
}

impl Gate {
    /// Writes the restart snapshot when grants are live, and returns its sha256 for the
    /// `broker_stopped` event that vouches for it.
    fn save_state(&self) -> Option<String> {
        let snap = self.store().snapshot();
        if snap.grants.is_empty() {
            return None;
        }
        let bytes = serde_json::to_vec(&snap).ok()?;
        let file = self.security().join(STATE_FILE);
        match crate::paths::write_private(&file, &bytes) {
            Ok(()) => Some(sha256_hex(&bytes)),
            Err(e) => {
                tracing::error!("cannot save grants for a restart: {e}");
                None
            }
        }
    }

    /// Reads the restart snapshot back, once: only a file that passes the ownership checks
    /// and whose sha256 the audit log's last event (`broker_stopped`) names is restored. The
    /// file is removed either way. Returns the event to record.
    fn restore_state(&self) -> Option<(&'static str, Fields)> {
        let file = self.security().join(STATE_FILE);
        if std::fs::symlink_metadata(&file).is_err() {
            return None;
        }
        let checked = occ_policy::file::read_checked(&file, self.uid);
        let _ = std::fs::remove_file(&file);
        let mut f = Fields::new();
        f.insert("file".into(), s(file.display().to_string()));
        let reject = |mut f: Fields, why: String| {
            tracing::warn!("not restoring {}: {why}", STATE_FILE);
            f.insert("reason".into(), s(why));
            Some(("state_rejected", f))
        };
        let text = match checked {
            Ok(Some(t)) => t,
            Ok(None) => return None,
            Err(e) => return reject(f, e.to_string()),
        };
        let log = self.security().join("privileged-audit.jsonl");
        let vouched = last_audit_event(&log)
            .filter(|e| e["event_type"] == "broker_stopped")
            .and_then(|e| e["snapshot_sha256"].as_str().map(str::to_string));
        if vouched.as_deref() != Some(sha256_hex(text.as_bytes()).as_str()) {
            return reject(
                f,
                "the audit log's last event is not a broker_stopped that names this file's sha256"
                    .into(),
            );
        }
        let snap: session::Snapshot = match serde_json::from_str(&text) {
            Ok(s) => s,
            Err(e) => return reject(f, format!("not a snapshot: {e}")),
        };
        let mut store = self.store();
        let before = store.grant_count();
        store.restore(snap, now_ms());
        f.insert("grants".into(), int(store.grant_count() - before));
        Some(("grants_restored", f))
    }
}

impl Gate {
    /// One request, answered (the [`RequestHandler::handle`] body).
    fn serve(&self, conn: &mut Conn, req: Request) {
        self.sweep();
        let peer = conn.peer();
        let u = match self.understand(&peer, &req) {
            Ok(u) => u,
            Err((code, msg)) => {
                self.refuse(
                    conn,
                    Self::peer_fields(&peer),
                    "protocol_error",
                    &code,
                    &msg,
                );
                return;
            }
        };
        let mut f = self.request_fields(&peer, &u, None);
        f.insert("submit_argv".into(), strs(&u.raw_argv));
        f.insert(
            "ttyname".into(),
            opt(req
                .tty
                .as_ref()
                .map(|t| String::from_utf8_lossy(t).into_owned())),
        );
        if let Err(e) = self.audit("request_received", f) {
            let _ = conn.refuse(&format!("refusing: {e}"), "audit_failed");
            return;
        }
        let outcome = &u.eval.outcome;
        match outcome.decision {
            Decision::Deny => {
                let mut f = self.request_fields(&peer, &u, None);
                f.insert("rule".into(), opt(outcome.rule.clone()));
                if let Some(text) = &u.eval.usage_text {
                    let _ = self.audit("policy_block", {
                        f.insert("reason_code".into(), s("usage"));
                        f
                    });
                    let _ = conn.output(Output {
                        stdout: Vec::new(),
                        stderr: text.clone().into_bytes(),
                        exit_code: 1,
                    });
                    return;
                }
                if matches!(
                    outcome.reason_code,
                    "command_not_found" | "unknown_user" | "unknown_group"
                ) {
                    let _ = self.audit("policy_block", {
                        f.insert("reason_code".into(), s(outcome.reason_code));
                        f
                    });
                    let _ = conn.output(Output {
                        stdout: Vec::new(),
                        stderr: format!("{}\n", outcome.message).into_bytes(),
                        exit_code: 1,
                    });
                    return;
                }
                let event = if outcome.reason_code == "session_required" {
                    "session_missing"
                } else {
                    "policy_block"
                };
                self.refuse(
                    conn,
                    f,
                    event,
                    outcome.reason_code,
                    &escape_text(&outcome.message),
                );
            }
            Decision::Allow => self.answer_by_broker(conn, &peer, &u),
            Decision::ApprovalRequired => {
                let cfg = match load_policy(&self.home, self.uid, &|k| {
                    req.env
                        .iter()
                        .find(|(n, _)| n.as_slice() == k.as_bytes())
                        .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
                }) {
                    Ok(c) => c,
                    Err(errs) => {
                        let msg = errs.first().map(|e| e.to_string()).unwrap_or_default();
                        self.refuse(
                            conn,
                            self.request_fields(&peer, &u, None),
                            "policy_block",
                            "policy_invalid",
                            &msg,
                        );
                        return;
                    }
                };
                if u.eval.sudo.as_ref().is_some_and(|r| r.reset_timestamp) {
                    // `-k CMD`: forget the caller's grants first; only a --once approval of
                    // exactly this request (made for this run) survives.
                    self.store()
                        .drop_caller_keeping_once(peer.uid, &u.info.digest);
                }
                self.run_stack(conn, &peer, &u, &cfg);
            }
        }
    }

    /// One admin request, answered.
    fn serve_admin(&self, conn: &mut Conn, body: Vec<u8>) {
        let peer = conn.peer();
        let (reply, ok) = match serde_json::from_slice::<serde_json::Value>(&body) {
            Ok(req) => self.admin_json(&peer, &req),
            Err(e) => (
                serde_json::json!({"error": format!("the admin request is not JSON: {e}")}),
                false,
            ),
        };
        let _ = conn.admin_reply(ok, reply.to_string().into_bytes());
    }
}

impl RequestHandler for Gate {
    fn started(&self, info: &StartInfo) {
        self.start_maintenance();
        let restored = self.restore_state();
        let mut f = Fields::new();
        f.insert("pid".into(), int(info.pid));
        f.insert("uid".into(), int(info.uid));
        f.insert("mode".into(), s("user"));
        f.insert("socket".into(), s(info.socket.display().to_string()));
        if let Err(e) = self.audit("broker_started", f) {
            tracing::error!("{e}");
        }
        if let Some((event, fields)) = restored {
            let _ = self.audit(event, fields);
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
        let mut f = Self::peer_fields(peer);
        f.insert("kind".into(), s(err.kind));
        f.insert("detail".into(), s(err.detail.clone()));
        let _ = self.audit("protocol_error", f);
        self.settle();
    }

    fn peer_refused(&self, peer: &PeerCred, broker_uid: u32) {
        let mut f = Self::peer_fields(peer);
        f.insert("reason_code".into(), s("peer_uid_mismatch"));
        f.insert("broker_uid".into(), int(broker_uid));
        let _ = self.audit("policy_block", f);
        self.settle();
    }

    fn stopping(&self, cause: StopCause) {
        let stopped = self.store().stop_all();
        if !stopped.is_empty() {
            self.decided.notify_all();
        }
        // Pending requests live in memory only: each one ends here, on record.
        for p in stopped {
            let mut f = Self::pending_fields(&p);
            f.insert("reason".into(), s("broker_stopping"));
            let _ = self.audit("approval_expired", f);
        }
        self.settle();
        tracing::info!(?cause, "stopping");
    }

    fn stopped(&self) {
        let mut f = Fields::new();
        f.insert("pid".into(), int(std::process::id()));
        if let Some(sha) = self.save_state() {
            f.insert("snapshot_sha256".into(), s(sha));
        }
        let _ = self.audit("broker_stopped", f);
        self.flush_audit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// A gate over a home whose broker.json sets `audit.fsync` to `fsync` (absent: the
    /// default).
    fn gate_with(fsync: Option<&str>) -> (tempfile::TempDir, Gate) {
        let d = tempfile::tempdir().unwrap();
        let sec = d.path().join("security");
        std::fs::create_dir(&sec).unwrap();
        for dir in [d.path(), sec.as_path()] {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        }
        let cfg = sec.join("broker.json");
        let body = fsync.map_or("{}".to_string(), |f| {
            format!(r#"{{"audit": {{"fsync": "{f}"}}}}"#)
        });
        std::fs::write(&cfg, body).unwrap();
        std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(0o600)).unwrap();
        let uid = nix::unistd::geteuid().as_raw();
        let gate = Gate::new(d.path().to_path_buf(), uid, None);
        (d, gate)
    }

    fn answer_syncs(g: &Gate) -> u64 {
        g.status_json()["audit"]["syncs_before_answers"]
            .as_u64()
            .unwrap()
    }

    #[test]
    fn fsync_always_makes_each_event_durable_before_an_answer() {
        for fsync in [None, Some("always")] {
            let (_d, g) = gate_with(fsync);
            assert_eq!(g.status_json()["audit"]["fsync"], "always", "{fsync:?}");
            g.audit("request_received", Fields::new()).unwrap();
            g.audit("policy_block", Fields::new()).unwrap();
            g.settle();
            assert_eq!(answer_syncs(&g), 1, "one sync covers both events");
            // Nothing new appended: no sync.
            g.settle();
            assert_eq!(answer_syncs(&g), 1);
            // A durable event leaves nothing to settle.
            g.audit_durable("exec_start", Fields::new()).unwrap();
            g.settle();
            assert_eq!(answer_syncs(&g), 1);
        }
    }

    #[test]
    fn fsync_batch_leaves_events_to_the_group_commit() {
        let (d, g) = gate_with(Some("batch"));
        assert_eq!(g.status_json()["audit"]["fsync"], "batch");
        g.audit("policy_block", Fields::new()).unwrap();
        g.settle();
        assert_eq!(answer_syncs(&g), 0);
        // Written all the same (one write(2) per event), and durable at the next flush.
        let log =
            std::fs::read_to_string(d.path().join("security/privileged-audit.jsonl")).unwrap();
        assert!(log.contains("\"policy_block\""), "{log}");
        g.flush_audit();
        assert!(!g.audit_unsynced.load(Ordering::SeqCst));
    }
}
