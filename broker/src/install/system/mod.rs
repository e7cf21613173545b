//! System mode's install (`occ install --system`), uninstall and doctor checks, run by root.
//! Everything is recorded in `/var/lib/occ/install-manifest.json` (root, 0600); the agent's
//! home is changed only by a child running as the agent (`crate::install::agent_home`). It
//! must never give the agent a way in: no file it can write, no approver role, no sudo rule.

pub mod checks;
pub mod remove;
pub mod setup;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use occ_policy::boundary::{self, BrokerSeen, SystemPaths};

/// The system install's manifest.
pub const MANIFEST: &str = "/var/lib/occ/install-manifest.json";
/// Where `occ` and `occ-scan` go.
pub const BIN_DIR: &str = "/usr/local/bin";
/// Where the shim goes (and is copied from into the agent's home).
pub const LIB_DIR: &str = "/usr/local/lib/occ";
/// The group `--create-approvers-group` makes.
pub const APPROVERS_GROUP: &str = "occ-approvers";

/// `/usr/local/bin/occ`.
pub fn occ_bin() -> PathBuf {
    Path::new(BIN_DIR).join("occ")
}

/// `/usr/local/lib/occ/occ-shim`.
pub fn shim() -> PathBuf {
    Path::new(LIB_DIR).join("occ-shim")
}

/// `/etc/systemd/system/occ-broker.service`.
pub fn unit_file() -> PathBuf {
    Path::new(crate::install::unit::SYSTEM_UNIT_DIR).join(crate::install::unit::BROKER_UNIT)
}

/// Whether this process runs as root; the error says why `what` needs it and how to run it.
pub fn require_root(what: &str, why: &str) -> Result<(), String> {
    if nix::unistd::geteuid().is_root() {
        Ok(())
    } else {
        Err(format!(
            "{what} must run as root ({why}); run it with the real sudo from an admin account: \
             sudo {what}"
        ))
    }
}

/// Waits until something answers the system broker's socket; returns its pid.
pub fn wait_up(limit: Duration) -> Result<i32, String> {
    let deadline = Instant::now() + limit;
    let paths = SystemPaths::standard();
    loop {
        match boundary::see_broker(&paths) {
            BrokerSeen::Answers { pid, .. } => return Ok(pid),
            BrokerSeen::Silent(why) if Instant::now() >= deadline => {
                return Err(format!(
                    "the system broker does not answer: {why}; see /var/log/occ/broker.log"
                ))
            }
            BrokerSeen::Silent(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_boundary_judges_the_paths_the_broker_uses() {
        let p = SystemPaths::standard();
        let l = crate::layout::Layout::system();
        assert_eq!(p.config_dir, l.config_dir);
        assert_eq!(p.state_dir, l.state_dir);
        assert_eq!(Some(p.log_dir.as_path()), l.audit_log.parent());
        let run = crate::daemon::files::RunPaths::system();
        assert_eq!(p.run_dir, run.dir);
        assert_eq!(p.socket, run.socket);
        assert_eq!(p.pid_file, run.pid);
        assert_eq!(Path::new(MANIFEST).parent(), Some(l.state_dir.as_path()));
        for installed in [occ_bin(), Path::new(BIN_DIR).join("occ-scan"), unit_file()] {
            assert!(p.installed.contains(&installed), "{}", installed.display());
        }
        assert!(p.installed.contains(&PathBuf::from(LIB_DIR)));
    }
}
