//! Putting `$OCC_HOME/bin` first in every OpenClaw agent's PATH through the one route that
//! holds: `tools.exec.pathPrepend`, and every `agents.entries.<id>.tools.exec.pathPrepend`
//! (an agent's own list replaces the global one). OpenClaw applies these inside the exec
//! command, after the login shell's PATH is merged, so nothing in the gateway's environment
//! can win over them (a systemd drop-in for the gateway cannot: the login shell's PATH goes
//! before the gateway's). Values are always read through the `openclaw` CLI, so profiles,
//! `OPENCLAW_CONFIG_PATH` and `$include` count; this module never guesses them from a file
//! or from occ's manifest.

use std::path::Path;
use std::time::Duration;

use occ_policy::openclaw::{self as oc, AgentPath};
use serde_json::Value;

use crate::install::tool;
use crate::install::unit;

/// How long one `openclaw config` call may take (the CLI loads its whole config and plugins).
const CLI_LIMIT: Duration = Duration::from_secs(90);

/// `openclaw config get KEY --json`: `Ok(None)` when the key is unset, `Err` when the CLI
/// fails for another reason (a broken config must not read as "unset").
pub fn openclaw_get(cli: &Path, key: &str) -> Result<Option<Value>, String> {
    let ran = tool::run(cli, &["config", "get", key, "--json"], CLI_LIMIT)?;
    oc::parse_config_get(key, ran.ok(), &ran.stdout, &ran.stderr)
}

/// `openclaw config set KEY JSON --strict-json`.
pub fn openclaw_set(cli: &Path, key: &str, value: &Value) -> Result<(), String> {
    let json = value.to_string();
    let ran = tool::run(
        cli,
        &["config", "set", key, &json, "--strict-json"],
        CLI_LIMIT,
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
pub fn openclaw_unset(cli: &Path, key: &str) -> Result<(), String> {
    let ran = tool::run(cli, &["config", "unset", key], CLI_LIMIT)?;
    if ran.ok() {
        Ok(())
    } else {
        Err(format!(
            "`openclaw config unset {key}` failed ({})",
            ran.why()
        ))
    }
}

/// OpenClaw's exec settings as its CLI resolves them, agent by agent.
#[derive(Debug, Clone)]
pub struct ExecView {
    /// Each agent's effective pathPrepend (the global list first).
    pub paths: Vec<AgentPath>,
    /// Each agent's exec mode, the global settings first.
    pub modes: Vec<oc::ExecMode>,
    /// The `plugins` section (`None` when unset), to judge whether occ's plugin loads.
    pub plugins: Option<Value>,
}

/// Reads `tools.exec.pathPrepend`, `tools.exec` (its mode, or its security and ask),
/// `agents.entries` and `plugins` through the CLI.
pub fn read_exec(cli: &Path) -> Result<ExecView, String> {
    let global = openclaw_get(cli, oc::PATH_KEY)?;
    let entries = openclaw_get(cli, oc::AGENTS_KEY)?;
    let mode = openclaw_get(cli, oc::EXEC_KEY)?;
    let plugins = openclaw_get(cli, oc::PLUGINS_KEY)?;
    Ok(ExecView {
        paths: oc::effective(global.as_ref(), entries.as_ref()),
        modes: oc::modes(mode.as_ref(), entries.as_ref()),
        plugins,
    })
}

/// Every agent's effective pathPrepend as OpenClaw resolves its config.
pub fn agent_paths(cli: &Path) -> Result<Vec<AgentPath>, String> {
    let global = openclaw_get(cli, oc::PATH_KEY)?;
    let entries = openclaw_get(cli, oc::AGENTS_KEY)?;
    Ok(oc::effective(global.as_ref(), entries.as_ref()))
}

/// The exact command that puts `bin` first in `a`'s list, keeping its entries after it.
pub fn fix_command(bin: &Path, a: &AgentPath) -> String {
    let value = oc::with_first(
        &bin.display().to_string(),
        Some(&Value::Array(
            a.dirs.iter().cloned().map(Value::String).collect(),
        )),
    );
    format!("openclaw config set {} '{value}' --strict-json", a.key)
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
