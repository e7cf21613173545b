//! Where occ-scan finds occ's files: the one home resolver (`$OCC_HOME`, else `~/.openclaw`, as
//! the broker resolves it) and every path under the home. It reads the environment and the
//! password database; it never creates anything.

use std::path::PathBuf;

use crate::error::ScanError;

/// Where occ keeps its files in user mode: `$OCC_HOME`, default `~/.openclaw`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    /// The occ home directory.
    pub home: PathBuf,
}

/// The user's home directory (occ-base's one home resolver, shared with occ).
pub use occ_base::home::user_home;

impl Paths {
    /// `$OCC_HOME` when set and non-empty, else `.openclaw` in `$HOME` or, without one, in
    /// this user's home directory from the password database.
    pub fn from_env() -> Result<Paths, ScanError> {
        if let Some(h) = std::env::var_os("OCC_HOME").filter(|h| !h.is_empty()) {
            return Ok(Paths::at(h));
        }
        user_home()
            .map(|home| Paths::at(home.join(".openclaw")))
            .ok_or(ScanError::NoHome)
    }

    /// Paths rooted at an explicit home (tests, `--home`).
    pub fn at(home: impl Into<PathBuf>) -> Self {
        Paths { home: home.into() }
    }

    /// The uid the broker for this home reads its policy files as: the home's owner (the shim
    /// starts the broker as the agent user who owns the home), or this process's effective
    /// uid when the home cannot be read. Judged as any other uid would see them, the files
    /// could pass here and still be refused by the broker.
    pub fn reader_uid(&self) -> u32 {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(&self.home)
            .map(|m| m.uid())
            .unwrap_or_else(|_| nix::unistd::geteuid().as_raw())
    }

    /// `$OCC_HOME/security`.
    pub fn security(&self) -> PathBuf {
        self.home.join("security")
    }

    /// `$OCC_HOME/security/NAME`.
    pub fn security_file(&self, name: &str) -> PathBuf {
        self.security().join(name)
    }

    /// `$OCC_HOME/security/approved_ports.json`.
    pub fn approved_ports(&self) -> PathBuf {
        self.security_file("approved_ports.json")
    }

    /// `$OCC_HOME/security/egress_allowlist.json`.
    pub fn egress_allowlist(&self) -> PathBuf {
        self.security_file("egress_allowlist.json")
    }

    /// `$OCC_HOME/assessments`: reports and scan state.
    pub fn assessments(&self) -> PathBuf {
        self.home.join("assessments")
    }

    /// `$OCC_HOME/assessments/NAME`.
    pub fn assessment_file(&self, name: &str) -> PathBuf {
        self.assessments().join(name)
    }

    /// `$OCC_HOME/bin/sudo`, the shim.
    pub fn shim(&self) -> PathBuf {
        self.home.join("bin").join("sudo")
    }

    /// `$OCC_HOME/install-manifest.json`.
    pub fn install_manifest(&self) -> PathBuf {
        self.home.join("install-manifest.json")
    }

    /// `$OCC_HOME/openclaw.json`.
    pub fn openclaw_json(&self) -> PathBuf {
        self.home.join("openclaw.json")
    }
}
