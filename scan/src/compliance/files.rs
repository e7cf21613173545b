//! Strict readers for the files the checks judge: the policy files (through occ-policy, exactly
//! as the broker loads them), the monitoring files, the install manifest and the legacy env
//! file (OpenClaw's openclaw.json is read in `openclaw::config`). Readers only parse; the checks
//! decide what a value means.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use occ_policy::file::{BROKER_CONFIG, COMMAND_POLICY, PROMPT_POLICY};
use occ_policy::{BrokerConfig, CommandPolicy, FileError, PromptPolicy};
use serde::Deserialize;
use serde_json::Value;

use crate::error::ScanError;
use crate::paths::Paths;

/// Reads a file; `Ok(None)` when it does not exist.
pub fn read_optional(path: &Path) -> Result<Option<String>, ScanError> {
    match std::fs::read(path) {
        Ok(b) => String::from_utf8(b)
            .map(Some)
            .map_err(|_| ScanError::invalid(path, "(file)", "not UTF-8", "save the file as UTF-8")),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(ScanError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

fn json_err(path: &Path, e: &serde_json::Error, fix: &str) -> ScanError {
    // serde's messages name the unknown or missing field; keep them.
    ScanError::invalid(
        path,
        &format!("line {} column {}", e.line(), e.column()),
        e.to_string(),
        fix,
    )
}

/// A policy file as the broker loads it: absent, loaded, or every problem occ-policy names.
pub type PolicyFile<T> = Result<Option<T>, Vec<FileError>>;

/// `broker.json`, `command-policy.json` and `prompt-policy.json`, each loaded through
/// occ-policy (the broker's own schema, and its owner, mode and symlink checks on the open
/// file) as the broker for this home reads them. occ-scan keeps no schema of its own for them.
#[derive(Debug, Clone)]
pub struct PolicyFiles {
    /// `security/broker.json`.
    pub broker: PolicyFile<BrokerConfig>,
    /// `security/command-policy.json`.
    pub command: PolicyFile<CommandPolicy>,
    /// `security/prompt-policy.json`.
    pub prompt: PolicyFile<PromptPolicy>,
}

impl PolicyFiles {
    /// Loads the three files as `reader_uid` (see [`Paths::reader_uid`]).
    pub fn load(paths: &Paths, reader_uid: u32) -> PolicyFiles {
        let file = |name: &str| paths.security_file(name);
        PolicyFiles {
            broker: BrokerConfig::load(&file(BROKER_CONFIG), reader_uid).map_err(|e| vec![e]),
            command: CommandPolicy::load(&file(COMMAND_POLICY), reader_uid),
            prompt: PromptPolicy::load(&file(PROMPT_POLICY), reader_uid).map_err(|e| vec![e]),
        }
    }

    /// Every problem, file by file, as the broker would report it.
    pub fn problems(&self) -> Vec<&FileError> {
        fn errs<T>(f: &PolicyFile<T>) -> &[FileError] {
            f.as_ref().err().map_or(&[], Vec::as_slice)
        }
        errs(&self.broker)
            .iter()
            .chain(errs(&self.command))
            .chain(errs(&self.prompt))
            .collect()
    }
}

/// Whether every problem is only that the file could not be read: the evidence is missing,
/// not bad.
pub fn unreadable(errs: &[FileError]) -> bool {
    errs.iter().all(|e| matches!(e, FileError::Io { .. }))
}

/// The problems as one line.
pub fn describe(errs: &[FileError]) -> String {
    errs.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" | ")
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
pub fn egress_allowlist(path: &Path) -> Result<Option<Vec<EgressRule>>, ScanError> {
    let Some(text) = read_optional(path)? else {
        return Ok(None);
    };
    let v: Value = serde_json::from_str(&text)
        .map_err(|e| json_err(path, &e, "make it a JSON array of rule objects"))?;
    let Value::Array(items) = v else {
        return Err(ScanError::invalid(
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
                ScanError::invalid(
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
pub fn approved_ports(path: &Path) -> Result<Option<usize>, ScanError> {
    let Some(text) = read_optional(path)? else {
        return Ok(None);
    };
    let v: Value = serde_json::from_str(&text)
        .map_err(|e| json_err(path, &e, "make it a JSON array of rule objects"))?;
    let Value::Array(items) = v else {
        return Err(ScanError::invalid(
            path,
            "(top level)",
            "is not an array",
            "make it a JSON array; `occ-scan baseline` writes one",
        ));
    };
    for (i, item) in items.iter().enumerate() {
        let _: PortRule = serde_json::from_value(item.clone()).map_err(|e| {
            ScanError::invalid(
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
pub fn manifest_digests(path: &Path) -> Result<Option<BTreeMap<PathBuf, String>>, ScanError> {
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
pub fn env_file(path: &Path) -> Result<Option<BTreeMap<String, String>>, ScanError> {
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

/// Whether a real file name is a shell, interpreter or code-running wrapper: the catalogue's
/// reviewed lists (`occ_policy::CodeRunners::is_shell_or_interpreter`), the one list the
/// broker's notifier rule uses too.
pub fn is_code_runner(file_name: &str) -> bool {
    occ_policy::CodeRunners::builtin().is_shell_or_interpreter(file_name)
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
