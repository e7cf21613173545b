//! `occ-scan schedule status`: what is installed, and whether it really runs.

use std::time::Duration;

use super::*;

/// Reports what is installed and whether it really runs: a systemd timer must be active, a
/// crontab line needs a running cron daemon, a launchd agent must be loaded. Each thing that
/// is not so is in `problems` with its fix.
pub fn status(timeout: Duration) -> ScheduleOutcome {
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
    let user = user_name();
    if !out.files.is_empty() {
        names.push("systemd");
        let timer = format!("{UNIT}.timer");
        let fix = format!(
            "as {user}: systemctl --user enable --now {timer}; loginctl enable-linger {user} \
             keeps it running without a login"
        );
        if exec::which("systemctl").is_none() {
            out.problems.push(format!(
                "the timer's unit files are installed, but systemctl is not on PATH, so it \
                 cannot be checked or run (fix: {fix})"
            ));
        } else {
            let mut r = Runner {
                out: &mut out,
                timeout,
            };
            match r.run(&["systemctl", "--user", "is-active", &timer], None) {
                Ok(o) if o.success() => {
                    out.notes.push(format!("{timer} is active"));
                }
                Ok(o) => {
                    let state = String::from_utf8_lossy(&o.stdout).trim().to_string();
                    let state = if state.is_empty() {
                        how_it_ended(&o, timeout)
                    } else {
                        state
                    };
                    out.problems.push(format!(
                        "{timer} is installed but not active ({state}), so the cycle does not \
                         run (fix: {fix})"
                    ));
                }
                Err(e) => out.problems.push(format!("{e} (fix: {fix})")),
            }
        }
    }
    if exec::which("crontab").is_some() {
        let mut r = Runner {
            out: &mut out,
            timeout,
        };
        match crontab_read(&mut r) {
            Ok(tab) => {
                if let Some(l) = tab.lines().find(|l| l.contains(CRON_MARKER)) {
                    out.cron_line = Some(l.to_string());
                    names.push("cron");
                    check_cron_daemon(&mut out);
                }
            }
            Err(e) => out.problems.push(e.to_string()),
        }
    }
    let plist = launch_agents_dir().join(format!("{LABEL}.plist"));
    if plist.exists() {
        out.files.push(plist.display().to_string());
        names.push("launchd");
        let uid = nix::unistd::getuid().as_raw();
        let mut r = Runner {
            out: &mut out,
            timeout,
        };
        let target = format!("gui/{uid}/{LABEL}");
        if r.try_run(
            &["launchctl", "print", &target],
            &format!(
                "launchctl bootstrap gui/{uid} {} in the user's session",
                plist.display()
            ),
        ) {
            out.notes.push(format!("{LABEL} is loaded"));
        }
    }
    out.installed = !names.is_empty();
    out.backend = if names.is_empty() {
        "none".into()
    } else {
        names.join(",")
    };
    if out.installed {
        out.running = Some(out.problems.is_empty());
    } else {
        out.notes.push(
            "no occ-scan schedule is installed for this user (fix: occ-scan schedule install \
             --every 15m)"
                .into(),
        );
    }
    out
}
