//! What OpenClaw's exec tool puts first in PATH, agent by agent, read from the two config
//! values OpenClaw itself resolves: `tools.exec.pathPrepend` and `agents.entries`. An agent's
//! own `agents.entries.<id>.tools.exec.pathPrepend` replaces the global list (it is not
//! merged). This module only reads and edits JSON values; it never runs OpenClaw.

use serde_json::Value;

/// The global key: directories OpenClaw puts before PATH in every exec run.
pub const PATH_KEY: &str = "tools.exec.pathPrepend";

/// The map of configured agents, keyed by agent id.
pub const AGENTS_KEY: &str = "agents.entries";

/// One agent's effective list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentPath {
    /// The agent id; `None` for the global key (every agent without its own list).
    pub agent: Option<String>,
    /// The config key the list comes from.
    pub key: String,
    /// Whether `key` is set at all.
    pub set: bool,
    /// The directories, in order.
    pub dirs: Vec<String>,
}

impl AgentPath {
    /// `agent main (agents.entries.main.tools.exec.pathPrepend)` or `every agent without
    /// its own list (tools.exec.pathPrepend)`.
    pub fn label(&self) -> String {
        match &self.agent {
            Some(a) => format!("agent {a} ({})", self.key),
            None => format!("every agent without its own list ({})", self.key),
        }
    }
}

/// `agents.entries.<id>.tools.exec.pathPrepend`.
pub fn agent_key(id: &str) -> String {
    format!("{AGENTS_KEY}.{id}.{PATH_KEY}")
}

/// Whether `id` can be written in a dotted config path as is.
pub fn plain_id(id: &str) -> bool {
    !id.is_empty()
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The directories of a pathPrepend value: an array of strings, or (as older configs and
/// hand edits have it) one `:`-separated string.
pub fn dirs_of(v: &Value) -> Vec<String> {
    match v {
        Value::Array(a) => a
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        Value::String(s) => s
            .split(':')
            .filter(|d| !d.is_empty())
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    }
}

/// The global list, then one entry per agent in `entries` that sets its own list (those
/// without one use the global list, which the first entry stands for).
pub fn effective(global: Option<&Value>, entries: Option<&Value>) -> Vec<AgentPath> {
    let mut out = vec![AgentPath {
        agent: None,
        key: PATH_KEY.into(),
        set: global.is_some_and(|v| !v.is_null()),
        dirs: global.map(dirs_of).unwrap_or_default(),
    }];
    if let Some(Value::Object(map)) = entries {
        for (id, entry) in map {
            let own = entry.pointer("/tools/exec/pathPrepend");
            if let Some(v) = own.filter(|v| !v.is_null()) {
                out.push(AgentPath {
                    agent: Some(id.clone()),
                    key: agent_key(id),
                    set: true,
                    dirs: dirs_of(v),
                });
            }
        }
    }
    out
}

/// What `openclaw config get KEY --json` answered: `ok` (exit 0) and its output.
/// `Ok(None)` when the key is unset; `Err` for any other failure, so a broken config never
/// reads as "unset".
pub fn parse_config_get(
    key: &str,
    ok: bool,
    stdout: &str,
    stderr: &str,
) -> Result<Option<Value>, String> {
    let out = stdout.trim();
    let parsed: Option<Value> = serde_json::from_str(out).ok();
    if ok {
        return match parsed {
            Some(v) => Ok(Some(v)),
            None if out.is_empty() || out == "undefined" => Ok(None),
            None => Err(format!(
                "`openclaw config get {key} --json` printed something that is not JSON: {}",
                out.lines().next().unwrap_or("")
            )),
        };
    }
    // The CLI's words for an unset key: "Config path is valid but unset: KEY" (older
    // releases: "Config path not found").
    let msg = parsed
        .as_ref()
        .and_then(|v| v.pointer("/error/message"))
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| {
            let e = stderr.trim();
            if e.is_empty() { out } else { e }
                .lines()
                .next()
                .unwrap_or("")
                .to_string()
        });
    let lower = msg.to_ascii_lowercase();
    if lower.contains("but unset") || lower.contains("path not found") {
        return Ok(None);
    }
    Err(format!("`openclaw config get {key} --json` failed: {msg}"))
}

/// The global exec mode key (`deny`, `allowlist`, `ask`, `auto`, `full`).
pub const MODE_KEY: &str = "tools.exec.mode";

/// The global exec settings: `mode`, or `security` and `ask` (what `openclaw exec-policy set`
/// writes when no mode fits), and `pathPrepend`.
pub const EXEC_KEY: &str = "tools.exec";

/// One agent's effective exec mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecMode {
    /// The agent id; `None` for the global settings.
    pub agent: Option<String>,
    /// The mode key, where a fix goes (`tools.exec.mode`, `agents.entries.ID.tools.exec.mode`).
    pub key: String,
    /// The mode, `None` when nothing is set (OpenClaw's gateway default is `full`).
    pub mode: Option<String>,
    /// When `mode` is not set but `security`/`ask` are: what they say, as OpenClaw reads them.
    pub derived_from: Option<String>,
}

/// The mode a `tools.exec` object stands for, as OpenClaw resolves it: its `mode`, else the
/// mode its `security` and `ask` make (`deny` for security deny; `allowlist` for allowlist
/// without asking; `full` for full unless it always asks; else `ask`), with what they said.
fn mode_of(exec: &Value) -> Option<(String, Option<String>)> {
    if let Some(m) = exec.get("mode").and_then(Value::as_str) {
        return Some((m.to_string(), None));
    }
    let security = exec.get("security").and_then(Value::as_str);
    let ask = exec.get("ask").and_then(Value::as_str);
    if security.is_none() && ask.is_none() {
        return None;
    }
    let (s, a) = (security.unwrap_or("full"), ask.unwrap_or("off"));
    let mode = match (s, a) {
        ("deny", _) => "deny",
        ("allowlist", "off") => "allowlist",
        ("full", a) if a != "always" => "full",
        _ => "ask",
    };
    Some((mode.to_string(), Some(format!("security {s}, ask {a}"))))
}

/// Each agent's effective exec mode from the global `tools.exec` object and
/// `agents.entries`: the global settings first, then each agent that sets its own.
pub fn modes(global_exec: Option<&Value>, entries: Option<&Value>) -> Vec<ExecMode> {
    let (mode, derived_from) = global_exec.and_then(mode_of).unzip();
    let mut out = vec![ExecMode {
        agent: None,
        key: MODE_KEY.to_string(),
        mode,
        derived_from: derived_from.flatten(),
    }];
    if let Some(Value::Object(map)) = entries {
        for (id, entry) in map {
            if let Some((m, from)) = entry.pointer("/tools/exec").and_then(mode_of) {
                out.push(ExecMode {
                    agent: Some(id.clone()),
                    key: format!("{AGENTS_KEY}.{id}.{MODE_KEY}"),
                    mode: Some(m),
                    derived_from: from,
                });
            }
        }
    }
    out
}

/// What an exec mode means for `sudo` under occ: `None` when it fits (occ is the one gate),
/// else why it does not and the change that fits.
pub fn mode_conflict(m: &ExecMode) -> Option<String> {
    let key = match &m.derived_from {
        // tools.exec.mode unset, security allowlist and ask off: "tools.exec (security
        // allowlist, ask off)".
        Some(from) => format!("{} ({from})", m.key.strip_suffix(".mode").unwrap_or(&m.key)),
        None => m.key.clone(),
    };
    let fix = format!("openclaw config set {} full", m.key);
    match m.mode.as_deref().unwrap_or("full") {
        "full" => None,
        "allowlist" => Some(format!(
            "{key} is allowlist: OpenClaw runs only allowlisted commands and asks no one, and \
             it treats sudo as a dispatch wrapper, so the agent's sudo is denied by OpenClaw \
             before occ sees it; to gate sudo with occ: {fix}"
        )),
        m @ ("ask" | "auto") => Some(format!(
            "{key} is {m}: OpenClaw asks a human (or its reviewer) for commands that are not \
             allowlisted, so every sudo is approved twice, once in OpenClaw and once in occ; \
             for occ alone to decide: {fix}"
        )),
        "deny" => Some(format!(
            "{key} is deny: OpenClaw runs no exec at all, so nothing reaches occ (a choice, \
             not a gap)"
        )),
        other => Some(format!(
            "{key} is {other:?}, a mode occ does not know; check `openclaw exec-policy show`"
        )),
    }
}

/// `bin` first, then the entries `previous` held (without `bin`).
pub fn with_first(bin: &str, previous: Option<&Value>) -> Value {
    let mut list = vec![Value::String(bin.to_string())];
    list.extend(
        previous
            .map(dirs_of)
            .unwrap_or_default()
            .into_iter()
            .filter(|d| d != bin)
            .map(Value::String),
    );
    Value::Array(list)
}

/// `current` without `bin`: `None` when nothing else is left and the key was unset before
/// occ set it (so the key goes), else the remaining list (possibly empty).
pub fn without(bin: &str, current: &Value, was_set: bool) -> Option<Value> {
    let rest: Vec<Value> = dirs_of(current)
        .into_iter()
        .filter(|d| d != bin)
        .map(Value::String)
        .collect();
    if rest.is_empty() && !was_set {
        None
    } else {
        Some(Value::Array(rest))
    }
}

/// occ's OpenClaw plugin (`integrations/openclaw/occ-exec-env`): its `resolve_exec_env`
/// hook gives each exec command the session id, agent and message channel.
pub const PLUGIN_ID: &str = "occ-exec-env";
/// The whole plugins section, read in one call.
pub const PLUGINS_KEY: &str = "plugins";
/// Extra plugin directories OpenClaw loads.
pub const PLUGIN_PATHS_KEY: &str = "plugins.load.paths";
/// OpenClaw's exclusive plugin allowlist (when set and non-empty).
pub const PLUGIN_ALLOW_KEY: &str = "plugins.allow";
/// A plugin from `plugins.load.paths` loads in the gateway only once enabled.
pub const PLUGIN_ENABLED_KEY: &str = "plugins.entries.occ-exec-env.enabled";

/// Why OpenClaw would not load occ's plugin from `dir`, judged from the `plugins` config
/// value as `openclaw config get plugins --json` prints it; empty when it will.
pub fn plugin_problems(plugins: Option<&Value>, dir: &str) -> Vec<String> {
    let empty = Value::Null;
    let p = plugins.unwrap_or(&empty);
    let trim = |d: &str| d.trim_end_matches('/').to_string();
    let list = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| a.iter().filter_map(Value::as_str).map(trim).collect())
            .unwrap_or_default()
    };
    let mut out = Vec::new();
    if p.get("enabled") == Some(&Value::Bool(false)) {
        out.push("plugins.enabled is false, so OpenClaw loads no plugin".to_string());
    }
    if !list(&p["load"]["paths"]).contains(&trim(dir)) {
        out.push(format!("{PLUGIN_PATHS_KEY} does not list {dir}"));
    }
    if p["entries"][PLUGIN_ID]["enabled"] != Value::Bool(true) {
        out.push(format!("{PLUGIN_ENABLED_KEY} is not true"));
    }
    if list(&p["deny"]).iter().any(|d| d == PLUGIN_ID) {
        out.push(format!("plugins.deny lists {PLUGIN_ID}"));
    }
    let allow = list(&p["allow"]);
    if !allow.is_empty() && !allow.iter().any(|d| d == PLUGIN_ID) {
        out.push(format!(
            "{PLUGIN_ALLOW_KEY} is set and does not list {PLUGIN_ID}"
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_plugin_loads_only_when_listed_enabled_and_allowed() {
        let dir = "/home/a/.openclaw/share/openclaw-plugin/occ-exec-env";
        // As `openclaw config get plugins --json` prints it after `occ install`.
        let good = json!({
            "load": {"paths": ["/opt/other-plugin", format!("{dir}/")]},
            "entries": {"occ-exec-env": {"enabled": true}, "github": {"enabled": false}}
        });
        assert_eq!(plugin_problems(Some(&good), dir), Vec::<String>::new());
        let mut allowed = good.clone();
        allowed["allow"] = json!(["github", "occ-exec-env"]);
        assert!(plugin_problems(Some(&allowed), dir).is_empty());

        let unset = plugin_problems(None, dir);
        assert_eq!(unset.len(), 2, "{unset:?}");
        assert!(unset[0].contains("plugins.load.paths does not list"));
        assert!(unset[1].contains("plugins.entries.occ-exec-env.enabled is not true"));

        let mut off = good.clone();
        off["enabled"] = json!(false);
        off["deny"] = json!(["occ-exec-env"]);
        off["allow"] = json!(["github"]);
        let p = plugin_problems(Some(&off), dir);
        assert_eq!(p.len(), 3, "{p:?}");
        assert!(p[0].contains("plugins.enabled is false"));
        assert!(p[1].contains("plugins.deny lists occ-exec-env"));
        assert!(p[2].contains("plugins.allow is set and does not list"));
    }

    #[test]
    fn an_agent_list_replaces_the_global_one_and_others_inherit_it() {
        let global = json!(["/home/a/.openclaw/bin", "/opt/tools/bin"]);
        // The shape `openclaw config get agents.entries --json` prints for a real config.
        let entries = json!({
            "main": { "workspace": "/home/a/.openclaw/workspace" },
            "ops": { "tools": { "exec": { "pathPrepend": ["/usr/local/bin"] } } },
            "web": { "tools": { "exec": { "host": "gateway" } } },
            "old": { "tools": { "exec": { "pathPrepend": "/a:/b" } } }
        });
        let got = effective(Some(&global), Some(&entries));
        assert_eq!(got.len(), 3, "{got:?}");
        assert_eq!(got[0].agent, None);
        assert_eq!(got[0].dirs, ["/home/a/.openclaw/bin", "/opt/tools/bin"]);
        let ops = got
            .iter()
            .find(|a| a.agent.as_deref() == Some("ops"))
            .unwrap();
        assert_eq!(ops.key, "agents.entries.ops.tools.exec.pathPrepend");
        assert_eq!(ops.dirs, ["/usr/local/bin"]);
        let old = got
            .iter()
            .find(|a| a.agent.as_deref() == Some("old"))
            .unwrap();
        assert_eq!(old.dirs, ["/a", "/b"]);
        assert!(!got.iter().any(|a| a.agent.as_deref() == Some("web")));
    }

    #[test]
    fn an_unset_global_key_is_reported_unset() {
        let got = effective(None, None);
        assert_eq!(got.len(), 1);
        assert!(!got[0].set);
        assert!(got[0].dirs.is_empty());
    }

    #[test]
    fn with_first_keeps_the_users_entries_after_bin_once() {
        let prev = json!(["/opt/x", "/bin/occ", "/opt/y"]);
        assert_eq!(
            with_first("/bin/occ", Some(&prev)),
            json!(["/bin/occ", "/opt/x", "/opt/y"])
        );
        assert_eq!(with_first("/b", None), json!(["/b"]));
    }

    #[test]
    fn without_removes_only_occs_entry() {
        let cur = json!(["/b", "/usr/local/bin"]);
        assert_eq!(without("/b", &cur, false), Some(json!(["/usr/local/bin"])));
        assert_eq!(without("/b", &json!(["/b"]), false), None);
        assert_eq!(without("/b", &json!(["/b"]), true), Some(json!([])));
    }

    #[test]
    fn config_get_answers_are_read_as_openclaw_prints_them() {
        // OpenClaw 2026.9.6's words, exit 1, for an unset key.
        let unset = r#"{"ok": false, "error": {"type": "cli_error", "message": "Config path is valid but unset: tools.exec.pathPrepend. The runtime default applies until you set an authored value with openclaw config set tools.exec.pathPrepend <value>."}}"#;
        assert_eq!(parse_config_get(PATH_KEY, false, unset, ""), Ok(None));
        assert_eq!(
            parse_config_get(PATH_KEY, true, "[\n  \"/b\"\n]\n", ""),
            Ok(Some(json!(["/b"])))
        );
        let broken = r#"{"ok": false, "error": {"type": "cli_error", "message": "OpenClaw config is invalid: openclaw.json:5"}}"#;
        let e = parse_config_get(PATH_KEY, false, broken, "").unwrap_err();
        assert!(e.contains("config is invalid"), "{e}");
        assert!(parse_config_get(PATH_KEY, false, "", "boom").is_err());
        assert!(parse_config_get(PATH_KEY, true, "not json", "").is_err());
    }

    #[test]
    fn exec_modes_per_agent_and_what_they_mean_for_sudo() {
        let entries = json!({
            "main": {"workspace": "/w"},
            "ops": {"tools": {"exec": {"mode": "allowlist"}}}
        });
        let got = modes(Some(&json!({"mode": "full"})), Some(&entries));
        assert_eq!(got.len(), 2);
        assert_eq!(got[1].key, "agents.entries.ops.tools.exec.mode");
        let m = |mode: Option<&str>| ExecMode {
            agent: None,
            key: MODE_KEY.into(),
            mode: mode.map(str::to_string),
            derived_from: None,
        };
        assert!(mode_conflict(&m(Some("full"))).is_none());
        assert!(
            mode_conflict(&m(None)).is_none(),
            "unset is the gateway's full"
        );
        let a = mode_conflict(&got[1]).unwrap();
        assert!(a.contains("denied by OpenClaw"), "{a}");
        assert!(a.contains("openclaw config set agents.entries.ops.tools.exec.mode full"));
        assert!(mode_conflict(&m(Some("ask")))
            .unwrap()
            .contains("approved twice"));
        assert!(mode_conflict(&m(Some("auto"))).is_some());
        assert!(mode_conflict(&m(Some("deny"))).is_some());
    }

    /// `openclaw exec-policy set` writes `security` and `ask` without a mode when no mode fits
    /// exactly; OpenClaw then reads the mode from them, and so does occ.
    #[test]
    fn security_and_ask_without_a_mode_count_as_openclaw_reads_them() {
        let read = |exec: Value| modes(Some(&exec), None).remove(0);
        for (exec, want) in [
            (json!({"security": "deny"}), "deny"),
            (json!({"security": "allowlist", "ask": "off"}), "allowlist"),
            (json!({"security": "allowlist", "ask": "on-miss"}), "ask"),
            (json!({"security": "full", "ask": "on-miss"}), "full"),
            (json!({"security": "full", "ask": "always"}), "ask"),
            (json!({"ask": "always"}), "ask"),
            (json!({"security": "full"}), "full"),
        ] {
            let got = read(exec.clone());
            assert_eq!(got.mode.as_deref(), Some(want), "{exec}");
            assert!(got.derived_from.is_some(), "{exec}");
        }
        assert_eq!(read(json!({"pathPrepend": ["/x"]})).mode, None);
        let allow = read(json!({"security": "allowlist", "ask": "off"}));
        let why = mode_conflict(&allow).unwrap();
        assert!(
            why.starts_with("tools.exec (security allowlist, ask off) is allowlist"),
            "{why}"
        );
        assert!(
            why.contains("openclaw config set tools.exec.mode full"),
            "{why}"
        );
        // A mode, when set, wins over security and ask, as in OpenClaw.
        let both = read(json!({"mode": "full", "security": "deny"}));
        assert_eq!(
            (both.mode.as_deref(), both.derived_from),
            (Some("full"), None)
        );
        // An agent's own security/ask count for that agent.
        let entries = json!({"ops": {"tools": {"exec": {"security": "allowlist", "ask": "off"}}}});
        let got = modes(None, Some(&entries));
        assert_eq!(got[1].mode.as_deref(), Some("allowlist"));
        assert_eq!(got[1].key, "agents.entries.ops.tools.exec.mode");
    }

    #[test]
    fn plain_ids_only() {
        assert!(plain_id("main"));
        assert!(plain_id("ops-2_x"));
        assert!(!plain_id("a.b"));
        assert!(!plain_id(""));
        assert!(!plain_id("a b"));
    }
}
