//! The PAM-style approval stack: modules with control flags, evaluated in order. It owns only
//! the control-flag semantics; what each module checks lives with the caller. It must never
//! end in success when any `required` or `requisite` module failed.

use std::fmt;

/// One module of the stack.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Module {
    /// Required policy files exist, when configured.
    Files,
    /// The command-policy decision table.
    Policy,
    /// The session id is present when required.
    Session,
    /// Untrusted-source requests need `--confirm-untrusted` from the approver.
    Untrusted,
    /// A live grant whose digest matches.
    Grant,
    /// A human decision through a channel.
    Approve,
    /// The approver typed the token, when one is configured.
    Token,
}

impl Module {
    /// The name used in `broker.json`.
    pub fn as_str(self) -> &'static str {
        match self {
            Module::Files => "files",
            Module::Policy => "policy",
            Module::Session => "session",
            Module::Untrusted => "untrusted",
            Module::Grant => "grant",
            Module::Approve => "approve",
            Module::Token => "token",
        }
    }

    fn parse(s: &str) -> Option<Module> {
        Some(match s {
            "files" => Module::Files,
            "policy" => Module::Policy,
            "session" => Module::Session,
            "untrusted" => Module::Untrusted,
            "grant" => Module::Grant,
            "approve" => Module::Approve,
            "token" => Module::Token,
            _ => return None,
        })
    }
}

/// PAM control flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Control {
    /// A failure refuses at once.
    Requisite,
    /// A failure refuses once the stack has finished.
    Required,
    /// A success ends the stack, provided nothing failed before it; a failure is ignored.
    Sufficient,
}

/// One `module:control` entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    pub module: Module,
    pub control: Control,
}

impl fmt::Display for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = match self.control {
            Control::Requisite => "requisite",
            Control::Required => "required",
            Control::Sufficient => "sufficient",
        };
        write!(f, "{}:{c}", self.module.as_str())
    }
}

/// Parses `approval.stack` from `broker.json`. Every privileged run must pass a human or a
/// grant, so a stack without `approve` is refused, as is a duplicate module.
pub fn parse(entries: &[String]) -> Result<Vec<Entry>, String> {
    let mut out: Vec<Entry> = Vec::with_capacity(entries.len());
    for (i, e) in entries.iter().enumerate() {
        let (m, c) = e.split_once(':').ok_or_else(|| {
            format!("approval.stack[{i}]: {e:?} is not MODULE:CONTROL (e.g. \"policy:requisite\")")
        })?;
        let module = Module::parse(m).ok_or_else(|| {
            format!(
                "approval.stack[{i}]: unknown module {m:?}; use files, policy, session, \
                 untrusted, grant, approve or token"
            )
        })?;
        let control = match c {
            "requisite" => Control::Requisite,
            "required" => Control::Required,
            "sufficient" => Control::Sufficient,
            _ => return Err(format!(
                "approval.stack[{i}]: unknown control {c:?}; use requisite, required or sufficient"
            )),
        };
        if out.iter().any(|x| x.module == module) {
            return Err(format!("approval.stack[{i}]: module {m:?} is listed twice"));
        }
        out.push(Entry { module, control });
    }
    match out.iter().find(|e| e.module == Module::Approve) {
        Some(e) if e.control != Control::Sufficient => Ok(out),
        Some(_) => Err("approval.stack: approve must be required or requisite, never sufficient".into()),
        None => Err("approval.stack: the approve module is missing; every privileged run needs a human's approval or a live grant".into()),
    }
}

/// What one module found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Success,
    Failure {
        reason_code: String,
        message: String,
    },
    /// The module cannot finish now: the request is waiting for a human (`approve`).
    Pending {
        id: String,
    },
}

impl Verdict {
    /// A failure with a reason code and message.
    pub fn fail(reason_code: &str, message: impl Into<String>) -> Verdict {
        Verdict::Failure {
            reason_code: reason_code.to_string(),
            message: message.into(),
        }
    }
}

/// How the stack ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Every required module passed, or a sufficient one did with nothing failed before it.
    Allow { decided_by: Module },
    /// The first failure that counts, and the module it came from.
    Deny {
        module: Module,
        reason_code: String,
        message: String,
    },
    /// Waiting for a human; nothing failed so far.
    Pending { id: String },
}

/// Runs the stack. `run` is called for each module in order until the outcome is known; a
/// module after a deciding one is never run (so `approve` is never asked after a refusal by a
/// requisite module, or after a sufficient grant).
pub fn evaluate(stack: &[Entry], mut run: impl FnMut(Module) -> Verdict) -> Outcome {
    let mut first_failure: Option<(Module, String, String)> = None;
    let mut last_success: Option<Module> = None;
    for e in stack {
        if e.module == Module::Approve && first_failure.is_some() {
            // Never queue a human decision for a request that is already refused.
            break;
        }
        match run(e.module) {
            Verdict::Success => {
                last_success = Some(e.module);
                if e.control == Control::Sufficient && first_failure.is_none() {
                    return Outcome::Allow {
                        decided_by: e.module,
                    };
                }
            }
            Verdict::Failure {
                reason_code,
                message,
            } => match e.control {
                Control::Sufficient => {}
                Control::Required => {
                    first_failure.get_or_insert((e.module, reason_code, message));
                }
                Control::Requisite => {
                    let (module, reason_code, message) =
                        first_failure.unwrap_or((e.module, reason_code, message));
                    return Outcome::Deny {
                        module,
                        reason_code,
                        message,
                    };
                }
            },
            Verdict::Pending { id } => {
                if first_failure.is_none() {
                    return Outcome::Pending { id };
                }
            }
        }
    }
    match (first_failure, last_success) {
        (Some((module, reason_code, message)), _) => Outcome::Deny {
            module,
            reason_code,
            message,
        },
        (None, Some(decided_by)) => Outcome::Allow { decided_by },
        (None, None) => Outcome::Deny {
            module: Module::Approve,
            reason_code: "approval_required".into(),
            message: "no module of the approval stack succeeded".into(),
        },
    }
}

/// The default stack from DESIGN.md.
pub fn default_stack() -> Vec<Entry> {
    let names: Vec<String> = [
        "files:requisite",
        "policy:requisite",
        "session:requisite",
        "untrusted:required",
        "grant:sufficient",
        "approve:required",
        "token:required",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    // The literal above is valid; a failure here is a programming error caught by the tests.
    parse(&names).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn run_with(results: &[(Module, Verdict)]) -> (Outcome, Vec<Module>) {
        let map: HashMap<Module, Verdict> = results.iter().cloned().collect();
        let mut ran = Vec::new();
        let out = evaluate(&default_stack(), |m| {
            ran.push(m);
            map.get(&m).cloned().unwrap_or(Verdict::Success)
        });
        (out, ran)
    }

    #[test]
    fn default_stack_parses_in_design_order() {
        let s: Vec<String> = default_stack().iter().map(|e| e.to_string()).collect();
        assert_eq!(
            s,
            [
                "files:requisite",
                "policy:requisite",
                "session:requisite",
                "untrusted:required",
                "grant:sufficient",
                "approve:required",
                "token:required"
            ]
        );
    }

    #[test]
    fn requisite_failure_refuses_at_once() {
        let (out, ran) = run_with(&[(Module::Policy, Verdict::fail("policy_block", "x"))]);
        assert!(
            matches!(out, Outcome::Deny { module: Module::Policy, ref reason_code, .. } if reason_code == "policy_block")
        );
        assert_eq!(ran, [Module::Files, Module::Policy]);
    }

    #[test]
    fn live_grant_is_sufficient_and_skips_the_human() {
        let (out, ran) = run_with(&[]);
        assert_eq!(
            out,
            Outcome::Allow {
                decided_by: Module::Grant
            }
        );
        assert!(!ran.contains(&Module::Approve));
    }

    #[test]
    fn failed_grant_goes_on_to_approval() {
        let (out, ran) = run_with(&[
            (Module::Grant, Verdict::fail("no_grant", "")),
            (Module::Approve, Verdict::Pending { id: "abc".into() }),
        ]);
        assert_eq!(out, Outcome::Pending { id: "abc".into() });
        assert!(!ran.contains(&Module::Token));
    }

    #[test]
    fn required_failure_before_a_sufficient_success_still_refuses() {
        let (out, ran) = run_with(&[(
            Module::Untrusted,
            Verdict::fail("untrusted_source_block", "u"),
        )]);
        assert!(matches!(
            out,
            Outcome::Deny {
                module: Module::Untrusted,
                ..
            }
        ));
        assert!(
            !ran.contains(&Module::Approve),
            "never queues a refused request"
        );
    }

    #[test]
    fn token_failure_after_approval_refuses() {
        let (out, _) = run_with(&[
            (Module::Grant, Verdict::fail("no_grant", "")),
            (Module::Token, Verdict::fail("token_failed", "t")),
        ]);
        assert!(matches!(
            out,
            Outcome::Deny {
                module: Module::Token,
                ..
            }
        ));
    }

    #[test]
    fn approval_and_token_allow() {
        let (out, _) = run_with(&[(Module::Grant, Verdict::fail("no_grant", ""))]);
        assert_eq!(
            out,
            Outcome::Allow {
                decided_by: Module::Token
            }
        );
    }

    macro_rules! bad_stacks {
        ($($name:ident: $stack:expr => $needle:expr;)*) => {$(
            #[test]
            fn $name() {
                let s: Vec<String> = $stack.iter().map(|s: &&str| s.to_string()).collect();
                let err = parse(&s).unwrap_err();
                assert!(err.contains($needle), "{err}");
            }
        )*};
    }

    bad_stacks! {
        stack_without_approve_is_refused: ["policy:requisite", "grant:sufficient"] => "approve module is missing";
        sufficient_approve_is_refused: ["approve:sufficient"] => "never sufficient";
        unknown_module_is_named: ["approve:required", "magic:required"] => "stack[1]: unknown module \"magic\"";
        unknown_control_is_named: ["approve:optional"] => "unknown control \"optional\"";
        missing_colon_is_named: ["approve"] => "stack[0]";
        duplicate_module_is_refused: ["approve:required", "approve:requisite"] => "listed twice";
    }
}
