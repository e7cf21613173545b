//! The explanation of one evaluation: the JSON object `occ explain --json` prints (the broker
//! reuses it for `-l` answers and audit details) and its readable text form. It only formats;
//! every decision was made in `decide`.

use serde_json::{json, Map, Value};

use crate::decide::Evaluation;
use crate::grammar::PreserveEnv;
use crate::grant::hex;

/// The `occ explain --json` object.
///
/// Keys: `action`, `command`, `target_user`, `target_uid`, `target_group`, `env`,
/// `preserve_env`, `chdir`, `non_interactive`, `runs_arbitrary_code`, `decision`,
/// `reason_code`, `rule`, `message`; and, beyond the list, `target_gid`, `cwd` (where
/// the command would run), `wraps` (what a wrapper runs, outermost first; `[]` when nothing)
/// and `grant_digest` (hex), null when unknown; `flags` (the names of the risk flags set) and
/// `requester_writable` (paths), arrays, empty when unknown.
pub fn to_json(ev: &Evaluation) -> Value {
    let sudo = ev.sudo.as_ref();
    let req = ev.request.as_ref();
    let target = ev.target.as_ref();
    let mut env = Map::new();
    for (k, v) in sudo.map(|s| s.env.as_slice()).unwrap_or_default() {
        env.insert(k.clone(), Value::String(v.clone()));
    }
    let preserve_env = match sudo.map(|s| &s.preserve_env) {
        None | Some(PreserveEnv::No) => Value::Bool(false),
        Some(PreserveEnv::All) => Value::Bool(true),
        Some(PreserveEnv::List(l)) => json!(l),
    };
    let target_user = match (target, sudo) {
        (Some(t), _) => Value::String(t.user.clone()),
        (None, Some(s)) => Value::String(s.user.clone().unwrap_or_else(|| "root".into())),
        (None, None) => Value::String("root".into()),
    };
    let target_group = match (target, sudo.and_then(|s| s.group.as_ref())) {
        (Some(t), Some(_)) => json!(t.group),
        (None, Some(g)) => json!(g),
        (_, None) => Value::Null,
    };
    json!({
        "action": sudo.map(|s| s.action().as_str()),
        "command": req.map(|r| &r.argv),
        "target_user": target_user,
        "target_uid": target.map(|t| t.uid),
        "target_gid": target.map(|t| t.gid),
        "target_group": target_group,
        "env": env,
        "preserve_env": preserve_env,
        "chdir": sudo.and_then(|s| s.chdir.clone()),
        "cwd": req.map(|r| r.cwd.to_string_lossy().into_owned()),
        "non_interactive": sudo.is_some_and(|s| s.non_interactive),
        "runs_arbitrary_code": req.is_some_and(|r| r.runs_arbitrary_code),
        "wraps": req.map(|r| r.unwrapped.wraps()).unwrap_or_default(),
        "flags": req.map(|r| r.flags.names()).unwrap_or_default(),
        "requester_writable": req.map(|r| r.requester_writable.clone()).unwrap_or_default(),
        "decision": ev.outcome.decision.as_str(),
        "reason_code": ev.outcome.reason_code,
        "rule": ev.outcome.rule,
        "message": ev.outcome.message,
        "grant_digest": req.map(|r| hex(&r.digest())),
    })
}

/// A readable, multi-line explanation for a person.
pub fn to_text(ev: &Evaluation, args: &[String]) -> String {
    let j = to_json(ev);
    let s = |k: &str| match &j[k] {
        Value::Null => "-".to_string(),
        Value::String(x) => x.clone(),
        other => other.to_string(),
    };
    let mut out = String::new();
    out.push_str(&format!(
        "sudo {}\n",
        serde_json::to_string(args).unwrap_or_default()
    ));
    out.push_str(&format!("  action:       {}\n", s("action")));
    if !j["command"].is_null() {
        out.push_str(&format!("  command:      {}\n", s("command")));
    }
    if !j["target_uid"].is_null() {
        out.push_str(&format!(
            "  runs as:      {} (uid {}, gid {})",
            s("target_user"),
            s("target_uid"),
            s("target_gid")
        ));
        if !j["target_group"].is_null() {
            out.push_str(&format!(", group {}", s("target_group")));
        }
        out.push('\n');
    }
    if !j["cwd"].is_null() {
        out.push_str(&format!("  in directory: {}\n", s("cwd")));
    }
    if j["env"].as_object().is_some_and(|m| !m.is_empty()) {
        out.push_str(&format!("  env:          {}\n", s("env")));
    }
    if j["preserve_env"] != Value::Bool(false) {
        out.push_str(&format!("  preserve env: {}\n", s("preserve_env")));
    }
    if j["non_interactive"] == Value::Bool(true) {
        out.push_str("  -n:           the caller will not wait for approval\n");
    }
    for inner in j["wraps"].as_array().into_iter().flatten() {
        out.push_str(&format!("  wraps:        {inner}\n"));
    }
    if j["runs_arbitrary_code"] == Value::Bool(true) {
        out.push_str(
            "  warning:      this command can run arbitrary code; a grant covers one run only\n",
        );
    }
    let has_flag = |f: &str| {
        j["flags"]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x == f))
    };
    if let Some(paths) = j["requester_writable"].as_array().filter(|a| !a.is_empty()) {
        let paths: Vec<&str> = paths.iter().filter_map(Value::as_str).collect();
        out.push_str(&format!(
            "  warning:      what runs can change after approval: {}\n",
            paths.join(" ")
        ));
    }
    if has_flag("stdin_from_requester") {
        out.push_str(
            "  warning:      the requester supplies the content on stdin (it writes files)\n",
        );
    }
    out.push_str(&format!(
        "  decision:     {} ({})\n",
        s("decision"),
        s("reason_code")
    ));
    if !j["rule"].is_null() {
        out.push_str(&format!("  rule:         {}\n", s("rule")));
    }
    out.push_str(&format!("  why:          {}\n", s("message")));
    if !j["grant_digest"].is_null() && j["decision"] != "deny" {
        out.push_str(&format!("  grant digest: {}\n", s("grant_digest")));
    }
    out
}
