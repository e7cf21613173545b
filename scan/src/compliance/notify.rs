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
    /// The file the allowlist came from (`security/notify.json`); `None`: the environment.
    pub allowlist_file: Option<PathBuf>,
    /// Notifier timeout.
    pub timeout: Duration,
}

/// The notifier configuration file, in `$OCC_HOME/security/` with the policy files.
pub const CONFIG_FILE: &str = "notify.json";

/// The largest notify.json read.
const CONFIG_LIMIT: u64 = 64 * 1024;

/// `security/notify.json`: each key, when present, wins over its environment variable, so a
/// timer or cron job (which gets no login environment) has the same notifier as a shell.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyConfig {
    /// The notifier argv (over `OPENCLAW_VIOLATION_NOTIFY_CMD`).
    pub command: Option<Vec<String>>,
    /// The allowed argvs (over `OPENCLAW_VIOLATION_NOTIFY_ALLOWLIST`).
    pub allowlist: Option<Vec<Vec<String>>>,
    /// The state file, an absolute path (over `OPENCLAW_VIOLATION_NOTIFY_STATE`).
    pub state: Option<PathBuf>,
    /// How long the notifier may run, in seconds (1 to 300).
    pub timeout_secs: Option<u64>,
}

impl NotifyConfig {
    /// Reads `path` through occ's trusted-file opener: a regular file, not a symlink, owned by
    /// this user or root and writable by no one else (it names a program this user runs).
    /// `Ok(None)` when it does not exist; every refusal names the file, the key and the fix.
    pub fn load(path: &Path) -> Result<Option<NotifyConfig>, ScanError> {
        use std::io::Read;
        let euid = nix::unistd::geteuid().as_raw();
        let trusted = occ_base::trusted::open(path, euid).map_err(|e| {
            ScanError::invalid(
                path,
                "(file)",
                format!("refused: {e}"),
                &format!(
                    "make it a regular file owned by uid {euid} or root, writable only by its \
                     owner: chmod 600 {}",
                    path.display()
                ),
            )
        })?;
        let Some(t) = trusted else { return Ok(None) };
        let mut text = String::new();
        t.file
            .take(CONFIG_LIMIT + 1)
            .read_to_string(&mut text)
            .map_err(|source| ScanError::Read {
                path: path.to_path_buf(),
                source,
            })?;
        if text.len() as u64 > CONFIG_LIMIT {
            return Err(ScanError::invalid(
                path,
                "(file)",
                format!("larger than {CONFIG_LIMIT} bytes"),
                "keep only command, allowlist, state and timeout_secs in it",
            ));
        }
        let c: NotifyConfig = serde_json::from_str(&text).map_err(|e| {
            ScanError::invalid(
                path,
                "(JSON)",
                e.to_string(),
                "write {\"command\": [\"/usr/bin/logger\", \"-t\", \"occ-scan\"], \
                 \"allowlist\": [[\"/usr/bin/logger\", \"-t\", \"occ-scan\"]]} (keys: command, \
                 allowlist, state, timeout_secs)",
            )
        })?;
        if let Some(cmd) = &c.command {
            if cmd.first().is_none_or(|a| a.is_empty()) {
                return Err(ScanError::invalid(
                    path,
                    "command",
                    "empty",
                    "name the notifier's absolute path first, e.g. [\"/usr/bin/logger\", \"-t\", \"occ-scan\"]",
                ));
            }
        }
        if let Some(st) = &c.state {
            if !st.is_absolute() {
                return Err(ScanError::invalid(
                    path,
                    "state",
                    format!("{} is not an absolute path", st.display()),
                    "use an absolute path, or leave the key out for security/violation-notify-state.json",
                ));
            }
        }
        if let Some(secs) = c.timeout_secs {
            if !(1..=300).contains(&secs) {
                return Err(ScanError::invalid(
                    path,
                    "timeout_secs",
                    format!("{secs} is outside 1..=300"),
                    "use a number of seconds from 1 to 300",
                ));
            }
        }
        Ok(Some(c))
    }
}

/// Where each notify setting came from, for the admin's eye.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct NotifySources {
    /// The config file, when it exists.
    pub config_file: Option<PathBuf>,
    /// `file`, `env` or `none`, for the command.
    pub command: &'static str,
    /// `file`, `env` or `none`, for the allowlist.
    pub allowlist: &'static str,
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
            allowlist_file: None,
            timeout: Duration::from_secs(10),
        }
    }

    /// The environment's settings ([`NotifyOptions::from_env`]), then `security/notify.json`
    /// over them key by key (the file wins); `timeout` unless the file sets one.
    pub fn load(paths: &Paths, timeout: Duration) -> Result<(Self, NotifySources), ScanError> {
        let mut o = Self::from_env(paths);
        o.timeout = timeout;
        let from_env = |v: &Option<String>| if v.is_some() { "env" } else { "none" };
        let mut src = NotifySources {
            config_file: None,
            command: from_env(&o.cmd),
            allowlist: from_env(&o.allowlist),
        };
        let file = paths.security_file(CONFIG_FILE);
        let Some(c) = NotifyConfig::load(&file)? else {
            return Ok((o, src));
        };
        if let Some(cmd) = &c.command {
            o.cmd = Some(argv_json(cmd));
            src.command = "file";
        }
        if let Some(allow) = &c.allowlist {
            o.allowlist = Some(argv_json(allow));
            o.allowlist_file = Some(file.clone());
            src.allowlist = "file";
        }
        if let Some(st) = c.state {
            o.state = st;
        }
        if let Some(secs) = c.timeout_secs {
            o.timeout = Duration::from_secs(secs);
        }
        src.config_file = Some(file);
        Ok((o, src))
    }
}

/// The JSON text of an argv or a list of them, as `parse_argv` and `validate` read it
/// (serialising strings cannot fail).
fn argv_json(v: &impl Serialize) -> String {
    serde_json::to_string(v).unwrap_or_default()
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
    /// 2 when delivery failed or was refused; else 0: notify did its job (delivered, printed
    /// or had nothing new). Failing checks are `assess`'s and `cycle`'s exit code, not this.
    pub fn exit_code(&self) -> i32 {
        match self.status.as_str() {
            "failed" | "refused" => 2,
            _ => 0,
        }
    }

    /// One line saying what notify did, and the fix when it could not deliver.
    pub fn headline(&self) -> String {
        let n = self.new.len();
        let findings = if n == 1 { "finding" } else { "findings" };
        match self.status.as_str() {
            "sent" => format!(
                "notify: delivered {n} new or escalated {findings} to {}",
                self.notifier
                    .as_ref()
                    .and_then(|a| a.first())
                    .map_or("the notifier", String::as_str)
            ),
            "printed" => format!(
                "notify: printed {n} new or escalated {findings} above: no notifier is \
                 configured (set \"command\" and \"allowlist\" in security/notify.json to \
                 deliver them)"
            ),
            "nothing_new" => format!(
                "notify: nothing new to deliver ({} failing check(s), each already delivered)",
                self.current
            ),
            "failed" => format!(
                "notify: failed: {} (attempt {}; the findings stay pending and are retried on \
                 the next run); fix: run the notifier by hand with a message on stdin to see \
                 why (`occ-scan notify --json` prints the message it sends), or raise \
                 timeout_secs in security/notify.json if it timed out",
                self.error.as_deref().unwrap_or("unknown error"),
                self.failed_attempts
            ),
            other => format!(
                "notify: {other}: {} (attempt {}; the findings stay pending and are retried on \
                 the next run)",
                self.error.as_deref().unwrap_or("unknown error"),
                self.failed_attempts
            ),
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

/// What a finding says beyond its status, from the summary: what was seen and what to do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Detail {
    /// `observed_state`.
    pub observed: String,
    /// `mitigation`.
    pub fix: String,
}

/// The observed state and mitigation of each failing check in a summary (best effort: a
/// finding without them is still reported by its id, status and control).
pub fn details(summary_path: &Path) -> BTreeMap<String, Detail> {
    let Ok(text) = std::fs::read(summary_path) else {
        return BTreeMap::new();
    };
    let Ok(v) = serde_json::from_slice::<Value>(&text) else {
        return BTreeMap::new();
    };
    let list = v
        .get("summary")
        .and_then(|s| s.get("violations"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    list.iter()
        .filter_map(|item| {
            let s = |k: &str| {
                item.get(k)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .trim()
                    .to_string()
            };
            let id = s("check_id");
            (!id.is_empty()).then(|| {
                (
                    id,
                    Detail {
                        observed: s("observed_state"),
                        fix: s("mitigation"),
                    },
                )
            })
        })
        .collect()
}

/// The message: the seed's header, then per new item a line with its id, status and risk,
/// and indented lines with the control it fails (the check's title states the control's
/// goal, not what was found), what was observed and the fix.
pub fn message(
    summary: &Path,
    now: SystemTime,
    cur: &BTreeMap<String, Item>,
    new: &[String],
    details: &BTreeMap<String, Detail>,
) -> String {
    let mut m = format!(
        "OpenClaw occ-scan: new compliance findings detected\nSource: {}\nTime (UTC): {}\n\n",
        summary.display(),
        util::rfc3339(now)
    );
    for id in new {
        if let Some(i) = cur.get(id) {
            m.push_str(&format!("- {id}: {} (risk {})\n", i.status, i.risk));
            if !i.title.is_empty() {
                m.push_str(&format!("    control:  {}\n", i.title));
            }
            if let Some(d) = details.get(id) {
                if !d.observed.is_empty() {
                    m.push_str(&format!("    observed: {}\n", d.observed));
                }
                if !d.fix.is_empty() {
                    m.push_str(&format!("    fix:      {}\n", d.fix));
                }
            }
        }
    }
    m
}

fn refuse(message: impl Into<String>, fix: impl Into<String>) -> ScanError {
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
/// `from` names where the allowlist came from (`None`: the environment variable), so a
/// refusal sends the admin to the right place.
pub fn validate(
    argv: &[String],
    allowlist: Option<&str>,
    from: Option<&Path>,
) -> Result<Notifier, ScanError> {
    if argv.is_empty() {
        return Err(refuse("empty argv", "name the notifier's absolute path"));
    }
    let place = match from {
        Some(f) => format!("the allowlist in {}", f.display()),
        None => ALLOWLIST_ENV.to_string(),
    };
    let allow = allowlist
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .ok_or_else(|| {
            refuse(
                format!("{ALLOWLIST_ENV} is not set and security/{CONFIG_FILE} has no allowlist"),
                format!(
                    "set \"allowlist\" in security/{CONFIG_FILE} (or {ALLOWLIST_ENV}) to a JSON \
                 array holding the exact argv, e.g. [[\"/usr/bin/logger\",\"-t\",\"occ\"]]"
                ),
            )
        })?;
    let lists: Vec<Vec<String>> = serde_json::from_str(allow).map_err(|_| {
        refuse(
            format!(
                "{place} is not a JSON array of argv arrays (the comma form is no longer accepted)"
            ),
            "write [[\"/usr/bin/logger\",\"-t\",\"occ\"]]",
        )
    })?;
    if !lists.iter().any(|l| l.as_slice() == argv) {
        return Err(refuse(
            format!("argv {argv:?} is not in {place}"),
            format!("add this exact argv (every argument) to {place}"),
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
    let msg = message(&opts.summary, now, &cur, &new, &details(&opts.summary));
    out.message = Some(msg.clone());
    let delivered = match &opts.cmd {
        None => {
            out.status = "printed".into();
            Ok(())
        }
        Some(cmd) => {
            let checked = parse_argv(cmd).and_then(|argv| {
                let notifier = validate(
                    &argv,
                    opts.allowlist.as_deref(),
                    opts.allowlist_file.as_deref(),
                )?;
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
