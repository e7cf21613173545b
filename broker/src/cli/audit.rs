//! `occ audit` (being written).

/// Arguments of `occ audit`.
#[derive(clap::Args, Debug)]
pub struct AuditArgs {}

/// Runs `occ audit`.
pub fn run(_args: AuditArgs) -> i32 {
    eprintln!("occ audit: not available in this build");
    2
}
