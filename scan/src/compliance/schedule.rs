//! `occ-scan schedule install|remove|status`: a systemd user timer when `systemctl --user`
//! works, else a crontab line, and a launchd agent on macOS. Every path is quoted for its
//! format, and removal deletes exactly what install wrote. It never edits another crontab line.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde::Serialize;

use crate::error::ScanError;
use crate::exec::{self, ChildOutput};
use crate::paths::Paths;

mod render;
mod status;
#[cfg(test)]
mod tests;
use render::exec_quote;
pub use render::{
    cron_quote, render_cron, render_plist, render_systemd, systemd_quote, xml_escape,
};
pub use status::status;

/// The unit template.
pub const SERVICE_TEMPLATE: &str = include_str!("../../../install/occ-scan.service");
/// The timer template.
pub const TIMER_TEMPLATE: &str = include_str!("../../../install/occ-scan.timer");
/// The launchd template (untested on real macOS).
pub const PLIST_TEMPLATE: &str = include_str!("../../../install/occ-scan.plist");
/// Marker at the end of occ-scan's crontab line.
pub const CRON_MARKER: &str = "# occ-scan-cycle";
/// Unit base name.
pub const UNIT: &str = "occ-scan";
/// launchd label.
pub const LABEL: &str = "dev.occ.occ-scan";

/// Where the schedule lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// Pick: launchd on macOS, systemd when `systemctl --user` works, else cron.
    Auto,
    /// systemd user timer.
    Systemd,
    /// crontab line.
    Cron,
    /// launchd agent (macOS; untested on real macOS).
    Launchd,
}

/// A supported interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Every {
    /// Every N minutes, N dividing 60.
    Minutes(u32),
    /// Every N hours, N dividing 24.
    Hours(u32),
}

impl Every {
    /// Parses `15m`, `1h`, `30min`… (humantime), keeping to intervals cron can express.
    pub fn parse(s: &str) -> Result<Every, ScanError> {
        let bad = |m: String| {
            ScanError::Schedule {
            message: m,
            fix: "use minutes dividing 60 (1m, 5m, 10m, 15m, 30m) or hours dividing 24 (1h, 2h, 6h, 12h, 24h)".into(),
        }
        };
        let d =
            humantime::parse_duration(s.trim()).map_err(|e| bad(format!("--every {s:?}: {e}")))?;
        let secs = d.as_secs();
        if secs == 0 || secs % 60 != 0 || d.subsec_nanos() != 0 {
            return Err(bad(format!(
                "--every {s:?} is not a whole number of minutes"
            )));
        }
        let mins =
            u32::try_from(secs / 60).map_err(|_| bad(format!("--every {s:?} is too long")))?;
        if mins < 60 && 60 % mins == 0 {
            return Ok(Every::Minutes(mins));
        }
        if mins % 60 == 0 {
            let h = mins / 60;
            if h <= 24 && 24 % h == 0 {
                return Ok(Every::Hours(h));
            }
        }
        Err(bad(format!("--every {s:?} cannot be expressed exactly")))
    }

    /// Seconds.
    pub fn seconds(self) -> u32 {
        match self {
            Every::Minutes(m) => m * 60,
            Every::Hours(h) => h * 3600,
        }
    }

    /// `every 15 minutes`.
    pub fn text(self) -> String {
        match self {
            Every::Minutes(1) => "every minute".into(),
            Every::Minutes(m) => format!("every {m} minutes"),
            Every::Hours(1) => "every hour".into(),
            Every::Hours(h) => format!("every {h} hours"),
        }
    }

    /// systemd OnCalendar.
    pub fn on_calendar(self) -> String {
        match self {
            Every::Minutes(m) => format!("*-*-* *:00/{m}:00"),
            Every::Hours(24) => "*-*-* 00:00:00".into(),
            Every::Hours(h) => format!("*-*-* 00/{h}:00:00"),
        }
    }

    /// cron's five fields.
    pub fn cron_fields(self) -> String {
        match self {
            Every::Minutes(1) => "* * * * *".into(),
            Every::Minutes(m) => format!("*/{m} * * * *"),
            Every::Hours(24) => "0 0 * * *".into(),
            Every::Hours(h) => format!("0 */{h} * * *"),
        }
    }
}

/// What install/remove/status did.
#[derive(Debug, Clone, Serialize, Default)]
pub struct ScheduleOutcome {
    /// `install`, `remove` or `status`.
    pub action: String,
    /// The backend used (`none` when there was nothing).
    pub backend: String,
    /// Whether a schedule is installed after the action.
    pub installed: bool,
    /// Whether the installed schedule really fires: the timer is active, or a cron daemon
    /// runs (`None` when nothing is installed or it was not checked).
    pub running: Option<bool>,
    /// Files written, removed or found.
    pub files: Vec<String>,
    /// The crontab line (cron).
    pub cron_line: Option<String>,
    /// Commands run, as argv.
    pub commands: Vec<Vec<String>>,
    /// What was done, one line each (remove).
    pub done: Vec<String>,
    /// Schedules left in place on purpose, each with why (remove with a [`Only`] filter).
    pub kept: Vec<String>,
    /// What is wrong and needs the admin, each with the fix.
    pub problems: Vec<String>,
    /// Things the admin should know.
    pub notes: Vec<String>,
}

/// Options for [`install`].
#[derive(Debug, Clone)]
pub struct ScheduleOptions {
    /// Backend.
    pub backend: Backend,
    /// Interval.
    pub every: Every,
    /// The occ-scan executable to schedule.
    pub exe: PathBuf,
    /// Timeout for systemctl/crontab/launchctl.
    pub timeout: Duration,
}

/// Which schedules [`remove`] takes: those that run one of `exes` or scan one of `homes`
/// (`occ uninstall` removes only the schedule of the install it undoes).
#[derive(Debug, Clone, Default)]
pub struct Only {
    /// occ homes (the `OCC_HOME` the schedule sets).
    pub homes: Vec<PathBuf>,
    /// occ-scan executables (the program the schedule runs).
    pub exes: Vec<PathBuf>,
}

impl Only {
    fn cron(&self, line: &str) -> bool {
        self.homes
            .iter()
            .any(|h| line.contains(&format!("OCC_HOME={}", cron_quote(&h.to_string_lossy()))))
            || self
                .exes
                .iter()
                .any(|e| line.contains(&format!("{} cycle", cron_quote(&e.to_string_lossy()))))
    }

    fn unit(&self, service: &str) -> bool {
        self.homes
            .iter()
            .any(|h| service.contains(&systemd_quote(&format!("OCC_HOME={}", h.to_string_lossy()))))
            || self
                .exes
                .iter()
                .any(|e| service.contains(&format!("{} cycle", exec_quote(&e.to_string_lossy()))))
    }

    fn plist(&self, text: &str) -> bool {
        let tag = |s: &str| format!("<string>{}</string>", xml_escape(s));
        self.homes
            .iter()
            .any(|h| text.contains(&tag(&h.to_string_lossy())))
            || self
                .exes
                .iter()
                .any(|e| text.contains(&tag(&e.to_string_lossy())))
    }

    /// `OCC_HOME /x or /y/bin/occ-scan`, for messages.
    pub fn describe(&self) -> String {
        let mut v: Vec<String> = self
            .homes
            .iter()
            .map(|h| format!("OCC_HOME {}", h.display()))
            .collect();
        v.extend(self.exes.iter().map(|e| e.display().to_string()));
        v.join(" or ")
    }
}

/// Options for [`remove`].
#[derive(Debug, Clone)]
pub struct RemoveOptions {
    /// `Auto`: every backend that has a schedule here.
    pub backend: Backend,
    /// Only these schedules; `None`: occ-scan's schedule whatever it runs.
    pub only: Option<Only>,
    /// Timeout for systemctl/crontab/launchctl.
    pub timeout: Duration,
}

struct Runner<'a> {
    out: &'a mut ScheduleOutcome,
    timeout: Duration,
}

/// `exited with status 1: <stderr>`, `was killed by signal 9`, `timed out after 15s`.
fn how_it_ended(o: &ChildOutput, timeout: Duration) -> String {
    use std::os::unix::process::ExitStatusExt;
    let end = if o.timed_out {
        format!(
            "timed out after {} and was killed",
            humantime::format_duration(timeout)
        )
    } else if let Some(c) = o.code {
        format!("exited with status {c}")
    } else if let Some(sig) = o.status.and_then(|s| s.signal()) {
        format!("was killed by signal {sig}")
    } else {
        "ended abnormally".to_string()
    };
    let err = o.stderr_text();
    if err.is_empty() {
        format!("{end} and printed nothing on stderr")
    } else {
        format!("{end}: {err}")
    }
}

impl Runner<'_> {
    fn run(&mut self, argv: &[&str], stdin: Option<&[u8]>) -> Result<ChildOutput, ScanError> {
        self.out
            .commands
            .push(argv.iter().map(|s| s.to_string()).collect());
        let mut c = Command::new(argv[0]);
        c.args(&argv[1..]);
        exec::run(c, stdin, self.timeout).map_err(|e| ScanError::Schedule {
            message: format!("`{}` could not run: {e}", argv.join(" ")),
            fix: format!("check that {} is installed and on PATH", argv[0]),
        })
    }

    /// Runs `argv`; a failure is an error naming the command, how it ended and its stderr.
    fn must(&mut self, argv: &[&str], stdin: Option<&[u8]>) -> Result<ChildOutput, ScanError> {
        let o = self.run(argv, stdin)?;
        if !o.success() {
            return Err(ScanError::Schedule {
                message: format!("`{}` {}", argv.join(" "), how_it_ended(&o, self.timeout)),
                fix: "run it by hand to see why, then retry".into(),
            });
        }
        Ok(o)
    }

    /// Runs `argv`; a failure is recorded in `problems` with `fix`, not returned.
    fn try_run(&mut self, argv: &[&str], fix: &str) -> bool {
        match self.run(argv, None) {
            Ok(o) if o.success() => true,
            Ok(o) => {
                let why = how_it_ended(&o, self.timeout);
                self.out
                    .problems
                    .push(format!("`{}` {why} (fix: {fix})", argv.join(" ")));
                false
            }
            Err(e) => {
                self.out.problems.push(format!("{e} (fix: {fix})"));
                false
            }
        }
    }
}

/// Whether `systemctl --user` works here.
pub fn systemd_available(timeout: Duration) -> bool {
    if exec::which("systemctl").is_none() {
        return false;
    }
    let mut c = Command::new("systemctl");
    c.args(["--user", "show-environment"]);
    exec::run(c, None, timeout).is_ok_and(|o| o.success())
}

/// Resolves `auto`.
pub fn pick_backend(b: Backend, timeout: Duration) -> Backend {
    match b {
        Backend::Auto if cfg!(target_os = "macos") => Backend::Launchd,
        Backend::Auto if systemd_available(timeout) => Backend::Systemd,
        Backend::Auto => Backend::Cron,
        other => other,
    }
}

/// The process names of cron daemons (Debian's cron, cronie's and busybox's crond, fcron).
pub const CRON_DAEMONS: [&str; 3] = ["cron", "crond", "fcron"];

/// The first process under `proc_root` whose name (`comm`) is a cron daemon's: its pid and
/// name. Processes that vanish while the walk runs are skipped.
pub fn cron_daemon(proc_root: &Path) -> Option<(u32, String)> {
    let mut found: Vec<(u32, String)> = std::fs::read_dir(proc_root)
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let comm =
                std::fs::read_to_string(proc_root.join(pid.to_string()).join("comm")).ok()?;
            let comm = comm.trim_end_matches('\n');
            CRON_DAEMONS
                .contains(&comm)
                .then(|| (pid, comm.to_string()))
        })
        .collect();
    found.sort();
    found.into_iter().next()
}

/// The fix for a crontab line no daemon runs.
const CRON_FIX: &str = "start the cron daemon (as root: systemctl enable --now cron; on Debian \
     and Ubuntu it comes with apt-get install cron, on Fedora with dnf install cronie and the \
     unit is crond), or use a systemd user timer instead: occ-scan schedule remove, then \
     occ-scan schedule install --backend systemd";

/// The fix when there is no crontab command.
const NO_CRONTAB_FIX: &str = "install cron (Debian and Ubuntu: apt-get install cron; Fedora: \
     dnf install cronie) and start it, or use a systemd user timer: occ-scan schedule install \
     --backend systemd (it needs the user's systemd manager; loginctl enable-linger USER keeps \
     it running without a login)";

fn user_unit_dir() -> PathBuf {
    let cfg = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| crate::paths::user_home().map(|h| h.join(".config")))
        .unwrap_or_else(|| PathBuf::from(".config"));
    cfg.join("systemd").join("user")
}

fn launch_agents_dir() -> PathBuf {
    crate::paths::user_home()
        .unwrap_or_default()
        .join("Library/LaunchAgents")
}

fn write_file(p: &Path, text: &str) -> Result<(), ScanError> {
    super::util::atomic_write(p, text.as_bytes())?;
    use std::os::unix::fs::PermissionsExt;
    // Unit files and plists are read by the service manager as this user: 0644 is the norm.
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o644)).map_err(|source| {
        ScanError::Write {
            path: p.to_path_buf(),
            source,
        }
    })
}

fn remove_file(p: &Path, out: &mut ScheduleOutcome) {
    match std::fs::remove_file(p) {
        Ok(()) => {
            out.files.push(p.display().to_string());
            out.done.push(format!("removed {}", p.display()));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => out.problems.push(format!(
            "cannot remove {}: {e} (fix: remove it by hand)",
            p.display()
        )),
    }
}

/// Reads the current crontab; a user without one has an empty crontab.
fn crontab_read(r: &mut Runner) -> Result<String, ScanError> {
    let o = r.run(&["crontab", "-l"], None)?;
    if o.success() {
        return Ok(String::from_utf8_lossy(&o.stdout).into_owned());
    }
    if o.stderr_text().to_ascii_lowercase().contains("no crontab") {
        return Ok(String::new());
    }
    Err(ScanError::Schedule {
        message: format!("`crontab -l` {}", how_it_ended(&o, r.timeout)),
        fix: "check that cron is installed and this user may use it (/etc/cron.allow, \
              /etc/cron.deny)"
            .into(),
    })
}

fn without_ours(tab: &str) -> Vec<&str> {
    tab.lines().filter(|l| !l.contains(CRON_MARKER)).collect()
}

/// Writes `lines` as the whole crontab, or removes the crontab when nothing is left.
fn crontab_write(r: &mut Runner, lines: &[&str]) -> Result<(), ScanError> {
    if lines.iter().all(|l| l.trim().is_empty()) {
        r.must(&["crontab", "-r"], None)?;
    } else {
        let mut text = lines.join("\n");
        text.push('\n');
        r.must(&["crontab", "-"], Some(text.as_bytes()))?;
    }
    Ok(())
}

fn user_name() -> String {
    nix::unistd::User::from_uid(nix::unistd::getuid())
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_else(|| nix::unistd::getuid().to_string())
}

/// Checks that a cron daemon runs, recording the verdict in `out`.
fn check_cron_daemon(out: &mut ScheduleOutcome) -> bool {
    match cron_daemon(Path::new("/proc")) {
        Some((pid, name)) => {
            out.notes
                .push(format!("the cron daemon runs ({name}, pid {pid})"));
            true
        }
        None => {
            out.problems.push(format!(
                "the crontab line is installed, but no cron daemon runs (no process named {}), \
                 so it never fires (fix: {CRON_FIX})",
                CRON_DAEMONS.join(", ")
            ));
            false
        }
    }
}

/// Installs the schedule.
pub fn install(paths: &Paths, opts: &ScheduleOptions) -> Result<ScheduleOutcome, ScanError> {
    let backend = pick_backend(opts.backend, opts.timeout);
    if backend == Backend::Cron && exec::which("crontab").is_none() {
        let why = if opts.backend == Backend::Auto {
            "`systemctl --user` does not work here and `crontab` is not installed, so there is \
             nothing to schedule with"
        } else {
            "`crontab` is not installed, so there is no cron to schedule with"
        };
        return Err(ScanError::Schedule {
            message: why.into(),
            fix: NO_CRONTAB_FIX.into(),
        });
    }
    let mut out = ScheduleOutcome {
        action: "install".into(),
        ..Default::default()
    };
    let mut r = Runner {
        out: &mut out,
        timeout: opts.timeout,
    };
    match backend {
        Backend::Systemd | Backend::Auto => {
            let (service, timer) = render_systemd(&opts.exe, &paths.home, opts.every)?;
            let dir = user_unit_dir();
            let sp = dir.join(format!("{UNIT}.service"));
            let tp = dir.join(format!("{UNIT}.timer"));
            write_file(&sp, &service)?;
            write_file(&tp, &timer)?;
            let timer_unit = format!("{UNIT}.timer");
            let enabled = r
                .must(&["systemctl", "--user", "daemon-reload"], None)
                .and_then(|_| {
                    r.must(
                        &["systemctl", "--user", "enable", "--now", &timer_unit],
                        None,
                    )
                });
            if let Err(e) = enabled {
                // Leave nothing half-installed behind.
                let _ = std::fs::remove_file(&sp);
                let _ = std::fs::remove_file(&tp);
                return Err(e);
            }
            out.backend = "systemd".into();
            out.files = vec![sp.display().to_string(), tp.display().to_string()];
            out.running = Some(true);
            let user = user_name();
            if !Path::new("/var/lib/systemd/linger").join(&user).exists() {
                out.notes.push(format!(
                    "user timers stop when {user} logs out; to keep them running: loginctl enable-linger {user}"
                ));
            }
        }
        Backend::Cron => {
            let line = render_cron(&opts.exe, &paths.home, opts.every)?;
            let cur = crontab_read(&mut r)?;
            let mut lines: Vec<&str> = without_ours(&cur);
            lines.push(&line);
            crontab_write(&mut r, &lines)?;
            out.backend = "cron".into();
            out.cron_line = Some(line);
            out.notes
                .push("cron gives a minimal PATH; occ-scan needs none beyond /proc".into());
            out.running = Some(check_cron_daemon(&mut out));
        }
        Backend::Launchd => {
            let plist = render_plist(&opts.exe, &paths.home, opts.every)?;
            let p = launch_agents_dir().join(format!("{LABEL}.plist"));
            write_file(&p, &plist)?;
            let uid = nix::unistd::getuid().as_raw();
            let domain = format!("gui/{uid}");
            // A previous copy may be loaded; a failure here only means it was not.
            let _ = r.run(
                &["launchctl", "bootout", &format!("{domain}/{LABEL}")],
                None,
            );
            r.must(
                &["launchctl", "bootstrap", &domain, &p.to_string_lossy()],
                None,
            )?;
            out.backend = "launchd".into();
            out.files = vec![p.display().to_string()];
            out.running = Some(true);
            out.notes
                .push("launchd support is untested on real macOS (golden files only)".into());
        }
    }
    out.installed = true;
    Ok(out)
}

/// Removes the schedule: every file and line install wrote, on every backend that has one
/// (or only `opts.backend`), and only those `opts.only` names. It does not stop at the first
/// failure: what it could not do is in `problems`, each with the fix, and what it left on
/// purpose in `kept`, each with why.
pub fn remove(opts: &RemoveOptions) -> ScheduleOutcome {
    let mut out = ScheduleOutcome {
        action: "remove".into(),
        ..Default::default()
    };
    let backends: Vec<Backend> = match opts.backend {
        Backend::Auto if cfg!(target_os = "macos") => vec![Backend::Launchd, Backend::Cron],
        Backend::Auto => vec![Backend::Systemd, Backend::Cron],
        b => vec![b],
    };
    let mut names = Vec::new();
    let not_ours = |only: &Only| {
        format!(
            "it does not run {} (fix: if it should go too, run occ-scan schedule remove as this \
             user)",
            only.describe()
        )
    };
    for b in backends {
        let mut r = Runner {
            out: &mut out,
            timeout: opts.timeout,
        };
        match b {
            Backend::Systemd | Backend::Auto => {
                let dir = user_unit_dir();
                let sp = dir.join(format!("{UNIT}.service"));
                let tp = dir.join(format!("{UNIT}.timer"));
                if !sp.exists() && !tp.exists() {
                    continue;
                }
                if let Some(only) = &opts.only {
                    let service = std::fs::read_to_string(&sp).unwrap_or_default();
                    if !only.unit(&service) {
                        r.out.kept.push(format!(
                            "the systemd user timer {} stays: {}",
                            tp.display(),
                            not_ours(only)
                        ));
                        continue;
                    }
                }
                let timer = format!("{UNIT}.timer");
                let user = user_name();
                if exec::which("systemctl").is_some() {
                    if r.try_run(
                        &["systemctl", "--user", "disable", "--now", &timer],
                        &format!(
                            "as {user}, in a session with a user manager, run systemctl --user \
                             disable --now {timer}"
                        ),
                    ) {
                        r.out.done.push(format!("stopped and disabled {timer}"));
                    }
                } else {
                    r.out.problems.push(format!(
                        "systemctl is not on PATH, so {timer} could not be stopped; its unit \
                         files are removed, and a user manager that still has it loaded runs it \
                         until it reloads (fix: as {user}, run systemctl --user disable --now \
                         {timer})"
                    ));
                }
                remove_file(&sp, r.out);
                remove_file(&tp, r.out);
                if exec::which("systemctl").is_some() {
                    r.try_run(
                        &["systemctl", "--user", "daemon-reload"],
                        &format!("as {user}, run systemctl --user daemon-reload"),
                    );
                }
                names.push("systemd");
            }
            Backend::Cron => {
                if exec::which("crontab").is_none() {
                    if opts.backend == Backend::Cron {
                        r.out.notes.push(
                            "crontab is not installed, so there is no crontab line to remove"
                                .into(),
                        );
                    }
                    continue;
                }
                let cur = match crontab_read(&mut r) {
                    Ok(c) => c,
                    Err(e) => {
                        r.out.problems.push(format!(
                            "{e}; a line marked {CRON_MARKER} may remain (fix: crontab -e and \
                             delete it)"
                        ));
                        continue;
                    }
                };
                let ours: Vec<&str> = cur.lines().filter(|l| l.contains(CRON_MARKER)).collect();
                if ours.is_empty() {
                    continue;
                }
                let (gone, stays): (Vec<&str>, Vec<&str>) = match &opts.only {
                    Some(only) => ours.iter().partition(|l| only.cron(l)),
                    None => (ours.clone(), Vec::new()),
                };
                if let Some(only) = &opts.only {
                    for l in &stays {
                        r.out
                            .kept
                            .push(format!("the crontab line `{l}` stays: {}", not_ours(only)));
                    }
                }
                if gone.is_empty() {
                    continue;
                }
                let rest: Vec<&str> = cur.lines().filter(|l| !gone.contains(l)).collect();
                match crontab_write(&mut r, &rest) {
                    Ok(()) => {
                        for l in &gone {
                            r.out.done.push(format!("removed the crontab line `{l}`"));
                        }
                        r.out.cron_line = gone.first().map(|l| l.to_string());
                        names.push("cron");
                    }
                    Err(e) => r.out.problems.push(format!(
                        "{e}; the line marked {CRON_MARKER} is still there (fix: crontab -e and \
                         delete it)"
                    )),
                }
            }
            Backend::Launchd => {
                let p = launch_agents_dir().join(format!("{LABEL}.plist"));
                if !p.exists() {
                    continue;
                }
                if let Some(only) = &opts.only {
                    let text = std::fs::read_to_string(&p).unwrap_or_default();
                    if !only.plist(&text) {
                        r.out.kept.push(format!(
                            "the launchd agent {} stays: {}",
                            p.display(),
                            not_ours(only)
                        ));
                        continue;
                    }
                }
                let uid = nix::unistd::getuid().as_raw();
                if r.try_run(
                    &["launchctl", "bootout", &format!("gui/{uid}/{LABEL}")],
                    &format!("run launchctl bootout gui/{uid}/{LABEL} in the user's session"),
                ) {
                    r.out.done.push(format!("unloaded {LABEL}"));
                }
                remove_file(&p, r.out);
                names.push("launchd");
            }
        }
    }
    out.backend = if names.is_empty() {
        "none".into()
    } else {
        names.join(",")
    };
    if names.is_empty() && out.kept.is_empty() && out.problems.is_empty() {
        out.notes
            .push("no occ-scan schedule was installed, so there was nothing to remove".into());
    }
    out.installed = !out.kept.is_empty();
    out
}
