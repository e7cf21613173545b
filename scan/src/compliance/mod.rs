//! Evidence-based compliance for occ: the checks behind `occ-scan assess`, the reports
//! (summary JSON, HTML dashboard, Prometheus textfile), `notify`, `preflight`, `cycle` and
//! `schedule`. A check that cannot gather its evidence says `not_assessed`; it never reads a
//! failure as "compliant".

pub mod audit;
pub mod checks;
pub mod cycle;
pub mod dashboard;
pub mod facts;
pub mod files;
pub mod map;
pub mod netscan;
pub mod notify;
pub mod preflight;
pub mod prom;
pub mod report;
pub mod schedule;
pub mod state;
pub mod util;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Where occ keeps its files in user mode: `$OCC_HOME`, default `~/.openclaw`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    /// The occ home directory.
    pub home: PathBuf,
}

impl Paths {
    /// `$OCC_HOME` when set and non-empty, else `$HOME/.openclaw`.
    pub fn from_env() -> Self {
        if let Some(h) = std::env::var_os("OCC_HOME").filter(|h| !h.is_empty()) {
            return Paths {
                home: PathBuf::from(h),
            };
        }
        let home = std::env::var_os("HOME")
            .filter(|h| !h.is_empty())
            .map(PathBuf::from)
            .or_else(|| {
                nix::unistd::User::from_uid(nix::unistd::getuid())
                    .ok()
                    .flatten()
                    .map(|u| u.dir)
            })
            .unwrap_or_else(|| PathBuf::from("/"));
        Paths {
            home: home.join(".openclaw"),
        }
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

/// Outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// The evidence shows the control in force.
    Compliant,
    /// The control is partly in force.
    Partial,
    /// The evidence shows the control is not in force.
    Violation,
    /// The evidence could not be gathered; the error says why.
    NotAssessed,
}

impl Status {
    /// The status as written in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Compliant => "compliant",
            Status::Partial => "partial",
            Status::Violation => "violation",
            Status::NotAssessed => "not_assessed",
        }
    }

    /// Whether the check counts as a finding (violation or partial).
    pub fn is_failing(self) -> bool {
        matches!(self, Status::Violation | Status::Partial)
    }

    /// Rank used by notify to spot escalations: violation 2, partial 1, else 0.
    pub fn rank(self) -> u8 {
        match self {
            Status::Violation => 2,
            Status::Partial => 1,
            _ => 0,
        }
    }

    /// Parses a status as written in reports.
    pub fn parse(s: &str) -> Option<Status> {
        match s {
            "compliant" => Some(Status::Compliant),
            "partial" => Some(Status::Partial),
            "violation" => Some(Status::Violation),
            "not_assessed" => Some(Status::NotAssessed),
            _ => None,
        }
    }

    /// All statuses, in report order.
    pub const ALL: [Status; 4] = [
        Status::Violation,
        Status::Partial,
        Status::Compliant,
        Status::NotAssessed,
    ];
}

/// Risk of a failing check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Risk {
    /// Low.
    Low,
    /// Medium.
    Medium,
    /// High.
    High,
    /// Critical: a high-risk control failing in a way that is exposed right now.
    Critical,
}

impl Risk {
    /// The risk as written in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Risk::Low => "low",
            Risk::Medium => "medium",
            Risk::High => "high",
            Risk::Critical => "critical",
        }
    }

    /// Weight used for the per-control risk chart.
    pub fn weight(self) -> u32 {
        match self {
            Risk::Low => 1,
            Risk::Medium => 2,
            Risk::High => 3,
            Risk::Critical => 4,
        }
    }

    /// One step lower (a partial finding carries less risk than a violation).
    pub fn lower(self) -> Risk {
        match self {
            Risk::Critical => Risk::High,
            Risk::High => Risk::Medium,
            Risk::Medium | Risk::Low => Risk::Low,
        }
    }

    /// All risks, highest first.
    pub const ALL: [Risk; 4] = [Risk::Critical, Risk::High, Risk::Medium, Risk::Low];
}

/// Errors of the compliance half of occ-scan. Each names the file or setting and the fix.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ComplianceError {
    /// A file could not be read.
    #[error(
        "{path}: cannot read: {source} (fix: check that it exists and is readable by this user)"
    )]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A file could not be written.
    #[error("{path}: cannot write: {source} (fix: check the directory's owner and free space)")]
    Write {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A file's content is not what occ-scan expects.
    #[error("{path}: {key}: {message} (fix: {fix})")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The key or position at fault.
        key: String,
        /// What is wrong.
        message: String,
        /// How to fix it.
        fix: String,
    },
    /// Another cycle holds the lock.
    #[error("{path}: another occ-scan cycle is running (fix: wait for it, or remove a stale lock holder)")]
    Locked {
        /// The lock file.
        path: PathBuf,
    },
    /// A child process failed or timed out.
    #[error("{program}: {message}")]
    Child {
        /// The program.
        program: String,
        /// What happened.
        message: String,
    },
    /// The notifier configuration is refused.
    #[error("notifier refused: {message} (fix: {fix})")]
    NotifierRefused {
        /// Why.
        message: String,
        /// How to fix it.
        fix: String,
    },
    /// A schedule could not be installed or removed.
    #[error("schedule: {message} (fix: {fix})")]
    Schedule {
        /// What failed.
        message: String,
        /// How to fix it.
        fix: String,
    },
}

impl ComplianceError {
    pub(crate) fn invalid(path: &Path, key: &str, message: impl Into<String>, fix: &str) -> Self {
        ComplianceError::Invalid {
            path: path.to_path_buf(),
            key: key.to_string(),
            message: message.into(),
            fix: fix.to_string(),
        }
    }
}
