#![forbid(unsafe_code)]
use clap::Parser;

/// occ-scan: listening ports, egress and compliance checks (not built yet).
#[derive(Parser)]
#[command(name = "occ-scan", version)]
struct Cli {}

fn main() {
    let _ = Cli::parse();
    eprintln!("occ-scan: no scans are available in this build yet");
    std::process::exit(2);
}
