//! `occ explain` (being written).

/// Arguments of `occ explain`.
#[derive(clap::Args, Debug)]
pub struct ExplainArgs {}

/// Runs `occ explain`.
pub fn run(_args: ExplainArgs) -> i32 {
    eprintln!("occ explain: not available in this build");
    2
}
