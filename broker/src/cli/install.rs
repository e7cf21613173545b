//! `occ install` and `occ uninstall`: argument mapping and output for
//! `crate::install::{setup, remove}`. Exit 0 done, 1 a check failed, 2 could not install.

use std::path::PathBuf;

use clap::Args;
use serde_json::json;

use crate::install::checks;
use crate::install::{remove, setup};

/// Arguments of `occ install`.
#[derive(Args, Debug)]
pub struct InstallArgs {
    /// Print every change without making it.
    #[arg(long)]
    pub dry_run: bool,
    /// Directory with the built `occ`, `occ-scan` and `occ-shim` (default: this occ's own
    /// directory).
    #[arg(long, value_name = "DIR")]
    pub from: Option<PathBuf>,
    /// The static shim binary, when it is not DIR/occ-shim.
    #[arg(long, value_name = "FILE")]
    pub shim: Option<PathBuf>,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `occ uninstall`.
#[derive(Args, Debug)]
pub struct UninstallArgs {
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// Runs `occ install`.
pub fn run(a: InstallArgs) -> i32 {
    let from = match a.from.clone().or_else(|| {
        std::env::current_exe()
            .ok()
            .and_then(|e| e.parent().map(PathBuf::from))
    }) {
        Some(f) => f,
        None => {
            eprintln!("occ install: cannot find this occ's directory; pass --from DIR");
            return 2;
        }
    };
    let opts = setup::Options {
        from,
        shim: a.shim.clone(),
        dry_run: a.dry_run,
    };
    let report = match setup::install(&opts) {
        Ok(r) => r,
        Err(e) => {
            if a.json {
                println!("{}", json!({ "error": e }));
            }
            eprintln!("occ install: {e}");
            return 2;
        }
    };
    let failed = checks::any_fail(&report.checks);
    if a.json {
        println!("{}", serde_json::to_string(&report).unwrap_or_default());
    } else {
        let home = crate::paths::occ_home();
        if report.dry_run {
            println!(
                "occ install --dry-run: nothing is changed; this is what would be done in {}:",
                home.display()
            );
        } else {
            println!("occ install: {}", home.display());
        }
        if report.changes.is_empty() {
            println!("  nothing to change: already installed");
        }
        for c in &report.changes {
            if c.detail.is_empty() {
                println!("  {:<7} {}", c.action, c.target);
            } else {
                println!("  {:<7} {} ({})", c.action, c.target, c.detail);
            }
        }
        for w in &report.warnings {
            eprintln!("warning: {w}");
        }
        if !report.checks.is_empty() {
            println!("checks:");
            for c in &report.checks {
                println!("  {}", c.line());
            }
        }
        for n in &report.next {
            println!("next: {n}");
        }
    }
    i32::from(failed)
}

/// Runs `occ uninstall`.
pub fn run_uninstall(a: UninstallArgs) -> i32 {
    let r = match remove::uninstall() {
        Ok(r) => r,
        Err(e) => {
            if a.json {
                println!("{}", json!({ "error": e }));
            }
            eprintln!("occ uninstall: {e}");
            return 2;
        }
    };
    if a.json {
        let kept: Vec<_> = r
            .kept
            .iter()
            .map(|(p, why)| json!({"path": p, "why": why}))
            .collect();
        println!(
            "{}",
            json!({"removed": r.removed, "reverted": r.reverted, "kept": kept, "warnings": r.warnings})
        );
    } else {
        for s in &r.reverted {
            println!("  reverted {s}");
        }
        for p in &r.removed {
            println!("  removed  {}", p.display());
        }
        for (p, why) in &r.kept {
            println!("  kept     {} ({why})", p.display());
        }
        for w in &r.warnings {
            eprintln!("warning: {w}");
        }
        println!("occ uninstall: done");
    }
    0
}
