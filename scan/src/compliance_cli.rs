//! The compliance subcommands of `occ-scan`: `assess`, `report`, `notify`, `preflight`,
//! `cycle` and `schedule`. Argument structs and output only; the work is in `compliance`.
//! Exit codes: 0 clean, 1 violations or findings, 2 the run itself failed.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use clap::{Args, Subcommand};

use crate::cli::{fail, print_json};
use crate::compliance::facts::ProbeOptions;
use crate::compliance::model::{status_counts, FullScans, NetReport, Status, ASSESSMENT_FILE};
use crate::compliance::notify::{self, NotifyOptions};
use crate::compliance::report::{self, AssessOptions, ReportPaths};
use crate::compliance::schedule::{self, Backend, Every, ScheduleOptions};
use crate::compliance::{cycle, preflight};
use crate::error::ScanError;
use crate::paths::Paths;

/// `occ-scan assess`.
#[derive(Debug, Args)]
pub struct AssessArgs {
    /// Use a saved `occ-scan ports --json` report instead of scanning.
    #[arg(long, value_name = "FILE")]
    pub ports_report: Option<PathBuf>,
    /// Use a saved `occ-scan egress --json` report instead of scanning.
    #[arg(long, value_name = "FILE")]
    pub egress_report: Option<PathBuf>,
    /// Also write a Prometheus textfile (node_exporter's textfile collector).
    #[arg(long, value_name = "FILE")]
    pub prom: Option<PathBuf>,
    /// Write only the assessment and the state, not the summary and dashboard.
    #[arg(long)]
    pub no_reports: bool,
    /// Treat this pid as the OpenClaw gateway instead of searching /proc.
    #[arg(long, value_name = "PID")]
    pub gateway_pid: Option<u32>,
    /// Do not run the openclaw CLI (update_hygiene is then not assessed).
    #[arg(long)]
    pub skip_openclaw: bool,
    /// Timeout for each child process (openclaw --version, occ status), in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 5)]
    pub child_timeout: u64,
}

fn status_tag(s: Status) -> &'static str {
    match s {
        Status::Compliant => "OK  ",
        Status::Partial => "PART",
        Status::Violation => "VIOL",
        Status::NotAssessed => "N/A ",
    }
}

/// Runs `occ-scan assess`.
pub fn run_assess(a: AssessArgs, json: bool) -> i32 {
    let paths = match Paths::from_env() {
        Ok(p) => p,
        Err(e) => return fail(&e, json),
    };
    // The same lock as the cycle: two runs must not interleave their scan-state updates.
    let _lock = match cycle::lock(&paths) {
        Ok(l) => l,
        Err(e) => return fail(&e, json),
    };
    let opts = AssessOptions {
        probe: ProbeOptions {
            gateway_pid: a.gateway_pid,
            child_timeout: Duration::from_secs(a.child_timeout.max(1)),
            skip_openclaw: a.skip_openclaw,
        },
        ports: a
            .ports_report
            .as_deref()
            .map(|p| NetReport::from_file("port", p)),
        egress: a
            .egress_report
            .as_deref()
            .map(|p| NetReport::from_file("egress", p)),
        now: None,
        host: None,
    };
    let assessment = match report::assess(&paths, opts) {
        Ok(x) => x,
        Err(e) => return fail(&e, json),
    };
    if !a.no_reports {
        if let Err(e) = report::write_reports(&assessment, &ReportPaths::defaults(&paths, a.prom)) {
            return fail(&e, json);
        }
    }
    let mut code = report::exit_code(&assessment);
    let scan_failed = [&assessment.scans.ports, &assessment.scans.egress]
        .iter()
        .any(|v| v.get("status").and_then(|s| s.as_str()) == Some("error"));
    if code == 0 && scan_failed {
        code = 2;
    }
    if json {
        print_json(&report::summary(&assessment));
    } else {
        for c in &assessment.checks {
            println!(
                "[{}] {}: {}",
                status_tag(c.status),
                c.check_id,
                c.observed_state
            );
        }
        println!();
        println!(
            "Checks: {}",
            cycle::counts_line(&status_counts(&assessment))
        );
        println!(
            "Assessment: {}",
            paths.assessment_file(ASSESSMENT_FILE).display()
        );
        for w in &assessment.metadata.warnings {
            eprintln!("occ-scan: warning: {w}");
        }
    }
    code
}

/// `occ-scan report`: re-render the summary, dashboard and textfile from the saved assessment.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The assessment to render [default: $OCC_HOME/assessments/openclaw-assessment.json].
    #[arg(long, value_name = "FILE")]
    pub assessment: Option<PathBuf>,
    /// Also write a Prometheus textfile.
    #[arg(long, value_name = "FILE")]
    pub prom: Option<PathBuf>,
}

/// Runs `occ-scan report`.
pub fn run_report(a: ReportArgs, json: bool) -> i32 {
    let paths = match Paths::from_env() {
        Ok(p) => p,
        Err(e) => return fail(&e, json),
    };
    let src = a
        .assessment
        .unwrap_or_else(|| paths.assessment_file(ASSESSMENT_FILE));
    let mut assessment = match report::load_assessment(&src) {
        Ok(x) => x,
        Err(e) => return fail(&e, json),
    };
    assessment.reports = FullScans::load(&paths);
    let out = ReportPaths::defaults(&paths, a.prom);
    if let Err(e) = report::write_reports(&assessment, &out) {
        return fail(&e, json);
    }
    let mut files = vec![
        out.summary.display().to_string(),
        out.dashboard.display().to_string(),
    ];
    if let Some(p) = &out.prom {
        files.push(p.display().to_string());
    }
    if json {
        print_json(&serde_json::json!({"status": "ok", "written": files,
            "violations_or_partial": assessment.checks.iter().filter(|c| c.status.is_failing()).count()}));
    } else {
        for f in &files {
            println!("wrote {f}");
        }
    }
    report::exit_code(&assessment)
}

/// `occ-scan notify`.
#[derive(Debug, Args)]
pub struct NotifyArgs {
    /// The summary [default: $OCC_HOME/assessments/compliance-summary.json].
    #[arg(long, value_name = "FILE")]
    pub summary_file: Option<PathBuf>,
    /// The state [default: $OPENCLAW_VIOLATION_NOTIFY_STATE, else
    /// $OCC_HOME/security/violation-notify-state.json].
    #[arg(long, value_name = "FILE")]
    pub state_file: Option<PathBuf>,
    /// Notifier timeout in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    pub timeout: u64,
}

/// Runs `occ-scan notify`.
pub fn run_notify(a: NotifyArgs, json: bool) -> i32 {
    let paths = match Paths::from_env() {
        Ok(p) => p,
        Err(e) => return fail(&e, json),
    };
    let mut opts = NotifyOptions::from_env(&paths);
    if let Some(s) = a.summary_file {
        opts.summary = s;
    }
    if let Some(s) = a.state_file {
        opts.state = s;
    }
    opts.timeout = Duration::from_secs(a.timeout.max(1));
    let out = match notify::notify(&opts, SystemTime::now()) {
        Ok(o) => o,
        Err(e) => return fail(&e, json),
    };
    if json {
        print_json(&out);
    } else {
        if out.status == "printed" {
            if let Some(m) = &out.message {
                print!("{m}");
            }
        }
        if let Some(e) = &out.error {
            eprintln!(
                "occ-scan: notify {}: {e} (attempt {}; the findings stay pending and are retried next run)",
                out.status, out.failed_attempts
            );
        }
    }
    out.exit_code()
}

/// `occ-scan preflight`.
#[derive(Debug, Args)]
pub struct PreflightArgs {}

/// Runs `occ-scan preflight`.
pub fn run_preflight(_a: PreflightArgs, json: bool) -> i32 {
    let paths = match Paths::from_env() {
        Ok(p) => p,
        Err(e) => return fail(&e, json),
    };
    let (report, ok) = preflight::preflight(&paths);
    if json {
        print_json(&report);
    } else {
        println!("Preflight: {}", if ok { "ok" } else { "FAIL" });
        if let Some(c) = report.get("critical").and_then(|c| c.as_array()) {
            for x in c {
                println!("  critical: {}", x.as_str().unwrap_or_default());
            }
        }
        if let Some(c) = report.get("warnings").and_then(|c| c.as_array()) {
            for x in c {
                println!("  warning: {}", x.as_str().unwrap_or_default());
            }
        }
        if let Some(c) = report
            .get("policy_files")
            .and_then(|p| p.get("invalid"))
            .and_then(|c| c.as_array())
        {
            for x in c {
                println!("  invalid: {}", x.as_str().unwrap_or_default());
            }
        }
    }
    i32::from(!ok)
}

/// `occ-scan cycle`.
#[derive(Debug, Args)]
pub struct CycleArgs {
    /// Print nothing unless something fails (for cron).
    #[arg(long)]
    pub quiet: bool,
    /// Also write a Prometheus textfile.
    #[arg(long, value_name = "FILE")]
    pub prom: Option<PathBuf>,
    /// Skip the notify step.
    #[arg(long)]
    pub no_notify: bool,
    /// Timeout for each child process, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 5)]
    pub child_timeout: u64,
}

/// Runs `occ-scan cycle`.
pub fn run_cycle(a: CycleArgs, json: bool) -> i32 {
    let paths = match Paths::from_env() {
        Ok(p) => p,
        Err(e) => return fail(&e, json),
    };
    let timeout = Duration::from_secs(a.child_timeout.max(1));
    let mut notify = NotifyOptions::from_env(&paths);
    notify.timeout = timeout;
    let opts = cycle::CycleOptions {
        prom: a.prom,
        notify,
        no_notify: a.no_notify,
        child_timeout: timeout,
    };
    let out = match cycle::cycle(&paths, &opts) {
        Ok(o) => o,
        Err(e) => return fail(&e, json),
    };
    if !json {
        // No notifier configured: the new findings go to stdout, even with --quiet, so cron
        // mails them (notify's state has advanced past them).
        if let Some(m) = &out.notify_message {
            print!("{m}");
        }
    }
    if json {
        print_json(&out);
    } else if !a.quiet || out.exit_code == 2 {
        for s in &out.steps {
            let line = format!(
                "{:<9} {:<8} {:>8.2} ms  {}",
                s.name, s.status, s.ms, s.detail
            );
            if a.quiet {
                eprintln!("{line}");
            } else {
                println!("{line}");
            }
        }
        if !a.quiet {
            println!("Checks: {}", cycle::counts_line(&out.status_counts));
            for r in &out.reports {
                println!("Report: {r}");
            }
            println!(
                "Cycle: {} in {:.2} ms (exit {})",
                out.status, out.ms, out.exit_code
            );
        }
    }
    out.exit_code
}

/// `occ-scan schedule`.
#[derive(Debug, Args)]
pub struct ScheduleArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: ScheduleAction,
}

/// Schedule actions.
#[derive(Debug, Subcommand)]
pub enum ScheduleAction {
    /// Install a systemd user timer (or a crontab line, or a launchd agent on macOS).
    Install(ScheduleCommon),
    /// Remove every file and line `install` wrote.
    Remove(ScheduleCommon),
    /// Show what is installed.
    Status(ScheduleCommon),
}

/// Options shared by the schedule actions.
#[derive(Debug, Args)]
pub struct ScheduleCommon {
    /// How often: minutes dividing 60 or hours dividing 24.
    #[arg(long, default_value = "15m")]
    pub every: String,
    /// Where to schedule.
    #[arg(long, value_enum, default_value_t = Backend::Auto)]
    pub backend: Backend,
    /// The occ-scan to run [default: this executable].
    #[arg(long, value_name = "PATH")]
    pub exe: Option<PathBuf>,
}

/// Runs `occ-scan schedule`.
pub fn run_schedule(a: ScheduleArgs, json: bool) -> i32 {
    let paths = match Paths::from_env() {
        Ok(p) => p,
        Err(e) => return fail(&e, json),
    };
    let (action, common) = match a.action {
        ScheduleAction::Install(c) => ("install", c),
        ScheduleAction::Remove(c) => ("remove", c),
        ScheduleAction::Status(c) => ("status", c),
    };
    let every = match Every::parse(&common.every) {
        Ok(e) => e,
        Err(e) => return fail(&e, json),
    };
    let exe = match common
        .exe
        .map(Ok)
        .unwrap_or_else(|| std::env::current_exe().and_then(std::fs::canonicalize))
    {
        Ok(p) if p.is_absolute() => p,
        Ok(p) => {
            return fail(
                &ScanError::Schedule {
                    message: format!("{} is not absolute", p.display()),
                    fix: "pass --exe with an absolute path".into(),
                },
                json,
            )
        }
        Err(e) => {
            return fail(
                &ScanError::Schedule {
                    message: format!("cannot find this executable: {e}"),
                    fix: "pass --exe".into(),
                },
                json,
            )
        }
    };
    let opts = ScheduleOptions {
        backend: common.backend,
        every,
        exe,
        timeout: Duration::from_secs(15),
    };
    let r = match action {
        "install" => schedule::install(&paths, &opts),
        "remove" => schedule::remove(&paths, &opts),
        _ => schedule::status(&paths, &opts),
    };
    let out = match r {
        Ok(o) => o,
        Err(e) => return fail(&e, json),
    };
    if json {
        print_json(&out);
    } else {
        println!(
            "schedule {}: backend {}, {}",
            out.action,
            out.backend,
            if out.installed {
                "installed"
            } else {
                "not installed"
            }
        );
        for f in &out.files {
            println!("  file: {f}");
        }
        if let Some(l) = &out.cron_line {
            println!("  crontab: {l}");
        }
        for n in &out.notes {
            println!("  note: {n}");
        }
    }
    0
}
