//! Strict readers for the files the checks judge: broker.json, command-policy.json,
//! prompt-policy.json, the monitoring files, the install manifest, the legacy env file and
//! OpenClaw's JSON5 openclaw.json. Readers only parse; the checks decide what a value means.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

use super::ComplianceError;

/// Reads a file; `Ok(None)` when it does not exist.
pub fn read_optional(path: &Path) -> Result<Option<String>, ComplianceError> {
    match std::fs::read(path) {
        Ok(b) => String::from_utf8(b).map(Some).map_err(|_| {
            ComplianceError::invalid(path, "(file)", "not UTF-8", "save the file as UTF-8")
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(ComplianceError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

fn json_err(path: &Path, e: &serde_json::Error, fix: &str) -> ComplianceError {
    // serde's messages name the unknown or missing field; keep them.
    ComplianceError::invalid(
        path,
        &format!("line {} column {}", e.line(), e.column()),
        e.to_string(),
        fix,
    )
}

/// The default approval stack from DESIGN.md.
pub const DEFAULT_STACK: &[&str] = &[
    "files:requisite",
    "policy:requisite",
    "session:requisite",
    "untrusted:required",
    "grant:sufficient",
    "approve:required",
    "token:required",
];

/// `security/broker.json`; every key optional, unknown keys refused.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BrokerConfig {
    /// Schema version.
    pub version: Option<u32>,
    /// PATH used to resolve commands.
    pub secure_path: Option<String>,
    /// The real sudo.
    pub real_sudo: Option<String>,
    /// Whether policy files must exist.
    pub require_policy_files: Option<bool>,
    /// Whether -s/-i are allowed.
    pub allow_shells: Option<bool>,
    /// Names -E may preserve.
    pub allow_preserve_env: Option<Vec<String>>,
    /// Environment kept.
    pub env_keep: Option<Vec<String>>,
    /// Approval settings.
    #[serde(default)]
    pub approval: ApprovalConfig,
    /// Session settings.
    #[serde(default)]
    pub session: SessionConfig,
    /// Audit settings.
    #[serde(default)]
    pub audit: AuditConfig,
    /// System-mode requesters.
    pub requesters: Option<Vec<String>>,
    /// System-mode approvers.
    pub approvers: Option<Vec<String>>,
}

/// `approval` in broker.json.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalConfig {
    /// Channels: queue, tty.
    pub channels: Option<Vec<String>>,
    /// Seconds the shim waits.
    pub wait_seconds: Option<u64>,
    /// Minutes until a pending request expires.
    pub pending_expiry_minutes: Option<u64>,
    /// SHA-256 of the approver token.
    pub token_sha256: Option<String>,
    /// The PAM-style stack.
    pub stack: Option<Vec<String>>,
}

impl ApprovalConfig {
    /// The effective stack (the default when unset).
    pub fn effective_stack(&self) -> Vec<String> {
        self.stack
            .clone()
            .unwrap_or_else(|| DEFAULT_STACK.iter().map(|s| s.to_string()).collect())
    }
}

/// `session` in broker.json.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionConfig {
    /// Whether requests need a task session id.
    pub require_session_id: Option<bool>,
    /// Idle minutes before a session grant ends.
    pub idle_timeout_minutes: Option<u64>,
}

/// `audit` in broker.json.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    /// `always` or `batch`.
    pub fsync: Option<String>,
    /// Whether events are sealed.
    pub seal: Option<bool>,
}

/// Reads broker.json: `Ok(None)` when absent.
pub fn broker_config(path: &Path) -> Result<Option<BrokerConfig>, ComplianceError> {
    let Some(text) = read_optional(path)? else {
        return Ok(None);
    };
    serde_json::from_str(&text).map(Some).map_err(|e| {
        json_err(
            path,
            &e,
            "use only the keys and types in DESIGN.md's broker.json schema",
        )
    })
}

/// `security/command-policy.json`, version 2.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandPolicy {
    /// Must be 2.
    pub version: Option<u32>,
    /// Glob rules that may be requested.
    #[serde(default)]
    pub allow: Vec<String>,
    /// Glob rules always refused.
    #[serde(default)]
    pub deny: Vec<String>,
    /// Exact argv allowed.
    #[serde(default)]
    pub allow_exact: Vec<Vec<String>>,
    /// Exact argv refused.
    #[serde(default)]
    pub deny_exact: Vec<Vec<String>>,
}

/// Reads command-policy.json strictly: version 2 and no regex-style (legacy) rules.
pub fn command_policy(path: &Path) -> Result<Option<CommandPolicy>, ComplianceError> {
    let Some(text) = read_optional(path)? else {
        return Ok(None);
    };
    let p: CommandPolicy = serde_json::from_str(&text).map_err(|e| {
        json_err(
            path,
            &e,
            "write {\"version\": 2, \"allow\": [...], \"deny\": [...]} with glob rules",
        )
    })?;
    if p.version != Some(2) {
        return Err(ComplianceError::invalid(
            path,
            "version",
            format!(
                "is {}, the original tool's regex format",
                p.version.map_or("missing".into(), |v| v.to_string())
            ),
            "add \"version\": 2 and write rules as globs, e.g. \"/usr/bin/systemctl restart *\"",
        ));
    }
    for (key, rules) in [("allow", &p.allow), ("deny", &p.deny)] {
        for (i, r) in rules.iter().enumerate() {
            if ["^", "\\b", "\\s", "$"].iter().any(|m| r.contains(m)) {
                return Err(ComplianceError::invalid(
                    path,
                    &format!("{key}[{i}]"),
                    format!("{r:?} looks like a regex (the original tool's format)"),
                    "write a glob rule such as \"/usr/bin/apt-get install *\"",
                ));
            }
            if r.trim().is_empty() {
                return Err(ComplianceError::invalid(
                    path,
                    &format!("{key}[{i}]"),
                    "empty rule",
                    "remove it",
                ));
            }
        }
    }
    Ok(Some(p))
}

/// `security/prompt-policy.json`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromptPolicy {
    /// Whether untrusted-source requests need `--confirm-untrusted`.
    pub require_confirmation_for_untrusted: bool,
}

/// Reads prompt-policy.json strictly.
pub fn prompt_policy(path: &Path) -> Result<Option<PromptPolicy>, ComplianceError> {
    let Some(text) = read_optional(path)? else {
        return Ok(None);
    };
    serde_json::from_str(&text).map(Some).map_err(|e| {
        json_err(
            path,
            &e,
            "write {\"require_confirmation_for_untrusted\": true}",
        )
    })
}

/// One egress allowlist rule (issue 6 item 1 keys).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EgressRule {
    /// tcp or udp.
    pub protocol: Option<String>,
    /// Remote port.
    pub port: Option<Value>,
    /// Process name.
    pub command: Option<String>,
    /// Executable path.
    pub exe: Option<String>,
    /// Remote host name or address.
    pub host: Option<String>,
    /// Anchored regex on the host name.
    pub host_regex: Option<String>,
    /// Remote network.
    pub cidr: Option<String>,
}

impl EgressRule {
    /// Whether the rule allows any destination.
    pub fn any_destination(&self) -> bool {
        let has = |o: &Option<String>| o.as_deref().is_some_and(|s| !s.trim().is_empty());
        let wild_cidr = self
            .cidr
            .as_deref()
            .is_some_and(|c| matches!(c.trim(), "0.0.0.0/0" | "::/0"));
        wild_cidr || !(has(&self.host) || has(&self.host_regex) || has(&self.cidr))
    }
}

/// Reads egress_allowlist.json: a JSON array of rule objects.
pub fn egress_allowlist(path: &Path) -> Result<Option<Vec<EgressRule>>, ComplianceError> {
    let Some(text) = read_optional(path)? else {
        return Ok(None);
    };
    let v: Value = serde_json::from_str(&text)
        .map_err(|e| json_err(path, &e, "make it a JSON array of rule objects"))?;
    let Value::Array(items) = v else {
        return Err(ComplianceError::invalid(
            path,
            "(top level)",
            "is not an array",
            "make it a JSON array of rule objects",
        ));
    };
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            serde_json::from_value(item).map_err(|e| {
                ComplianceError::invalid(
                    path,
                    &format!("[{i}]"),
                    e.to_string(),
                    "use only protocol, port, command, exe, host, host_regex and cidr",
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// One approved-port rule (issue 6 item 1 keys).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // fields are parsed to enforce the schema; matching lives in the port scan
pub struct PortRule {
    port: Value,
    protocol: Option<String>,
    command: Option<String>,
    host: Option<String>,
    user: Option<Value>,
    pid: Option<Value>,
    comment: Option<String>,
    bind: Option<String>,
    exe: Option<String>,
}

/// Reads approved_ports.json: a JSON array of rule objects with a `port`.
pub fn approved_ports(path: &Path) -> Result<Option<usize>, ComplianceError> {
    let Some(text) = read_optional(path)? else {
        return Ok(None);
    };
    let v: Value = serde_json::from_str(&text)
        .map_err(|e| json_err(path, &e, "make it a JSON array of rule objects"))?;
    let Value::Array(items) = v else {
        return Err(ComplianceError::invalid(
            path,
            "(top level)",
            "is not an array",
            "make it a JSON array; `occ-scan baseline` writes one",
        ));
    };
    for (i, item) in items.iter().enumerate() {
        let _: PortRule = serde_json::from_value(item.clone()).map_err(|e| {
            ComplianceError::invalid(
                path,
                &format!("[{i}]"),
                e.to_string(),
                "use only port, protocol, command, host, user, pid, comment, bind and exe",
            )
        })?;
    }
    Ok(Some(items.len()))
}

/// What install-manifest.json says about binaries: path → sha256.
pub fn manifest_digests(path: &Path) -> Result<Option<BTreeMap<PathBuf, String>>, ComplianceError> {
    let Some(text) = read_optional(path)? else {
        return Ok(None);
    };
    let v: Value = serde_json::from_str(&text)
        .map_err(|e| json_err(path, &e, "reinstall occ to rewrite the manifest"))?;
    let mut out = BTreeMap::new();
    collect_digests(&v, &mut out);
    Ok(Some(out))
}

fn collect_digests(v: &Value, out: &mut BTreeMap<PathBuf, String>) {
    match v {
        Value::Object(m) => {
            if let (Some(Value::String(p)), Some(Value::String(h))) =
                (m.get("path"), m.get("sha256"))
            {
                out.insert(PathBuf::from(p), h.to_ascii_lowercase());
            }
            for (k, val) in m {
                // A map form {"/path": "hex"} also counts.
                if let Value::String(h) = val {
                    if k.starts_with('/')
                        && h.len() == 64
                        && h.bytes().all(|b| b.is_ascii_hexdigit())
                    {
                        out.insert(PathBuf::from(k), h.to_ascii_lowercase());
                    }
                }
                collect_digests(val, out);
            }
        }
        Value::Array(a) => a.iter().for_each(|x| collect_digests(x, out)),
        _ => {}
    }
}

/// The legacy `$OCC_HOME/env` file: `KEY=VALUE` lines, `export ` prefix and quotes allowed.
pub fn env_file(path: &Path) -> Result<Option<BTreeMap<String, String>>, ComplianceError> {
    let Some(text) = read_optional(path)? else {
        return Ok(None);
    };
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let v = v.trim();
        let v = v
            .strip_prefix('"')
            .and_then(|x| x.strip_suffix('"'))
            .or_else(|| v.strip_prefix('\'').and_then(|x| x.strip_suffix('\'')))
            .unwrap_or(v);
        out.insert(k.trim().to_string(), v.to_string());
    }
    Ok(Some(out))
}

/// OpenClaw's openclaw.json, parsed as JSON5 (comments, trailing commas, unquoted keys).
pub fn openclaw_config(path: &Path) -> Result<Option<Value>, ComplianceError> {
    let Some(text) = read_optional(path)? else {
        return Ok(None);
    };
    json5::from_str::<Value>(&text).map(Some).map_err(|e| {
        ComplianceError::invalid(
            path,
            "(JSON5)",
            e.to_string(),
            "fix the syntax; `openclaw doctor` shows where",
        )
    })
}

/// Shells, interpreters and wrappers that run arbitrary code, by real file name. Versioned
/// names (`python3.11`, `perl5.36`) are reduced to their stem before lookup.
pub const CODE_RUNNERS: &[&str] = &[
    "sh",
    "bash",
    "dash",
    "zsh",
    "ksh",
    "mksh",
    "pdksh",
    "oksh",
    "yash",
    "fish",
    "csh",
    "tcsh",
    "rbash",
    "ash",
    "busybox",
    "toybox",
    "python",
    "pypy",
    "perl",
    "ruby",
    "irb",
    "node",
    "nodejs",
    "deno",
    "bun",
    "php",
    "lua",
    "luajit",
    "tclsh",
    "wish",
    "expect",
    "awk",
    "gawk",
    "mawk",
    "nawk",
    "busybox-static",
    "pwsh",
    "powershell",
    "osascript",
    "env",
    "sudo",
    "su",
    "doas",
    "pkexec",
    "run0",
    "xargs",
    "nice",
    "nohup",
    "timeout",
    "stdbuf",
    "setsid",
    "flock",
    "time",
    "script",
    "find",
    "vim",
    "vi",
    "nvim",
    "emacs",
    "less",
    "more",
    "man",
    "git",
    "tar",
    "rsync",
    "ssh",
    "systemd-run",
    "nsenter",
    "unshare",
    "chroot",
    "gdb",
    "strace",
    "java",
    "jshell",
    "julia",
    "r",
    "rscript",
    "guile",
    "racket",
    "scheme",
    "sbcl",
    "erl",
    "escript",
    "elixir",
    "ghci",
    "runghc",
    "swift",
    "dotnet",
    "make",
    "ed",
    "sed",
    "m4",
    "socat",
    "nc",
    "ncat",
];

/// Whether a real file name is a shell, interpreter or code-running wrapper.
pub fn is_code_runner(file_name: &str) -> bool {
    let lower = file_name.to_ascii_lowercase();
    let stem = lower.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.' || c == '-');
    let stem = if stem.is_empty() {
        lower.as_str()
    } else {
        stem
    };
    CODE_RUNNERS.contains(&lower.as_str()) || CODE_RUNNERS.contains(&stem)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_runner_names() {
        for n in [
            "bash",
            "python3.11",
            "python3",
            "perl5.36",
            "awk",
            "busybox",
            "node18",
        ] {
            assert!(is_code_runner(n), "{n}");
        }
        for n in ["logger", "notify-send", "curl", "mail"] {
            assert!(!is_code_runner(n), "{n}");
        }
    }

    #[test]
    fn manifest_forms() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("m.json");
        let h = "a".repeat(64);
        std::fs::write(
            &p,
            format!(r#"{{"files":[{{"path":"/x/bin/sudo","sha256":"{h}"}}],"m":{{"/y":"{h}"}}}}"#),
        )
        .unwrap();
        let m = manifest_digests(&p).unwrap().unwrap();
        assert_eq!(m.len(), 2);
    }
}
