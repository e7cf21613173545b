//! `occ-scan cycle`: preflight → ports → egress → assess → reports → notify, under a
//! single-instance lock, with a timeout on every child process. Ports and egress come from one
//! socket collection, so the dashboard and the saved reports describe the same instant.

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;

use super::facts::{Host, ProbeOptions};
use super::model::{status_counts, NetReport, Status};
use super::notify::{self, NotifyOptions};
use super::preflight;
use super::report::{self, AssessOptions, ReportPaths};
use crate::error::ScanError;
use crate::paths::Paths;

/// Lock file under `assessments/`.
pub const LOCK_FILE: &str = ".cycle.lock";

/// One step of the cycle.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    /// Step name.
    pub name: &'static str,
    /// `ok`, `findings`, `failed` or `skipped`.
    pub status: &'static str,
    /// Wall time in milliseconds.
    pub ms: f64,
    /// One line.
    pub detail: String,
}

/// What the cycle did.
#[derive(Debug, Clone, Serialize)]
pub struct CycleOutcome {
    /// `ok`, `findings` or `failed`.
    pub status: &'static str,
    /// Steps in order.
    pub steps: Vec<Step>,
    /// Checks per status.
    pub status_counts: std::collections::BTreeMap<String, u32>,
    /// Where the reports went.
    pub reports: Vec<String>,
    /// Total wall time in milliseconds.
    pub ms: f64,
    /// Exit code.
    pub exit_code: i32,
    /// The notification text when no notifier is configured (printed, as the seed did, so
    /// cron mails it or the log keeps it).
    pub notify_message: Option<String>,
}

/// Options for [`cycle`].
#[derive(Debug, Clone)]
pub struct CycleOptions {
    /// Prometheus textfile.
    pub prom: Option<PathBuf>,
    /// Notify settings.
    pub notify: NotifyOptions,
    /// Skip notify.
    pub no_notify: bool,
    /// Timeout for each child process.
    pub child_timeout: Duration,
}

/// Holds the cycle lock until dropped.
pub struct CycleLock {
    _lock: nix::fcntl::Flock<std::fs::File>,
}

/// Takes the single-instance lock without waiting.
pub fn lock(paths: &Paths) -> Result<CycleLock, ScanError> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let dir = paths.assessments();
    let path = dir.join(LOCK_FILE);
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(|source| ScanError::Write {
            path: dir.clone(),
            source,
        })?;
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits())
        .open(&path)
        .map_err(|source| ScanError::Write {
            path: path.clone(),
            source,
        })?;
    match nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusiveNonblock) {
        Ok(l) => Ok(CycleLock { _lock: l }),
        Err((_, nix::errno::Errno::EWOULDBLOCK)) => Err(ScanError::Locked { path }),
        Err((_, e)) => Err(ScanError::Write {
            path,
            source: std::io::Error::from(e),
        }),
    }
}

fn ms(t: Instant) -> f64 {
    (t.elapsed().as_secs_f64() * 1000.0 * 100.0).round() / 100.0
}

fn net_step(name: &'static str, r: &NetReport, t: Instant) -> Step {
    match r {
        NetReport::Failed(e) => Step {
            name,
            status: "failed",
            ms: ms(t),
            detail: e.clone(),
        },
        NetReport::Ok(_) => {
            let n = r.findings().len();
            Step {
                name,
                status: if n == 0 { "ok" } else { "findings" },
                ms: ms(t),
                detail: if name == "ports" {
                    format!(
                        "{} listening, {n} finding(s), via {}",
                        r.listeners().len(),
                        r.method()
                    )
                } else {
                    format!(
                        "{} outbound connection(s), {n} finding(s), via {}",
                        r.connections().len(),
                        r.method()
                    )
                },
            }
        }
    }
}

/// Runs one cycle. Fails only when the lock is held; every step's failure is in the outcome.
pub fn cycle(paths: &Paths, opts: &CycleOptions) -> Result<CycleOutcome, ScanError> {
    let start = Instant::now();
    let _lock = lock(paths)?;
    let mut steps = Vec::new();
    let mut worst = 0;

    // Socket collection is the slow part and allocates the most, so it runs on the main thread
    // (the main malloc arena grows cheaply; a thread's arena grows a page at a time) while
    // preflight and the host probes run beside it.
    let probe = ProbeOptions {
        child_timeout: opts.child_timeout,
        ..ProbeOptions::default()
    };
    let side = {
        let paths = paths.clone();
        let probe = probe.clone();
        std::thread::spawn(move || side_steps(&paths, &probe))
    };
    let t_net = Instant::now();
    // Finished at the end of the cycle: the saved reports are written beside the other steps.
    let (ports, egress, saving) = report::scan_network(paths);
    let elapsed = ms(t_net);
    let (pf, pf_ok, pf_ms, host) = side.join().unwrap_or_else(|_| side_steps(paths, &probe));

    let critical: Vec<String> = pf
        .get("critical")
        .and_then(|c| c.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    if !pf_ok {
        let fatal = critical
            .iter()
            .any(|c| c == "no_port_discovery_tool" || c == "assessments_dir_not_writable");
        worst = worst.max(if fatal { 2 } else { 1 });
    }
    steps.push(Step {
        name: "preflight",
        status: if pf_ok { "ok" } else { "failed" },
        ms: pf_ms,
        detail: if pf_ok {
            "ok".into()
        } else {
            critical.join(", ")
        },
    });

    // One collection for both scans; each keeps its own step line.
    for (name, r) in [("ports", &ports), ("egress", &egress)] {
        let mut s = net_step(name, r, t_net);
        s.ms = elapsed;
        if s.status == "failed" {
            worst = 2;
        } else if s.status == "findings" {
            worst = worst.max(1);
        }
        steps.push(s);
    }

    let t = Instant::now();
    let assessment = report::assess(
        paths,
        AssessOptions {
            probe,
            ports: Some(ports),
            egress: Some(egress),
            now: Some(SystemTime::now()),
            host: Some(host),
        },
    );
    let assessment = match assessment {
        Ok(a) => a,
        Err(e) => {
            steps.push(Step {
                name: "assess",
                status: "failed",
                ms: ms(t),
                detail: e.to_string(),
            });
            return Ok(finish(steps, Default::default(), Vec::new(), 2, start));
        }
    };
    let counts = status_counts(&assessment);
    let failing = assessment
        .checks
        .iter()
        .filter(|c| c.status.is_failing())
        .count();
    if failing > 0 {
        worst = worst.max(1);
    }
    steps.push(Step {
        name: "assess",
        status: if failing > 0 { "findings" } else { "ok" },
        ms: ms(t),
        detail: crate::compliance::cycle::counts_line(&counts),
    });

    let t = Instant::now();
    let out = ReportPaths::defaults(paths, opts.prom.clone());
    let mut written = vec![
        out.summary.display().to_string(),
        out.dashboard.display().to_string(),
    ];
    if let Some(p) = &out.prom {
        written.push(p.display().to_string());
    }
    let wrote = report::write_reports(&assessment, &out);
    // The saved scan reports, written beside assess and the reports, count among the reports.
    let unsaved = saving.finish();
    match wrote {
        Ok(()) if unsaved.is_empty() => steps.push(Step {
            name: "reports",
            status: "ok",
            ms: ms(t),
            detail: format!("{} file(s)", written.len()),
        }),
        Ok(()) => {
            worst = 2;
            steps.push(Step {
                name: "reports",
                status: "failed",
                ms: ms(t),
                detail: format!("scan reports not saved: {}", unsaved.join("; ")),
            });
        }
        Err(e) => {
            worst = 2;
            written.clear();
            steps.push(Step {
                name: "reports",
                status: "failed",
                ms: ms(t),
                detail: e.to_string(),
            });
        }
    }

    let t = Instant::now();
    let mut notify_message = None;
    if opts.no_notify || written.is_empty() {
        steps.push(Step {
            name: "notify",
            status: "skipped",
            ms: 0.0,
            detail: if opts.no_notify {
                "--no-notify".into()
            } else {
                "no summary was written".into()
            },
        });
    } else {
        match notify::notify(&opts.notify, SystemTime::now()) {
            Ok(n) => {
                let code = n.exit_code();
                if n.status == "printed" {
                    notify_message.clone_from(&n.message);
                }
                if code == 2 {
                    worst = 2;
                }
                steps.push(Step {
                    name: "notify",
                    status: match n.status.as_str() {
                        "failed" | "refused" => "failed",
                        _ => "ok",
                    },
                    ms: ms(t),
                    detail: match &n.error {
                        Some(e) => format!("{}: {e}", n.status),
                        None => format!("{}: {} new or escalated", n.status, n.new.len()),
                    },
                });
            }
            Err(e) => {
                worst = 2;
                steps.push(Step {
                    name: "notify",
                    status: "failed",
                    ms: ms(t),
                    detail: e.to_string(),
                });
            }
        }
    }
    let mut out = finish(steps, counts, written, worst, start);
    out.notify_message = notify_message;
    Ok(out)
}

/// Preflight (its report, whether it passed, its wall time) and the host probes.
fn side_steps(paths: &Paths, probe: &ProbeOptions) -> (serde_json::Value, bool, f64, Host) {
    let t = Instant::now();
    let (pf, ok) = preflight::preflight(paths);
    let pf_ms = ms(t);
    let failed = || NetReport::Failed("not scanned yet".into());
    (pf, ok, pf_ms, Host::probe(paths, probe, failed(), failed()))
}

/// `violation 2, partial 5, …` in report order.
pub fn counts_line(counts: &std::collections::BTreeMap<String, u32>) -> String {
    Status::ALL
        .iter()
        .map(|s| {
            format!(
                "{} {}",
                s.as_str(),
                counts.get(s.as_str()).copied().unwrap_or(0)
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn finish(
    steps: Vec<Step>,
    status_counts: std::collections::BTreeMap<String, u32>,
    reports: Vec<String>,
    exit_code: i32,
    start: Instant,
) -> CycleOutcome {
    CycleOutcome {
        status: match exit_code {
            0 => "ok",
            1 => "findings",
            _ => "failed",
        },
        steps,
        status_counts,
        reports,
        ms: ms(start),
        exit_code,
        notify_message: None,
    }
}
