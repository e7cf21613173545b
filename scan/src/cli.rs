//! The `occ-scan` command line: argument parsing and output. Exit codes: 0 clean, 1 findings
//! (or a refusal), 2 the scan itself failed. The work is done by the library modules.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use serde::Serialize;

use crate::error::ScanError;
use crate::files;
use crate::paths::Paths;
use crate::resolve::Resolver;
use crate::sockets::{self, CollectOptions, MethodChoice};
use crate::{egress, ports};

/// Exit code: nothing to report.
pub const EXIT_CLEAN: i32 = 0;
/// Exit code: findings or violations (or a refused operation).
pub const EXIT_FINDINGS: i32 = 1;
/// Exit code: the scan itself failed.
pub const EXIT_FAILED: i32 = 2;

/// occ-scan: listening ports and egress, natively and with evidence.
///
/// Exit codes: 0 clean, 1 findings, 2 the scan failed (never reported as clean).
#[derive(Debug, Parser)]
#[command(name = "occ-scan", version)]
pub struct Cli {
    /// Print the report as JSON on stdout.
    #[arg(long, global = true)]
    pub json: bool,
    /// What to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Compare listening TCP and UDP sockets with approved_ports.json.
    Ports(PortsArgs),
    /// Write approved_ports.json from what is listening now (0600, atomic), for you to prune.
    Baseline(BaselineArgs),
    /// Check outbound connections against egress_allowlist.json.
    Egress(EgressArgs),
    /// List every TCP and UDP socket with its owner (the raw collection).
    Sockets(SocketsArgs),
    /// Run every compliance check and write the assessment, summary and dashboard.
    Assess(crate::compliance_cli::AssessArgs),
    /// Re-render the summary, dashboard and Prometheus textfile from the saved assessment.
    Report(crate::compliance_cli::ReportArgs),
    /// Send new or escalated violations to the configured notifier.
    Notify(crate::compliance_cli::NotifyArgs),
    /// Check tools, paths, policy files and permissions before a cycle.
    Preflight(crate::compliance_cli::PreflightArgs),
    /// preflight, ports, egress, assess, reports, notify: one locked run for cron or a timer.
    Cycle(crate::compliance_cli::CycleArgs),
    /// Install, remove or show the scheduled cycle (systemd timer, crontab or launchd).
    Schedule(crate::compliance_cli::ScheduleArgs),
    /// Print occ-scan(8), or write every manual page under --dir (the installer's source).
    #[command(hide = true)]
    Man(crate::docs_cli::ManArgs),
    /// Print the completion script for bash, zsh or fish (the installer's source).
    #[command(hide = true)]
    Completions(crate::docs_cli::CompletionsArgs),
}

/// Where sockets come from.
#[derive(Debug, Args)]
pub struct SourceArgs {
    /// How to read sockets: natively where /proc exists (else lsof), natively only, or lsof only.
    #[arg(long, value_enum, default_value_t = MethodChoice::Auto)]
    pub method: MethodChoice,
    /// The proc mount to read (tests point it at a captured tree).
    #[arg(long, default_value = "/proc", hide = true)]
    pub proc_root: PathBuf,
    /// The lsof binary (default: PATH, then /usr/sbin, /usr/bin, /sbin, /bin).
    #[arg(long, value_name = "PATH")]
    pub lsof: Option<PathBuf>,
}

/// `occ-scan ports`.
#[derive(Debug, Args)]
pub struct PortsArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    /// The approved ports file [default: $OCC_HOME/security/approved_ports.json].
    #[arg(long, value_name = "PATH")]
    pub approved_file: Option<PathBuf>,
    /// Also write the JSON report to $OCC_HOME/assessments/port-monitor-latest.json.
    #[arg(long)]
    pub save: bool,
}

/// `occ-scan baseline`.
#[derive(Debug, Args)]
pub struct BaselineArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    /// Where to write [default: $OCC_HOME/security/approved_ports.json].
    #[arg(long, value_name = "PATH")]
    pub output: Option<PathBuf>,
    /// Replace an existing file.
    #[arg(long)]
    pub force: bool,
}

/// `occ-scan egress`.
#[derive(Debug, Args)]
pub struct EgressArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    /// The allowlist [default: $OCC_HOME/security/egress_allowlist.json].
    #[arg(long, value_name = "PATH")]
    pub allowlist: Option<PathBuf>,
    /// Do not resolve host / host_regex rules (they then match literal addresses only).
    #[arg(long)]
    pub no_resolve: bool,
    /// Timeout per name lookup, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 1000)]
    pub resolve_timeout_ms: u64,
    /// Also write the JSON report to $OCC_HOME/assessments/egress-monitor-latest.json.
    #[arg(long)]
    pub save: bool,
}

/// `occ-scan sockets`.
#[derive(Debug, Args)]
pub struct SocketsArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    /// Only listening sockets.
    #[arg(long)]
    pub listening: bool,
}

/// Runs a parsed command line and returns the exit code.
pub fn run(cli: Cli) -> i32 {
    let json = cli.json;
    let result = match cli.command {
        Command::Ports(a) => run_ports(a, json),
        Command::Baseline(a) => run_baseline(a, json),
        Command::Egress(a) => run_egress(a, json),
        Command::Sockets(a) => run_sockets(a, json),
        Command::Assess(a) => return crate::compliance_cli::run_assess(a, json),
        Command::Report(a) => return crate::compliance_cli::run_report(a, json),
        Command::Notify(a) => return crate::compliance_cli::run_notify(a, json),
        Command::Preflight(a) => return crate::compliance_cli::run_preflight(a, json),
        Command::Cycle(a) => return crate::compliance_cli::run_cycle(a, json),
        Command::Schedule(a) => return crate::compliance_cli::run_schedule(a, json),
        Command::Man(a) => return crate::docs_cli::run_man(a),
        Command::Completions(a) => return crate::docs_cli::run_completions(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => fail(&e, json),
    }
}

/// Prints an error (as JSON too with `--json`) and returns its exit code: 1 for a refusal,
/// 2 when the run itself failed.
pub(crate) fn fail(e: &ScanError, json: bool) -> i32 {
    if json {
        print_json(&serde_json::json!({"status": "error", "error": e.to_string()}));
    }
    eprintln!("occ-scan: error: {e}");
    e.exit_code()
}

fn collect_opts(s: &SourceArgs) -> CollectOptions {
    CollectOptions {
        method: s.method,
        proc_root: s.proc_root.clone(),
        lsof: s.lsof.clone(),
        ..CollectOptions::default()
    }
}

fn run_ports(a: PortsArgs, json: bool) -> Result<i32, ScanError> {
    let path = match &a.approved_file {
        Some(p) => expand(p),
        None => Paths::from_env()?.approved_ports(),
    };
    // Rules first: a broken file fails fast, before the scan.
    let rules = files::load_approved_ports(&path)?;
    let collection = sockets::collect(&collect_opts(&a.source))?;
    let report = ports::evaluate(&collection, &rules);
    if a.save {
        let dir = Paths::from_env()?.assessments();
        files::write_json(&dir.join("port-monitor-latest.json"), &report)?;
    }
    if json {
        print_json(&report);
    } else {
        print!("{}", report.render_text());
    }
    Ok(if report.findings.is_empty() {
        EXIT_CLEAN
    } else {
        EXIT_FINDINGS
    })
}

#[derive(Serialize)]
struct BaselineOutput<'a> {
    status: &'static str,
    output: String,
    rules: usize,
    tool: &'static str,
    unknown_owner: usize,
    insecure: usize,
    public_bind: usize,
    visibility: &'a sockets::Visibility,
}

fn run_baseline(a: BaselineArgs, json: bool) -> Result<i32, ScanError> {
    let path = match &a.output {
        Some(p) => expand(p),
        None => Paths::from_env()?.approved_ports(),
    };
    if !a.force && path.symlink_metadata().is_ok() {
        return Err(ScanError::Exists { path });
    }
    let collection = sockets::collect(&collect_opts(&a.source))?;
    let rules = ports::baseline(&collection);
    files::write_json(&path, &rules)?;
    let out = BaselineOutput {
        status: "ok",
        output: path.display().to_string(),
        rules: rules.len(),
        tool: collection.method.as_str(),
        unknown_owner: rules.iter().filter(|r| r.command.is_none()).count(),
        insecure: rules
            .iter()
            .filter(|r| ports::insecure_port(r.port).is_some())
            .count(),
        public_bind: rules
            .iter()
            .filter(|r| matches!(r.bind, Some(files::Bind::Addr(a)) if crate::net::is_wildcard(a)))
            .count(),
        visibility: &collection.visibility,
    };
    if json {
        print_json(&out);
    } else {
        println!("Wrote {} rule(s) to {} (mode 0600).", out.rules, out.output);
        println!(
            "It approves everything listening now: review it and delete what should not run \
             ({} insecure port(s), {} public bind(s), {} with unknown owner).",
            out.insecure, out.public_bind, out.unknown_owner
        );
    }
    Ok(EXIT_CLEAN)
}

fn run_egress(a: EgressArgs, json: bool) -> Result<i32, ScanError> {
    let path = match &a.allowlist {
        Some(p) => expand(p),
        None => Paths::from_env()?.egress_allowlist(),
    };
    let rules = files::load_egress_allowlist(&path)?;
    let collection = sockets::collect(&collect_opts(&a.source))?;
    let mut resolver = if a.no_resolve {
        Resolver::disabled()
    } else {
        Resolver::new(Duration::from_millis(a.resolve_timeout_ms))
    };
    let report = egress::evaluate(&collection, &rules, &mut resolver);
    if a.save {
        let dir = Paths::from_env()?.assessments();
        files::write_json(&dir.join("egress-monitor-latest.json"), &report)?;
    }
    if json {
        print_json(&report);
    } else {
        print!("{}", report.render_text());
    }
    Ok(if report.findings.is_empty() {
        EXIT_CLEAN
    } else {
        EXIT_FINDINGS
    })
}

fn run_sockets(a: SocketsArgs, json: bool) -> Result<i32, ScanError> {
    let mut collection = sockets::collect(&collect_opts(&a.source))?;
    if a.listening {
        collection.sockets.retain(sockets::Socket::is_listening);
    }
    if json {
        print_json(&collection);
    } else {
        let mut t = String::new();
        let _ = std::fmt::Write::write_fmt(
            &mut t,
            format_args!(
                "{} socket(s) (method: {})\n",
                collection.sockets.len(),
                collection.method.as_str()
            ),
        );
        crate::render_visibility(&mut t, &collection.visibility);
        for s in &collection.sockets {
            let _ = std::fmt::Write::write_fmt(
                &mut t,
                format_args!(
                    "{:<4} {:<12} {:<45} {:<45} {}\n",
                    s.protocol,
                    s.state,
                    s.local_endpoint(),
                    s.remote_endpoint(),
                    s.owner_label()
                ),
            );
        }
        print!("{t}");
    }
    Ok(EXIT_CLEAN)
}

/// `~/x` → `$HOME/x`, as the seed did.
fn expand(p: &Path) -> PathBuf {
    match (p.strip_prefix("~"), crate::paths::user_home()) {
        (Ok(rest), Some(home)) => home.join(rest),
        _ => p.to_path_buf(),
    }
}

pub(crate) fn print_json<T: Serialize>(v: &T) {
    // Buffered: stdout is line-buffered, and a report of 2,000 sockets is 100,000 lines.
    let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    // A closed stdout (`| head`) is not worth a panic.
    let _ = serde_json::to_writer_pretty(&mut out, v);
    let _ = out.write_all(b"\n");
    let _ = out.flush();
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn json_flag_works_before_and_after_the_subcommand() {
        let a = Cli::try_parse_from(["occ-scan", "--json", "ports"]).unwrap();
        let b = Cli::try_parse_from(["occ-scan", "ports", "--json", "--method", "lsof"]).unwrap();
        assert!(a.json && b.json);
        assert!(matches!(
            b.command,
            Command::Ports(PortsArgs {
                source: SourceArgs {
                    method: MethodChoice::Lsof,
                    ..
                },
                ..
            })
        ));
        assert!(Cli::try_parse_from(["occ-scan", "ports", "--method", "netstat"]).is_err());
    }
}
