//! Asking the `openclaw` CLI, through occ-scan's one runner (a deadline, the process group
//! killed whole): `config file`, `config get KEY --json`, `security audit --json` and the
//! backup record in `status --json`. Every run gets the instance's variables, so the CLI
//! resolves the same config occ-scan judges. Nothing here writes: these commands only read.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use super::backups::{self, Record};
use super::instance::Instance;
use super::security_audit::{self, SecurityAudit};
use crate::exec;

/// `openclaw config get` and `config file` load the config and its plugins: seconds.
pub const CONFIG_TIMEOUT: Duration = Duration::from_secs(60);
/// `openclaw security audit` reads the config, state and file permissions: about ten seconds.
pub const AUDIT_TIMEOUT: Duration = Duration::from_secs(120);
/// `openclaw status --json`, with its own gateway probe bounded by [`STATUS_PROBE_MS`].
pub const STATUS_TIMEOUT: Duration = Duration::from_secs(60);
/// The `--timeout` (ms) `openclaw status` gets for its gateway probe (loopback only).
pub const STATUS_PROBE_MS: &str = "3000";

/// The CLI at `path`, run for `instance`.
#[derive(Debug, Clone, Copy)]
pub struct Cli<'a> {
    /// The `openclaw` executable.
    pub path: &'a Path,
    /// The instance it is asked about.
    pub instance: &'a Instance,
}

/// The config as the CLI resolves it: its path, and the values occ-scan judges.
#[derive(Debug, Clone, PartialEq)]
pub struct CliConfig {
    /// `openclaw config file`.
    pub file: PathBuf,
    /// `openclaw config get channels --json` (`None`: unset).
    pub channels: Option<Value>,
    /// `openclaw config get gateway --json` (`None`: unset).
    pub gateway: Option<Value>,
}

impl Cli<'_> {
    fn run(&self, args: &[&str], limit: Duration) -> Result<exec::ChildOutput, String> {
        let mut c = Command::new(self.path);
        c.args(args);
        for (k, v) in &self.instance.cli_env {
            c.env(k, v);
        }
        let o = exec::run(c, None, limit).map_err(|e| e.to_string())?;
        if o.timed_out {
            return Err(format!(
                "`openclaw {}` did not finish within {limit:?}",
                args.join(" ")
            ));
        }
        Ok(o)
    }

    /// `openclaw config get KEY --json`: `Ok(None)` when unset.
    pub fn get(&self, key: &str) -> Result<Option<Value>, String> {
        let o = self.run(&["config", "get", key, "--json"], CONFIG_TIMEOUT)?;
        occ_policy::openclaw::parse_config_get(
            key,
            o.success(),
            &String::from_utf8_lossy(&o.stdout),
            &o.stderr_text(),
        )
    }

    /// `openclaw config file --json`: the active config file.
    pub fn config_file(&self) -> Result<PathBuf, String> {
        let o = self.run(&["config", "file", "--json"], CONFIG_TIMEOUT)?;
        let out = String::from_utf8_lossy(&o.stdout);
        if !o.success() {
            return Err(format!(
                "`openclaw config file` exited {:?}: {}",
                o.code,
                first_line(&o.stderr_text(), &out)
            ));
        }
        parse_config_file(&out)
    }

    /// The config file and the values occ-scan judges, as the CLI resolves them.
    pub fn config(&self) -> Result<CliConfig, String> {
        Ok(CliConfig {
            file: self.config_file()?,
            channels: self.get("channels")?,
            gateway: self.get("gateway")?,
        })
    }

    /// `openclaw security audit --json` (the cold, offline audit: no `--deep` probes).
    pub fn security_audit(&self) -> Result<SecurityAudit, String> {
        let o = self.run(&["security", "audit", "--json"], AUDIT_TIMEOUT)?;
        let out = String::from_utf8_lossy(&o.stdout);
        if !o.success() {
            return Err(format!(
                "`openclaw security audit --json` exited {:?}: {}",
                o.code,
                first_line(&o.stderr_text(), &out)
            ));
        }
        security_audit::parse(&out)
    }

    /// The backup record in `openclaw status --json`.
    pub fn backups(&self) -> Result<Record, String> {
        let o = self.run(
            &["status", "--json", "--timeout", STATUS_PROBE_MS],
            STATUS_TIMEOUT,
        )?;
        let out = String::from_utf8_lossy(&o.stdout);
        if !o.success() {
            return Err(format!(
                "`openclaw status --json` exited {:?}: {}",
                o.code,
                first_line(&o.stderr_text(), &out)
            ));
        }
        backups::parse_status(&out)
    }
}

fn first_line(stderr: &str, stdout: &str) -> String {
    let e = stderr.trim();
    let t = if e.is_empty() { stdout.trim() } else { e };
    t.lines().next().unwrap_or("no message").to_string()
}

/// What `openclaw config file --json` printed: `{"path": "/…/openclaw.json"}`.
pub fn parse_config_file(stdout: &str) -> Result<PathBuf, String> {
    let v: Value = serde_json::from_str(stdout.trim()).map_err(|e| {
        format!(
            "`openclaw config file --json` printed something that is not JSON ({e}): {}",
            stdout.trim().lines().next().unwrap_or("")
        )
    })?;
    match v.get("path").and_then(Value::as_str) {
        Some(p) if Path::new(p).is_absolute() => Ok(PathBuf::from(p)),
        _ => Err(format!(
            "`openclaw config file --json` printed no absolute path: {v}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_file_as_openclaw_prints_it() {
        assert_eq!(
            parse_config_file("{\n  \"path\": \"/tmp/h/.openclaw/openclaw.json\"\n}\n").unwrap(),
            Path::new("/tmp/h/.openclaw/openclaw.json")
        );
        assert!(parse_config_file("/tmp/h/.openclaw/openclaw.json").is_err());
        assert!(parse_config_file(r#"{"path": "openclaw.json"}"#).is_err());
    }
}
