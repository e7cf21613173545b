//! What only the system broker does: who may request and approve, per-uid limits, the
//! configuration loaded at start and on SIGHUP (a bad new file keeps the old one), state that
//! survives restarts in `/var/lib/occ`, and the runs a crashed broker left behind. User mode
//! never reaches any of this.

use std::collections::BTreeSet;
use std::io::{Read as _, Seek as _, SeekFrom};
use std::path::Path;

use occ_audit::Value;
use occ_policy::file::{BROKER_CONFIG, COMMAND_POLICY, PROMPT_POLICY};

use super::access;
use super::events::{self, int, s, Event, Fields};
use super::refusal::Refusal;
use super::Gate;
use crate::clock::now_ms;
use crate::daemon::conn::PeerCred;
use crate::layout::Mode;
use crate::session::Snapshot;

/// The system broker's state file in `/var/lib/occ`.
pub const STATE_FILE: &str = "state.json";

impl super::Core {
    pub(super) fn system(&self) -> bool {
        self.layout.mode == Mode::System
    }

    /// `approval.quorum` as the system broker's loaded configuration says (what the watch
    /// thread shows watchers); 1 in user mode, or while no configuration is loaded (approving
    /// then refuses on the broken policy anyway).
    pub(super) fn loaded_quorum(&self) -> u32 {
        if !self.system() {
            return 1;
        }
        let loaded = self.loaded.lock().unwrap_or_else(|p| p.into_inner());
        loaded.as_ref().map_or(1, |cfg| cfg.broker.approval.quorum)
    }

    /// System mode: writes pending requests, grants and sessions to `/var/lib/occ`, so a
    /// restart (or a crash) loses none of them. Called after every change.
    pub(super) fn persist(&self) {
        if !self.system() {
            return;
        }
        let state = self.store().state();
        let bytes = match serde_json::to_vec(&state) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!("cannot encode the broker state: {e}");
                return;
            }
        };
        let file = self.layout.state_dir.join(STATE_FILE);
        if let Err(e) = crate::paths::write_private(&file, &bytes) {
            tracing::error!("cannot save the broker state: {e}");
        }
    }
}

impl Gate {
    /// System mode: whether `peer` may file requests; a refusal is audited at a bounded rate.
    pub(super) fn check_requester(&self, peer: &PeerCred) -> Result<(), (Refusal, String)> {
        let requesters = self
            .broker_setting(|b| b.requesters.clone())
            .map_err(|errs| {
                (
                    Refusal::PolicyInvalid,
                    errs.first().map(|e| e.to_string()).unwrap_or_default(),
                )
            })?;
        if access::listed(&requesters, peer.uid) {
            return Ok(());
        }
        if let Some(suppressed) = self.refusals.admit(peer.uid, now_ms()) {
            let mut f = events::peer(peer);
            f.insert("reason_code".into(), s(Refusal::NotARequester.code()));
            f.insert("suppressed".into(), int(suppressed));
            let _ = self.audit(Event::PolicyBlock, f);
        }
        Err((
            Refusal::NotARequester,
            "this user is not in broker.json's requesters, so it cannot ask the system broker \
             for anything"
                .into(),
        ))
    }

    /// System mode: whether `peer` may use the admin socket (root, or listed in `approvers`).
    pub(super) fn check_approver(&self, peer: &PeerCred) -> Result<(), String> {
        if peer.uid == 0 {
            return Ok(());
        }
        let approvers = self
            .broker_setting(|b| b.approvers.clone())
            .map_err(|errs| errs.first().map(|e| e.to_string()).unwrap_or_default())?;
        if access::listed(&approvers, peer.uid) {
            return access::root_controlled_exe(peer.pid);
        }
        if let Some(suppressed) = self.refusals.admit(peer.uid, now_ms()) {
            let mut f = events::approver(peer, "queue");
            f.insert("reason_code".into(), s(Refusal::NotAnApprover.code()));
            f.insert("suppressed".into(), int(suppressed));
            let _ = self.audit(Event::PolicyBlock, f);
        }
        Err(format!(
            "{} is not in broker.json's approvers; only approvers and root may use the system \
             broker's admin socket ({})",
            occ_policy::Caller::from_uid(peer.uid).user,
            Refusal::NotAnApprover.code()
        ))
    }

    /// System mode: reads the configuration again (SIGHUP, a token change). A bad new file
    /// keeps the old configuration and is audited `config_reload_failed`; a good one is
    /// audited `config_loaded` with each file's sha256.
    pub fn reload_config(&self) -> bool {
        let loaded = super::load_policy(&self.layout.config_dir, self.uid, &|_| None);
        let mut f = self.config_fields();
        match loaded {
            Ok(cfg) => {
                self.follow_audit_config(&cfg);
                *self.loaded.lock().unwrap_or_else(|p| p.into_inner()) = Some(cfg);
                let _ = self.audit(Event::ConfigLoaded, f);
                self.settle();
                true
            }
            Err(errs) => {
                f.insert(
                    "errors".into(),
                    Value::Array(errs.iter().map(|e| s(e.to_string())).collect()),
                );
                let kept = self.loaded.lock().map(|l| l.is_some()).unwrap_or(false);
                f.insert("kept_previous".into(), Value::Bool(kept));
                let _ = self.audit(Event::ConfigReloadFailed, f);
                self.settle();
                false
            }
        }
    }

    /// The sha256 of each configuration file (`null` when absent).
    fn config_fields(&self) -> Fields {
        let mut f = Fields::new();
        f.insert(
            "config_dir".into(),
            s(self.layout.config_dir.display().to_string()),
        );
        for name in [BROKER_CONFIG, COMMAND_POLICY, PROMPT_POLICY] {
            let sha = std::fs::read(self.layout.config_dir.join(name))
                .map(|b| s(occ_audit::sha256_hex(&b)))
                .unwrap_or(Value::Null);
            f.insert(
                format!(
                    "{}_sha256",
                    name.trim_end_matches(".json").replace('-', "_")
                ),
                sha,
            );
        }
        f
    }

    /// System mode: restores the state file after the ownership checks (root-owned, not
    /// writable by group or others). Returns the event to record.
    pub(super) fn restore_system_state(&self) -> Vec<(Event, Fields)> {
        let file = self.layout.state_dir.join(STATE_FILE);
        let mut f = Fields::new();
        f.insert("file".into(), s(file.display().to_string()));
        let text = match occ_policy::file::read_checked(&file, 0) {
            Ok(Some(t)) => t,
            Ok(None) => return Vec::new(),
            Err(e) => {
                f.insert("reason".into(), s(e.to_string()));
                return vec![(Event::StateRejected, f)];
            }
        };
        let snap: Snapshot = match serde_json::from_str(&text) {
            Ok(s) => s,
            Err(e) => {
                f.insert("reason".into(), s(format!("not a state file: {e}")));
                return vec![(Event::StateRejected, f)];
            }
        };
        let restored = super::snapshot::pending_restored(&snap);
        let mut store = self.store();
        store.restore(snap, now_ms());
        f.insert("pending".into(), int(store.pending().count()));
        f.insert("grants".into(), int(store.grant_count()));
        let mut out = vec![(Event::StateRestored, f)];
        out.extend(restored);
        out
    }

    /// System mode, at start, before this start is on record: the runs the log shows started
    /// since the previous broker started, with no end on record. (Read after this start's own
    /// `broker_started`, the log would show none.)
    pub(super) fn unknown_runs(&self) -> Vec<serde_json::Value> {
        unfinished_runs(&self.layout.audit_log)
    }

    /// System mode, at start: audits each of `runs` ([`Gate::unknown_runs`])
    /// `exec_outcome_unknown`, with its pid and whether that pid still runs.
    pub(super) fn record_unknown_runs(&self, runs: Vec<serde_json::Value>) {
        for run in runs {
            let mut f = Fields::new();
            let pid = run.get("pid").and_then(|p| p.as_i64()).unwrap_or(0);
            for key in ["run_id", "request_id", "submituser", "runuser"] {
                if let Some(v) = run.get(key).and_then(|v| v.as_str()) {
                    f.insert(key.into(), s(v));
                }
            }
            if let Some(argv) = run.get("runargv").and_then(|a| a.as_array()) {
                let argv: Vec<String> = argv
                    .iter()
                    .filter_map(|a| a.as_str().map(str::to_string))
                    .collect();
                f.insert("runargv".into(), events::strs(&argv));
            }
            f.insert("pid".into(), int(pid));
            let running = crate::sys::process_exists(i32::try_from(pid).unwrap_or(0));
            f.insert("still_running".into(), Value::Bool(running));
            f.insert(
                "detail".into(),
                s("the broker stopped or crashed while the command ran"),
            );
            let _ = self.audit(Event::ExecOutcomeUnknown, f);
        }
    }
}

/// The `exec_start` events after the last `broker_started` in `log` that have no
/// `exec_finish`, `exec_abandoned`, `exec_failed` or `exec_outcome_unknown` with the same
/// `run_id`.
fn unfinished_runs(log: &Path) -> Vec<serde_json::Value> {
    let Some(tail) = since_last_start(log) else {
        return Vec::new();
    };
    let mut started: Vec<serde_json::Value> = Vec::new();
    let mut ended: BTreeSet<String> = BTreeSet::new();
    for line in tail.split(|b| *b == b'\n') {
        let Ok(ev) = serde_json::from_slice::<serde_json::Value>(line) else {
            continue;
        };
        let run_id = ev["run_id"].as_str().map(str::to_string);
        match (ev["event_type"].as_str(), run_id) {
            (Some("exec_start"), Some(_)) => started.push(ev),
            (
                Some("exec_finish" | "exec_abandoned" | "exec_failed" | "exec_outcome_unknown"),
                Some(id),
            ) => {
                ended.insert(id);
            }
            _ => {}
        }
    }
    started.retain(|ev| ev["run_id"].as_str().is_some_and(|id| !ended.contains(id)));
    started
}

/// The log from its last `broker_started` event on (read backwards in chunks, so a long log
/// costs only its tail).
fn since_last_start(log: &Path) -> Option<Vec<u8>> {
    const CHUNK: u64 = 1 << 20;
    const NEEDLE: &[u8] = b"\"broker_started\"";
    let mut f = std::fs::File::open(log).ok()?;
    let len = f.metadata().ok()?.len();
    let mut start = len;
    let mut buf: Vec<u8> = Vec::new();
    loop {
        let from = start.saturating_sub(CHUNK);
        let mut chunk = vec![0u8; usize::try_from(start - from).ok()?];
        f.seek(SeekFrom::Start(from)).ok()?;
        f.read_exact(&mut chunk).ok()?;
        chunk.extend_from_slice(&buf);
        buf = chunk;
        start = from;
        // The last line whose event_type (not some other field) is broker_started.
        let mut end = buf.len();
        while let Some(at) = memrfind(&buf[..end], NEEDLE) {
            let line_start = buf[..at]
                .iter()
                .rposition(|b| *b == b'\n')
                .map_or(0, |p| p + 1);
            let line_end = buf[at..]
                .iter()
                .position(|b| *b == b'\n')
                .map_or(buf.len(), |p| at + p);
            let is_start = serde_json::from_slice::<serde_json::Value>(&buf[line_start..line_end])
                .is_ok_and(|e| e["event_type"] == "broker_started");
            if is_start && (line_start > 0 || start == 0) {
                return Some(buf.split_off(line_start));
            }
            end = line_start;
        }
        if start == 0 {
            return Some(buf);
        }
    }
}

fn memrfind(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).rposition(|w| w == needle)
}
