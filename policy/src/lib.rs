//! occ's policy engine: sudo's command-line grammar, the policy files, safe command resolution
//! and the pure decision function. It never executes anything.
//!
//! The broker calls, in order:
//! - [`file::load`] → [`PolicyConfig`] (or every file problem; a problem is a deny),
//! - [`decide::evaluate`] with the raw words after `sudo` and a [`decide::Context`]
//!   → [`decide::Evaluation`] (parse, option table, resolution, decision table),
//!   (its [`flags::Flags`]: the catalogue's per-level [`flags::command_flags`] and
//!   [`writable::requester_writable`]),
//! - [`grant::Binding::digest`] of the evaluated request: the key the broker's grant store
//!   files an approval under (grants themselves live only in the broker),
//! - [`explain::to_json`] for `occ explain` and audit details.
//!
//! The pieces are public for callers that need one step: [`grammar::parse`],
//! [`options::check`], [`resolve::resolve_command`], [`resolve::resolve_target`],
//! [`decide::decide`], [`grant::Binding::digest`].
#![forbid(unsafe_code)]

pub mod boundary;
pub mod decide;
pub mod explain;
pub mod file;
pub mod flags;
pub mod grammar;
pub mod grant;
pub mod notifier;
pub mod openclaw;
pub mod options;
pub mod resolve;
pub mod rule;
pub mod source;
pub mod wrappers;
pub mod writable;

pub use decide::{decide, evaluate, Context, Decision, Evaluation, Outcome, Request};
pub use file::{
    load, BrokerConfig, CodeRunners, CommandPolicy, FileError, PolicyConfig, PromptPolicy,
};
pub use flags::{command_flags, Flags};
pub use grammar::{parse, Action, PreserveEnv, SudoRequest, UsageError};
pub use grant::{Binding, GrantDigest};
pub use resolve::{Caller, ResolveError, ResolvedCommand, Target};
pub use source::Source;
pub use writable::{requester_writable, Requester};
