//! `occ-scan notify`: compares the summary's failing checks with the last delivered state and
//! sends new or escalated ones to the configured notifier. The notifier is an exact argv from
//! an allowlist, checked by occ's one notifier rule (`occ_policy::notifier`, shared with the
//! broker's `approval.notify`: never a shell or interpreter, judged by the resolved file), run
//! with a cleared environment and a timeout. The state advances only after a successful delivery, so a failed
//! one is retried on the next run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use occ_policy::notifier::Notifier;
use occ_policy::CodeRunners;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::model::{Status, SUMMARY_FILE};
use super::util::{self, atomic_write_json};
use crate::error::ScanError;
use crate::exec;
use crate::paths::Paths;

/// Env var: the notifier argv (a JSON array of strings).
pub const CMD_ENV: &str = "OPENCLAW_VIOLATION_NOTIFY_CMD";
/// Env var: the allowed argvs (a JSON array of arrays of strings).
pub const ALLOWLIST_ENV: &str = "OPENCLAW_VIOLATION_NOTIFY_ALLOWLIST";
/// Env var: the state file.
pub const STATE_ENV: &str = "OPENCLAW_VIOLATION_NOTIFY_STATE";
/// The only environment a notifier gets.
pub const NOTIFIER_PATH: &str = occ_policy::notifier::NOTIFIER_PATH;

/// One failing check as notify tracks it (the seed's state entry).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Item {
    /// Status (`violation` or `partial`).
    pub status: String,
    /// Risk.
    pub risk: String,
    /// Title.
    pub title: String,
}

/// The notify state file: the seed's `{"violations": {...}}` plus delivery bookkeeping.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct NotifyState {
    /// What was last delivered (or acknowledged as nothing new).
    #[serde(default)]
    pub violations: BTreeMap<String, Item>,
    /// When the state last advanced.
    #[serde(default)]
    pub updated_at: Option<String>,
    /// Failed deliveries since the last success.
    #[serde(default)]
    pub failed_attempts: u32,
    /// The last failure.
    #[serde(default)]
    pub last_error: Option<String>,
}

/// Options for [`notify`].
#[derive(Debug, Clone)]
pub struct NotifyOptions {
    /// The compliance summary.
    pub summary: PathBuf,
    /// The state file.
    pub state: PathBuf,
    /// Notifier argv text (from `OPENCLAW_VIOLATION_NOTIFY_CMD`).
    pub cmd: Option<String>,
    /// Allowlist text (from `OPENCLAW_VIOLATION_NOTIFY_ALLOWLIST`).
    pub allowlist: Option<String>,
    /// Notifier timeout.
    pub timeout: Duration,
}

impl NotifyOptions {
    /// Defaults from the environment and `paths`.
    pub fn from_env(paths: &Paths) -> Self {
        let nonempty = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        NotifyOptions {
            summary: paths.assessment_file(SUMMARY_FILE),
            state: nonempty(STATE_ENV)
                .map(PathBuf::from)
                .unwrap_or_else(|| paths.security_file("violation-notify-state.json")),
            cmd: nonempty(CMD_ENV),
            allowlist: nonempty(ALLOWLIST_ENV),
            timeout: Duration::from_secs(10),
        }
    }
}

/// What notify did.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct NotifyOutcome {
    /// `nothing_new`, `sent`, `printed`, `failed` or `refused`.
    pub status: String,
    /// Failing checks now.
    pub current: usize,
    /// New or escalated check ids.
    pub new: Vec<String>,
    /// The message (when there was something to send).
    pub message: Option<String>,
    /// The notifier argv (when configured).
    pub notifier: Option<Vec<String>>,
    /// Whether the state file advanced.
    pub state_advanced: bool,
    /// Failed deliveries in a row (including this one).
    pub failed_attempts: u32,
    /// What went wrong.
    pub error: Option<String>,
}

impl NotifyOutcome {
    /// 2 when delivery failed or was refused; 1 when failing checks exist; else 0.
    pub fn exit_code(&self) -> i32 {
        match self.status.as_str() {
            "failed" | "refused" => 2,
            _ => i32::from(self.current > 0),
        }
    }
}

/// Reads the failing checks from a summary (`summary.violations`, the seed's nesting).
pub fn current_items(summary_path: &Path) -> Result<BTreeMap<String, Item>, ScanError> {
    let text = std::fs::read(summary_path).map_err(|source| ScanError::Read {
        path: summary_path.to_path_buf(),
        source,
    })?;
    let v: Value = serde_json::from_slice(&text).map_err(|e| {
        ScanError::invalid(
            summary_path,
            "(JSON)",
            e.to_string(),
            "run `occ-scan assess` to rewrite it",
        )
    })?;
    let list = v
        .get("summary")
        .and_then(|s| s.get("violations"))
        .and_then(Value::as_array)
        .ok_or_else(|| {
            ScanError::invalid(
                summary_path,
                "summary.violations",
                "missing or not a list",
                "run `occ-scan assess` to rewrite the summary",
            )
        })?;
    let mut out = BTreeMap::new();
    for item in list {
        let Some(id) = item
            .get("check_id")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
        else {
            continue;
        };
        let s = |k: &str, d: &str| {
            item.get(k)
                .and_then(Value::as_str)
                .filter(|x| !x.is_empty())
                .unwrap_or(d)
                .to_string()
        };
        out.insert(
            id.to_string(),
            Item {
                status: s("status", "violation"),
                risk: s("risk", "unknown"),
                title: s("title", ""),
            },
        );
    }
    Ok(out)
}

fn rank(status: &str) -> u8 {
    Status::parse(status).map_or(0, Status::rank)
}

/// New or escalated items: absent before, or a higher status rank than before.
pub fn diff(prev: &BTreeMap<String, Item>, cur: &BTreeMap<String, Item>) -> Vec<String> {
    cur.iter()
        .filter(|(id, item)| match prev.get(*id) {
            None => true,
            Some(p) => rank(&item.status) > rank(&p.status),
        })
        .map(|(id, _)| id.clone())
        .collect()
}

/// The message: the seed's header and one line per new item.
pub fn message(
    summary: &Path,
    now: SystemTime,
    cur: &BTreeMap<String, Item>,
    new: &[String],
) -> String {
    let mut m = format!(
        "OpenClaw occ-scan: new compliance findings detected\nSource: {}\nTime (UTC): {}\n\n",
        summary.display(),
        util::rfc3339(now)
    );
    for id in new {
        if let Some(i) = cur.get(id) {
            m.push_str(&format!("- {id}: {} ({})", i.status, i.risk));
            if !i.title.is_empty() {
                m.push_str(&format!(" - {}", i.title));
            }
            m.push('\n');
        }
    }
    m
}

fn refuse(message: impl Into<String>, fix: &str) -> ScanError {
    ScanError::NotifierRefused {
        message: message.into(),
        fix: fix.into(),
    }
}

/// Parses `OPENCLAW_VIOLATION_NOTIFY_CMD`: a JSON array of strings, or plain words with no
/// quoting (anything needing quotes must use the JSON form).
pub fn parse_argv(cmd: &str) -> Result<Vec<String>, ScanError> {
    let t = cmd.trim();
    let argv: Vec<String> = if t.starts_with('[') {
        serde_json::from_str(t).map_err(|e| {
            refuse(
                format!("{CMD_ENV} is not a JSON array of strings: {e}"),
                "write it as [\"/usr/bin/logger\", \"-t\", \"occ\"]",
            )
        })?
    } else {
        if t.contains(['"', '\'', '\\', '$', '`', ';', '|', '&', '<', '>']) {
            return Err(refuse(
                format!("{CMD_ENV} has shell syntax, which is never interpreted"),
                "use the JSON array form",
            ));
        }
        t.split_whitespace().map(String::from).collect()
    };
    if argv.is_empty() || argv[0].is_empty() {
        return Err(refuse(
            format!("{CMD_ENV} is empty"),
            "name the notifier's absolute path",
        ));
    }
    Ok(argv)
}

/// Validates a notifier: exact argv in the allowlist, then occ's one notifier rule
/// ([`occ_policy::notifier`], as the broker's `approval.notify`): absolute argv[0] that
/// canonicalises to an executable regular file which is not a shell or interpreter.
pub fn validate(argv: &[String], allowlist: Option<&str>) -> Result<Notifier, ScanError> {
    if argv.is_empty() {
        return Err(refuse("empty argv", "name the notifier's absolute path"));
    }
    let allow = allowlist.map(str::trim).filter(|a| !a.is_empty()).ok_or_else(|| {
        refuse(
            format!("{ALLOWLIST_ENV} is not set"),
            "set it to a JSON array holding the exact argv, e.g. [[\"/usr/bin/logger\",\"-t\",\"occ\"]]",
        )
    })?;
    let lists: Vec<Vec<String>> = serde_json::from_str(allow).map_err(|_| {
        refuse(
            format!("{ALLOWLIST_ENV} is not a JSON array of argv arrays (the comma form is no longer accepted)"),
            "write [[\"/usr/bin/logger\",\"-t\",\"occ\"]]",
        )
    })?;
    if !lists.iter().any(|l| l.as_slice() == argv) {
        return Err(refuse(
            format!("argv {argv:?} is not in {ALLOWLIST_ENV}"),
            "add this exact argv (every argument) to the allowlist",
        ));
    }
    Notifier::check(argv, &CodeRunners::builtin()).map_err(|e| refuse(e.to_string(), e.fix()))
}

/// Runs the notifier with the message on stdin, an empty environment but `PATH`, and a
/// timeout (occ's one runner, as the broker's notifier runs).
pub fn deliver(notifier: &Notifier, message: &str, timeout: Duration) -> Result<(), String> {
    let out = exec::run(notifier.command(), Some(message.as_bytes()), timeout)
        .map_err(|e| e.to_string())?;
    out.verdict(timeout).map_err(|e| format!("notifier {e}"))
}

fn load_state(path: &Path) -> (NotifyState, Option<String>) {
    match std::fs::read(path) {
        Ok(b) => match serde_json::from_slice(&b) {
            Ok(s) => (s, None),
            Err(e) => (
                NotifyState::default(),
                Some(format!(
                    "{}: unreadable state ({e}); every finding counts as new",
                    path.display()
                )),
            ),
        },
        Err(_) => (NotifyState::default(), None),
    }
}

/// Runs notify.
pub fn notify(opts: &NotifyOptions, now: SystemTime) -> Result<NotifyOutcome, ScanError> {
    let cur = current_items(&opts.summary)?;
    let (mut state, _warn) = load_state(&opts.state);
    let new = diff(&state.violations, &cur);
    let mut out = NotifyOutcome {
        status: "nothing_new".into(),
        current: cur.len(),
        new: new.clone(),
        message: None,
        notifier: None,
        state_advanced: false,
        failed_attempts: state.failed_attempts,
        error: None,
    };
    if new.is_empty() {
        if state.violations != cur {
            // Resolved or downgraded items: remember, so a reappearance is news again.
            state.violations = cur;
            state.updated_at = Some(util::rfc3339(now));
            state.failed_attempts = 0;
            state.last_error = None;
            atomic_write_json(&opts.state, &state)?;
            out.state_advanced = true;
            out.failed_attempts = 0;
        }
        return Ok(out);
    }
    let msg = message(&opts.summary, now, &cur, &new);
    out.message = Some(msg.clone());
    let delivered = match &opts.cmd {
        None => {
            out.status = "printed".into();
            Ok(())
        }
        Some(cmd) => {
            let checked = parse_argv(cmd).and_then(|argv| {
                let notifier = validate(&argv, opts.allowlist.as_deref())?;
                Ok((argv, notifier))
            });
            match checked {
                Err(e) => {
                    out.status = "refused".into();
                    Err(e.to_string())
                }
                Ok((argv, notifier)) => {
                    out.notifier = Some(argv.clone());
                    let r = deliver(&notifier, &msg, opts.timeout);
                    out.status = if r.is_ok() { "sent" } else { "failed" }.into();
                    r
                }
            }
        }
    };
    match delivered {
        Ok(()) => {
            state.violations = cur;
            state.updated_at = Some(util::rfc3339(now));
            state.failed_attempts = 0;
            state.last_error = None;
            atomic_write_json(&opts.state, &state)?;
            out.state_advanced = true;
            out.failed_attempts = 0;
        }
        Err(e) => {
            // Keep the delivered set as it was, so these items are new again next run.
            state.failed_attempts = state.failed_attempts.saturating_add(1);
            state.last_error = Some(format!("{}: {e}", util::rfc3339(now)));
            atomic_write_json(&opts.state, &state)?;
            out.failed_attempts = state.failed_attempts;
            out.error = Some(e);
        }
    }
    Ok(out)
}
