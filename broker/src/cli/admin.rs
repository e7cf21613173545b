//! The approver's commands: `occ approvals`, `approve`, `deny`, `status`, `drop`, `token` and
//! `exec`. Every command but `token` and `exec` talks to the running broker; none of them ever
//! decides anything locally. Text from the requester is printed escaped.

use std::io::IsTerminal;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use occ_proto::Frame;
use serde_json::{json, Value};

use crate::escape::escape_text;
use crate::gate::admin::AdminRequest;
use crate::session::Scope;
use crate::view::PendingView;

/// `occ approvals`.
#[derive(clap::Args, Debug)]
pub struct ApprovalsArgs {
    /// Print a JSON array instead of text (with --watch: one JSON object per event and line).
    #[arg(long)]
    pub json: bool,
    /// Print the approval statement of request ID, to sign with `occ sign` or
    /// `ssh-keygen -Y sign -n occ-approval`.
    #[arg(long, value_name = "ID", conflicts_with = "watch")]
    pub statement: Option<String>,
    /// With --statement: the decision to sign: once, session, deny, uses=N, for=30m or
    /// uses=N,for=30m.
    #[arg(long, default_value = "once", requires = "statement")]
    pub scope: String,
    /// Keep watching: print each new request as it arrives (with a bell on a terminal) and
    /// each one that leaves the queue, until interrupted.
    #[arg(long)]
    pub watch: bool,
}

/// `occ approve`: shows the request, asks `Approve? [y/N]` on a terminal (`--yes` for
/// scripts), then approves exactly what was shown.
#[derive(clap::Args, Debug)]
pub struct ApproveArgs {
    /// The pending request's id, `ID` or `#ID` (from the agent's message or `occ approvals`).
    pub id: String,
    /// The grant covers one run (the default).
    #[arg(long, conflicts_with_all = ["session", "for_", "uses"])]
    pub once: bool,
    /// The grant lasts until the task session has been idle for the configured timeout.
    #[arg(long, conflicts_with_all = ["for_", "uses"])]
    pub session: bool,
    /// The grant lives this long (`90s`, `30m`, `2h`; at most `approval.max_grant_minutes`),
    /// for any number of runs unless --uses also limits them.
    #[arg(long = "for", value_name = "DURATION")]
    pub for_: Option<String>,
    /// The grant covers this many runs of exactly this request.
    #[arg(long, value_name = "N")]
    pub uses: Option<u32>,
    /// Approve without asking (for scripts); required when stdin is not a terminal.
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Required for requests flagged as coming from an untrusted source.
    #[arg(long)]
    pub confirm_untrusted: bool,
    /// A note recorded in the audit log.
    #[arg(long)]
    pub note: Option<String>,
    /// Approve with a signed statement: the bundle `occ sign` prints, or a .sig file (its
    /// statement read from the file without .sig); `-` reads stdin.
    #[arg(long, value_name = "FILE|-", conflicts_with_all = ["note", "confirm_untrusted"])]
    pub signature: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `occ deny`.
#[derive(clap::Args, Debug)]
pub struct DenyArgs {
    /// The pending request's id (`ID` or `#ID`), or an approved grant's that has runs left.
    pub id: String,
    /// A note recorded in the audit log and shown to the requester.
    #[arg(long)]
    pub note: Option<String>,
    /// Deny with a signed statement (scope deny): the bundle `occ sign` prints, or a .sig
    /// file; `-` reads stdin.
    #[arg(long, value_name = "FILE|-", conflicts_with = "note")]
    pub signature: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `occ status`.
#[derive(clap::Args, Debug)]
pub struct StatusArgs {
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `occ drop`.
#[derive(clap::Args, Debug)]
pub struct DropArgs {
    /// Drop the grants of this task session.
    #[arg(long, conflicts_with = "all")]
    pub session: Option<String>,
    /// Drop every grant.
    #[arg(long)]
    pub all: bool,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `occ token`.
#[derive(clap::Args, Debug)]
pub struct TokenArgs {
    #[command(subcommand)]
    pub action: TokenAction,
}

/// What to do with the approval token.
#[derive(clap::Subcommand, Debug)]
pub enum TokenAction {
    /// Set the approval token: one you choose (at least 20 characters, read twice without
    /// echo, kept as a salted argon2id hash), or with --generate a random one (kept as its
    /// SHA-256). When a token is set, the current one is asked for first.
    Set {
        /// Generate a random 128-bit token and print it once instead of reading one.
        #[arg(long)]
        generate: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove the approval token (the current one is asked for first).
    Clear {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `occ exec`: run one command through the same path as the sudo shim.
#[derive(clap::Args, Debug)]
pub struct ExecArgs {
    /// Why the command is needed; shown to the approver.
    #[arg(long)]
    pub reason: String,
    /// The task session id.
    #[arg(long)]
    pub session_id: Option<String>,
    /// Print JSON about how the command ended (its own output still goes to the terminal).
    #[arg(long)]
    pub json: bool,
    /// The command and its arguments.
    #[arg(last = true, required = true)]
    pub command: Vec<String>,
}

/// The broker's socket for this home.
pub fn socket_path() -> PathBuf {
    if crate::layout::Layout::system_selected() {
        return PathBuf::from(crate::layout::SYSTEM_ADMIN_SOCKET);
    }
    crate::paths::occ_home().join("run").join("broker.sock")
}

/// Sends one admin request to the broker and returns `(ok, reply)`.
pub fn call(req: &AdminRequest) -> Result<(bool, Value), String> {
    let sock = socket_path();
    let stream = UnixStream::connect(&sock).map_err(|e| {
        format!(
            "occ broker unavailable at {}: {e}; start it with `occ broker` (or run any sudo through the shim)",
            sock.display()
        )
    })?;
    let body = serde_json::to_vec(req).map_err(|e| e.to_string())?;
    occ_proto::write_frame(&stream, &Frame::Admin { body }, &[])
        .map_err(|e| format!("cannot talk to the broker: {e}"))?;
    // A long answer comes in parts (`AdminReplyPart`) before the final `AdminReply`; each frame
    // has its own deadline, and the whole answer is capped.
    let mut whole = Vec::new();
    loop {
        let deadline = Instant::now() + Duration::from_secs(30);
        let got = occ_proto::read_frame_by(&stream, Some(deadline))
            .map_err(|e| format!("no answer from the broker: {e}"))?;
        let (done, ok, body) = match got.frame {
            Frame::AdminReplyPart { body } => (false, false, body),
            Frame::AdminReply { ok, body } => (true, ok, body),
            Frame::Refuse(r) => return Err(format!("{} ({})", r.message, r.reason_code)),
            other => {
                return Err(format!(
                    "unexpected answer from the broker: {:?}",
                    other.frame_type()
                ))
            }
        };
        if whole.len() + body.len() > MAX_ADMIN_ANSWER {
            return Err(format!(
                "the broker's answer is over {} MiB; refusing to read more",
                MAX_ADMIN_ANSWER >> 20
            ));
        }
        whole.extend_from_slice(&body);
        if done {
            let v: Value = serde_json::from_slice(&whole)
                .map_err(|e| format!("the broker's answer is not JSON: {e}"))?;
            return Ok((ok, v));
        }
    }
}

/// The most an admin answer may hold, all parts together.
const MAX_ADMIN_ANSWER: usize = 512 << 20;

pub(super) fn finish(
    json_out: bool,
    result: Result<(bool, Value), String>,
    text: impl Fn(&Value) -> String,
) -> i32 {
    match result {
        Ok((ok, v)) => {
            if json_out {
                println!("{v}");
            } else if ok {
                print!("{}", text(&v));
            } else {
                eprintln!(
                    "occ: {}",
                    v.get("error").and_then(|e| e.as_str()).unwrap_or("refused")
                );
            }
            if ok {
                0
            } else {
                1
            }
        }
        Err(e) => {
            if json_out {
                println!("{}", json!({ "error": e }));
            }
            eprintln!("occ: {e}");
            2
        }
    }
}

/// Runs `occ approvals`.
pub fn approvals(a: ApprovalsArgs) -> i32 {
    if let Some(id) = &a.statement {
        return super::sign::print_statement(id, &a.scope, a.json);
    }
    if a.watch {
        return super::watch::run(a.json);
    }
    print_list(
        &AdminRequest::Approvals,
        a.json,
        "approvals",
        "no pending requests",
        PendingView::text,
    )
}

/// Prints the broker's list answer to `req` (`occ approvals`, `occ grants`): typed, refusing
/// unknown keys, since a field this occ cannot show must not be hidden; `--json` as sent.
pub(super) fn print_list<T: serde::de::DeserializeOwned>(
    req: &AdminRequest,
    json_out: bool,
    command: &str,
    empty: &str,
    text: fn(&T) -> String,
) -> i32 {
    let result = call(req);
    if !json_out {
        if let Ok((true, v)) = &result {
            if let Err(e) = serde_json::from_value::<Vec<T>>(v.clone()) {
                eprintln!(
                    "occ: the broker's list has something this occ cannot show ({e}); \
                     use the occ that matches the running broker, or `occ {command} --json`"
                );
                return 2;
            }
        }
    }
    finish(json_out, result, |v| {
        let items: Vec<T> = serde_json::from_value(v.clone()).unwrap_or_default();
        if items.is_empty() {
            return format!("{empty}\n");
        }
        items.iter().map(text).collect()
    })
}

/// Reads the approval token: without echo from the terminal, or one line from stdin.
fn read_token(prompt: &str) -> Result<String, String> {
    if std::io::stdin().is_terminal() {
        rpassword::prompt_password(prompt).map_err(|e| format!("cannot read the token: {e}"))
    } else {
        let mut line = String::new();
        std::io::stdin()
            .read_line(&mut line)
            .map_err(|e| format!("cannot read the token from stdin: {e}"))?;
        Ok(line.trim_end_matches(['\n', '\r']).to_string())
    }
}

/// Runs `occ approve`: the request as the broker holds it is printed first, then confirmed
/// (on a terminal, or by `--yes`), then approved bound to the view that was printed.
pub fn approve(a: ApproveArgs) -> i32 {
    let id = super::grants::plain_id(&a.id);
    let for_seconds = match a.for_.as_deref().map(crate::session::parse_duration) {
        None => None,
        Some(Ok(ms)) => Some(ms / 1000),
        Some(Err(e)) => {
            eprintln!("occ approve: {e}");
            return 2;
        }
    };
    if let Some(source) = &a.signature {
        // The signer confirmed by signing; a bare signature's statement is asked for with
        // these terms.
        let scope = if a.session {
            "session".to_string()
        } else if a.uses.is_some() || for_seconds.is_some() {
            crate::signed::Asked::Limited {
                uses: a.uses,
                for_secs: for_seconds,
            }
            .text()
        } else {
            "once".to_string()
        };
        return super::sign::submit(&id, source, &scope, a.json);
    }
    let view = match super::grants::shown_request(&id) {
        Ok(v) => v,
        Err((code, msg)) => {
            if a.json {
                println!("{}", json!({ "error": msg }));
            }
            eprintln!("occ: {msg}");
            return code;
        }
    };
    if !a.json {
        print!("{}", view.text());
    }
    if !a.yes {
        let action = format!("approve #{}", escape_text(&id));
        match super::grants::confirm("Approve? [y/N] ", &action) {
            Ok(true) => {}
            Ok(false) => {
                eprintln!("occ: not approved; #{} stays pending", escape_text(&id));
                return 1;
            }
            Err(msg) => {
                eprintln!("occ approve: {msg}");
                return 2;
            }
        }
    }
    // Ask the broker whether a token is needed only by trying: the token is read first when
    // broker.json names one, so it is never sent where it is not wanted.
    let needs_token = token_configured();
    let token = if needs_token {
        match read_token("occ approval token: ") {
            Ok(t) => Some(t),
            Err(e) => {
                eprintln!("occ: {e}");
                return 2;
            }
        }
    } else {
        None
    };
    let req = AdminRequest::Approve {
        id,
        scope: if a.session {
            Scope::Session
        } else {
            Scope::Once
        },
        confirm_untrusted: a.confirm_untrusted,
        note: a.note,
        token,
        uses: a.uses,
        for_seconds,
        view_sha256: Some(view.view_sha256.clone()).filter(|v| !v.is_empty()),
    };
    finish(a.json, call(&req), approve_text)
}

/// What `occ approve` prints for the broker's answer: a vote towards a quorum, or the grant.
pub(super) fn approve_text(v: &Value) -> String {
    if let Some(voted) = v.get("voted").and_then(|x| x.as_str()) {
        return format!(
            "voted for #{}: {} of {} approvals; another approver must approve it too\n",
            escape_text(voted),
            v["votes"],
            v["quorum"]
        );
    }
    format!(
        "approved #{} ({})\n",
        escape_text(v.get("approved").and_then(|x| x.as_str()).unwrap_or("")),
        escape_text(v.get("terms").and_then(|x| x.as_str()).unwrap_or("once"))
    )
}

/// Whether broker.json (or the legacy env file) configures a token. The system broker is
/// asked (its configuration is root's alone).
fn token_configured() -> bool {
    if crate::layout::Layout::system_selected() {
        return matches!(call(&AdminRequest::Status), Ok((true, v)) if v["token_required"] == true);
    }
    let sec = crate::paths::security_dir();
    let approval = std::fs::read_to_string(sec.join("broker.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
        .and_then(|v| v.get("approval").cloned());
    let in_json = ["token_sha256", "token_argon2id"].iter().any(|k| {
        approval
            .as_ref()
            .and_then(|a| a.get(k))
            .is_some_and(|t| !t.is_null())
    });
    in_json || crate::legacy::token_sha256(&crate::paths::occ_home()).is_some()
}

/// Runs `occ deny`.
pub fn deny(a: DenyArgs) -> i32 {
    if let Some(source) = &a.signature {
        return super::sign::submit(&a.id, source, "deny", a.json);
    }
    finish(
        a.json,
        call(&AdminRequest::Deny {
            id: super::grants::plain_id(&a.id),
            note: a.note,
        }),
        |v| {
            let revoked = if v["revoked"] == true {
                " (its approved grant is revoked)"
            } else {
                ""
            };
            format!(
                "denied #{}{revoked}\n",
                escape_text(v.get("denied").and_then(|x| x.as_str()).unwrap_or(""))
            )
        },
    )
}

/// Runs `occ status`.
pub fn status(a: StatusArgs) -> i32 {
    let r = call(&AdminRequest::Status);
    if let Err(e) = &r {
        if a.json {
            println!("{}", json!({"broker": "down", "error": e}));
        } else {
            println!("broker: down ({e})");
        }
        return 1;
    }
    finish(a.json, r, |v| {
        let mut out = format!(
            "broker: up (pid {}, {} mode)\nhome: {}\npending requests: {}\nlive grants: {}\n",
            v["pid"],
            v["mode"].as_str().unwrap_or("user"),
            v["home"].as_str().unwrap_or(""),
            v["pending"],
            v["grants"]
        );
        if let Some(mode) = v["audit"]["fsync"].as_str() {
            out.push_str(&format!(
                "audit: fsync {mode}{}, {} sync(s) before answers\n",
                if v["audit"]["seal_required"] == true {
                    ", sealed"
                } else {
                    ""
                },
                v["audit"]["syncs_before_answers"]
            ));
        }
        for f in v["audit"]["forward"]
            .as_array()
            .cloned()
            .unwrap_or_default()
        {
            let state = f["state"].as_str().unwrap_or("?");
            let error = match (state, f["last_error"].as_str()) {
                ("retrying", Some(e)) => format!(" (last error: {})", escape_text(e)),
                _ => String::new(),
            };
            out.push_str(&format!(
                "forward {}: {state}{error}, backlog {}, sent {}\n",
                escape_text(f["name"].as_str().unwrap_or("")),
                f["backlog"],
                f["sent"],
            ));
        }
        let sessions = v["sessions"].as_array().cloned().unwrap_or_default();
        if sessions.is_empty() {
            out.push_str("sessions: none\n");
        }
        for s in sessions {
            out.push_str(&format!(
                "session {}: idle {} min, {} grant(s)\n",
                escape_text(s["session_id"].as_str().unwrap_or("")),
                s["idle_minutes"],
                s["grants"]
            ));
        }
        out
    })
}

/// Runs `occ drop`.
pub fn drop_grants(a: DropArgs) -> i32 {
    if a.session.is_none() && !a.all {
        eprintln!("occ drop: say what to drop: --session ID or --all");
        return 2;
    }
    finish(
        a.json,
        call(&AdminRequest::Drop {
            session: a.session,
            all: a.all,
        }),
        |v| format!("dropped {} grant(s)\n", v["dropped"]),
    )
}

/// Runs `occ token set|clear`. The broker does the change, so it is checked and audited in
/// one place: it wants the current token when one is set (read here first: without echo on a
/// terminal, else the first line of stdin), keeps a generated token's SHA-256 or a chosen
/// token's argon2id, and records `token_set`/`token_cleared` with the caller's uid and pid.
pub fn token(a: TokenArgs) -> i32 {
    let (generate, json_out) = match a.action {
        TokenAction::Clear { json } => (None, json),
        TokenAction::Set { generate, json } => (Some(generate), json),
    };
    let current = if token_configured() {
        match read_token("current approval token: ") {
            Ok(t) => Some(t),
            Err(e) => {
                eprintln!("occ token: {e}");
                return 2;
            }
        }
    } else {
        None
    };
    let (sha256, chosen, printed) = match generate {
        None => (None, None, None),
        Some(true) => match crate::token::generate() {
            Ok(t) => (Some(crate::token::hash_hex(&t)), None, Some(t)),
            Err(e) => {
                eprintln!("occ token: cannot generate a token: {e}");
                return 2;
            }
        },
        Some(false) => {
            let first = match read_token("new approval token: ") {
                Ok(t) => t,
                Err(e) => {
                    eprintln!("occ token: {e}");
                    return 2;
                }
            };
            if let Some(why) = crate::token::chosen_problem(&first) {
                eprintln!("occ token: {why}; nothing changed");
                return 2;
            }
            if std::io::stdin().is_terminal() {
                match read_token("again: ") {
                    Ok(again) if again == first => {}
                    Ok(_) => {
                        eprintln!("occ token: the two tokens differ; nothing changed");
                        return 1;
                    }
                    Err(e) => {
                        eprintln!("occ token: {e}");
                        return 2;
                    }
                }
            }
            (None, Some(first), None)
        }
    };
    let req = AdminRequest::Token {
        sha256,
        chosen,
        current,
    };
    let v = match call_starting_broker(&req) {
        Ok((true, v)) => v,
        Ok((false, v)) => {
            eprintln!("occ token: {}", v["error"].as_str().unwrap_or("refused"));
            return 1;
        }
        Err(e) => {
            eprintln!("occ token: {e}");
            return 2;
        }
    };
    let file = v["file"].as_str().unwrap_or_default().to_string();
    if json_out {
        println!(
            "{}",
            json!({"file": file, "token_set": v["token_set"], "token_key": v["token_key"], "token": printed})
        );
        return 0;
    }
    match (v["token_key"].as_str(), &printed) {
        (Some(_), Some(t)) => println!(
            "{t}\nThis is the approval token; it is shown once. Only its SHA-256 is kept in {file}."
        ),
        (Some(_), None) => {
            println!("approval token set; only its salted argon2id hash is kept in {file}")
        }
        (None, _) => println!("approval token cleared in {file}"),
    }
    0
}

/// [`call`], starting a user broker first when none answers (as the sudo shim does): a token
/// change is the broker's to check and audit, never written behind its back.
fn call_starting_broker(req: &AdminRequest) -> Result<(bool, Value), String> {
    if !crate::layout::Layout::system_selected() && UnixStream::connect(socket_path()).is_err() {
        let home = crate::paths::occ_home();
        let occ = crate::install::broker::occ_bin(&home);
        if !occ.is_file() {
            return Err(format!(
                "no broker answers and {} is missing to start one; start it with `occ broker`, \
                 then run this again",
                occ.display()
            ));
        }
        crate::install::broker::spawn(&home, &occ)
            .map_err(|e| format!("no broker answers, and starting one failed: {e}"))?;
    }
    call(req)
}

/// Runs `occ exec`: the request goes through the sudo shim, so it takes exactly the path an
/// agent's `sudo` takes.
pub fn exec(a: ExecArgs) -> i32 {
    let shim = crate::paths::occ_home().join("bin").join("sudo");
    if !shim.is_file() {
        eprintln!(
            "occ exec: the sudo shim is not installed at {}; run `occ install` first",
            shim.display()
        );
        return 2;
    }
    let mut cmd = std::process::Command::new(&shim);
    cmd.arg("--").args(&a.command);
    cmd.env("OPENCLAW_PRIV_REASON", &a.reason);
    if let Some(s) = &a.session_id {
        cmd.env("OPENCLAW_TASK_SESSION_ID", s);
    }
    match cmd.status() {
        Ok(st) => {
            let code = st.code().unwrap_or(1);
            if a.json {
                println!(
                    "{}",
                    json!({"exit_code": st.code(), "signal": std::os::unix::process::ExitStatusExt::signal(&st)})
                );
            }
            code
        }
        Err(e) => {
            eprintln!("occ exec: cannot run {}: {e}", shim.display());
            2
        }
    }
}
