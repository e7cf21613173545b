//! The PAM-style approval stack: modules with control flags, evaluated in order. It owns only
//! the control-flag semantics; what each module checks lives with the caller. It must never
//! end in success when any `required` or `requisite` module failed.

pub use occ_policy::file::{Control, Module, StackEntry as Entry};

use crate::gate::refusal::Refusal;

/// Every privileged run must pass a human or a grant: a stack without a required or requisite
/// `approve` is a broken configuration, refused before anything is decided.
pub fn check(stack: &[Entry]) -> Result<(), String> {
    match stack.iter().find(|e| e.module == Module::Approve) {
        Some(e) if e.control != Control::Sufficient => Ok(()),
        Some(_) => Err("broker.json approval.stack: approve must be required or requisite, never sufficient".into()),
        None => Err("broker.json approval.stack: the approve module is missing; every privileged run needs a human's approval or a live grant".into()),
    }
}

/// What one module found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Success,
    Failure {
        reason: Refusal,
        message: String,
    },
    /// The module cannot finish now: the request is waiting for a human (`approve`).
    Pending {
        id: String,
    },
}

impl Verdict {
    /// A failure with a reason code and message.
    pub fn fail(reason: Refusal, message: impl Into<String>) -> Verdict {
        Verdict::Failure {
            reason,
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
        reason: Refusal,
        message: String,
    },
    /// Waiting for a human; nothing failed so far.
    Pending { id: String },
}

/// Runs the stack. `run` is called for each module in order until the outcome is known; a
/// module after a deciding one is never run (so `approve` is never asked after a refusal by a
/// requisite module, or after a sufficient grant).
pub fn evaluate(stack: &[Entry], mut run: impl FnMut(Module) -> Verdict) -> Outcome {
    let mut first_failure: Option<(Module, Refusal, String)> = None;
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
            Verdict::Failure { reason, message } => match e.control {
                Control::Sufficient => {}
                Control::Required => {
                    first_failure.get_or_insert((e.module, reason, message));
                }
                Control::Requisite => {
                    let (module, reason, message) =
                        first_failure.unwrap_or((e.module, reason, message));
                    return Outcome::Deny {
                        module,
                        reason,
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
        (Some((module, reason, message)), _) => Outcome::Deny {
            module,
            reason,
            message,
        },
        (None, Some(decided_by)) => Outcome::Allow { decided_by },
        (None, None) => Outcome::Deny {
            module: Module::Approve,
            reason: Refusal::Policy("approval_required"),
            message: "no module of the approval stack succeeded".into(),
        },
    }
}

/// The default stack from DESIGN.md.
pub fn default_stack() -> Vec<Entry> {
    occ_policy::file::ApprovalConfig::default().stack
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
    fn default_stack_is_in_design_order() {
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
        assert!(check(&default_stack()).is_ok());
    }

    #[test]
    fn requisite_failure_refuses_at_once() {
        let (out, ran) = run_with(&[(
            Module::Policy,
            Verdict::fail(Refusal::Policy("policy_block"), "x"),
        )]);
        assert!(
            matches!(out, Outcome::Deny { module: Module::Policy, reason, .. } if reason == Refusal::Policy("policy_block"))
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
            (Module::Grant, Verdict::fail(Refusal::NoGrant, "")),
            (Module::Approve, Verdict::Pending { id: "abc".into() }),
        ]);
        assert_eq!(out, Outcome::Pending { id: "abc".into() });
        assert!(!ran.contains(&Module::Token));
    }

    #[test]
    fn required_failure_before_a_sufficient_success_still_refuses() {
        let (out, ran) = run_with(&[(
            Module::Untrusted,
            Verdict::fail(Refusal::Policy("untrusted_source_block"), "u"),
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
            (Module::Grant, Verdict::fail(Refusal::NoGrant, "")),
            (Module::Token, Verdict::fail(Refusal::TokenFailed, "t")),
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
        let (out, _) = run_with(&[(Module::Grant, Verdict::fail(Refusal::NoGrant, ""))]);
        assert_eq!(
            out,
            Outcome::Allow {
                decided_by: Module::Token
            }
        );
    }

    #[test]
    fn stack_without_a_required_approve_is_refused() {
        let mut s = default_stack();
        s.retain(|e| e.module != Module::Approve);
        assert!(check(&s).unwrap_err().contains("approve module is missing"));
        let mut s = default_stack();
        for e in &mut s {
            if e.module == Module::Approve {
                e.control = Control::Sufficient;
            }
        }
        assert!(check(&s).unwrap_err().contains("never sufficient"));
    }
}
