//! The occ broker and its admin CLI. The broker decides, asks a human, and writes every step to
//! the audit log; it must fail closed on any broken file, failed write or malformed request.
#![deny(unsafe_code)]

pub mod cli;
pub mod clock;
pub mod daemon;
pub mod escape;
pub mod forward;
pub mod gate;
pub mod install;
pub mod layout;
pub mod legacy;
pub mod paths;
pub mod session;
pub mod signed;
pub mod stack;
// All FFI lives here; every unsafe block carries a SAFETY comment.
#[allow(unsafe_code)]
mod sys;
pub mod token;
pub mod view;
