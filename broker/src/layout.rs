//! Where a broker keeps its files, by mode. User mode lives under `$OCC_HOME`, owned by the
//! agent's uid. System mode is a root service: config in `/etc/occ`, state in `/var/lib/occ`,
//! the audit log in `/var/log/occ`, sockets in `/run/occ` (DESIGN.md "System mode: paths").

use std::path::{Path, PathBuf};

/// The system broker's socket directory (root, 0755).
pub const SYSTEM_RUN_DIR: &str = "/run/occ";
/// The system broker's request socket (0666; identity comes from the kernel).
pub const SYSTEM_BROKER_SOCKET: &str = "/run/occ/broker.sock";
/// The system broker's admin socket (0666; approvers and root only, by identity).
pub const SYSTEM_ADMIN_SOCKET: &str = "/run/occ/admin.sock";
/// The system broker's configuration (root-owned, not writable by others).
pub const SYSTEM_CONFIG_DIR: &str = "/etc/occ";
/// The system broker's state: pending requests, grants (0700).
pub const SYSTEM_STATE_DIR: &str = "/var/lib/occ";
/// The system broker's audit log, head and seal key (0700; log 0600).
pub const SYSTEM_LOG_DIR: &str = "/var/log/occ";

/// Which broker this is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// The agent's own broker, as its own uid: a seatbelt.
    User,
    /// The root service: the requester can never approve, forge or rewrite.
    System,
}

impl Mode {
    /// The name shown by `occ status` and in `broker_started`.
    pub fn name(self) -> &'static str {
        match self {
            Mode::User => "user",
            Mode::System => "system",
        }
    }
}

/// The files of one broker.
#[derive(Clone, Debug)]
pub struct Layout {
    /// User or system.
    pub mode: Mode,
    /// `$OCC_HOME` in user mode; `/` in system mode.
    pub home: PathBuf,
    /// Where `broker.json`, `command-policy.json` and `prompt-policy.json` live.
    pub config_dir: PathBuf,
    /// Where the broker's state (snapshot, pending requests) lives.
    pub state_dir: PathBuf,
    /// The hash-chained audit log.
    pub audit_log: PathBuf,
}

impl Layout {
    /// A user-mode broker for `$OCC_HOME`.
    pub fn user(home: &Path) -> Layout {
        let security = home.join("security");
        Layout {
            mode: Mode::User,
            home: home.to_path_buf(),
            config_dir: security.clone(),
            state_dir: security.clone(),
            audit_log: security.join("privileged-audit.jsonl"),
        }
    }

    /// The system broker.
    pub fn system() -> Layout {
        Layout {
            mode: Mode::System,
            home: PathBuf::from("/"),
            config_dir: PathBuf::from(SYSTEM_CONFIG_DIR),
            state_dir: PathBuf::from(SYSTEM_STATE_DIR),
            audit_log: Path::new(SYSTEM_LOG_DIR).join("privileged-audit.jsonl"),
        }
    }

    /// Whether system mode is installed here (`/etc/occ` or the admin socket exists) and
    /// `OCC_MODE` is not `user`. Admin commands and the shim pick their broker the same way.
    pub fn system_selected() -> bool {
        std::env::var_os("OCC_MODE").as_deref() != Some(std::ffi::OsStr::new("user"))
            && (Path::new(SYSTEM_ADMIN_SOCKET).exists() || Path::new(SYSTEM_CONFIG_DIR).is_dir())
    }
}
