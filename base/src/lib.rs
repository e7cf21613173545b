//! Primitives every occ crate but the shim shares, so each exists once: the atomic writer for
//! private files, the opener for files occ trusts, lowercase hex, and the runner of helper
//! programs with a deadline. It holds no policy and
//! must never gain a dependency the broker's privileged path would not accept.
#![forbid(unsafe_code)]

pub mod atomic;
pub mod child;
pub mod hex;
pub mod home;
pub mod trusted;
