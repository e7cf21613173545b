//! `occ doctor --system`'s checks: the boundary as `occ_policy::boundary` judges it (the same
//! judgement occ-scan's `system_mode_boundary` makes), then the policy files, the audit log,
//! the service and the agent's shim. It reads and probes as root; it changes nothing.

use std::path::Path;
use std::time::Duration;

use occ_policy::boundary::{self, Holds, SudoSeen, SystemPaths};

use crate::install::checks::{audit_log, policy, Check, Status};
use crate::install::manifest::{BrokerStart, Manifest};
use crate::install::{agent_home, tool, unit};
use crate::layout::{SYSTEM_CONFIG_DIR, SYSTEM_LOG_DIR};

/// `LC_ALL=C sudo -n -l -U USER`, as root: the user's sudo rights.
pub fn sudo_list(user: &str) -> SudoSeen {
    let Some(sudo) = tool::which_in("sudo", occ_policy::file::DEFAULT_SECURE_PATH) else {
        return SudoSeen::NotInstalled;
    };
    let mut cmd = std::process::Command::new(&sudo);
    cmd.args(["-n", "-l", "-U", user])
        .env_clear()
        .env("PATH", occ_policy::file::DEFAULT_SECURE_PATH)
        .env("LC_ALL", "C");
    match tool::run_cmd(&mut cmd, Duration::from_secs(20)) {
        Ok(r) => boundary::parse_sudo_list(r.code, &r.stdout, &r.stderr),
        Err(e) => SudoSeen::Unknown(format!("cannot run {}: {e}", sudo.display())),
    }
}

/// The boundary's judgement as doctor lines: one ok or warn per area, one FAIL per breach.
pub fn boundary_checks(paths: &SystemPaths) -> Vec<Check> {
    let facts = boundary::gather(paths, &sudo_list);
    let mut out = Vec::new();
    for j in boundary::judge(&facts) {
        let name = j.area.name();
        match j.holds {
            Holds::Yes(detail) => out.push(Check {
                name,
                status: Status::Ok,
                detail,
                fix: None,
            }),
            Holds::Unknown(detail) => out.push(Check {
                name,
                status: Status::Warn,
                detail,
                fix: Some("run `occ doctor --system` as root on the broker's host".into()),
            }),
            Holds::No(breaches) => out.extend(breaches.into_iter().map(|b| Check {
                name,
                status: Status::Fail,
                detail: b.problem,
                fix: Some(b.fix),
            })),
        }
    }
    out
}

/// Every `occ doctor --system` check, in order.
pub fn run() -> Vec<Check> {
    let paths = SystemPaths::standard();
    let mut list = boundary_checks(&paths);
    if !Path::new(SYSTEM_CONFIG_DIR).is_dir() {
        return list;
    }
    list.push(policy(Path::new(SYSTEM_CONFIG_DIR)));
    list.push(audit_log(
        Path::new(SYSTEM_LOG_DIR),
        &Path::new(crate::layout::SYSTEM_STATE_DIR).join(crate::install::checks::AUDIT_CHECKPOINT),
    ));
    let manifest = Manifest::load_as(Path::new(super::MANIFEST), 0);
    list.push(service(&manifest));
    if let Ok(Some(m)) = &manifest {
        list.push(agent_shim(m));
    }
    list
}

/// How the broker comes back after a reboot.
fn service(manifest: &Result<Option<Manifest>, String>) -> Check {
    let m = match manifest {
        Ok(Some(m)) => m,
        Ok(None) => {
            return Check {
                name: "service",
                status: Status::Warn,
                detail: format!("no install manifest at {}", super::MANIFEST),
                fix: Some("install with `occ install --system` (install.sh --system)".into()),
            }
        }
        Err(e) => {
            return Check {
                name: "service",
                status: Status::Fail,
                detail: e.clone(),
                fix: Some("restore it or run `occ install --system` again".into()),
            }
        }
    };
    match (&m.broker, tool::systemd_system()) {
        (Some(BrokerStart::Systemd { unit }), Some(sc)) => {
            let enabled = tool::run(&sc, &["is-enabled", unit], Duration::from_secs(10))
                .map(|r| r.stdout.trim().to_string())
                .unwrap_or_default();
            if enabled == "enabled" {
                Check {
                    name: "service",
                    status: Status::Ok,
                    detail: format!("{unit} is enabled"),
                    fix: None,
                }
            } else {
                Check {
                    name: "service",
                    status: Status::Fail,
                    detail: format!("{unit} is not enabled ({enabled})"),
                    fix: Some(format!("systemctl enable --now {unit}")),
                }
            }
        }
        (Some(BrokerStart::Systemd { unit }), None) => Check {
            name: "service",
            status: Status::Warn,
            detail: format!("installed as {unit}, but systemd does not run this host"),
            fix: Some(format!(
                "start it directly: {} broker --system",
                super::occ_bin().display()
            )),
        },
        _ => Check {
            name: "service",
            status: Status::Warn,
            detail: "no systemd: the broker was started directly; it will not come back after a \
                     reboot"
                .into(),
            fix: Some(format!(
                "after each boot run `{} broker --system` as root (or install under systemd, \
                 which writes {})",
                super::occ_bin().display(),
                unit::BROKER_UNIT
            )),
        },
    }
}

/// The agent's `~/.openclaw/bin/sudo` is the installed shim (a convenience, not the boundary:
/// an agent that bypasses it still has no sudo rights).
fn agent_shim(m: &Manifest) -> Check {
    let Some(agent) = m.system.as_ref().map(|s| s.agent.clone()) else {
        return Check {
            name: "agent_shim",
            status: Status::Warn,
            detail: "the manifest names no agent".into(),
            fix: Some("run `occ install --system` again".into()),
        };
    };
    let Ok(Some(user)) = nix::unistd::User::from_name(&agent) else {
        return Check {
            name: "agent_shim",
            status: Status::Warn,
            detail: format!("the agent {agent} is not a user here any more"),
            fix: Some("run `occ uninstall --system`".into()),
        };
    };
    let copy = agent_home::occ_home_of(&user).join("bin/sudo");
    let sha = |p: &Path| std::fs::read(p).ok().map(|b| occ_audit::sha256_hex(&b));
    match (sha(&copy), sha(&super::shim())) {
        (Some(a), Some(b)) if a == b => Check {
            name: "agent_shim",
            status: Status::Ok,
            detail: format!("{} is the installed shim", copy.display()),
            fix: None,
        },
        (got, _) => Check {
            name: "agent_shim",
            status: Status::Warn,
            detail: match got {
                Some(_) => format!(
                    "{} differs from {}",
                    copy.display(),
                    super::shim().display()
                ),
                None => format!("{} is missing", copy.display()),
            },
            fix: Some(format!(
                "run `occ install --system --agent {agent} …` again so {agent}'s sudo asks occ"
            )),
        },
    }
}
