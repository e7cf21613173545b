//! Putting `$OCC_HOME/bin` first in the agent's PATH: OpenClaw's supported route
//! (`tools.exec.pathPrepend`), a drop-in for the gateway's systemd user unit, or — when
//! neither exists — the exact line for the admin to add. It also answers "which PATH will the
//! agent use?" for the checks. It must never guess a PATH for a unit: it reads the unit's
//! effective environment, because `Environment=` does not expand `$PATH`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use crate::install::tool;
use crate::install::unit;

/// OpenClaw's config key for directories put before PATH in exec runs.
pub const PATH_KEY: &str = "tools.exec.pathPrepend";

/// `openclaw config get KEY`: `None` when unset (the CLI exits non-zero or prints nothing).
pub fn openclaw_get(oc: &Path, key: &str) -> Option<Value> {
    let ran = tool::run(oc, &["config", "get", key], Duration::from_secs(60)).ok()?;
    let out = ran.stdout.trim();
    if !ran.ok() || out.is_empty() || out == "undefined" {
        return None;
    }
    Some(serde_json::from_str(out).unwrap_or_else(|_| Value::String(out.to_string())))
}

/// `openclaw config set KEY JSON --strict-json`.
pub fn openclaw_set(oc: &Path, key: &str, value: &Value) -> Result<(), String> {
    let json = value.to_string();
    let ran = tool::run(
        oc,
        &["config", "set", key, &json, "--strict-json"],
        Duration::from_secs(60),
    )?;
    if ran.ok() {
        Ok(())
    } else {
        Err(format!(
            "`openclaw config set {key} '{json}' --strict-json` failed ({})",
            ran.why()
        ))
    }
}

/// `openclaw config unset KEY`.
pub fn openclaw_unset(oc: &Path, key: &str) -> Result<(), String> {
    let ran = tool::run(oc, &["config", "unset", key], Duration::from_secs(60))?;
    if ran.ok() {
        Ok(())
    } else {
        Err(format!(
            "`openclaw config unset {key}` failed ({})",
            ran.why()
        ))
    }
}

/// `bin` first, then whatever the list held before (without `bin`).
pub fn prepend_value(bin: &Path, previous: Option<&Value>) -> Value {
    let b = bin.display().to_string();
    let mut list = vec![Value::String(b.clone())];
    if let Some(Value::Array(items)) = previous {
        list.extend(items.iter().filter(|v| v.as_str() != Some(&b)).cloned());
    }
    Value::Array(list)
}

/// Whether the gateway's user unit exists.
pub fn gateway_loaded(sc: &Path) -> bool {
    tool::run(
        sc,
        &["--user", "show", unit::GATEWAY_UNIT, "-p", "LoadState"],
        Duration::from_secs(10),
    )
    .map(|r| r.ok() && r.stdout.trim() == "LoadState=loaded")
    .unwrap_or(false)
}

/// The gateway's effective PATH: its unit's `Environment=`, else the user manager's
/// environment, else the secure default.
pub fn gateway_path(sc: &Path) -> String {
    let unit_env = tool::run(
        sc,
        &["--user", "show", unit::GATEWAY_UNIT, "-p", "Environment"],
        Duration::from_secs(10),
    )
    .ok()
    .filter(tool::Ran::ok)
    .and_then(|r| unit::path_of(&unit::parse_environment(&r.stdout)));
    unit_env
        .or_else(|| {
            tool::run(sc, &["--user", "show-environment"], Duration::from_secs(10))
                .ok()
                .filter(tool::Ran::ok)
                .and_then(|r| {
                    r.stdout
                        .lines()
                        .find_map(|l| l.strip_prefix("PATH=").map(str::to_string))
                })
        })
        .unwrap_or_else(|| occ_policy::file::DEFAULT_SECURE_PATH.to_string())
}

/// The gateway drop-in's path.
pub fn drop_in_file() -> PathBuf {
    unit::user_unit_dir()
        .join(format!("{}.d", unit::GATEWAY_UNIT))
        .join(unit::DROP_IN)
}

/// A shell line that puts `bin` first, quoted for sh.
pub fn manual_line(bin: &Path) -> String {
    let mut q = String::new();
    for c in bin.display().to_string().chars() {
        if matches!(c, '"' | '\\' | '$' | '`') {
            q.push('\\');
        }
        q.push(c);
    }
    format!("export PATH=\"{q}:$PATH\"")
}

/// The PATH the agent will use, and where it comes from: the gateway drop-in, else OpenClaw's
/// pathPrepend before this process's PATH, else this process's PATH.
pub fn agent_path(prepend: Option<&Value>) -> (String, String) {
    let current = std::env::var("PATH").unwrap_or_default();
    let drop_in = drop_in_file();
    if let Some(p) = std::fs::read_to_string(&drop_in)
        .ok()
        .and_then(|t| unit::drop_in_path(&t))
    {
        return (p, format!("the gateway drop-in {}", drop_in.display()));
    }
    if let Some(Value::Array(items)) = prepend {
        let dirs: Vec<&str> = items.iter().filter_map(Value::as_str).collect();
        if !dirs.is_empty() {
            return (
                format!("{}:{current}", dirs.join(":")),
                format!("OpenClaw's {PATH_KEY} before this shell's PATH"),
            );
        }
    }
    (current, "this shell's PATH".into())
}
