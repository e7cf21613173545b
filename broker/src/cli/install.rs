//! `occ install` and `occ uninstall`: argument mapping and output for
//! `crate::install::{setup, remove}` (user mode) and `crate::install::system` (`--system`),
//! and the hidden `occ agent-home` a system install runs as the agent. Exit 0 done, 1 a check
//! failed, 2 could not install.

use std::path::PathBuf;

use clap::Args;
use serde_json::json;

use crate::install::checks;
use crate::install::{agent_home, remove, setup, system};

/// Arguments of `occ install`.
#[derive(Args, Debug)]
pub struct InstallArgs {
    /// Print every change without making it (user mode only).
    #[arg(long, conflicts_with = "system")]
    pub dry_run: bool,
    /// System mode (as root): the root broker service for --agent, approved by --approver.
    #[arg(long, requires_all = ["agent", "approver"])]
    pub system: bool,
    /// System mode: the agent's user, the one requester (never root).
    #[arg(long, value_name = "USER", requires = "system")]
    pub agent: Option<String>,
    /// System mode: who approves, a user or %group (never the agent).
    #[arg(long, value_name = "USER|%GROUP", requires = "system")]
    pub approver: Option<String>,
    /// System mode: create the occ-approvers group, add --approver (a user) to it and make
    /// the group the approvers.
    #[arg(long, requires = "system")]
    pub create_approvers_group: bool,
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
    /// Undo `occ install --system` (as root).
    #[arg(long)]
    pub system: bool,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of the hidden `occ agent-home`, which `occ install --system` runs as the agent.
#[derive(Args, Debug)]
pub struct AgentHomeArgs {
    #[command(subcommand)]
    pub step: AgentHomeStep,
}

/// One step of the agent's part.
#[derive(clap::Subcommand, Debug)]
pub enum AgentHomeStep {
    /// Copy the shim to $OCC_HOME/bin/sudo and put it first in the agent's PATH; stdin holds
    /// the previous record (or nothing).
    Install {
        /// The installed shim.
        #[arg(long, value_name = "FILE")]
        shim: PathBuf,
    },
    /// Undo the record on stdin.
    Remove,
}

/// Runs `occ install`.
pub fn run(a: InstallArgs) -> i32 {
    if a.system {
        return run_system(a);
    }
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
    let home = crate::paths::occ_home();
    let title = if report.dry_run {
        format!(
            "occ install --dry-run: nothing is changed; this is what would be done in {}:",
            home.display()
        )
    } else {
        format!("occ install: {}", home.display())
    };
    print_report(&report, a.json, &title)
}

/// Runs `occ install --system`.
fn run_system(a: InstallArgs) -> i32 {
    let Some(from) = a.from.clone().or_else(|| {
        std::env::current_exe()
            .ok()
            .and_then(|e| e.parent().map(PathBuf::from))
    }) else {
        eprintln!("occ install --system: cannot find this occ's directory; pass --from DIR");
        return 2;
    };
    let opts = system::setup::Options {
        from,
        shim: a.shim.clone(),
        agent: a.agent.clone().unwrap_or_default(),
        approver: a.approver.clone().unwrap_or_default(),
        create_group: a.create_approvers_group,
    };
    match system::setup::install(&opts) {
        Ok(report) => print_report(
            &report,
            a.json,
            &format!(
                "occ install --system: {}'s sudo goes to the root broker",
                opts.agent
            ),
        ),
        Err(e) => {
            if a.json {
                println!("{}", json!({ "error": e }));
            }
            eprintln!("occ install --system: {e}");
            2
        }
    }
}

/// Prints an install report; exit 1 when a check failed.
fn print_report(report: &setup::Report, as_json: bool, title: &str) -> i32 {
    let failed = checks::any_fail(&report.checks);
    if as_json {
        println!("{}", serde_json::to_string(&report).unwrap_or_default());
    } else {
        println!("{title}");
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
        if !report.what_next.is_empty() {
            println!("\nWhat next:");
            for n in &report.what_next {
                match n.strip_prefix("    ") {
                    Some(cmd) => println!("      {cmd}"),
                    None if n.starts_with("  ") => println!("  {n}"),
                    None => println!("  - {n}"),
                }
            }
        }
    }
    i32::from(failed)
}

/// Runs `occ uninstall`.
pub fn run_uninstall(a: UninstallArgs) -> i32 {
    if a.system {
        return run_uninstall_system(a);
    }
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
    print_uninstall(&r, a.json, None);
    0
}

/// Runs `occ uninstall --system`.
fn run_uninstall_system(a: UninstallArgs) -> i32 {
    match system::remove::uninstall() {
        Ok(r) => {
            print_uninstall(&r.root, a.json, Some(&r.agent_home));
            0
        }
        Err(e) => {
            if a.json {
                println!("{}", json!({ "error": e }));
            }
            eprintln!("occ uninstall --system: {e}");
            2
        }
    }
}

fn print_uninstall(r: &remove::Report, as_json: bool, agent_home: Option<&[String]>) {
    if as_json {
        let kept: Vec<_> = r
            .kept
            .iter()
            .map(|(p, why)| json!({"path": p, "why": why}))
            .collect();
        let mut v = json!({"removed": r.removed, "reverted": r.reverted, "kept": kept, "warnings": r.warnings});
        if let Some(lines) = agent_home {
            v["agent_home"] = json!(lines);
        }
        println!("{v}");
    } else {
        for s in &r.reverted {
            println!("  reverted {s}");
        }
        if let Some(lines) = agent_home {
            for l in lines {
                println!("  agent    {l}");
            }
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
}

/// Runs the hidden `occ agent-home` (as the agent, started by `occ install --system`).
pub fn run_agent_home(a: AgentHomeArgs) -> i32 {
    use std::io::Read as _;
    let mut input = String::new();
    if let Err(e) = std::io::stdin().take(1 << 20).read_to_string(&mut input) {
        eprintln!("occ agent-home: cannot read the record on stdin: {e}");
        return 2;
    }
    let record = if input.trim().is_empty() {
        None
    } else {
        match serde_json::from_str::<crate::install::manifest::Manifest>(&input) {
            Ok(m) => Some(m),
            Err(e) => {
                eprintln!("occ agent-home: the record on stdin is not a manifest: {e}");
                return 2;
            }
        }
    };
    let out = match (a.step, record) {
        (AgentHomeStep::Install { shim }, previous) => agent_home::install(&shim, previous),
        (AgentHomeStep::Remove, Some(m)) => Ok(agent_home::remove(&m)),
        (AgentHomeStep::Remove, None) => Err("no record on stdin".to_string()),
    };
    match out {
        Ok(o) => {
            println!("{}", serde_json::to_string(&o).unwrap_or_default());
            0
        }
        Err(e) => {
            eprintln!("occ agent-home: {e}");
            2
        }
    }
}
