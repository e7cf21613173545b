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

fn refuse_newlines(what: &str, s: &str) -> Result<(), ScanError> {
    if s.contains(['\n', '\r', '\0']) {
        return Err(ScanError::Schedule {
            message: format!("{what} contains a newline or NUL"),
            fix: "install occ-scan and OCC_HOME under plain paths".into(),
        });
    }
    Ok(())
}

/// Quotes one word for a systemd command line or Environment= value.
pub fn systemd_quote(s: &str) -> String {
    let mut o = String::from("\"");
    for c in s.chars() {
        match c {
            '\\' => o.push_str("\\\\"),
            '"' => o.push_str("\\\""),
            '%' => o.push_str("%%"),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

/// Quotes a word for an ExecStart line (`$` is also expanded there).
fn exec_quote(s: &str) -> String {
    systemd_quote(s).replace('$', "$$")
}

/// Renders the service and timer units.
pub fn render_systemd(
    exe: &Path,
    home: &Path,
    every: Every,
) -> Result<(String, String), ScanError> {
    let exe_s = exe.to_string_lossy();
    let home_s = home.to_string_lossy();
    refuse_newlines("the occ-scan path", &exe_s)?;
    refuse_newlines("OCC_HOME", &home_s)?;
    let service = SERVICE_TEMPLATE
        .replace(
            "@ENVIRONMENT@",
            &systemd_quote(&format!("OCC_HOME={home_s}")),
        )
        .replace(
            "@EXEC_START@",
            &format!("{} cycle --quiet", exec_quote(&exe_s)),
        );
    let timer = TIMER_TEMPLATE
        .replace("@EVERY_TEXT@", &every.text())
        .replace("@ON_CALENDAR@", &every.on_calendar());
    Ok((service, timer))
}

/// Quotes a word for sh (inside a crontab line), then escapes cron's `%`.
pub fn cron_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''")).replace('%', "\\%")
}

/// The crontab line.
pub fn render_cron(exe: &Path, home: &Path, every: Every) -> Result<String, ScanError> {
    let exe_s = exe.to_string_lossy();
    let home_s = home.to_string_lossy();
    refuse_newlines("the occ-scan path", &exe_s)?;
    refuse_newlines("OCC_HOME", &home_s)?;
    Ok(format!(
        "{} OCC_HOME={} {} cycle --quiet {CRON_MARKER}",
        every.cron_fields(),
        cron_quote(&home_s),
        cron_quote(&exe_s)
    ))
}

/// Escapes text for XML.
pub fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

/// Renders the launchd plist.
pub fn render_plist(exe: &Path, home: &Path, every: Every) -> Result<String, ScanError> {
    let exe_s = exe.to_string_lossy();
    let home_s = home.to_string_lossy();
    refuse_newlines("the occ-scan path", &exe_s)?;
    refuse_newlines("OCC_HOME", &home_s)?;
    let logs = home.join("logs");
    Ok(PLIST_TEMPLATE
        .replace("@LABEL@", LABEL)
        .replace("@EXE@", &xml_escape(&exe_s))
        .replace("@OCC_HOME@", &xml_escape(&home_s))
        .replace("@SECONDS@", &every.seconds().to_string())
        .replace(
            "@LOG_OUT@",
            &xml_escape(&logs.join("occ-scan.out.log").to_string_lossy()),
        )
        .replace(
            "@LOG_ERR@",
            &xml_escape(&logs.join("occ-scan.err.log").to_string_lossy()),
        ))
}

/// What install/remove/status did.
#[derive(Debug, Clone, Serialize, Default)]
pub struct ScheduleOutcome {
    /// `install`, `remove` or `status`.
    pub action: String,
    /// The backend used.
    pub backend: String,
    /// Whether a schedule is installed after the action.
    pub installed: bool,
    /// Files written, removed or found.
    pub files: Vec<String>,
    /// The crontab line (cron).
    pub cron_line: Option<String>,
    /// Commands run, as argv.
    pub commands: Vec<Vec<String>>,
    /// Things the admin should know.
    pub notes: Vec<String>,
}

/// Options.
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

struct Runner<'a> {
    out: &'a mut ScheduleOutcome,
    timeout: Duration,
}

impl Runner<'_> {
    fn run(&mut self, argv: &[&str], stdin: Option<&[u8]>) -> Result<ChildOutput, ScanError> {
        self.out
            .commands
            .push(argv.iter().map(|s| s.to_string()).collect());
        let mut c = Command::new(argv[0]);
        c.args(&argv[1..]);
        exec::run(c, stdin, self.timeout)
    }

    fn must(&mut self, argv: &[&str], stdin: Option<&[u8]>) -> Result<ChildOutput, ScanError> {
        let o = self.run(argv, stdin)?;
        if !o.success() {
            return Err(ScanError::Schedule {
                message: format!(
                    "`{}` failed (exit {:?}{}): {}",
                    argv.join(" "),
                    o.code,
                    if o.timed_out { ", timed out" } else { "" },
                    o.stderr_text()
                ),
                fix: "run it by hand to see why, then retry".into(),
            });
        }
        Ok(o)
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

fn user_unit_dir() -> PathBuf {
    let cfg = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .unwrap_or_else(|| PathBuf::from(".config"));
    cfg.join("systemd").join("user")
}

fn launch_agents_dir() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
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

fn remove_file(p: &Path, out: &mut ScheduleOutcome) -> Result<(), ScanError> {
    match std::fs::remove_file(p) {
        Ok(()) => {
            out.files.push(p.display().to_string());
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(ScanError::Write {
            path: p.to_path_buf(),
            source,
        }),
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
        message: format!("`crontab -l` failed: {}", o.stderr_text()),
        fix: "check that cron is installed and this user may use it".into(),
    })
}

fn without_ours(tab: &str) -> Vec<&str> {
    tab.lines().filter(|l| !l.contains(CRON_MARKER)).collect()
}

/// Installs the schedule.
pub fn install(paths: &Paths, opts: &ScheduleOptions) -> Result<ScheduleOutcome, ScanError> {
    let backend = pick_backend(opts.backend, opts.timeout);
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
            let user = nix::unistd::User::from_uid(nix::unistd::getuid())
                .ok()
                .flatten()
                .map(|u| u.name)
                .unwrap_or_default();
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
            let mut text = lines.join("\n");
            text.push('\n');
            r.must(&["crontab", "-"], Some(text.as_bytes()))?;
            out.backend = "cron".into();
            out.cron_line = Some(line);
            out.notes
                .push("cron gives a minimal PATH; occ-scan needs none beyond /proc".into());
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
            out.notes
                .push("launchd support is untested on real macOS (golden files only)".into());
        }
    }
    out.installed = true;
    Ok(out)
}

/// Removes the schedule: every file and line install wrote, on every backend that has one.
pub fn remove(_paths: &Paths, opts: &ScheduleOptions) -> Result<ScheduleOutcome, ScanError> {
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
                if exec::which("systemctl").is_some() {
                    let _ = r.run(
                        &[
                            "systemctl",
                            "--user",
                            "disable",
                            "--now",
                            &format!("{UNIT}.timer"),
                        ],
                        None,
                    );
                }
                remove_file(&sp, r.out)?;
                remove_file(&tp, r.out)?;
                if exec::which("systemctl").is_some() {
                    let _ = r.run(&["systemctl", "--user", "daemon-reload"], None);
                }
                names.push("systemd");
            }
            Backend::Cron => {
                if exec::which("crontab").is_none() {
                    continue;
                }
                let cur = crontab_read(&mut r)?;
                if !cur.contains(CRON_MARKER) {
                    continue;
                }
                let rest = without_ours(&cur);
                if rest.iter().all(|l| l.trim().is_empty()) {
                    r.must(&["crontab", "-r"], None)?;
                } else {
                    let mut text = rest.join("\n");
                    text.push('\n');
                    r.must(&["crontab", "-"], Some(text.as_bytes()))?;
                }
                names.push("cron");
            }
            Backend::Launchd => {
                let p = launch_agents_dir().join(format!("{LABEL}.plist"));
                if !p.exists() {
                    continue;
                }
                let uid = nix::unistd::getuid().as_raw();
                let _ = r.run(
                    &["launchctl", "bootout", &format!("gui/{uid}/{LABEL}")],
                    None,
                );
                remove_file(&p, r.out)?;
                names.push("launchd");
            }
        }
    }
    out.backend = if names.is_empty() {
        "none".into()
    } else {
        names.join(",")
    };
    if names.is_empty() {
        out.notes.push("no occ-scan schedule was installed".into());
    }
    out.installed = false;
    Ok(out)
}

/// Reports what is installed.
pub fn status(_paths: &Paths, opts: &ScheduleOptions) -> Result<ScheduleOutcome, ScanError> {
    let mut out = ScheduleOutcome {
        action: "status".into(),
        ..Default::default()
    };
    let mut names = Vec::new();
    let dir = user_unit_dir();
    for f in [format!("{UNIT}.service"), format!("{UNIT}.timer")] {
        let p = dir.join(f);
        if p.exists() {
            out.files.push(p.display().to_string());
        }
    }
    if !out.files.is_empty() {
        names.push("systemd");
        if exec::which("systemctl").is_some() {
            let mut r = Runner {
                out: &mut out,
                timeout: opts.timeout,
            };
            if let Ok(o) = r.run(
                &["systemctl", "--user", "is-active", &format!("{UNIT}.timer")],
                None,
            ) {
                let s = String::from_utf8_lossy(&o.stdout).trim().to_string();
                out.notes.push(format!("timer is {s}"));
            }
        }
    }
    if exec::which("crontab").is_some() {
        let mut r = Runner {
            out: &mut out,
            timeout: opts.timeout,
        };
        if let Ok(tab) = crontab_read(&mut r) {
            if let Some(l) = tab.lines().find(|l| l.contains(CRON_MARKER)) {
                out.cron_line = Some(l.to_string());
                names.push("cron");
            }
        }
    }
    let plist = launch_agents_dir().join(format!("{LABEL}.plist"));
    if plist.exists() {
        out.files.push(plist.display().to_string());
        names.push("launchd");
    }
    out.installed = !names.is_empty();
    out.backend = if names.is_empty() {
        "none".into()
    } else {
        names.join(",")
    };
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals() {
        assert_eq!(Every::parse("15m").unwrap(), Every::Minutes(15));
        assert_eq!(Every::parse("1h").unwrap(), Every::Hours(1));
        assert_eq!(Every::parse("15m").unwrap().cron_fields(), "*/15 * * * *");
        assert_eq!(
            Every::parse("6h").unwrap().on_calendar(),
            "*-*-* 00/6:00:00"
        );
        assert!(Every::parse("7m").is_err());
        assert!(Every::parse("90s").is_err());
        assert!(Every::parse("5h").is_err());
    }

    #[test]
    fn quoting() {
        assert_eq!(systemd_quote("/a b/100%\"x"), "\"/a b/100%%\\\"x\"");
        assert_eq!(cron_quote("/a b/it's 100%"), "'/a b/it'\\''s 100\\%'");
        assert!(render_cron(Path::new("/x\ny"), Path::new("/h"), Every::Minutes(5)).is_err());
    }
}
