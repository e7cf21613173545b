//! Strict, typed loading of `broker.json`, `command-policy.json` and `prompt-policy.json`, with
//! the ownership checks that come before reading. Every failure names the file, the JSON path
//! and the fix; nothing here ever falls back to "allow".

use std::collections::HashSet;
use std::io::Read;
use std::path::{Path, PathBuf};

use occ_base::trusted::{self, TrustError};
use serde::{Deserialize, Serialize};

use crate::rule::{ListKind, Rule, RuleId, RuleIndex};

/// File name of the command policy inside the security directory.
pub const COMMAND_POLICY: &str = "command-policy.json";
/// File name of the prompt policy.
pub const PROMPT_POLICY: &str = "prompt-policy.json";
/// File name of the broker configuration.
pub const BROKER_CONFIG: &str = "broker.json";

/// The shipped templates, written by `occ policy init`.
pub mod templates {
    /// `command-policy.json`: version 2, allows nothing in particular (every run still needs
    /// approval), denies a few commands nobody should approve by accident.
    pub const COMMAND_POLICY: &str = include_str!("../../../references/command-policy.json");
    /// `prompt-policy.json`.
    pub const PROMPT_POLICY: &str = include_str!("../../../references/prompt-policy.json");
    /// `broker.json` with every default spelled out.
    pub const BROKER_CONFIG: &str = include_str!("../../../references/broker.json");
    /// The commands that can run arbitrary code.
    pub const CODE_RUNNERS: &str = include_str!("../../../references/code-runners.json");
}

/// A policy-file problem. The broker refuses (fails closed) on any of them.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FileError {
    /// The file cannot be opened or read.
    #[error("{file}: cannot read: {detail}; fix: {fix}")]
    Io {
        /// The file.
        file: PathBuf,
        /// The OS error.
        detail: String,
        /// What to do.
        fix: String,
    },
    /// The file fails the checks before reading.
    #[error("{file}: {problem}; fix: {fix}")]
    Unsafe {
        /// The file.
        file: PathBuf,
        /// What is wrong.
        problem: String,
        /// The command that fixes it.
        fix: String,
    },
    /// The content is not what the schema allows.
    #[error("{file}: at {path}: {problem}; fix: {fix}")]
    Invalid {
        /// The file.
        file: PathBuf,
        /// JSON path of the bad value (`allow[3]`, `approval.stack[1]`, `.` for the root).
        path: String,
        /// What is wrong.
        problem: String,
        /// What to write instead.
        fix: String,
    },
    /// The original tool's regex format.
    #[error("{file}: this is the original tool's regex format ({why}), which occ does not read; fix: rewrite it as version 2 glob rules, e.g. {suggestion}")]
    Legacy {
        /// The file.
        file: PathBuf,
        /// What gave it away.
        why: String,
        /// The same rules in occ's glob form.
        suggestion: String,
    },
    /// A required policy file does not exist.
    #[error("{file}: missing, and policy files are required (require_policy_files or OPENCLAW_REQUIRE_POLICY_FILES=1); fix: run `occ policy init` or write the file")]
    Missing {
        /// The file.
        file: PathBuf,
    },
}

impl FileError {
    /// The reason code a refusal caused by this problem carries.
    pub fn reason_code(&self) -> &'static str {
        match self {
            FileError::Missing { .. } => "policy_files_missing",
            _ => "policy_invalid",
        }
    }
    /// The file at fault.
    pub fn file(&self) -> &Path {
        match self {
            FileError::Io { file, .. }
            | FileError::Unsafe { file, .. }
            | FileError::Invalid { file, .. }
            | FileError::Legacy { file, .. }
            | FileError::Missing { file } => file,
        }
    }
}

/// Opens and reads a file the broker trusts: a regular file, not a symlink, owned by
/// `reader_uid` or root, not writable by group or others. Checked on the open descriptor, so
/// the file cannot be swapped between check and read. `Ok(None)` when it does not exist.
pub fn read_checked(file: &Path, reader_uid: u32) -> Result<Option<String>, FileError> {
    let unsafe_file = |problem: String, fix: String| FileError::Unsafe {
        file: file.into(),
        problem,
        fix,
    };
    let io_error = |detail: String, fix: &str| FileError::Io {
        file: file.into(),
        detail,
        fix: fix.into(),
    };
    let mut f = match trusted::open(file, reader_uid) {
        Ok(Some(t)) => t.file,
        Ok(None) => return Ok(None),
        Err(TrustError::Symlink { .. }) => {
            return Err(unsafe_file(
                "is a symlink".into(),
                format!(
                    "replace it with a regular file: cp --remove-destination \"$(readlink -f {0})\" {0}",
                    file.display()
                ),
            ))
        }
        Err(TrustError::Open { source, .. }) => {
            return Err(io_error(
                source.to_string(),
                "make it readable by the broker's user",
            ))
        }
        Err(TrustError::NotRegular { .. }) => {
            return Err(unsafe_file(
                "is not a regular file".into(),
                "replace it with a regular file".into(),
            ))
        }
        Err(TrustError::ForeignOwner { owner, .. }) => {
            return Err(unsafe_file(
                format!("is owned by uid {owner}, not by uid {reader_uid} or root"),
                format!("chown {reader_uid} {}", file.display()),
            ))
        }
        Err(TrustError::Writable { mode, .. }) => {
            return Err(unsafe_file(
                format!("is writable by group or others (mode {mode:o})"),
                format!("chmod 600 {}", file.display()),
            ))
        }
        Err(TrustError::Stat { source, .. }) => {
            return Err(io_error(source.to_string(), "check the file system"))
        }
        // A check occ-base gains later: still a refusal, never a read.
        Err(e) => {
            return Err(unsafe_file(
                e.to_string(),
                format!("make it a regular file owned by uid {reader_uid} or root, mode 600"),
            ))
        }
    };
    let mut text = String::new();
    f.read_to_string(&mut text)
        .map_err(|e| io_error(e.to_string(), "write it as UTF-8 JSON"))?;
    Ok(Some(text))
}

fn parse_typed<T: for<'de> Deserialize<'de>>(file: &Path, text: &str) -> Result<T, FileError> {
    parse_typed_at(file, text, true)
}

/// Like [`parse_typed`], but when serde stops at the first bad key, every other key is tried
/// too: each top-level key alone, and each key of a nested object alone, against `T`'s
/// defaults. So one run of `occ policy check` names every bad key, not one per file.
fn parse_typed_all<T: for<'de> Deserialize<'de>>(
    file: &Path,
    text: &str,
) -> Result<T, Vec<FileError>> {
    let first = match parse_typed::<T>(file, text) {
        Ok(t) => return Ok(t),
        Err(e) => e,
    };
    let Ok(serde_json::Value::Object(top)) = serde_json::from_str::<serde_json::Value>(text) else {
        return Err(vec![first]);
    };
    let alone = |v: serde_json::Value| parse_typed_at::<T>(file, &v.to_string(), false).err();
    let mut errs = Vec::new();
    for (k, v) in &top {
        let Some(whole) = alone(serde_json::json!({ k: v })) else {
            continue;
        };
        let mut inner = Vec::new();
        if let serde_json::Value::Object(sub) = v {
            for (sk, sv) in sub {
                inner.extend(alone(serde_json::json!({ k: { sk: sv } })));
            }
        }
        // Keys that fail only together (none alone) are reported as their section.
        if inner.is_empty() {
            errs.push(whole);
        } else {
            errs.extend(inner);
        }
    }
    // The first error keeps its line and column: it was found in the real text.
    match errs.iter_mut().find(|e| same_path(e, &first)) {
        Some(e) => *e = first,
        None => errs.insert(0, first),
    }
    Err(errs)
}

fn same_path(a: &FileError, b: &FileError) -> bool {
    matches!((a, b), (FileError::Invalid { path: p, .. }, FileError::Invalid { path: q, .. }) if p == q)
}

fn parse_typed_at<T: for<'de> Deserialize<'de>>(
    file: &Path,
    text: &str,
    position: bool,
) -> Result<T, FileError> {
    let de = &mut serde_json::Deserializer::from_str(text);
    let res: Result<T, _> = serde_path_to_error::deserialize(de);
    res.map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let what = strip_position(&inner.to_string()).to_string();
        let problem = if position {
            format!("{what} (line {}, column {})", inner.line(), inner.column())
        } else {
            what
        };
        let fix = if problem.contains("unknown field") {
            "remove the key or correct its spelling; `occ policy init` writes a template"
        } else if inner.is_syntax() || inner.is_eof() {
            "make the file valid JSON"
        } else {
            "give the value the type and form the template shows (`occ policy init`)"
        };
        FileError::Invalid {
            file: file.into(),
            path,
            problem,
            fix: fix.into(),
        }
    })
}

/// serde_json appends " at line L column C"; the error states the position once, its own way.
fn strip_position(msg: &str) -> &str {
    match msg.rfind(" at line ") {
        Some(i) => &msg[..i],
        None => msg,
    }
}

fn invalid(
    file: &Path,
    path: &str,
    problem: impl Into<String>,
    fix: impl Into<String>,
) -> FileError {
    FileError::Invalid {
        file: file.into(),
        path: path.into(),
        problem: problem.into(),
        fix: fix.into(),
    }
}

mod broker;
mod commands;
mod notify;
#[cfg(test)]
mod tests;

pub use broker::*;
pub use commands::*;
pub use notify::*;

// ---------------------------------------------------------------------------------------------
// Everything together

/// All policy inputs, loaded and checked.
#[derive(Clone, Debug)]
pub struct PolicyConfig {
    /// `broker.json` (defaults when absent), already tightened by the caller's environment.
    pub broker: BrokerConfig,
    /// `command-policy.json` (empty when absent and not required).
    pub commands: CommandPolicy,
    /// `prompt-policy.json`.
    pub prompt: PromptPolicy,
    /// `references/code-runners.json`.
    pub code_runners: CodeRunners,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        PolicyConfig {
            broker: BrokerConfig::default(),
            commands: CommandPolicy::default(),
            prompt: PromptPolicy::default(),
            code_runners: CodeRunners::builtin(),
        }
    }
}

/// Loads every policy file from `security_dir` as `reader_uid` would, applying the caller's
/// tightening variables. Returns every problem found, not just the first.
pub fn load(
    security_dir: &Path,
    reader_uid: u32,
    caller_env: &dyn Fn(&str) -> Option<String>,
) -> Result<PolicyConfig, Vec<FileError>> {
    let mut errs = Vec::new();
    let bfile = security_dir.join(BROKER_CONFIG);
    let mut broker = match read_checked(&bfile, reader_uid) {
        Ok(Some(text)) => BrokerConfig::parse_all(&bfile, &text)
            .and_then(|c| c.check_files(&bfile, reader_uid).map(|()| c))
            .unwrap_or_else(|e| {
                errs.extend(e);
                BrokerConfig::default()
            }),
        Ok(None) => BrokerConfig::default(),
        Err(e) => {
            errs.push(e);
            BrokerConfig::default()
        }
    };
    broker.tighten_from_env(caller_env);
    let cfile = security_dir.join(COMMAND_POLICY);
    let commands = match read_checked(&cfile, reader_uid) {
        Ok(Some(text)) => CommandPolicy::parse(&cfile, &text).unwrap_or_else(|e| {
            errs.extend(e);
            CommandPolicy::default()
        }),
        Ok(None) => {
            if broker.require_policy_files {
                errs.push(FileError::Missing { file: cfile });
            }
            CommandPolicy::default()
        }
        Err(e) => {
            errs.push(e);
            CommandPolicy::default()
        }
    };
    let pfile = security_dir.join(PROMPT_POLICY);
    let prompt = match read_checked(&pfile, reader_uid) {
        Ok(Some(text)) => PromptPolicy::parse_all(&pfile, &text).unwrap_or_else(|e| {
            errs.extend(e);
            PromptPolicy::default()
        }),
        Ok(None) => {
            if broker.require_policy_files {
                errs.push(FileError::Missing { file: pfile });
            }
            PromptPolicy::default()
        }
        Err(e) => {
            errs.push(e);
            PromptPolicy::default()
        }
    };
    if errs.is_empty() {
        Ok(PolicyConfig {
            broker,
            commands,
            prompt,
            code_runners: CodeRunners::builtin(),
        })
    } else {
        Err(errs)
    }
}

/// [`load`] for a user-mode broker: what a user-mode broker refuses on top
/// ([`BrokerConfig::user_mode_problems`]: a quorum above 1) is an error too. The user-mode
/// broker, `occ doctor` and `occ policy check` all judge through this one function.
pub fn load_user(
    security_dir: &Path,
    reader_uid: u32,
    caller_env: &dyn Fn(&str) -> Option<String>,
) -> Result<PolicyConfig, Vec<FileError>> {
    let bfile = security_dir.join(BROKER_CONFIG);
    match load(security_dir, reader_uid, caller_env) {
        Ok(cfg) => {
            let errs = cfg.broker.user_mode_problems(&bfile);
            if errs.is_empty() {
                Ok(cfg)
            } else {
                Err(errs)
            }
        }
        Err(mut errs) => {
            // Every problem at once: a broker.json that parses is judged for user mode too,
            // whatever else is wrong.
            if let Ok(Some(text)) = read_checked(&bfile, reader_uid) {
                if let Ok(b) = BrokerConfig::parse_all(&bfile, &text) {
                    errs.extend(b.user_mode_problems(&bfile));
                }
            }
            Err(errs)
        }
    }
}
