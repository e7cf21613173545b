#![forbid(unsafe_code)]
//! The `occ-scan` binary: parses arguments and hands over to the library.

use clap::Parser;

fn main() {
    let cli = occ_scan::cli::Cli::parse();
    std::process::exit(occ_scan::cli::run(cli));
}
