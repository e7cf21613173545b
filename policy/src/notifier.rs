//! The one notifier rule, shared by occ-scan's `notify` and the broker's `approval.notify`: an
//! exact argv whose program path, canonicalised, is an executable regular file and not a shell
//! or interpreter (the code-runner catalogue, judged on the name given and on the resolved
//! target), run with an empty environment but `PATH`, from `/`. It builds the command; it never
//! runs it (callers run it with a deadline through `occ_base::child`).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::file::CodeRunners;

/// The only environment a notifier gets.
pub const NOTIFIER_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// A notifier the rule accepts: its exact argv and the file `argv[0]` resolves to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notifier {
    argv: Vec<String>,
    program: PathBuf,
}

/// Why a notifier is refused. Each message names the program; [`NotifierError::fix`] says
/// what to write instead.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NotifierError {
    /// No argv, or an empty `argv[0]`.
    #[error("the notifier argv is empty")]
    Empty,
    /// `argv[0]` is not an absolute path.
    #[error("{0} is not an absolute path")]
    NotAbsolute(String),
    /// `argv[0]` does not resolve.
    #[error("{given}: {detail}")]
    Unresolved {
        /// `argv[0]`.
        given: String,
        /// The OS error.
        detail: String,
    },
    /// `argv[0]`, or the file it resolves to, is a shell or interpreter.
    #[error("{given} resolves to {}, a shell or interpreter that would run the message as code", resolved.display())]
    CodeRunner {
        /// `argv[0]`.
        given: String,
        /// The canonical path.
        resolved: PathBuf,
    },
    /// The resolved file is not an executable regular file.
    #[error("{} is not an executable regular file", .0.display())]
    NotExecutable(PathBuf),
}

impl NotifierError {
    /// What to do about it.
    pub fn fix(&self) -> &'static str {
        match self {
            NotifierError::Empty => {
                "name the notifier's absolute path, e.g. [\"/usr/bin/logger\", \"-t\", \"occ\"]"
            }
            NotifierError::NotAbsolute(_) => "use the absolute path (`command -v NAME` prints it)",
            NotifierError::Unresolved { .. } => "point at an existing executable",
            NotifierError::CodeRunner { .. } => {
                "use a program that reads the message as data (logger, a mailer, curl to a webhook)"
            }
            NotifierError::NotExecutable(_) => "point at an executable regular file",
        }
    }
}

impl Notifier {
    /// Checks `argv` by the rule: absolute `argv[0]` that canonicalises to an executable
    /// regular file, neither it nor the name given a shell or interpreter in `catalogue`.
    pub fn check(argv: &[String], catalogue: &CodeRunners) -> Result<Notifier, NotifierError> {
        let first = match argv.first() {
            Some(f) if !f.is_empty() => f,
            _ => return Err(NotifierError::Empty),
        };
        let given = Path::new(first);
        if !given.is_absolute() {
            return Err(NotifierError::NotAbsolute(first.clone()));
        }
        let real = std::fs::canonicalize(given).map_err(|e| NotifierError::Unresolved {
            given: first.clone(),
            detail: e.to_string(),
        })?;
        let name = |p: &Path| {
            p.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        };
        if catalogue.is_shell_or_interpreter(&name(&real))
            || catalogue.is_shell_or_interpreter(&name(given))
        {
            return Err(NotifierError::CodeRunner {
                given: first.clone(),
                resolved: real,
            });
        }
        if !is_executable_file(&real) {
            return Err(NotifierError::NotExecutable(real));
        }
        Ok(Notifier {
            argv: argv.to_vec(),
            program: real,
        })
    }

    /// The argv as configured.
    pub fn argv(&self) -> &[String] {
        &self.argv
    }

    /// The file `argv[0]` resolved to when it was checked.
    pub fn program(&self) -> &Path {
        &self.program
    }

    /// The command to run: the resolved file with `argv[0]` as given and the rest of the
    /// argv, an empty environment but [`NOTIFIER_PATH`], from `/`.
    pub fn command(&self) -> Command {
        use std::os::unix::process::CommandExt;
        let mut c = Command::new(&self.program);
        if let Some(a0) = self.argv.first() {
            c.arg0(a0);
        }
        c.args(self.argv.get(1..).unwrap_or_default())
            .env_clear()
            .env("PATH", NOTIFIER_PATH)
            .current_dir("/");
        c
    }
}

/// Whether `p` (following symlinks) is a regular file with an execute bit.
fn is_executable_file(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(argv: &[&str]) -> Result<Notifier, NotifierError> {
        let argv: Vec<String> = argv.iter().map(|s| s.to_string()).collect();
        Notifier::check(&argv, &CodeRunners::builtin())
    }

    #[test]
    fn shells_and_interpreters_are_refused_by_name_and_by_target() {
        for sh in ["/bin/sh", "/bin/bash", "/usr/bin/env", "/usr/bin/perl"] {
            if Path::new(sh).exists() {
                let e = check(&[sh, "-c", "x"]).unwrap_err();
                assert!(matches!(e, NotifierError::CodeRunner { .. }), "{sh}: {e}");
            }
        }
        // A harmless name for bash is judged by what it resolves to.
        let d = tempfile::tempdir().unwrap();
        let link = d.path().join("notify-helper");
        std::os::unix::fs::symlink("/bin/bash", &link).unwrap();
        let e = check(&[link.to_str().unwrap()]).unwrap_err();
        assert!(e.to_string().contains("a shell or interpreter"), "{e}");
    }

    #[test]
    fn data_readers_pass_and_keep_their_argv() {
        for p in [
            "/usr/bin/logger",
            "/usr/bin/curl",
            "/bin/sleep",
            "/bin/false",
        ] {
            if Path::new(p).exists() {
                let n = check(&[p, "-x"]).unwrap_or_else(|e| panic!("{p}: {e}"));
                assert_eq!(n.argv(), [p.to_string(), "-x".to_string()]);
                let c = n.command();
                assert_eq!(c.get_envs().count(), 1, "only PATH");
            }
        }
    }

    #[test]
    fn relative_missing_empty_and_plain_files_are_refused() {
        assert_eq!(check(&[]), Err(NotifierError::Empty));
        assert_eq!(check(&[""]), Err(NotifierError::Empty));
        assert!(matches!(
            check(&["logger"]),
            Err(NotifierError::NotAbsolute(_))
        ));
        assert!(matches!(
            check(&["/nonexistent/notify"]),
            Err(NotifierError::Unresolved { .. })
        ));
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("plain");
        std::fs::write(&f, "x").unwrap();
        assert!(matches!(
            check(&[f.to_str().unwrap()]),
            Err(NotifierError::NotExecutable(_))
        ));
    }

    #[test]
    fn versioned_and_upper_case_names_count() {
        let c = CodeRunners::builtin();
        for n in [
            "python3.11",
            "perl5.36",
            "bash",
            "BASH",
            "node18",
            "busybox",
            "ghci",
            "R",
        ] {
            assert!(c.is_shell_or_interpreter(n), "{n}");
        }
        for n in [
            "logger",
            "curl",
            "mail",
            "sleep",
            "false",
            "openclaw",
            "notify-send",
        ] {
            assert!(!c.is_shell_or_interpreter(n), "{n}");
        }
    }
}
