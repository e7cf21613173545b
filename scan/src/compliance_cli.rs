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
use crate::compliance::schedule::{
    self, Backend, Every, RemoveOptions, ScheduleOptions, ScheduleOutcome,
};
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
    /// Do not run the openclaw CLI: OpenClaw's config is then read from its files, its
    /// security audit and backup record are not read, and update_hygiene is not assessed.
    #[arg(long)]
    pub skip_openclaw: bool,
    /// Timeout for each quick child process (openclaw --version, occ status), in seconds;
    /// OpenClaw's config, security audit and status have their own deadlines (60-120 s).
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
    /// The state [default: "state" in security/notify.json, else
    /// $OPENCLAW_VIOLATION_NOTIFY_STATE, else $OCC_HOME/security/violation-notify-state.json].
    #[arg(long, value_name = "FILE")]
    pub state_file: Option<PathBuf>,
    /// Notifier timeout in seconds [default: "timeout_secs" in security/notify.json, else 10].
    #[arg(long, value_name = "SECS")]
    pub timeout: Option<u64>,
}

/// Runs `occ-scan notify`. Exit 0 when it delivered, printed or had nothing new; 2 when the
/// notifier failed or was refused (the findings stay pending for the next run).
pub fn run_notify(a: NotifyArgs, json: bool) -> i32 {
    let paths = match Paths::from_env() {
        Ok(p) => p,
        Err(e) => return fail(&e, json),
    };
    let (mut opts, sources) = match NotifyOptions::load(&paths, Duration::from_secs(10)) {
        Ok(x) => x,
        Err(e) => return fail(&e, json),
    };
    if let Some(s) = a.summary_file {
        opts.summary = s;
    }
    if let Some(s) = a.state_file {
        opts.state = s;
    }
    if let Some(t) = a.timeout {
        opts.timeout = Duration::from_secs(t.max(1));
    }
    let out = match notify::notify(&opts, SystemTime::now()) {
        Ok(o) => o,
        Err(e) => return fail(&e, json),
    };
    if json {
        let mut v = serde_json::to_value(&out).unwrap_or_default();
        v["sources"] = serde_json::to_value(&sources).unwrap_or_default();
        v["summary_line"] = out.headline().into();
        print_json(&v);
    } else {
        if out.status == "printed" {
            if let Some(m) = &out.message {
                print!("{m}");
                println!();
            }
        }
        if out.exit_code() == 0 {
            println!("{}", out.headline());
        } else {
            eprintln!("occ-scan: {}", out.headline());
        }
        if let Some(f) = &sources.config_file {
            println!(
                "  notifier settings: {} (over the environment)",
                f.display()
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
    // A broken security/notify.json fails the cycle before it starts, naming the file and
    // the fix, unless notify is skipped anyway.
    let notify = if a.no_notify {
        NotifyOptions::from_env(&paths)
    } else {
        match NotifyOptions::load(&paths, timeout) {
            Ok((n, _)) => n,
            Err(e) => return fail(&e, json),
        }
    };
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

/// Schedule actions; each takes only its own flags.
#[derive(Debug, Subcommand)]
pub enum ScheduleAction {
    /// Install a systemd user timer (or a crontab line, or a launchd agent on macOS).
    Install(ScheduleInstallArgs),
    /// Remove every file and line `install` wrote.
    Remove(ScheduleRemoveArgs),
    /// Show what is installed and whether it really runs (exit 1 when it does not).
    Status(ScheduleStatusArgs),
}

/// `occ-scan schedule install`.
#[derive(Debug, Args)]
pub struct ScheduleInstallArgs {
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

/// `occ-scan schedule remove`.
#[derive(Debug, Args)]
pub struct ScheduleRemoveArgs {
    /// Where to remove from [default: every backend that has a schedule here].
    #[arg(long, value_enum, default_value_t = Backend::Auto)]
    pub backend: Backend,
}

/// `occ-scan schedule status`.
#[derive(Debug, Args)]
pub struct ScheduleStatusArgs {}

/// How long systemctl, crontab and launchctl may take.
const SCHEDULE_TIMEOUT: Duration = Duration::from_secs(15);

fn install_opts(a: ScheduleInstallArgs) -> Result<ScheduleOptions, ScanError> {
    let every = Every::parse(&a.every)?;
    let exe = match a
        .exe
        .map(Ok)
        .unwrap_or_else(|| std::env::current_exe().and_then(std::fs::canonicalize))
    {
        Ok(p) if p.is_absolute() => p,
        Ok(p) => {
            return Err(ScanError::Schedule {
                message: format!("--exe {} is not an absolute path", p.display()),
                fix: "pass --exe with an absolute path".into(),
            })
        }
        Err(e) => {
            return Err(ScanError::Schedule {
                message: format!("cannot find this executable: {e}"),
                fix: "pass --exe with the absolute path of occ-scan".into(),
            })
        }
    };
    Ok(ScheduleOptions {
        backend: a.backend,
        every,
        exe,
        timeout: SCHEDULE_TIMEOUT,
    })
}

/// The headline of a schedule action's outcome and its exit code: install 0; remove 0, or 2
/// when something could not be removed; status 0 when a schedule is installed and really
/// runs, else 1.
fn schedule_verdict(out: &ScheduleOutcome) -> (String, i32) {
    match out.action.as_str() {
        "install" => {
            let how = match out.running {
                Some(false) => {
                    "installed, but it does not run yet (the problem and its fix follow)"
                }
                _ => "installed and running",
            };
            (
                format!("schedule install: {} schedule {how}", out.backend),
                0,
            )
        }
        "remove" => {
            let code = if out.problems.is_empty() { 0 } else { 2 };
            let head = if !out.done.is_empty() {
                format!("schedule remove: removed the {} schedule", out.backend)
            } else if out.problems.is_empty() && out.kept.is_empty() {
                "schedule remove: nothing to remove, no occ-scan schedule was installed".into()
            } else if out.problems.is_empty() {
                "schedule remove: nothing removed".into()
            } else {
                "schedule remove: FAILED to remove the schedule".into()
            };
            (head, code)
        }
        _ => match out.running {
            Some(true) => (
                format!(
                    "schedule status: {} schedule installed and running",
                    out.backend
                ),
                0,
            ),
            Some(false) => (
                format!(
                    "schedule status: {} schedule installed but NOT running",
                    out.backend
                ),
                1,
            ),
            None => ("schedule status: no schedule installed".into(), 1),
        },
    }
}

/// Runs `occ-scan schedule`.
pub fn run_schedule(a: ScheduleArgs, json: bool) -> i32 {
    let out = match a.action {
        ScheduleAction::Install(i) => {
            let r = Paths::from_env()
                .and_then(|paths| install_opts(i).map(|o| (paths, o)))
                .and_then(|(paths, o)| schedule::install(&paths, &o));
            match r {
                Ok(o) => o,
                Err(e) => return fail(&e, json),
            }
        }
        ScheduleAction::Remove(r) => schedule::remove(&RemoveOptions {
            backend: r.backend,
            only: None,
            timeout: SCHEDULE_TIMEOUT,
        }),
        ScheduleAction::Status(_) => schedule::status(SCHEDULE_TIMEOUT),
    };
    let (head, code) = schedule_verdict(&out);
    if json {
        print_json(&out);
    } else {
        println!("{head}");
        for d in &out.done {
            println!("  done: {d}");
        }
        if out.action != "remove" {
            for f in &out.files {
                println!("  file: {f}");
            }
            if let Some(l) = &out.cron_line {
                println!("  crontab: {l}");
            }
        }
        for k in &out.kept {
            println!("  kept: {k}");
        }
        for n in &out.notes {
            println!("  note: {n}");
        }
        for p in &out.problems {
            eprintln!("occ-scan: schedule {}: {p}", out.action);
        }
    }
    code
}
