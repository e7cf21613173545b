//! `occ-scan man` and `occ-scan completions`: occ-scan(8), a page per subcommand, and the
//! bash, zsh and fish completions, generated from the clap definitions. Hidden subcommands:
//! `occ install` runs them to put the pages and scripts where `man` and each shell look.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use clap::{Args, CommandFactory, ValueEnum};

/// The shells occ and occ-scan write completions for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Shell {
    /// bash (bash-completion's per-command file).
    Bash,
    /// zsh (an `_NAME` function file for a directory in `fpath`).
    Zsh,
    /// fish (`NAME.fish` in a completions directory).
    Fish,
}

impl Shell {
    /// Every shell, in the order they are installed.
    pub const ALL: [Shell; 3] = [Shell::Bash, Shell::Zsh, Shell::Fish];

    fn generator(self) -> clap_complete::Shell {
        match self {
            Shell::Bash => clap_complete::Shell::Bash,
            Shell::Zsh => clap_complete::Shell::Zsh,
            Shell::Fish => clap_complete::Shell::Fish,
        }
    }

    /// The file name each shell looks for, for the command `name`.
    pub fn file_name(self, name: &str) -> String {
        match self {
            Shell::Bash => name.to_string(),
            Shell::Zsh => format!("_{name}"),
            Shell::Fish => format!("{name}.fish"),
        }
    }
}

/// `occ-scan man`.
#[derive(Args, Debug)]
pub struct ManArgs {
    /// Write every page under DIR (DIR/man8/occ-scan.8 and one page per subcommand) instead of
    /// printing occ-scan(8).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// `occ-scan completions`.
#[derive(Args, Debug)]
pub struct CompletionsArgs {
    /// The shell to print the completion script for.
    #[arg(value_enum)]
    pub shell: Shell,
}

/// Every manual page of `command` and its visible subcommands, section 8, as (path under a
/// man directory, roff text): `man8/NAME.8`, `man8/NAME-SUB.8`, … (occ's and occ-scan's alike).
pub fn pages_of(command: clap::Command) -> Result<Vec<(String, Vec<u8>)>, String> {
    fn walk(cmd: clap::Command, out: &mut Vec<(String, Vec<u8>)>) -> Result<(), String> {
        let subs: Vec<clap::Command> = cmd
            .get_subcommands()
            .filter(|s| !s.is_hide_set())
            .cloned()
            .collect();
        let man = clap_mangen::Man::new(cmd).section("8").manual("occ");
        let mut text = Vec::new();
        man.render(&mut text).map_err(|e| e.to_string())?;
        // roff's ASCII devices have no ellipsis (a troff warning, a blank): write three dots.
        let text = String::from_utf8_lossy(&text)
            .replace('…', "...")
            .into_bytes();
        out.push((format!("man8/{}", man.get_filename()), text));
        for s in subs {
            walk(s, out)?;
        }
        Ok(())
    }
    let mut cmd = command.disable_help_subcommand(true);
    cmd.build();
    let mut out = Vec::new();
    walk(cmd, &mut out)?;
    Ok(out)
}

/// occ-scan(8) and a page per visible subcommand.
pub fn pages() -> Result<Vec<(String, Vec<u8>)>, String> {
    pages_of(crate::cli::Cli::command())
}

/// The completion script of `command` (named `name`) for `shell`.
pub fn completion_of(command: clap::Command, name: &'static str, shell: Shell) -> Vec<u8> {
    let mut command = without_hidden(command, name);
    let mut out = Vec::new();
    clap_complete::generate(shell.generator(), &mut command, name, &mut out);
    out
}

/// occ-scan's completion script for `shell`.
pub fn completion(shell: Shell) -> Vec<u8> {
    completion_of(crate::cli::Cli::command(), "occ-scan", shell)
}

/// `cmd` without its hidden subcommands: clap_complete would offer them (`agent-home`, `man`).
fn without_hidden(cmd: clap::Command, name: &'static str) -> clap::Command {
    let visible: Vec<clap::Command> = cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set())
        .cloned()
        .collect();
    let mut out = clap::Command::new(name)
        .subcommand_required(cmd.is_subcommand_required_set())
        .args(cmd.get_arguments().cloned())
        .subcommands(visible);
    if let Some(a) = cmd.get_about() {
        out = out.about(a.clone());
    }
    out
}

/// Writes `pages` under `dir` (0644 files, atomically, parents created); returns the paths.
pub fn write_pages(dir: &Path, pages: &[(String, Vec<u8>)]) -> Result<Vec<PathBuf>, String> {
    use std::os::unix::fs::PermissionsExt;
    let mut written = Vec::new();
    for (rel, text) in pages {
        let file = dir.join(rel);
        occ_base::atomic::write_private(
            &file,
            text,
            occ_base::atomic::Options::durable().create_parents(),
        )
        .map_err(|e| format!("cannot write {}: {e}", file.display()))?;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644))
            .map_err(|e| format!("cannot chmod {}: {e}", file.display()))?;
        written.push(file);
    }
    Ok(written)
}

/// `occ-scan man [--dir DIR]`: exit 0, or 2 when a page cannot be written.
pub fn run_man(a: ManArgs) -> i32 {
    let written = pages().and_then(|pages| match &a.dir {
        None => std::io::stdout()
            .write_all(&pages[0].1)
            .map_err(|e| format!("cannot write to stdout: {e}")),
        Some(dir) => write_pages(dir, &pages).map(|files| {
            for f in files {
                println!("{}", f.display());
            }
        }),
    });
    match written {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("occ-scan man: {e}");
            2
        }
    }
}

/// `occ-scan completions SHELL`.
pub fn run_completions(a: CompletionsArgs) -> i32 {
    match std::io::stdout().write_all(&completion(a.shell)) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("occ-scan completions: cannot write to stdout: {e}");
            2
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_and_completions_cover_the_visible_subcommands() {
        let pages = pages().unwrap();
        let names: Vec<&str> = pages.iter().map(|p| p.0.as_str()).collect();
        for want in [
            "man8/occ-scan.8",
            "man8/occ-scan-cycle.8",
            "man8/occ-scan-schedule.8",
        ] {
            assert!(names.contains(&want), "{want} missing from {names:?}");
        }
        assert!(!names
            .iter()
            .any(|n| n.contains("-man.") || n.contains("completions")));
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            let text = String::from_utf8(completion(shell)).unwrap();
            assert!(text.contains("baseline"), "{shell:?}: {text}");
            assert!(
                !text.contains("completions"),
                "{shell:?} offers a hidden subcommand"
            );
        }
    }
}
