//! `occ policy` (being written).

/// Arguments of `occ policy`.
#[derive(clap::Args, Debug)]
pub struct PolicyArgs {}

/// Runs `occ policy`.
pub fn run(_args: PolicyArgs) -> i32 {
    eprintln!("occ policy: not available in this build");
    2
}
