//! `occ man` and `occ completions`: the manual pages and shell completions, generated from the
//! clap definitions of `occ` itself, plus the hand-written `occ-policy(5)` (the file formats).
//! Hidden subcommands: `occ install` writes their output where `man` and each shell look.

use std::path::{Path, PathBuf};

use clap::{Args, CommandFactory, ValueEnum};

/// The hand-written page for the policy files' formats.
pub const POLICY_PAGE: (&str, &str) = (
    "man5/occ-policy.5",
    include_str!("../../../docs/man/occ-policy.5"),
);

/// The shells occ writes completions for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Shell {
    /// bash (bash-completion's per-command file).
    Bash,
    /// zsh (an `_occ` function file for a directory in `fpath`).
    Zsh,
    /// fish (`occ.fish` in a completions directory).
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

/// `occ man`.
#[derive(Args, Debug)]
pub struct ManArgs {
    /// Write every page under DIR (DIR/man8/occ.8, one page per subcommand, and
    /// DIR/man5/occ-policy.5) instead of printing occ(8).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// `occ completions`.
#[derive(Args, Debug)]
pub struct CompletionsArgs {
    /// The shell to print the completion script for.
    #[arg(value_enum)]
    pub shell: Shell,
}

/// Every manual page of `command` and its visible subcommands, section 8, as (path under a
/// man directory, roff text): `man8/occ.8`, `man8/occ-audit.8`, `man8/occ-audit-verify.8`, …
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

/// occ's pages: occ(8), one per visible subcommand, and occ-policy(5).
pub fn pages() -> Result<Vec<(String, Vec<u8>)>, String> {
    let mut out = pages_of(super::Cli::command())?;
    out.push((POLICY_PAGE.0.to_string(), POLICY_PAGE.1.as_bytes().to_vec()));
    Ok(out)
}

/// The completion script of `command` for `shell`.
pub fn completion_of(command: clap::Command, name: &'static str, shell: Shell) -> Vec<u8> {
    let mut command = without_hidden(command, name);
    let mut out = Vec::new();
    clap_complete::generate(shell.generator(), &mut command, name, &mut out);
    out
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

/// occ's completion script for `shell`.
pub fn completion(shell: Shell) -> Vec<u8> {
    completion_of(super::Cli::command(), "occ", shell)
}

/// Writes `pages` under `dir` (0644 files, atomically); returns the paths written.
pub fn write_pages(dir: &Path, pages: &[(String, Vec<u8>)]) -> Result<Vec<PathBuf>, String> {
    use std::os::unix::fs::PermissionsExt;
    let mut written = Vec::new();
    for (rel, text) in pages {
        let file = dir.join(rel);
        crate::paths::write_private(&file, text)?;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644))
            .map_err(|e| format!("cannot chmod {}: {e}", file.display()))?;
        written.push(file);
    }
    Ok(written)
}

/// `occ man [--dir DIR]`.
pub fn run_man(a: ManArgs) -> i32 {
    let pages = match pages() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("occ man: cannot render the pages: {e}");
            return 2;
        }
    };
    match a.dir {
        None => {
            use std::io::Write as _;
            let top = &pages[0].1;
            match std::io::stdout().write_all(top) {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!("occ man: cannot write to stdout: {e}");
                    2
                }
            }
        }
        Some(dir) => match write_pages(&dir, &pages) {
            Ok(files) => {
                for f in files {
                    println!("{}", f.display());
                }
                0
            }
            Err(e) => {
                eprintln!("occ man: {e}");
                2
            }
        },
    }
}

/// `occ completions SHELL`.
pub fn run_completions(a: CompletionsArgs) -> i32 {
    use std::io::Write as _;
    match std::io::stdout().write_all(&completion(a.shell)) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("occ completions: cannot write to stdout: {e}");
            2
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_cover_every_visible_subcommand_and_hide_the_hidden_ones() {
        let pages = pages().unwrap();
        let names: Vec<&str> = pages.iter().map(|p| p.0.as_str()).collect();
        for want in [
            "man8/occ.8",
            "man8/occ-approve.8",
            "man8/occ-audit.8",
            "man8/occ-audit-verify.8",
            "man5/occ-policy.5",
        ] {
            assert!(names.contains(&want), "{want} missing from {names:?}");
        }
        for hidden in [
            "man8/occ-man.8",
            "man8/occ-completions.8",
            "man8/occ-agent-home.8",
        ] {
            assert!(
                !names.contains(&hidden),
                "{hidden} is a hidden subcommand: {names:?}"
            );
        }
        let top = String::from_utf8(pages[0].1.clone()).unwrap();
        assert!(
            top.starts_with(".ie \\n(.g .ds Aq") || top.contains(".TH occ 8"),
            "{top}"
        );
        assert!(top.contains(".TH occ 8"), "{top}");
    }

    #[test]
    fn completions_name_the_subcommands() {
        for shell in Shell::ALL {
            let text = String::from_utf8(completion(shell)).unwrap();
            assert!(text.contains("approvals"), "{shell:?}: {text}");
            assert!(
                !text.contains("agent-home"),
                "{shell:?} completes a hidden subcommand"
            );
        }
    }
}
