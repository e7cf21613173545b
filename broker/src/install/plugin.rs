//! occ's OpenClaw plugin, `occ-exec-env` (its source: `integrations/openclaw/occ-exec-env`,
//! built into this binary). OpenClaw's exec sets no per-session id; the plugin's one hook,
//! `resolve_exec_env`, gives each exec command `OPENCLAW_TASK_SESSION_ID` (the session id),
//! `OPENCLAW_SESSION_KEY`, `OPENCLAW_AGENT_ID` and `OPENCLAW_MESSAGE_CHANNEL`. `occ install`
//! writes it under `$OCC_HOME/share/openclaw-plugin/` as the agent, lists it in
//! `plugins.load.paths`, enables it (`plugins.entries.occ-exec-env.enabled`) and, when
//! `plugins.allow` is in force, allows it; each change is one manifest record, so
//! `occ uninstall` takes out exactly occ's entries. The gateway applies all of it without a
//! restart.

use std::path::{Path, PathBuf};

use occ_policy::openclaw as oc;
use serde_json::Value;

use crate::install::manifest::{FileKind, PathInjection};
use crate::install::pathinj;
use crate::install::setup::{record_openclaw_list, Ctx};

/// The plugin's files, as shipped.
pub const FILES: [(&str, &str); 3] = [
    (
        "package.json",
        include_str!("../../../integrations/openclaw/occ-exec-env/package.json"),
    ),
    (
        "openclaw.plugin.json",
        include_str!("../../../integrations/openclaw/occ-exec-env/openclaw.plugin.json"),
    ),
    (
        "index.js",
        include_str!("../../../integrations/openclaw/occ-exec-env/index.js"),
    ),
];

/// The entry occ owns whole: `plugins.entries.occ-exec-env` (uninstall unsets it).
fn entry_key() -> String {
    format!("plugins.entries.{}", oc::PLUGIN_ID)
}

/// Where `occ install` puts the plugin for the occ home `home`.
pub fn dir(home: &Path) -> PathBuf {
    home.join("share/openclaw-plugin").join(oc::PLUGIN_ID)
}

/// Whether the plugin's files under `home` are the shipped ones.
pub fn files_intact(home: &Path) -> bool {
    let d = dir(home);
    FILES
        .iter()
        .all(|(name, text)| std::fs::read(d.join(name)).is_ok_and(|b| b == text.as_bytes()))
}

/// Writes the plugin and wires it into OpenClaw's config through `cli`, recording each
/// change in `cx`. What OpenClaw would still refuse (`plugins.enabled: false`, a deny entry)
/// is a warning: occ does not override an admin's plugin policy.
pub(crate) fn install(cx: &mut Ctx, home: &Path, cli: &Path) -> Result<(), String> {
    let d = dir(home);
    cx.mkdir_mode(&d, 0o755)?;
    for (name, text) in FILES {
        cx.put(&d.join(name), text.as_bytes(), 0o644, FileKind::Plugin)?;
    }
    let shown = d.display().to_string();
    let mut after = pathinj::openclaw_get(cli, oc::PLUGINS_KEY)?.unwrap_or(Value::Null);
    if !after.is_object() {
        after = Value::Object(Default::default());
    }

    let paths = after["load"]["paths"].clone();
    let paths = (!paths.is_null()).then_some(paths);
    let value = oc::with_first(&shown, paths.as_ref());
    set_list(cx, cli, oc::PLUGIN_PATHS_KEY, paths, value.clone())?;
    after["load"]["paths"] = value;

    if after["entries"][oc::PLUGIN_ID]["enabled"] != Value::Bool(true) {
        if !cx.dry {
            pathinj::openclaw_set(cli, oc::PLUGIN_ENABLED_KEY, &Value::Bool(true))?;
        }
        cx.change(
            "config",
            format!("openclaw config set {} true", oc::PLUGIN_ENABLED_KEY),
            "occ's plugin: each exec command gets its session id",
        );
        let key = entry_key();
        if !cx.dry
            && !cx
                .manifest
                .path
                .iter()
                .any(|p| matches!(p, PathInjection::OpenclawOwned { key: k } if *k == key))
        {
            cx.manifest.path.push(PathInjection::OpenclawOwned { key });
        }
        after["entries"][oc::PLUGIN_ID]["enabled"] = Value::Bool(true);
    }

    let allow = after["allow"].clone();
    let listed = |v: &Value| {
        v.as_array()
            .is_some_and(|a| a.iter().any(|x| x.as_str() == Some(oc::PLUGIN_ID)))
    };
    if allow.as_array().is_some_and(|a| !a.is_empty()) && !listed(&allow) {
        let value = oc::with_first(oc::PLUGIN_ID, Some(&allow));
        set_list(cx, cli, oc::PLUGIN_ALLOW_KEY, Some(allow), value.clone())?;
        after["allow"] = value;
    }

    for problem in oc::plugin_problems(Some(&after), &shown) {
        cx.report.warnings.push(format!(
            "OpenClaw will not load occ's plugin {}: {problem}; exec commands get no session \
             id (OPENCLAW_TASK_SESSION_ID) or channel until it loads",
            oc::PLUGIN_ID
        ));
    }
    Ok(())
}

/// Sets the list `key` to `value` (occ's entry first) when it differs from `current`, and
/// records it.
fn set_list(
    cx: &mut Ctx,
    cli: &Path,
    key: &str,
    current: Option<Value>,
    value: Value,
) -> Result<(), String> {
    if current.as_ref() == Some(&value) {
        return Ok(());
    }
    if !cx.dry {
        pathinj::openclaw_set(cli, key, &value)?;
    }
    cx.change(
        "config",
        format!("openclaw config set {key} '{value}'"),
        "occ's plugin",
    );
    record_openclaw_list(cx, key, current, value);
    Ok(())
}
