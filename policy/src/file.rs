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
    pub const COMMAND_POLICY: &str = include_str!("../../references/command-policy.json");
    /// `prompt-policy.json`.
    pub const PROMPT_POLICY: &str = include_str!("../../references/prompt-policy.json");
    /// `broker.json` with every default spelled out.
    pub const BROKER_CONFIG: &str = include_str!("../../references/broker.json");
    /// The commands that can run arbitrary code.
    pub const CODE_RUNNERS: &str = include_str!("../../references/code-runners.json");
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
    let de = &mut serde_json::Deserializer::from_str(text);
    let res: Result<T, _> = serde_path_to_error::deserialize(de);
    res.map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let problem = format!(
            "{} (line {}, column {})",
            strip_position(&inner.to_string()),
            inner.line(),
            inner.column()
        );
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

// ---------------------------------------------------------------------------------------------
// broker.json

/// An approval channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    /// `occ approve ID`.
    Queue,
    /// A prompt on the requester's terminal, for a human sitting at it (opt-in).
    Tty,
}

/// A module of the approval stack.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Module {
    /// Required policy files exist.
    Files,
    /// The decision table.
    Policy,
    /// The session id is present when required.
    Session,
    /// Untrusted-source confirmation.
    Untrusted,
    /// A live grant.
    Grant,
    /// A human decision.
    Approve,
    /// The approver's token.
    Token,
}

/// PAM-style control flag.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Control {
    /// Failure refuses at once.
    Requisite,
    /// Failure refuses once the stack has finished.
    Required,
    /// Success ends the stack if nothing failed before.
    Sufficient,
}

/// One `module:control` entry of `approval.stack`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize)]
#[serde(try_from = "String")]
pub struct StackEntry {
    /// The module.
    pub module: Module,
    /// Its control flag.
    pub control: Control,
}

impl TryFrom<String> for StackEntry {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        let (m, c) = s.split_once(':').ok_or_else(|| {
            format!("{s:?} is not `module:control`; write e.g. \"grant:sufficient\"")
        })?;
        let module = match m {
            "files" => Module::Files,
            "policy" => Module::Policy,
            "session" => Module::Session,
            "untrusted" => Module::Untrusted,
            "grant" => Module::Grant,
            "approve" => Module::Approve,
            "token" => Module::Token,
            _ => return Err(format!("unknown module {m:?}; modules are files, policy, session, untrusted, grant, approve, token")),
        };
        let control = match c {
            "requisite" => Control::Requisite,
            "required" => Control::Required,
            "sufficient" => Control::Sufficient,
            _ => {
                return Err(format!(
                    "unknown control {c:?}; controls are requisite, required, sufficient"
                ))
            }
        };
        Ok(StackEntry { module, control })
    }
}

impl Module {
    /// The module's name as written in `broker.json` and in audit events.
    pub fn name(self) -> &'static str {
        match self {
            Module::Files => "files",
            Module::Policy => "policy",
            Module::Session => "session",
            Module::Untrusted => "untrusted",
            Module::Grant => "grant",
            Module::Approve => "approve",
            Module::Token => "token",
        }
    }
}

impl std::fmt::Display for StackEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let m = self.module.name();
        let c = match self.control {
            Control::Requisite => "requisite",
            Control::Required => "required",
            Control::Sufficient => "sufficient",
        };
        write!(f, "{m}:{c}")
    }
}

/// `approval` in `broker.json`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApprovalConfig {
    /// Approval channels.
    pub channels: Vec<Channel>,
    /// How long the shim waits for a decision (0: never waits).
    pub wait_seconds: u64,
    /// When a pending request expires.
    pub pending_expiry_minutes: u64,
    /// Lowercase hex SHA-256 of the approver token, if one is set.
    pub token_sha256: Option<String>,
    /// The PAM-style stack.
    pub stack: Vec<StackEntry>,
}

impl Default for ApprovalConfig {
    fn default() -> Self {
        let stack = [
            "files:requisite",
            "policy:requisite",
            "session:requisite",
            "untrusted:required",
            "grant:sufficient",
            "approve:required",
            "token:required",
        ]
        .iter()
        .filter_map(|s| StackEntry::try_from(s.to_string()).ok())
        .collect();
        ApprovalConfig {
            channels: vec![Channel::Queue],
            wait_seconds: 120,
            pending_expiry_minutes: 30,
            token_sha256: None,
            stack,
        }
    }
}

/// `session` in `broker.json`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SessionConfig {
    /// Refuse requests without a session id.
    pub require_session_id: bool,
    /// A session grant dies after this much idle time.
    pub idle_timeout_minutes: u64,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            require_session_id: false,
            idle_timeout_minutes: 30,
        }
    }
}

/// `limits` in `broker.json`: what one requesting uid may hold at once (system mode), so no
/// requester can starve the others or the approvers.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Open connections per requesting uid on the request socket.
    pub connections_per_uid: usize,
    /// Pending requests per requesting uid.
    pub pending_per_uid: usize,
    /// Largest request (argv, cwd and forwarded environment, in bytes).
    pub request_bytes: usize,
    /// Open connections per uid on the admin socket.
    pub admin_connections_per_uid: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            connections_per_uid: 64,
            pending_per_uid: 32,
            request_bytes: 256 * 1024,
            admin_connections_per_uid: 16,
        }
    }
}

/// When the audit writer fsyncs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Fsync {
    /// After every record.
    Always,
    /// Group commit.
    Batch,
}

/// `audit` in `broker.json`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// fsync policy.
    pub fsync: Fsync,
    /// Forward-secure sealing.
    pub seal: bool,
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            fsync: Fsync::Always,
            seal: false,
        }
    }
}

/// `broker.json`: every key optional, unknown keys refused.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BrokerConfig {
    /// Schema version, 1.
    pub version: u32,
    /// Where bare command names are looked up (absolute entries only).
    pub secure_path: String,
    /// The real sudo (user mode).
    pub real_sudo: PathBuf,
    /// Refuse when a policy file is missing.
    pub require_policy_files: bool,
    /// Allow `-s` and `-i`.
    pub allow_shells: bool,
    /// Names `-E`/`--preserve-env` may preserve (`NAME`, or a `PREFIX*` pattern).
    pub allow_preserve_env: Vec<String>,
    /// Caller variables passed through to commands (`NAME` or `PREFIX*`).
    pub env_keep: Vec<String>,
    /// Approval settings.
    pub approval: ApprovalConfig,
    /// Session settings.
    pub session: SessionConfig,
    /// Audit settings.
    pub audit: AuditConfig,
    /// Who may request (system mode): user or `%group` names.
    pub requesters: Vec<String>,
    /// Who may approve (system mode).
    pub approvers: Vec<String>,
    /// Per-uid limits (system mode).
    pub limits: LimitsConfig,
}

/// The default `secure_path`.
pub const DEFAULT_SECURE_PATH: &str =
    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            version: 1,
            secure_path: DEFAULT_SECURE_PATH.into(),
            real_sudo: PathBuf::from("/usr/bin/sudo"),
            require_policy_files: false,
            allow_shells: false,
            allow_preserve_env: Vec::new(),
            env_keep: ["TERM", "LANG", "LC_*", "COLORTERM", "NO_COLOR"]
                .iter()
                .map(|s| s.to_string())
                .collect(),
            approval: ApprovalConfig::default(),
            session: SessionConfig::default(),
            audit: AuditConfig::default(),
            requesters: Vec::new(),
            approvers: Vec::new(),
            limits: LimitsConfig::default(),
        }
    }
}

/// Whether `name` matches a `NAME` or `PREFIX*` entry.
pub fn name_listed(list: &[String], name: &str) -> bool {
    list.iter().any(|p| match p.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => p == name,
    })
}

impl BrokerConfig {
    /// Parses and validates `broker.json` text.
    pub fn parse(file: &Path, text: &str) -> Result<BrokerConfig, FileError> {
        let c: BrokerConfig = parse_typed(file, text)?;
        if c.version != 1 {
            return Err(invalid(
                file,
                "version",
                format!("version {} is not supported", c.version),
                "write \"version\": 1",
            ));
        }
        if !c.secure_path.split(':').any(|d| d.starts_with('/')) {
            return Err(invalid(
                file,
                "secure_path",
                "has no absolute directory",
                format!("use absolute directories, e.g. {DEFAULT_SECURE_PATH:?}"),
            ));
        }
        if !c.real_sudo.is_absolute() {
            return Err(invalid(
                file,
                "real_sudo",
                "is not an absolute path",
                "write \"/usr/bin/sudo\"",
            ));
        }
        if let Some(t) = &c.approval.token_sha256 {
            if t.len() != 64
                || !t
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            {
                return Err(invalid(
                    file,
                    "approval.token_sha256",
                    "is not 64 lowercase hex digits",
                    "set it with `occ token set`, or write null",
                ));
            }
        }
        if c.approval.channels.is_empty() {
            return Err(invalid(
                file,
                "approval.channels",
                "is empty, so nobody could approve",
                "write [\"queue\"]",
            ));
        }
        for (key, v) in [
            ("limits.connections_per_uid", c.limits.connections_per_uid),
            ("limits.pending_per_uid", c.limits.pending_per_uid),
            ("limits.request_bytes", c.limits.request_bytes),
            (
                "limits.admin_connections_per_uid",
                c.limits.admin_connections_per_uid,
            ),
        ] {
            if v == 0 {
                return Err(invalid(
                    file,
                    key,
                    "is 0, so nothing could get through",
                    "use a positive number, or leave the key out for the default",
                ));
            }
        }
        if c.session.idle_timeout_minutes == 0 {
            return Err(invalid(
                file,
                "session.idle_timeout_minutes",
                "is 0",
                "use a positive number of minutes, e.g. 30",
            ));
        }
        for (key, list) in [
            ("allow_preserve_env", &c.allow_preserve_env),
            ("env_keep", &c.env_keep),
        ] {
            for (i, n) in list.iter().enumerate() {
                let base = n.strip_suffix('*').unwrap_or(n);
                if base.contains(['=', '*']) || (base.is_empty() && n != "*") {
                    return Err(invalid(
                        file,
                        &format!("{key}[{i}]"),
                        format!("{n:?} is not a variable name or NAME* pattern"),
                        "write a name such as \"TERM\" or a prefix pattern such as \"LC_*\"",
                    ));
                }
            }
        }
        Ok(c)
    }

    /// Applies the caller's `OPENCLAW_REQUIRE_POLICY_FILES=1` and `OPENCLAW_REQUIRE_SESSION_ID=1`.
    /// These only ever tighten: no value turns a requirement off.
    pub fn tighten_from_env(&mut self, get: &dyn Fn(&str) -> Option<String>) {
        if get("OPENCLAW_REQUIRE_POLICY_FILES").as_deref() == Some("1") {
            self.require_policy_files = true;
        }
        if get("OPENCLAW_REQUIRE_SESSION_ID").as_deref() == Some("1") {
            self.session.require_session_id = true;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// prompt-policy.json

/// `prompt-policy.json`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromptPolicy {
    /// Untrusted-source requests need `--confirm-untrusted` from the approver.
    #[serde(default = "yes")]
    pub require_confirmation_for_untrusted: bool,
}

fn yes() -> bool {
    true
}

impl Default for PromptPolicy {
    fn default() -> Self {
        PromptPolicy {
            require_confirmation_for_untrusted: true,
        }
    }
}

impl PromptPolicy {
    /// Parses `prompt-policy.json` text.
    pub fn parse(file: &Path, text: &str) -> Result<PromptPolicy, FileError> {
        parse_typed(file, text)
    }
}

// ---------------------------------------------------------------------------------------------
// command-policy.json

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCommandPolicy {
    version: u32,
    #[serde(default)]
    allow: Vec<String>,
    #[serde(default)]
    deny: Vec<String>,
    #[serde(default)]
    allow_exact: Vec<Vec<String>>,
    #[serde(default)]
    deny_exact: Vec<Vec<String>>,
}

/// A compiled `command-policy.json`: allow-side and deny-side rules, each indexed by command.
#[derive(Clone, Debug, Default)]
pub struct CommandPolicy {
    /// `allow` and `allow_exact`.
    pub allow: RuleIndex,
    /// `deny` and `deny_exact`.
    pub deny: RuleIndex,
}

/// Whether a rule string looks like one of the original tool's regexes.
fn regex_looking(rule: &str) -> bool {
    rule.starts_with('^') || rule.contains("\\b") || rule.contains("\\s") || rule.ends_with('$')
}

/// The glob form of one of the original tool's regex rules, as well as it can be said.
pub fn glob_form_of_regex(rule: &str) -> String {
    let mut s = rule
        .trim_start_matches('^')
        .trim_end_matches('$')
        .to_string();
    for (from, to) in [
        ("\\s+", " "),
        ("\\s*", " "),
        ("\\s", " "),
        ("\\b", ""),
        (".*", " ** "),
        ("\\.", "."),
    ] {
        s = s.replace(from, to);
    }
    let words: Vec<&str> = s.split_whitespace().collect();
    let mut out = words.join(" ");
    // The regex matched a prefix of the command line: keep "any further arguments".
    if words.len() > 1 && words.last() != Some(&"**") {
        out.push_str(" **");
    }
    out
}

impl CommandPolicy {
    /// Parses and compiles `command-policy.json` text, reporting every bad rule.
    pub fn parse(file: &Path, text: &str) -> Result<CommandPolicy, Vec<FileError>> {
        let value: serde_json::Value = serde_json::from_str(text).map_err(|e| {
            vec![invalid(
                file,
                ".",
                format!(
                    "{} (line {}, column {})",
                    strip_position(&e.to_string()),
                    e.line(),
                    e.column()
                ),
                "make the file valid JSON",
            )]
        })?;
        if let Some(obj) = value.as_object() {
            let strings = |k: &str| -> Vec<String> {
                obj.get(k)
                    .and_then(|v| v.as_array())
                    .map(|a| {
                        a.iter()
                            .filter_map(|x| x.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default()
            };
            let (allow, deny) = (strings("allow"), strings("deny"));
            let regexy = allow.iter().chain(&deny).any(|r| regex_looking(r));
            if !obj.contains_key("version") || regexy {
                let why = if !obj.contains_key("version") {
                    "no \"version\": 2".to_string()
                } else {
                    "regex rules (^, \\b, \\s, $)".to_string()
                };
                let conv = |l: &[String]| -> Vec<String> {
                    l.iter().map(|r| glob_form_of_regex(r)).collect()
                };
                let suggestion =
                    serde_json::json!({"version": 2, "allow": conv(&allow), "deny": conv(&deny)});
                return Err(vec![FileError::Legacy {
                    file: file.into(),
                    why,
                    suggestion: suggestion.to_string(),
                }]);
            }
        }
        let raw: RawCommandPolicy = parse_typed(file, text).map_err(|e| vec![e])?;
        if raw.version != 2 {
            return Err(vec![invalid(
                file,
                "version",
                format!("version {} is not supported", raw.version),
                "write \"version\": 2 with glob rules",
            )]);
        }
        let mut errs = Vec::new();
        let mut pol = CommandPolicy::default();
        for (list, rules) in [(ListKind::Allow, &raw.allow), (ListKind::Deny, &raw.deny)] {
            for (index, text) in rules.iter().enumerate() {
                let id = RuleId { list, index };
                match Rule::parse(id, text) {
                    Ok(r) if list.denies() => pol.deny.push(r),
                    Ok(r) => pol.allow.push(r),
                    Err(e) => errs.push(invalid(
                        file,
                        &id.to_string(),
                        format!("rule {text:?}: {e}"),
                        "fix the rule; see the README's rule language",
                    )),
                }
            }
        }
        for (list, rules) in [
            (ListKind::AllowExact, &raw.allow_exact),
            (ListKind::DenyExact, &raw.deny_exact),
        ] {
            for (index, argv) in rules.iter().enumerate() {
                let id = RuleId { list, index };
                match Rule::exact(id, argv) {
                    Ok(r) if list.denies() => pol.deny.push(r),
                    Ok(r) => pol.allow.push(r),
                    Err(e) => errs.push(invalid(file, &id.to_string(), format!("{e}"), "write the argv with an absolute path or bare name first, e.g. [\"/usr/bin/systemctl\", \"restart\", \"nginx\"]")),
                }
            }
        }
        if errs.is_empty() {
            Ok(pol)
        } else {
            Err(errs)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// code-runners.json

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCodeRunners {
    version: u32,
    #[serde(default)]
    #[allow(dead_code)]
    description: String,
    categories: std::collections::BTreeMap<String, Vec<String>>,
}

/// Commands that can run arbitrary code (shells, interpreters, wrappers, tools with hooks).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CodeRunners {
    names: HashSet<String>,
}

impl CodeRunners {
    /// The list shipped in `references/code-runners.json`.
    pub fn builtin() -> CodeRunners {
        CodeRunners::parse(
            Path::new("references/code-runners.json"),
            templates::CODE_RUNNERS,
        )
        .unwrap_or_else(|_| CodeRunners {
            names: HashSet::new(),
        })
    }

    /// Parses a code-runners file.
    pub fn parse(file: &Path, text: &str) -> Result<CodeRunners, FileError> {
        let raw: RawCodeRunners = parse_typed(file, text)?;
        if raw.version != 1 {
            return Err(invalid(
                file,
                "version",
                "unsupported version",
                "write \"version\": 1",
            ));
        }
        Ok(CodeRunners {
            names: raw.categories.into_values().flatten().collect(),
        })
    }

    /// Whether a file name is listed, directly or as a versioned name (`python3.11` for
    /// `python3` or `python`, `perl5.36.0` for `perl`).
    pub fn lists(&self, file_name: &str) -> bool {
        if self.names.contains(file_name) {
            return true;
        }
        let trimmed =
            file_name.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.' || c == '-');
        // Check every cut inside the trailing version: "python3.11" -> "python3", "python".
        let mut cut = file_name.len();
        while cut > trimmed.len() {
            cut -= 1;
            let head = &file_name[..cut];
            if self.names.contains(head) {
                return true;
            }
        }
        false
    }

    /// How many names are listed.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether no names are listed.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

// ---------------------------------------------------------------------------------------------
// One file at a time, for tools that judge a single file (`occ doctor`, `occ-scan`): the same
// checks before reading and the same schema as `load`, so every judge agrees with the broker.

impl BrokerConfig {
    /// Reads `broker.json` at `file` as `reader_uid` would ([`read_checked`]) and parses it:
    /// `Ok(None)` when it does not exist. The caller's environment is not applied.
    pub fn load(file: &Path, reader_uid: u32) -> Result<Option<BrokerConfig>, FileError> {
        read_checked(file, reader_uid)?
            .map(|text| BrokerConfig::parse(file, &text))
            .transpose()
    }
}

impl CommandPolicy {
    /// Reads `command-policy.json` at `file` as `reader_uid` would ([`read_checked`]) and
    /// compiles it, reporting every bad rule: `Ok(None)` when it does not exist.
    pub fn load(file: &Path, reader_uid: u32) -> Result<Option<CommandPolicy>, Vec<FileError>> {
        read_checked(file, reader_uid)
            .map_err(|e| vec![e])?
            .map(|text| CommandPolicy::parse(file, &text))
            .transpose()
    }
}

impl PromptPolicy {
    /// Reads `prompt-policy.json` at `file` as `reader_uid` would ([`read_checked`]) and
    /// parses it: `Ok(None)` when it does not exist.
    pub fn load(file: &Path, reader_uid: u32) -> Result<Option<PromptPolicy>, FileError> {
        read_checked(file, reader_uid)?
            .map(|text| PromptPolicy::parse(file, &text))
            .transpose()
    }
}

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
        Ok(Some(text)) => BrokerConfig::parse(&bfile, &text).unwrap_or_else(|e| {
            errs.push(e);
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
        Ok(Some(text)) => PromptPolicy::parse(&pfile, &text).unwrap_or_else(|e| {
            errs.push(e);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn f() -> PathBuf {
        PathBuf::from("/x/broker.json")
    }

    #[test]
    fn templates_parse_and_match_the_defaults() {
        let b = BrokerConfig::parse(&f(), templates::BROKER_CONFIG).expect("broker template");
        assert_eq!(b, BrokerConfig::default());
        let c = CommandPolicy::parse(Path::new("c"), templates::COMMAND_POLICY)
            .expect("command template");
        assert!(c.allow.is_empty(), "the template pre-allows nothing");
        PromptPolicy::parse(Path::new("p"), templates::PROMPT_POLICY).expect("prompt template");
        assert!(CodeRunners::builtin().len() > 30);
    }

    #[test]
    fn broker_errors_name_the_json_path() {
        let cases: &[(&str, &str, &str)] = &[
            (r#"{"bogus": 1}"#, "bogus", "unknown field `bogus`"),
            (
                r#"{"session": {"idle": 1}}"#,
                "session.idle",
                "unknown field `idle`",
            ),
            (
                r#"{"approval": {"stack": ["grant:sufficient", "nope:required"]}}"#,
                "approval.stack[1]",
                "unknown module",
            ),
            (
                r#"{"approval": {"wait_seconds": "x"}}"#,
                "approval.wait_seconds",
                "invalid type",
            ),
            (r#"{"version": 2}"#, "version", "not supported"),
            (
                r#"{"approval": {"token_sha256": "abc"}}"#,
                "approval.token_sha256",
                "64 lowercase hex",
            ),
            (
                r#"{"allow_preserve_env": ["A=B"]}"#,
                "allow_preserve_env[0]",
                "not a variable name",
            ),
            (
                r#"{"audit": {"fsync": "sometimes"}}"#,
                "audit.fsync",
                "unknown variant",
            ),
        ];
        for (text, path, needle) in cases {
            match BrokerConfig::parse(&f(), text) {
                Err(FileError::Invalid {
                    path: p,
                    problem,
                    fix,
                    ..
                }) => {
                    assert_eq!(&p, path, "{text}");
                    assert!(problem.contains(needle), "{text}: {problem}");
                    assert!(!fix.is_empty());
                }
                other => panic!("{text}: {other:?}"),
            }
        }
    }

    #[test]
    fn command_policy_errors_name_the_rule() {
        let text =
            r#"{"version": 2, "allow": ["ls", "ls ** x", "tail 'x"], "deny_exact": [["rel/x"]]}"#;
        let errs = CommandPolicy::parse(Path::new("c.json"), text).expect_err("bad rules");
        let paths: Vec<String> = errs
            .iter()
            .map(|e| match e {
                FileError::Invalid { path, .. } => path.clone(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(paths, ["allow[1]", "allow[2]", "deny_exact[0]"]);
        assert!(
            errs[0].to_string().starts_with("c.json: at allow[1]:"),
            "{}",
            errs[0]
        );
    }

    #[test]
    fn legacy_regex_format_is_refused_with_the_glob_form() {
        let seed = r#"{"allow": ["^openclaw\\b", "^python3\\b"], "deny": ["\\brm\\s+-rf\\b", "\\bshutdown\\b", "\\breboot\\b"]}"#;
        let errs = CommandPolicy::parse(Path::new("c.json"), seed).expect_err("legacy");
        let msg = errs[0].to_string();
        assert!(matches!(errs[0], FileError::Legacy { .. }));
        assert!(msg.contains(r#""allow":["openclaw","python3"]"#), "{msg}");
        assert!(msg.contains(r#""rm -rf **""#), "{msg}");
        // Version 2 with a regex-looking rule is still the old format.
        let v2 = r#"{"version": 2, "allow": ["^ls$"]}"#;
        assert!(matches!(
            CommandPolicy::parse(Path::new("c"), v2).expect_err("regex")[0],
            FileError::Legacy { .. }
        ));
    }

    #[test]
    fn env_can_only_tighten() {
        let mut b = BrokerConfig::default();
        b.tighten_from_env(&|k| (k.starts_with("OPENCLAW_REQUIRE")).then(|| "0".to_string()));
        assert!(!b.require_policy_files && !b.session.require_session_id);
        b.tighten_from_env(&|_| Some("1".to_string()));
        assert!(b.require_policy_files && b.session.require_session_id);
        b.tighten_from_env(&|_| Some("0".to_string()));
        assert!(
            b.require_policy_files && b.session.require_session_id,
            "never loosened"
        );
    }

    #[test]
    fn one_file_loaders_check_before_reading_like_load() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().expect("tempdir");
        let uid = nix::unistd::geteuid().as_raw();
        let at = |name: &str, text: &str, mode: u32| {
            let p = d.path().join(name);
            std::fs::write(&p, text).expect("write");
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).expect("chmod");
            p
        };
        let b = d.path().join(BROKER_CONFIG);
        assert_eq!(BrokerConfig::load(&b, uid), Ok(None), "absent");
        let b = at(BROKER_CONFIG, "{}", 0o600);
        assert_eq!(
            BrokerConfig::load(&b, uid),
            Ok(Some(BrokerConfig::default()))
        );
        let b = at(BROKER_CONFIG, "{}", 0o666);
        assert!(matches!(
            BrokerConfig::load(&b, uid),
            Err(FileError::Unsafe { .. })
        ));
        let c = at(
            COMMAND_POLICY,
            r#"{"version": 2, "allow": ["ls", "tail 'x"]}"#,
            0o600,
        );
        let errs = CommandPolicy::load(&c, uid).expect_err("a bad rule");
        assert!(matches!(errs[..], [FileError::Invalid { .. }]), "{errs:?}");
        let c = at(COMMAND_POLICY, r#"{"version": 2, "allow": ["ls"]}"#, 0o660);
        let errs = CommandPolicy::load(&c, uid).expect_err("group-writable");
        assert!(matches!(errs[..], [FileError::Unsafe { .. }]), "{errs:?}");
        let p = at(PROMPT_POLICY, "", 0o600);
        assert!(matches!(
            PromptPolicy::load(&p, uid),
            Err(FileError::Invalid { .. })
        ));
        let p = at(
            PROMPT_POLICY,
            r#"{"require_confirmation_for_untrusted": false}"#,
            0o644,
        );
        let loaded = PromptPolicy::load(&p, uid)
            .expect("0644 is safe")
            .expect("present");
        assert!(!loaded.require_confirmation_for_untrusted);
    }

    #[test]
    fn versioned_code_runner_names() {
        let cr = CodeRunners::builtin();
        for (name, want) in [
            ("python3.11", true),
            ("python3", true),
            ("perl5.36.0", true),
            ("bash", true),
            ("env", true),
            ("ls", false),
            ("systemctl", false),
            ("pythonista", false),
            ("3", false),
        ] {
            assert_eq!(cr.lists(name), want, "{name}");
        }
    }
}
