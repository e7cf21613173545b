//! The decision: a pure function of (request, policy, broker config). Deny rules beat allow
//! rules, a non-empty allowlist must match, and everything that gets through needs a human's
//! approval or a live grant (which the broker's store holds). [`evaluate`] runs the whole pipeline
//! (grammar → options → resolve → decide) for the broker and `occ explain`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::file::{FileError, PolicyConfig, PromptPolicy};
use crate::flags::{self, Flags};
use crate::grammar::{self, Action, PreserveEnv, SudoRequest};
use crate::grant::{Binding, GrantDigest};
use crate::options;
use crate::resolve::{self, Caller, ResolvedCommand, Target};
use crate::source::Source;
use crate::wrappers::{self, Unwrapped};
use crate::writable::{self, Requester};

/// What happens to a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Decision {
    /// Goes on to the broker's approval stack: a live grant or a human.
    ApprovalRequired,
    /// The broker answers it itself (`-l`, `-v`, `-k`, `-h`, `-V`); nothing runs.
    Allow,
    /// Refused.
    Deny,
}

impl Decision {
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::ApprovalRequired => "approval_required",
            Decision::Allow => "allow",
            Decision::Deny => "deny",
        }
    }
}

/// A decision with its reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// The decision.
    pub decision: Decision,
    /// snake_case reason (`policy_block`, `not_in_allowlist`, `approval_required`, …).
    pub reason_code: &'static str,
    /// The rule that decided, as `deny[3]: rm -rf /*`.
    pub rule: Option<String>,
    /// For grammar, not-found and unknown-user errors, sudo's own first stderr line; otherwise
    /// a sentence for the requester.
    pub message: String,
}

impl Outcome {
    fn deny(reason_code: &'static str, message: impl Into<String>) -> Outcome {
        Outcome {
            decision: Decision::Deny,
            reason_code,
            rule: None,
            message: message.into(),
        }
    }
}

/// A request ready for the decision table: parsed, resolved, with its grant digest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// The parsed command line.
    pub sudo: SudoRequest,
    /// Who runs it.
    pub target: Target,
    /// The command file (for shells, the shell).
    pub command: ResolvedCommand,
    /// The full argv to run, argv\[0\] the resolved absolute path.
    pub argv: Vec<String>,
    /// The directory it runs in.
    pub cwd: PathBuf,
    /// Preserved variables and values.
    pub preserved_env: Vec<(String, String)>,
    /// Listed in code-runners.json (shells always are) at any wrapped level, or wrapped in a
    /// form occ cannot read with certainty; always `flags.runs_arbitrary_code`.
    pub runs_arbitrary_code: bool,
    /// What the command runs through wrappers (`env`, `nice`, `setarch`, …), level by level.
    pub unwrapped: Unwrapped,
    /// The risk flags (DESIGN.md "Risk flags"), of every wrapped level.
    pub flags: Flags,
    /// The arguments naming a path the requester can change (absolute, as the command sees
    /// them); non-empty exactly when `flags.requester_writable_input`.
    pub requester_writable: Vec<String>,
    /// The requester's task session.
    pub session_id: Option<String>,
    /// `OPENCLAW_UNTRUSTED_SOURCE=1`.
    pub untrusted: bool,
    /// What a grant must match.
    pub binding: Binding,
}

impl Request {
    /// The grant digest of this request.
    pub fn digest(&self) -> GrantDigest {
        self.binding.digest()
    }
}

/// The decision table (DESIGN.md "What a decision does"). Pure. Grants are the broker's: a
/// request this table sends to approval may still be covered by a live grant there.
pub fn decide(req: &Request, policy: &PolicyConfig) -> Outcome {
    let args = req.argv.get(1..).unwrap_or_default();
    let secure_path = policy.broker.secure_path.as_str();
    let deny = &policy.commands.deny;
    // The command, then every command it wraps, then what a code runner carries in its
    // arguments: the first deny rule that matches refuses, naming where it matched.
    let blocked = deny
        .first_match(&req.command, args, secure_path)
        .map(|rule| (rule, String::new()))
        .or_else(|| {
            req.unwrapped.levels.iter().find_map(|level| {
                let inner = level.argv.get(1..).unwrap_or_default();
                deny.first_match(&level.command, inner, secure_path)
                    .map(|rule| (rule, format!("{:?} runs inside", level.argv.join(" "))))
            })
        })
        .or_else(|| {
            req.runs_arbitrary_code
                .then(|| nested_deny(policy, &req.argv))
                .flatten()
                .map(|(rule, inner)| (rule, format!("{inner:?} is carried inside")))
        });
    if let Some((rule, inside)) = blocked {
        let mut message = format!("refused by command-policy.json {} ({})", rule.id, rule.text);
        if !inside.is_empty() {
            message.push_str(&format!(": {inside} {}", req.command.path.display()));
        }
        return Outcome {
            decision: Decision::Deny,
            reason_code: "policy_block",
            rule: Some(format!("{}: {}", rule.id, rule.text)),
            message,
        };
    }
    let allow_rule = policy
        .commands
        .allow
        .first_match(&req.command, args, secure_path);
    if !policy.commands.allow.is_empty() && allow_rule.is_none() {
        return Outcome::deny(
            "not_in_allowlist",
            format!(
                "{} with these arguments is not in command-policy.json's allow lists",
                req.command.path.display()
            ),
        );
    }
    let rule = allow_rule.map(|r| format!("{}: {}", r.id, r.text));
    if policy.broker.session.require_session_id && req.session_id.is_none() {
        return Outcome {
            rule,
            ..Outcome::deny(
                "session_required",
                "a task session id is required (OPENCLAW_TASK_SESSION_ID); none was sent",
            )
        };
    }
    Outcome {
        decision: Decision::ApprovalRequired,
        reason_code: "approval_required",
        rule,
        message: "needs a human's approval: an approver runs `occ approve ID`".into(),
    }
}

/// Deny rules also look inside commands that run other commands (`env rm …`,
/// `sh -c 'rm …'`, `xargs rm`): every later argument is tried as the start of an inner
/// command, and arguments containing white space are split like a shell would. This errs
/// towards refusing; allow rules never look inside.
fn nested_deny<'p>(
    policy: &'p PolicyConfig,
    argv: &[String],
) -> Option<(&'p crate::rule::Rule, String)> {
    let mut candidates: Vec<Vec<String>> = Vec::new();
    for i in 1..argv.len() {
        candidates.push(argv[i..].to_vec());
        if argv[i].contains([' ', '\t', '\n', ';', '|', '&']) {
            let spaced = argv[i].replace([';', '|', '&'], " ");
            if let Ok(words) = crate::rule::split_words(&spaced) {
                for j in 0..words.len() {
                    candidates.push(words[j..].to_vec());
                }
            }
        }
    }
    for inner in candidates {
        let Some((first, rest)) = inner.split_first() else {
            continue;
        };
        if first.is_empty() {
            continue;
        }
        let pseudo = ResolvedCommand {
            path: PathBuf::from(first),
            real_path: PathBuf::from(first),
            dev: 0,
            ino: 0,
            via_secure_path: true,
        };
        if let Some(rule) =
            policy
                .commands
                .deny
                .first_match(&pseudo, rest, &policy.broker.secure_path)
        {
            return Some((rule, inner.join(" ")));
        }
    }
    None
}

/// Who asks, from where, with what environment.
#[derive(Clone, Debug)]
pub struct Context {
    /// The caller (from SO_PEERCRED in the broker, the current user in `occ explain`).
    pub caller: Caller,
    /// The caller's cwd.
    pub cwd: PathBuf,
    /// The caller's environment as forwarded (for `--preserve-env` and tightening).
    pub env: BTreeMap<String, String>,
    /// The task session id.
    pub session_id: Option<String>,
    /// Whether the request comes from an untrusted source (`OPENCLAW_UNTRUSTED_SOURCE=1`;
    /// [`evaluate`] adds channel messages when `prompt-policy.json` says so).
    pub untrusted: bool,
    /// Where OpenClaw says the run came from (channel, sender, chat, agent, session key).
    pub source: Option<Source>,
    /// Whether the caller's stdin is a terminal (the shim's isatty in the broker, occ's own
    /// stdin in `occ explain`). `false` unless set: not knowing is treated as "the requester
    /// may be feeding it".
    pub stdin_is_tty: bool,
}

impl Context {
    /// Builds a context whose session id and untrusted flag come from the caller's
    /// `OPENCLAW_TASK_SESSION_ID` (the original tool's name; `OPENCLAW_SESSION_ID` is accepted
    /// too) and `OPENCLAW_UNTRUSTED_SOURCE=1`.
    pub fn new(caller: Caller, cwd: PathBuf, env: BTreeMap<String, String>) -> Context {
        let session_id = ["OPENCLAW_TASK_SESSION_ID", "OPENCLAW_SESSION_ID"]
            .iter()
            .find_map(|k| env.get(*k).filter(|s| !s.is_empty()))
            .cloned();
        let untrusted = env.get("OPENCLAW_UNTRUSTED_SOURCE").map(String::as_str) == Some("1");
        let source = Source::from_env(&env);
        Context {
            caller,
            cwd,
            env,
            session_id,
            untrusted,
            source,
            stdin_is_tty: false,
        }
    }

    /// The same context, saying whether the caller's stdin is a terminal.
    pub fn with_stdin_tty(mut self, stdin_is_tty: bool) -> Context {
        self.stdin_is_tty = stdin_is_tty;
        self
    }

    /// Whether the request counts as untrusted under `prompt`: `OPENCLAW_UNTRUSTED_SOURCE=1`,
    /// or a run that started from a channel message when `channel_requests_untrusted` is on.
    pub fn untrusted_under(&self, prompt: &PromptPolicy) -> bool {
        self.untrusted
            || (prompt.channel_requests_untrusted
                && self.source.as_ref().is_some_and(Source::from_channel))
    }

    /// Reads one caller variable.
    pub fn var(&self, name: &str) -> Option<String> {
        self.env.get(name).cloned()
    }
}

/// The result of [`evaluate`]: as much of the request as could be worked out, and the outcome.
#[derive(Clone, Debug)]
pub struct Evaluation {
    /// The parsed request, unless the grammar refused it.
    pub sudo: Option<SudoRequest>,
    /// The full stderr text sudo would print for a grammar error.
    pub usage_text: Option<String>,
    /// The target, when it resolved.
    pub target: Option<Target>,
    /// The fully resolved request, when it got that far.
    pub request: Option<Request>,
    /// The decision.
    pub outcome: Outcome,
}

impl Evaluation {
    /// Exit status for `occ explain`: 1 on deny, else 0.
    pub fn exit_code(&self) -> i32 {
        i32::from(self.outcome.decision == Decision::Deny)
    }
}

fn lexical_join(cwd: &Path, dir: &str) -> PathBuf {
    let p = Path::new(dir);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        cwd.join(p)
    }
}

/// Runs the whole pipeline on the words after `sudo`. `policy` is the result of
/// [`crate::file::load`]: a load failure is a deny (`policy_invalid` or
/// `policy_files_missing`), never an allow.
pub fn evaluate<S: AsRef<str>>(
    args: &[S],
    ctx: &Context,
    policy: &Result<PolicyConfig, Vec<FileError>>,
) -> Evaluation {
    let mut ev = Evaluation {
        sudo: None,
        usage_text: None,
        target: None,
        request: None,
        outcome: Outcome::deny("usage", ""),
    };
    let sudo = match grammar::parse(args) {
        Ok(r) => r,
        Err(e) => {
            ev.outcome = Outcome::deny("usage", e.first_line());
            ev.usage_text = Some(e.stderr_text());
            return ev;
        }
    };
    ev.sudo = Some(sudo.clone());
    let policy = match policy {
        Ok(p) => p,
        Err(errs) => {
            let code = if errs
                .iter()
                .all(|e| e.reason_code() == "policy_files_missing")
            {
                "policy_files_missing"
            } else {
                "policy_invalid"
            };
            let msg = errs.first().map(|e| e.to_string()).unwrap_or_default();
            ev.outcome = Outcome::deny(code, msg);
            return ev;
        }
    };
    let untrusted = ctx.untrusted_under(&policy.prompt);
    let env_names: Vec<String> = ctx.env.keys().cloned().collect();
    if let Err(r) = options::check(&sudo, &policy.broker, &env_names) {
        ev.outcome = Outcome::deny(r.reason_code, r.message);
        return ev;
    }
    let action = sudo.action();
    if matches!(
        action,
        Action::List
            | Action::Validate
            | Action::ResetTimestamp
            | Action::RemoveTimestamp
            | Action::Help
            | Action::Version
    ) {
        ev.outcome = Outcome {
            decision: Decision::Allow,
            reason_code: "answered_by_broker",
            rule: None,
            message: match action {
                Action::Validate => {
                    "occ approves each command; there is nothing to validate".into()
                }
                Action::ResetTimestamp | Action::RemoveTimestamp => {
                    "the broker drops this caller's grants".into()
                }
                Action::List => "the broker lists what the policy lets this caller request".into(),
                _ => "the broker prints occ's help or version and names the real sudo".into(),
            },
        };
        return ev;
    }
    let target = match resolve::resolve_target(&sudo, &ctx.caller) {
        Ok(t) => t,
        Err(e) => {
            ev.outcome = Outcome::deny(e.reason_code(), e.to_string());
            return ev;
        }
    };
    ev.target = Some(target.clone());
    let secure_path = &policy.broker.secure_path;
    let (command, argv) = match action {
        Action::Shell | Action::LoginShell => {
            // As sudo: `-s` runs $SHELL when set, else the caller's login shell; `-i` runs
            // the target user's login shell.
            let env_shell = ctx
                .env
                .get("SHELL")
                .filter(|s| !s.is_empty())
                .map(PathBuf::from);
            let shell = if action == Action::Shell {
                env_shell.as_ref().unwrap_or(&ctx.caller.shell)
            } else {
                &target.shell
            };
            let shell_s = shell.to_string_lossy().into_owned();
            match resolve::resolve_command(&shell_s, secure_path, &ctx.cwd) {
                Ok(c) => {
                    let mut argv = vec![c.path.to_string_lossy().into_owned()];
                    if !sudo.command.is_empty() {
                        argv.push("-c".into());
                        argv.push(grammar::shell_command_string(&sudo.command));
                    }
                    (c, argv)
                }
                Err(e) => {
                    ev.outcome = Outcome::deny(e.reason_code(), e.to_string());
                    return ev;
                }
            }
        }
        _ => {
            let Some(name) = sudo.command.first() else {
                ev.outcome = Outcome::deny("usage", grammar::USAGE.lines().next().unwrap_or(""));
                return ev;
            };
            match resolve::resolve_command(name, secure_path, &ctx.cwd) {
                Ok(c) => {
                    let mut argv = vec![c.path.to_string_lossy().into_owned()];
                    argv.extend(sudo.command.iter().skip(1).cloned());
                    (c, argv)
                }
                Err(e) => {
                    ev.outcome = Outcome::deny(e.reason_code(), e.to_string());
                    return ev;
                }
            }
        }
    };
    let cwd = match &sudo.chdir {
        Some(d) => lexical_join(&ctx.cwd, d),
        None => ctx.cwd.clone(),
    };
    let args = argv.get(1..).unwrap_or_default();
    let unwrapped = wrappers::unwrap(&command, args, &cwd, secure_path);
    // Every level counts: wrappers stay code runners themselves (a grant for one never covers
    // more than one run), what they wrap adds its flags, and a form occ could not read runs code.
    let (mut catalogued_code, mut writes_files) =
        flags::command_flags(&command, args, &policy.code_runners, secure_path);
    for level in &unwrapped.levels {
        let (code, writes) = flags::command_flags(
            &level.command,
            level.argv.get(1..).unwrap_or_default(),
            &policy.code_runners,
            secure_path,
        );
        catalogued_code |= code;
        writes_files |= writes;
    }
    let runs_arbitrary_code = matches!(action, Action::Shell | Action::LoginShell)
        || unwrapped.unreadable.is_some()
        || catalogued_code;
    let requester_writable = writable::requester_writable(args, &cwd, &Requester::of(&ctx.caller));
    let risk = Flags {
        runs_arbitrary_code,
        writes_files,
        requester_writable_input: !requester_writable.is_empty(),
        stdin_from_requester: writes_files && !ctx.stdin_is_tty,
        untrusted,
    };
    let preserved_env: Vec<(String, String)> = match &sudo.preserve_env {
        PreserveEnv::No => Vec::new(),
        PreserveEnv::All => ctx
            .env
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        PreserveEnv::List(names) => names
            .iter()
            .filter_map(|n| ctx.env.get(n).map(|v| (n.clone(), v.clone())))
            .collect(),
    };
    let mut flags = String::new();
    for (on, c) in [
        (sudo.set_home, 'H'),
        (sudo.preserve_groups, 'P'),
        (action == Action::Shell, 's'),
        (action == Action::LoginShell, 'i'),
    ] {
        if on {
            flags.push(c);
        }
    }
    let binding = Binding {
        caller_uid: ctx.caller.uid,
        target_uid: target.uid,
        target_gid: target.gid,
        path: command.path.to_string_lossy().into_owned(),
        dev: command.dev,
        ino: command.ino,
        argv: argv.clone(),
        cwd: cwd.to_string_lossy().into_owned(),
        env: sudo.env.clone(),
        preserved_env: preserved_env.clone(),
        session_id: ctx.session_id.clone(),
        flags,
    };
    let req = Request {
        sudo,
        target,
        command,
        argv,
        cwd,
        preserved_env,
        runs_arbitrary_code,
        unwrapped,
        flags: risk,
        requester_writable,
        session_id: ctx.session_id.clone(),
        untrusted,
        binding,
    };
    ev.outcome = decide(&req, policy);
    ev.request = Some(req);
    ev
}
