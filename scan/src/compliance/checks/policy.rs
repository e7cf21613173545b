//! The policies the broker enforces: untrusted-source confirmation, a command policy that
//! loads and allows no shell with any arguments, task sessions, and the approver token.

use occ_policy::file::Module;
use occ_policy::rule::ListKind;
use occ_policy::CommandPolicy;

use super::ctx::{broker_cfg, broker_cfg_installed, rule_counts, stack_requires, stack_text, Ctx};
use super::verdict::Verdict;
use crate::compliance::files;

pub(super) fn prompt_injection_controls(c: &Ctx) -> Verdict {
    let p = match &c.policy.prompt {
        Err(e) if files::unreadable(e) => return Verdict::not_assessed(files::describe(e)),
        Err(e) => {
            return Verdict::violation(
                "prompt-policy.json does not parse",
                "the untrusted-source control is not configured",
                "write {\"require_confirmation_for_untrusted\": true}",
            )
            .ev(files::describe(e))
        }
        Ok(None) => return Verdict::violation(
            "no prompt-policy.json",
            "requests from untrusted sources need no extra confirmation",
            "write {\"require_confirmation_for_untrusted\": true} to security/prompt-policy.json",
        ),
        Ok(Some(p)) => p,
    };
    if !p.require_confirmation_for_untrusted {
        return Verdict::violation(
            "require_confirmation_for_untrusted is false",
            "requests from untrusted sources need no extra confirmation",
            "set require_confirmation_for_untrusted to true",
        );
    }
    let (cfg, src) = match broker_cfg_installed(c) {
        Ok(x) => x,
        Err(v) => return v,
    };
    let stack = &cfg.approval.stack;
    if !stack_requires(stack, Module::Untrusted) {
        return Verdict::partial(
            "the policy asks for confirmation but the broker's stack skips the untrusted module",
            "the policy is not enforced",
            "add \"untrusted:required\" to broker.json approval.stack",
        )
        .ev(format!("approval stack ({src}): {}", stack_text(stack)));
    }
    Verdict::compliant("untrusted-source requests need explicit confirmation")
        .ev(format!("approval stack ({src}) includes untrusted"))
}

/// Allow rules that let a shell or interpreter run with any arguments.
pub fn unsafe_allow_rules(p: &CommandPolicy) -> Vec<String> {
    p.allow
        .rules()
        .iter()
        .filter(|r| r.id.list == ListKind::Allow)
        .map(|r| &r.text)
        .filter(|rule| {
            let words: Vec<&str> = rule.split_whitespace().collect();
            let Some(first) = words.first() else {
                return false;
            };
            let name = first.trim_matches(|c| c == '"' || c == '\'');
            let name = name.rsplit('/').next().unwrap_or(name);
            files::is_code_runner(name)
                && (words.len() == 1 || words.iter().skip(1).any(|w| w.contains('*')))
        })
        .cloned()
        .collect()
}

pub(super) fn command_policy_enforced(c: &Ctx) -> Verdict {
    let p = match &c.policy.command {
        Err(e) if files::unreadable(e) => return Verdict::not_assessed(files::describe(e)),
        Err(e) => {
            return Verdict::violation(
                "command-policy.json does not load",
                "the broker refuses every request until the policy parses",
                "fix what the error names",
            )
            .evs(e.iter().map(ToString::to_string))
        }
        Ok(None) => {
            return Verdict::violation(
                "no command-policy.json",
                "nothing limits which commands the agent may request",
                "write a version 2 command-policy.json (see references/)",
            )
        }
        Ok(Some(p)) => p,
    };
    let [allow, allow_exact, deny, deny_exact] = rule_counts(p);
    let ev = format!(
        "version 2: {allow} allow, {deny} deny, {allow_exact} allow_exact, {deny_exact} deny_exact"
    );
    let bad = unsafe_allow_rules(p);
    if !bad.is_empty() {
        return Verdict::violation(
            format!(
                "allow rules let shells, interpreters or hook-running tools run anything: {}",
                bad.join(" | ")
            ),
            "one approval of such a rule runs arbitrary code as root",
            "allow specific commands with fixed arguments instead",
        )
        .ev(ev);
    }
    if p.allow.is_empty() && p.deny.is_empty() {
        return Verdict::partial(
            "the policy has no rules",
            "every command goes to a human with no policy guidance",
            "add allow rules for what the agent needs and deny rules for what it must never do",
        )
        .ev(ev);
    }
    if !c.broker_refuses.is_empty() {
        return Verdict::violation(
            "the broker's own loader refuses the policy files",
            "the broker fails closed: every request is refused until the files load",
            "fix each problem named in the evidence (`occ policy check` shows them too)",
        )
        .ev(ev)
        .evs(c.broker_refuses.iter().take(5).cloned());
    }
    Verdict::compliant("the command policy parses and is safe")
        .ev(ev)
        .ev("occ-policy loads every policy file as the broker would")
}

pub(super) fn session_boundary_enforced(c: &Ctx) -> Verdict {
    let (cfg, src) = match broker_cfg(c) {
        Ok(x) => x,
        Err(v) => return v,
    };
    let require = cfg.session.require_session_id;
    let idle = cfg.session.idle_timeout_minutes;
    let ev = format!("{src}: session.require_session_id={require}, idle_timeout_minutes={idle}");
    let legacy = matches!(&c.env, Ok(Some(e)) if e.get("OPENCLAW_REQUIRE_SESSION_ID").map(String::as_str) == Some("1"));
    if !require {
        if legacy {
            return Verdict::partial(
                "only the legacy env file asks for a session id",
                "the broker reads broker.json, not the env file",
                "set session.require_session_id to true in broker.json",
            )
            .ev(ev);
        }
        return Verdict::violation(
            "requests need no task session id",
            "grants are not tied to the task that asked for them",
            "set session.require_session_id to true in broker.json",
        )
        .ev(ev);
    }
    if idle == 0 || idle > 30 {
        return Verdict::partial(
            format!("session id required, idle timeout {idle} min"),
            "session grants outlive 30 idle minutes",
            "set session.idle_timeout_minutes to 30 or less",
        )
        .ev(ev);
    }
    Verdict::compliant("grants are bound to a task session").ev(ev)
}

pub(super) fn multi_factor_approval(c: &Ctx) -> Verdict {
    let (cfg, src) = match broker_cfg(c) {
        Ok(x) => x,
        Err(v) => return v,
    };
    let plaintext = matches!(&c.env, Ok(Some(e)) if e.get("OPENCLAW_APPROVAL_TOKEN").is_some_and(|t| !t.is_empty()));
    let stack = &cfg.approval.stack;
    // A generated token's SHA-256 or a chosen token's argon2id: either one is a token.
    let stored = match (&cfg.approval.token_sha256, &cfg.approval.token_argon2id) {
        (_, Some(t)) if !t.is_empty() => Some("token_argon2id"),
        (Some(t), _) if !t.is_empty() => Some("token_sha256"),
        _ => None,
    };
    match stored {
        None => {
            if plaintext {
                return Verdict::partial(
                    "only a legacy plaintext token in the env file",
                    "the agent can read the token, so it can approve itself",
                    "run `occ token set --generate` and delete OPENCLAW_APPROVAL_TOKEN from the env file",
                )
                .ev(format!("{src}: approval.token_sha256 unset"));
            }
            Verdict::violation(
                "no approver token",
                "an agent that runs `occ approve` approves its own requests",
                "run `occ token set --generate` and keep the token away from the agent",
            )
            .ev(format!("{src}: approval.token_sha256 unset"))
        }
        Some(key) => {
            let ev = format!("{src}: {key} set; stack: {}", stack_text(stack));
            if !stack_requires(stack, Module::Token) {
                return Verdict::partial(
                    "a token is set but the stack does not require it",
                    "approvals do not ask for the token",
                    "add \"token:required\" to approval.stack",
                )
                .ev(ev);
            }
            if plaintext {
                return Verdict::partial(
                    "token hash set, but a plaintext token is still in the env file",
                    "the agent can read the plaintext token",
                    "delete OPENCLAW_APPROVAL_TOKEN from the env file",
                )
                .ev(ev);
            }
            Verdict::compliant("approvals need the approver token").ev(ev)
        }
    }
}
