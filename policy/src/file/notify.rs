//! `approval.notify` in `broker.json`: the program told about every new pending request. The
//! schema and its checks live here; what may run is [`crate::notifier`]'s rule (the one
//! occ-scan's notifier follows too). Who it runs as is decided here, at load: never root.

use super::*;
use crate::notifier::{Notifier, NotifierError};

/// The default `approval.notify.timeout_seconds`.
pub const DEFAULT_NOTIFY_TIMEOUT_SECONDS: u64 = 10;
/// The longest `approval.notify.timeout_seconds` accepted.
pub const MAX_NOTIFY_TIMEOUT_SECONDS: u64 = 300;

fn default_timeout() -> u64 {
    DEFAULT_NOTIFY_TIMEOUT_SECONDS
}

/// `approval.notify`: `{"argv": [...], "user": "NAME", "timeout_seconds": 10}`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyConfig {
    /// The exact argv; `argv[0]` an absolute path (see [`crate::notifier`]).
    pub argv: Vec<String>,
    /// Who it runs as: required when the broker runs as root (system mode), never root;
    /// otherwise the broker's own user, which may be left out.
    #[serde(default)]
    pub user: Option<String>,
    /// How long one delivery may take before the notifier is killed.
    #[serde(default = "default_timeout")]
    pub timeout_seconds: u64,
}

/// Who a notifier runs as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunAs {
    /// The user's name.
    pub user: String,
    /// Its uid.
    pub uid: u32,
    /// Its primary gid.
    pub gid: u32,
}

/// A checked `approval.notify`: what runs, as whom, for how long.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotifyRunner {
    /// The program and argv.
    pub notifier: Notifier,
    /// `Some` when the broker must become this user before exec (it runs as root); `None`
    /// when the notifier runs as the broker's own user.
    pub run_as: Option<RunAs>,
    /// [`NotifyConfig::timeout_seconds`].
    pub timeout: std::time::Duration,
}

impl NotifyConfig {
    /// The checks that need no file system: an argv with an absolute `argv[0]`, a timeout in
    /// range.
    pub(super) fn check_shape(&self, file: &Path, errs: &mut Vec<FileError>) {
        match self.argv.first() {
            None => errs.push(invalid(
                file,
                "approval.notify.argv",
                "is empty",
                NotifierError::Empty.fix(),
            )),
            Some(a0) if !Path::new(a0).is_absolute() => errs.push(invalid(
                file,
                "approval.notify.argv[0]",
                format!("{a0:?} is not an absolute path"),
                NotifierError::NotAbsolute(a0.clone()).fix(),
            )),
            Some(_) => {}
        }
        if !(1..=MAX_NOTIFY_TIMEOUT_SECONDS).contains(&self.timeout_seconds) {
            errs.push(invalid(
                file,
                "approval.notify.timeout_seconds",
                format!(
                    "{} is outside 1..={MAX_NOTIFY_TIMEOUT_SECONDS}",
                    self.timeout_seconds
                ),
                format!("use a number of seconds, e.g. {DEFAULT_NOTIFY_TIMEOUT_SECONDS}"),
            ));
        }
    }

    /// Checks the notifier as the broker running as `broker_uid` will run it: the program by
    /// [`Notifier::check`] (with the shipped catalogue), and the user: required, existing and
    /// not root when the broker is root; otherwise, when given, the broker's own user.
    pub fn runner(&self, file: &Path, broker_uid: u32) -> Result<NotifyRunner, FileError> {
        let notifier = Notifier::check(&self.argv, &CodeRunners::builtin())
            .map_err(|e| invalid(file, "approval.notify.argv[0]", e.to_string(), e.fix()))?;
        let at = "approval.notify.user";
        let lookup = |name: &str| {
            nix::unistd::User::from_name(name)
                .ok()
                .flatten()
                .ok_or_else(|| {
                    invalid(
                        file,
                        at,
                        format!("user {name:?} does not exist"),
                        "name an existing user (create it with useradd --system NAME)",
                    )
                })
        };
        let run_as = if broker_uid == 0 {
            let Some(name) = &self.user else {
                return Err(invalid(
                    file,
                    at,
                    "is missing, and the broker runs as root: the notifier would run as root",
                    "name the unprivileged user it runs as, e.g. \"user\": \"occ-notify\"",
                ));
            };
            let u = lookup(name)?;
            if u.uid.is_root() {
                return Err(invalid(
                    file,
                    at,
                    format!("{name:?} is root; a notifier never runs as root"),
                    "name an unprivileged user, e.g. \"occ-notify\"",
                ));
            }
            Some(RunAs {
                user: u.name,
                uid: u.uid.as_raw(),
                gid: u.gid.as_raw(),
            })
        } else {
            if let Some(name) = &self.user {
                let u = lookup(name)?;
                if u.uid.as_raw() != broker_uid {
                    return Err(invalid(
                        file,
                        at,
                        format!(
                            "{name:?} is not the broker's user (uid {broker_uid}); a user-mode \
                             broker runs its notifier as itself"
                        ),
                        "leave \"user\" out, or name the broker's own user",
                    ));
                }
            }
            None
        };
        Ok(NotifyRunner {
            notifier,
            run_as,
            timeout: std::time::Duration::from_secs(self.timeout_seconds),
        })
    }
}
