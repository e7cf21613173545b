//! `approval.notify`: tells a human about every new pending request, off the request path.
//! Filing a request only offers a job to a bounded queue; one thread runs the notifier (as
//! `occ_policy::notifier` allows, as the user `approval.notify` names, with its timeout) and
//! audits every attempt, `notify_sent` or `notify_failed`. A failed delivery is retried with
//! backoff while the request is still pending. It never decides, delays or changes a request.

use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value as Json;

use super::events::{int, opt, s, strs, Event, Fields};
use super::Gate;
use crate::clock::now_ms;
use crate::session::Pending;
use crate::view::PendingView;

/// Jobs waiting for the notifier thread; past this, new ones are refused (audited
/// `notify_failed`), never queued without bound.
pub const QUEUE: usize = 64;
/// Failed deliveries waiting for their retry, at most.
const RETRIES: usize = 256;
/// The first retry's delay; each next one doubles, up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(2);
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// One delivery: a pending request and what the notifier reads on stdin.
struct Job {
    id: String,
    message: Vec<u8>,
    attempt: u32,
    due: Instant,
}

/// The queue's sending end; the thread starts with the broker (after it detaches).
#[derive(Default)]
pub struct Notifications {
    tx: Mutex<Option<SyncSender<Job>>>,
}

/// What the notifier reads on stdin: the request as one entry of `occ approvals --json`, plus
/// `host`, `approve_command` and `statement` (the approval statement for one run, to sign), as one line of JSON (no line of it can start with a mailer's
/// `~` escape).
pub fn message(p: &Pending, now: u64, quorum: u32, host: &str) -> Vec<u8> {
    let mut v = serde_json::to_value(PendingView::of(p, now, quorum)).unwrap_or(Json::Null);
    if let Json::Object(m) = &mut v {
        m.insert("host".into(), Json::String(host.into()));
        m.insert("approve_command".into(), Json::String(approve_command(p)));
        // The statement to sign for a one-run approval (`occ sign`, `ssh-keygen -Y sign`).
        let statement = crate::signed::statement::build(p, host, &crate::signed::Asked::Once);
        m.insert("statement".into(), Json::String(statement));
    }
    let mut out = v.to_string().into_bytes();
    out.push(b'\n');
    out
}

/// The approve command that works for this request.
pub fn approve_command(p: &Pending) -> String {
    if p.info.untrusted {
        format!("occ approve {} --confirm-untrusted", p.id)
    } else {
        format!("occ approve {}", p.id)
    }
}

impl Gate {
    /// Starts the notifier thread (from [`crate::daemon::handler::RequestHandler::started`]).
    pub(super) fn start_notifier(&self) {
        let (tx, rx) = sync_channel(QUEUE);
        let worker = Gate {
            core: Arc::clone(&self.core),
            uid: self.uid,
            legacy_token_sha256: None,
        };
        let spawned = std::thread::Builder::new()
            .name("occ-notify".into())
            .spawn(move || worker.notify_loop(rx));
        match spawned {
            Ok(_) => {
                *self
                    .notifications
                    .tx
                    .lock()
                    .unwrap_or_else(|p| p.into_inner()) = Some(tx)
            }
            Err(e) => tracing::error!("cannot start the notifier thread: {e}"),
        }
    }

    /// Offers the new pending request `p` to the notifier, when `approval.notify` is set.
    /// Never blocks: a full queue is audited as `notify_failed` and the request goes on.
    pub(super) fn offer_notification(&self, p: &Pending) {
        let configured = self
            .broker_setting(|b| b.approval.notify.is_some())
            .unwrap_or(false);
        if !configured {
            return;
        }
        let job = Job {
            id: p.id.clone(),
            message: message(p, now_ms(), self.quorum(), &crate::forward::hostname()),
            attempt: 1,
            due: Instant::now(),
        };
        let sent = match self
            .notifications
            .tx
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
        {
            Some(tx) => tx.try_send(job).map_err(|e| match e {
                TrySendError::Full(_) => "the notification queue is full",
                TrySendError::Disconnected(_) => "the notifier thread has stopped",
            }),
            None => Err("the notifier thread is not running"),
        };
        if let Err(why) = sent {
            let mut f = Fields::new();
            f.insert("request_id".into(), s(p.id.clone()));
            f.insert("attempt".into(), int(0));
            f.insert("error".into(), s(why));
            let _ = self.audit(Event::NotifyFailed, f);
        }
    }

    /// The notifier thread: runs each job when due, keeps failed ones for a retry while their
    /// request is pending. Ends when the broker drops the queue.
    fn notify_loop(&self, rx: Receiver<Job>) {
        let mut retries: Vec<Job> = Vec::new();
        loop {
            let next_due = retries.iter().map(|j| j.due).min();
            let got = match next_due {
                Some(due) => rx.recv_timeout(due.saturating_duration_since(Instant::now())),
                None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
            };
            match got {
                Ok(job) => retries.push(job),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
            let now = Instant::now();
            let (due, later): (Vec<Job>, Vec<Job>) = retries.drain(..).partition(|j| j.due <= now);
            retries = later;
            for job in due {
                if let Some(again) = self.deliver(job) {
                    if retries.len() < RETRIES {
                        retries.push(again);
                    }
                }
            }
        }
    }

    /// One attempt, audited. Returns the job again, with its next due time, when it failed
    /// and the request is still pending.
    fn deliver(&self, mut job: Job) -> Option<Job> {
        let pending = self.store().pending_by_id(&job.id).is_some();
        if !pending {
            // Decided or expired: nobody needs telling any more.
            return None;
        }
        let mut f = Fields::new();
        f.insert("request_id".into(), s(job.id.clone()));
        f.insert("attempt".into(), int(job.attempt));
        let result = self.run_notifier(&job.message, &mut f);
        let event = match result {
            Ok(()) => Event::NotifySent,
            Err(e) => {
                f.insert("error".into(), s(e));
                Event::NotifyFailed
            }
        };
        let _ = self.audit(event, f);
        self.settle();
        if event == Event::NotifySent {
            return None;
        }
        let backoff = FIRST_BACKOFF
            .saturating_mul(1 << job.attempt.saturating_sub(1).min(16))
            .min(MAX_BACKOFF);
        job.attempt += 1;
        job.due = Instant::now() + backoff;
        Some(job)
    }

    /// Runs the notifier configured now, recording its argv, user and how it ended in `f`.
    fn run_notifier(&self, message: &[u8], f: &mut Fields) -> Result<(), String> {
        let file = self.layout.config_dir.join(occ_policy::file::BROKER_CONFIG);
        let runner = self
            .broker_setting(|b| b.approval.notify.clone())
            .map_err(|errs| {
                errs.first()
                    .map(|e| e.to_string())
                    .unwrap_or_else(|| "broker.json does not load".into())
            })?
            .ok_or("approval.notify is no longer configured")?
            .runner(&file, self.uid)
            .map_err(|e| e.to_string())?;
        f.insert("notify_argv".into(), strs(runner.notifier.argv()));
        f.insert(
            "notify_user".into(),
            opt(runner.run_as.as_ref().map(|r| r.user.clone())),
        );
        let mut cmd = runner.notifier.command();
        if let Some(r) = &runner.run_as {
            let name = std::ffi::CString::new(r.user.clone()).map_err(|e| e.to_string())?;
            let groups = nix::unistd::getgrouplist(&name, nix::unistd::Gid::from_raw(r.gid))
                .map_err(|e| format!("cannot list the groups of {}: {e}", r.user))?
                .into_iter()
                .map(|g| g.as_raw())
                .collect();
            crate::sys::become_user_on_exec(&mut cmd, r.uid, r.gid, groups);
        }
        let out =
            occ_base::child::run(cmd, Some(message), runner.timeout).map_err(|e| e.to_string())?;
        f.insert(
            "exit_status".into(),
            out.code.map_or(occ_audit::Value::Null, int),
        );
        f.insert(
            "signal".into(),
            out.signal().map_or(occ_audit::Value::Null, int),
        );
        f.insert("timed_out".into(), occ_audit::Value::Bool(out.timed_out));
        out.verdict(runner.timeout)
            .map_err(|e| format!("the notifier {e}"))
    }
}
