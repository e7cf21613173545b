//! `occ notify-openclaw`: an `approval.notify` program that puts a pending request in a chat
//! through `openclaw message send`. It reads the request as the broker hands it over (one JSON
//! object on stdin), writes the approver's view of it as plain text (escaped as `occ
//! approvals` shows it) and runs openclaw with a deadline. It decides nothing, and its message
//! never says a reply in the chat approves anything: only `occ approve` or a signed statement do.

use std::fmt::Write as _;
use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};

use crate::escape::escape_text;
use crate::view::PendingView;

/// The most stdin may hold. The broker's request frames are at most 1 MiB, and JSON escaping
/// can grow them several times over; anything past this is not a request it sent.
pub const MAX_INPUT: u64 = 16 << 20;
/// The request's own block (`occ approvals`' text) is cut past this many characters, so the
/// message fits one chat message and one argv string; the lines after it are never cut.
pub const MAX_VIEW_CHARS: usize = 3000;
/// Longest accepted `id`, `host` and `approve_command` (the broker's are far shorter).
const MAX_ID: usize = 64;
const MAX_HOST: usize = 255;
const MAX_APPROVE_COMMAND: usize = 512;
/// The line that ends every message.
pub const NOT_AN_APPROVAL: &str = "A reply in this chat approves nothing.";

/// `occ notify-openclaw`.
#[derive(clap::Args, Debug)]
pub struct NotifyOpenclawArgs {
    /// The OpenClaw channel to send through: telegram, discord, slack, signal, whatsapp, …
    #[arg(long, value_name = "CHANNEL")]
    pub channel: String,
    /// Who gets it, in the channel's target format: a Telegram chat id or @username,
    /// channel:ID on Discord or Slack, an E.164 number on Signal or WhatsApp.
    #[arg(long, value_name = "DEST", allow_hyphen_values = true)]
    pub target: String,
    /// The channel account to send from (default: OpenClaw's default account).
    #[arg(long, value_name = "ID")]
    pub account: Option<String>,
    /// The OpenClaw profile whose config and accounts to use (`openclaw --profile NAME`).
    #[arg(long, value_name = "NAME")]
    pub profile: Option<String>,
    /// The openclaw CLI (default: `openclaw` on PATH).
    #[arg(long, value_name = "PATH")]
    pub openclaw: Option<PathBuf>,
    /// The Node runtime for openclaw, whose directory goes first on openclaw's PATH (default:
    /// a `node` beside the openclaw used, else `node` on PATH).
    #[arg(long, value_name = "PATH")]
    pub node: Option<PathBuf>,
    /// Seconds openclaw may take before it is killed (under the broker, keep it below
    /// approval.notify.timeout_seconds, so this error is the one audited).
    #[arg(long, value_name = "SECONDS", default_value_t = 50,
          value_parser = clap::value_parser!(u64).range(1..=300))]
    pub timeout: u64,
    /// Pass --dry-run to openclaw: it checks the command and sends nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Print JSON (`ok`, `request_id`, `channel`, `target`, `account`, `profile`, `dry_run`,
    /// `openclaw`, `node`, `exit_status`, `openclaw_result`, `message`, `error`).
    #[arg(long)]
    pub json: bool,
}

/// A pending request as `approval.notify` gives it: the view `occ approvals --json` prints,
/// plus the host and the approve command that works.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub view: PendingView,
    pub host: String,
    pub approve_command: String,
}

impl Notice {
    /// Reads one request from `input`: a JSON object with the view's fields (unknown keys
    /// refused, so nothing the approver should see is dropped), `host` and `approve_command`
    /// (required) and `statement` (accepted, not shown).
    pub fn parse(input: &[u8]) -> Result<Notice, String> {
        const WHAT: &str = "occ notify-openclaw reads one pending request as JSON on stdin, as \
                            approval.notify gives it";
        if input.iter().all(u8::is_ascii_whitespace) {
            return Err(format!("stdin is empty; {WHAT}"));
        }
        let v: Value = serde_json::from_slice(input)
            .map_err(|e| format!("stdin is not JSON ({e}); {WHAT}"))?;
        let Value::Object(mut m) = v else {
            return Err(format!("stdin is JSON but not an object; {WHAT}"));
        };
        let mut take = |key: &str, max: usize| match m.remove(key) {
            Some(Value::String(s)) if !s.is_empty() && s.chars().count() <= max => Ok(s),
            Some(Value::String(s)) if s.is_empty() => Err(format!("\"{key}\" is empty")),
            Some(Value::String(_)) => Err(format!("\"{key}\" is longer than {max} characters")),
            Some(_) => Err(format!("\"{key}\" is not a string")),
            None => Err(format!("\"{key}\" is missing")),
        };
        let host = take("host", MAX_HOST);
        let approve_command = take("approve_command", MAX_APPROVE_COMMAND);
        let _statement = m.remove("statement");
        let (host, approve_command) = match (host, approve_command) {
            (Ok(h), Ok(a)) => (h, a),
            (Err(e), _) | (_, Err(e)) => return Err(format!("stdin: {e}; {WHAT}")),
        };
        let view: PendingView = serde_json::from_value(Value::Object(m))
            .map_err(|e| format!("stdin is not a pending request ({e}); {WHAT}"))?;
        if view.id.is_empty() || view.id.chars().count() > MAX_ID {
            return Err(format!(
                "stdin: \"id\" must hold 1 to {MAX_ID} characters; {WHAT}"
            ));
        }
        Ok(Notice {
            view,
            host,
            approve_command,
        })
    }

    /// The chat message: what is asked, on which host, the request as `occ approvals` shows it,
    /// its expiry, how to approve (and sign) on the host, and that a reply here approves
    /// nothing. Every field from the request is escaped.
    pub fn message(&self) -> String {
        let v = &self.view;
        let id = escape_text(&v.id);
        let host = escape_text(&self.host);
        let mut out = format!("occ: approval needed on {host} for #{id}");
        if v.untrusted {
            out.push_str(" (UNTRUSTED SOURCE)");
        }
        out.push('\n');
        out.push_str(&cut(&v.text(), MAX_VIEW_CHARS));
        let _ = writeln!(out, "expires: {}", escape_text(&v.expires_at));
        let _ = writeln!(
            out,
            "approve, as an approver on {host}: {}",
            escape_text(&self.approve_command)
        );
        let _ = writeln!(
            out,
            "or sign it with your SSH key: occ approvals --statement {id} > statement; \
             occ sign statement; occ approve {id} --signature statement.sig"
        );
        let _ = writeln!(out, "deny: occ deny {id}");
        out.push_str(NOT_AN_APPROVAL);
        out
    }
}

/// `text` with at most `max` characters, the rest replaced by a line saying so.
fn cut(text: &str, max: usize) -> String {
    let total = text.chars().count();
    if total <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max).collect();
    let _ = writeln!(
        out,
        "\n    [cut: {} more characters; occ approvals shows the whole request]",
        total - max
    );
    out
}

/// Reads stdin, at most [`MAX_INPUT`] bytes; a terminal is refused (nobody pipes a request).
fn read_stdin() -> Result<Vec<u8>, String> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        return Err(
            "stdin is a terminal; pipe in a pending request as approval.notify gives \
                    it (to try: the file a `tee` notifier wrote, with --dry-run)"
                .into(),
        );
    }
    let mut buf = Vec::new();
    stdin
        .lock()
        .take(MAX_INPUT + 1)
        .read_to_end(&mut buf)
        .map_err(|e| format!("cannot read stdin: {e}"))?;
    if buf.len() as u64 > MAX_INPUT {
        return Err(format!(
            "stdin holds more than {} MiB, more than any pending request; refused",
            MAX_INPUT >> 20
        ));
    }
    Ok(buf)
}

/// The openclaw CLI and the Node runtime it runs on.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Cli {
    openclaw: PathBuf,
    /// `None` when openclaw does not need `node` on PATH (not a `#!/usr/bin/env node` script).
    node: Option<PathBuf>,
}

fn is_executable_file(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Whether the file starts with a `#!` line that looks `node` up on PATH (`#!/usr/bin/env
/// node`, as npm's `openclaw` does).
fn needs_node_on_path(p: &Path) -> bool {
    let mut head = [0u8; 256];
    let n = std::fs::File::open(p)
        .and_then(|mut f| f.read(&mut head))
        .unwrap_or(0);
    let head = &head[..n];
    let Some(line) = head.strip_prefix(b"#!") else {
        return false;
    };
    let line = String::from_utf8_lossy(line.split(|&b| b == b'\n').next().unwrap_or_default());
    let mut words = line.split_whitespace();
    let interpreter = words.next().unwrap_or_default();
    Path::new(interpreter)
        .file_name()
        .is_some_and(|f| f == "env")
        && words.any(|w| w == "node")
}

/// Finds openclaw (`--openclaw`, else PATH) and, when it is a Node script, the `node` to put
/// first on its PATH (`--node`, else one beside openclaw, else PATH).
fn locate(a: &NotifyOpenclawArgs, path: &str) -> Result<Cli, String> {
    let openclaw = match &a.openclaw {
        Some(p) if is_executable_file(p) => p.clone(),
        Some(p) => {
            return Err(format!(
                "--openclaw {}: not an executable file; give the path `command -v openclaw` \
                 prints for the user the notifier runs as",
                p.display()
            ))
        }
        None => crate::install::tool::which_in("openclaw", path).ok_or_else(|| {
            format!(
                "no openclaw on PATH ({path}); install OpenClaw there (npm install -g openclaw) \
                 or pass --openclaw PATH"
            )
        })?,
    };
    let node = match &a.node {
        Some(p) if is_executable_file(p) => Some(p.clone()),
        Some(p) => {
            return Err(format!(
                "--node {}: not an executable file; give the Node runtime openclaw runs on \
                 (`command -v node`)",
                p.display()
            ))
        }
        None if needs_node_on_path(&openclaw) => {
            let beside = openclaw.parent().map(|d| d.join("node"));
            match beside.filter(|p| is_executable_file(p)) {
                Some(n) => Some(n),
                None => Some(crate::install::tool::which_in("node", path).ok_or_else(|| {
                    format!(
                        "{} runs on Node, and there is no node beside it or on PATH ({path}); \
                         pass --node PATH (OpenClaw 2026.9 needs Node 24.16 or later)",
                        openclaw.display()
                    )
                })?),
            }
        }
        None => None,
    };
    Ok(Cli { openclaw, node })
}

/// `openclaw [--profile=NAME] message send --channel=CH --target=DEST [--account=ID]
/// --message=TEXT [--dry-run] --json`, with the node directory first on PATH and HOME set
/// from the user database when the broker left it out. `--opt=value` keeps a value that starts
/// with `-` (a Telegram group id) a value.
fn command(a: &NotifyOpenclawArgs, cli: &Cli, path: &str, message: &str) -> Command {
    let mut c = Command::new(&cli.openclaw);
    if let Some(p) = &a.profile {
        c.arg(format!("--profile={p}"));
    }
    c.args(["message", "send"])
        .arg(format!("--channel={}", a.channel))
        .arg(format!("--target={}", a.target));
    if let Some(acc) = &a.account {
        c.arg(format!("--account={acc}"));
    }
    c.arg(format!("--message={message}"));
    if a.dry_run {
        c.arg("--dry-run");
    }
    c.arg("--json");
    if let Some(dir) = cli.node.as_deref().and_then(Path::parent) {
        c.env("PATH", format!("{}:{path}", dir.display()));
    }
    if std::env::var_os("HOME").is_none() {
        let me = nix::unistd::User::from_uid(nix::unistd::getuid())
            .ok()
            .flatten();
        if let Some(u) = me {
            c.env("HOME", u.dir);
        }
    }
    c
}

/// Blank values and control characters in the flags, refused before anything runs.
fn check_args(a: &NotifyOpenclawArgs) -> Result<(), String> {
    for (flag, v) in [
        ("--channel", Some(&a.channel)),
        ("--target", Some(&a.target)),
        ("--account", a.account.as_ref()),
        ("--profile", a.profile.as_ref()),
    ] {
        if let Some(v) = v {
            if v.trim().is_empty() {
                return Err(format!("{flag} is empty; give a value or leave it out"));
            }
            if v.chars().any(char::is_control) {
                return Err(format!("{flag} holds a control character"));
            }
        }
    }
    Ok(())
}

/// How one run went: the report printed and the exit code.
struct Outcome {
    report: Value,
    code: i32,
}

/// Runs `occ notify-openclaw`: exit 0 when openclaw sent (or, with --dry-run, accepted) the
/// message, openclaw's own exit status when it failed, 2 when nothing could be run.
pub fn run(a: NotifyOpenclawArgs) -> i32 {
    let o = notify(&a);
    let error = o.report["error"].as_str();
    // On stderr in both forms: the broker audits a failed notifier's stderr.
    if let Some(e) = error {
        eprintln!("occ notify-openclaw: {e}");
    }
    if a.json {
        println!("{}", o.report);
    } else if error.is_none() {
        let id = o.report["request_id"].as_str().unwrap_or_default();
        if a.dry_run {
            println!("{}", o.report["message"].as_str().unwrap_or_default());
            println!(
                "dry run: openclaw accepted the message for #{id} to {} {} and sent nothing",
                a.channel, a.target
            );
        } else {
            println!("sent #{id} to {} {} through openclaw", a.channel, a.target);
        }
    }
    o.code
}

fn notify(a: &NotifyOpenclawArgs) -> Outcome {
    let mut report = json!({
        "ok": false,
        "request_id": null,
        "channel": a.channel,
        "target": a.target,
        "account": a.account,
        "profile": a.profile,
        "dry_run": a.dry_run,
        "openclaw": null,
        "node": null,
        "exit_status": null,
        "openclaw_result": null,
        "message": null,
    });
    let fail = |mut report: Value, e: String, code: i32| {
        report["error"] = Value::String(e);
        Outcome { report, code }
    };
    let notice = match check_args(a)
        .and_then(|()| read_stdin())
        .and_then(|b| Notice::parse(&b))
    {
        Ok(n) => n,
        Err(e) => return fail(report, e, 2),
    };
    let message = notice.message();
    report["request_id"] = Value::String(notice.view.id.clone());
    report["message"] = Value::String(message.clone());
    let path = std::env::var("PATH")
        .ok()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| occ_policy::notifier::NOTIFIER_PATH.to_string());
    let cli = match locate(a, &path) {
        Ok(c) => c,
        Err(e) => return fail(report, e, 2),
    };
    report["openclaw"] = Value::String(cli.openclaw.display().to_string());
    report["node"] = cli
        .node
        .as_ref()
        .map_or(Value::Null, |n| Value::String(n.display().to_string()));
    let mut cmd = command(a, &cli, &path, &message);
    crate::sys::die_with_parent(&mut cmd);
    let timeout = Duration::from_secs(a.timeout);
    let ran = match occ_base::child::run(cmd, None, timeout) {
        Ok(r) => r,
        Err(e) => return fail(report, format!("openclaw message send: {e}"), 2),
    };
    report["exit_status"] = ran.code.map_or(Value::Null, Value::from);
    let result: Option<Value> = serde_json::from_slice(&ran.stdout).ok();
    report["openclaw_result"] = result.clone().unwrap_or(Value::Null);
    let said_no = result
        .as_ref()
        .is_some_and(|r| r.get("ok") == Some(&Value::Bool(false)));
    let running_on = match &cli.node {
        Some(n) => format!("{} on {}", cli.openclaw.display(), n.display()),
        None => cli.openclaw.display().to_string(),
    };
    if ran.success() && !said_no {
        report["ok"] = Value::Bool(true);
        return Outcome { report, code: 0 };
    }
    // OpenClaw's --json failure says why in error.message; its stderr is the fallback.
    let reason = result
        .as_ref()
        .and_then(|r| r.pointer("/error/message"))
        .and_then(Value::as_str)
        .map(|m| m.chars().take(400).collect::<String>());
    let how = match (ran.code, reason) {
        (Some(0), r) => format!(
            "exited 0 but answered \"ok\": false{}",
            r.map(|r| format!(": {r}")).unwrap_or_default()
        ),
        (Some(c), Some(r)) => format!("exited {c}: {r}"),
        _ => ran.verdict(timeout).err().unwrap_or_default(),
    };
    let code = match ran.code {
        Some(0) => 1,
        Some(c) => c,
        None => 2,
    };
    fail(
        report,
        format!("openclaw message send {how} (ran {running_on})"),
        code,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> Value {
        json!({
            "id": "ab12cd34", "age_seconds": 1, "expires_at": "2026-12-07T04:30:00Z",
            "submituser": "agent", "peer_pid": 7, "session_id": null,
            "command": ["/usr/bin/id", "-u\u{202e}"], "runuser": "root", "rungroup": null,
            "runcwd": "/srv", "env": {}, "reason": null, "untrusted": false,
            "runs_arbitrary_code": false, "flags": ["writes_files"],
            "host": "web1", "approve_command": "occ approve ab12cd34",
            "statement": "occ-approval-statement v1\n",
        })
    }

    fn parse(v: &Value) -> Result<Notice, String> {
        Notice::parse(v.to_string().as_bytes())
    }

    #[test]
    fn the_message_shows_the_request_as_approvers_see_it_and_approves_nothing() {
        let m = parse(&request()).unwrap().message();
        for want in [
            "occ: approval needed on web1 for #ab12cd34\n",
            "#ab12cd34  agent → root  age 1s  pid 7  session -\n",
            "    command: [\"/usr/bin/id\", \"-u\\u{202e}\"]\n",
            "    flags: writes_files\n",
            "expires: 2026-12-07T04:30:00Z\n",
            "approve, as an approver on web1: occ approve ab12cd34\n",
            "occ approvals --statement ab12cd34 > statement; occ sign statement; \
             occ approve ab12cd34 --signature statement.sig\n",
            "deny: occ deny ab12cd34\n",
        ] {
            assert!(m.contains(want), "{want:?} missing from:\n{m}");
        }
        assert!(m.ends_with(NOT_AN_APPROVAL), "{m}");
        assert!(!m.contains('\u{202e}'), "{m}");
    }

    #[test]
    fn an_untrusted_request_says_so_first_and_long_views_are_cut() {
        let mut r = request();
        r["untrusted"] = true.into();
        r["approve_command"] = "occ approve ab12cd34 --confirm-untrusted".into();
        r["command"] = json!(["/usr/bin/echo", "x".repeat(10_000)]);
        let m = parse(&r).unwrap().message();
        assert!(m.starts_with("occ: approval needed on web1 for #ab12cd34 (UNTRUSTED SOURCE)\n"));
        assert!(m.contains("[cut: "), "{m}");
        assert!(
            m.contains(": occ approve ab12cd34 --confirm-untrusted\n"),
            "{m}"
        );
        assert!(m.chars().count() < MAX_VIEW_CHARS + 1000, "{}", m.len());
        assert!(m.ends_with(NOT_AN_APPROVAL));
    }

    #[test]
    fn malformed_requests_are_refused_naming_what_is_wrong() {
        let mut unknown = request();
        unknown["shown_nowhere"] = 1.into();
        let mut no_host = request();
        no_host.as_object_mut().unwrap().remove("host");
        let mut long_id = request();
        long_id["id"] = "x".repeat(65).into();
        let mut no_command = request();
        no_command.as_object_mut().unwrap().remove("command");
        for (input, says) in [
            (b"".to_vec(), "stdin is empty"),
            (b"not json".to_vec(), "stdin is not JSON"),
            (b"[1]".to_vec(), "not an object"),
            (unknown.to_string().into_bytes(), "unknown field"),
            (no_host.to_string().into_bytes(), "\"host\" is missing"),
            (long_id.to_string().into_bytes(), "\"id\" must hold"),
            (
                no_command.to_string().into_bytes(),
                "missing field `command`",
            ),
            (
                format!("{} {{}}", request()).into_bytes(),
                "stdin is not JSON",
            ),
        ] {
            let e = Notice::parse(&input).unwrap_err();
            assert!(e.contains(says), "{says}: {e}");
        }
    }

    #[test]
    fn a_node_script_is_told_from_a_program() {
        let d = tempfile::tempdir().unwrap();
        for (text, needs) in [
            ("#!/usr/bin/env node\n", true),
            ("#!/usr/bin/env -S node --no-warnings\n", true),
            ("#!/usr/local/bin/node\n", false),
            ("#!/bin/sh\n", false),
            ("\x7fELF", false),
        ] {
            let p = d.path().join("openclaw");
            std::fs::write(&p, text).unwrap();
            assert_eq!(needs_node_on_path(&p), needs, "{text:?}");
        }
    }
}
