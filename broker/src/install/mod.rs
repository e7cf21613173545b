//! Installing occ for one user: the manifest of everything `occ install` created, the broker's
//! start (systemd user unit or the daemon itself), the agent-PATH injection, and the checks
//! `occ install` and `occ doctor` print; and system mode's install, run by root (`system`,
//! with the agent's own part in `agent_home`). It must never replace a file it did not create without
//! a backup, and every change it makes is recorded so `occ uninstall` can revert it.

pub mod agent_home;
pub mod broker;
pub mod checks;
pub mod docs;
pub mod manifest;
pub mod pathinj;
pub mod plugin;
pub mod remove;
pub mod setup;
pub mod system;
pub mod tool;
pub mod unit;

use std::path::PathBuf;

/// `$OCC_HOME/bin`.
pub fn bin_dir() -> PathBuf {
    crate::paths::occ_home().join("bin")
}

/// `$OCC_HOME/install-manifest.json`.
pub fn manifest_path() -> PathBuf {
    crate::paths::occ_home().join("install-manifest.json")
}

/// The installed names and the files they come from in a build directory.
pub const BINARIES: [(&str, &str); 3] = [
    ("occ", "occ"),
    ("occ-scan", "occ-scan"),
    ("sudo", "occ-shim"),
];
