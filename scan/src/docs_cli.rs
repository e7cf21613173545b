//! `occ-scan man` and `occ-scan completions`: occ-scan(8), a page per subcommand, and the
//! bash, zsh and fish completions, generated from the clap definitions. Hidden subcommands:
//! `occ install` runs them to put the pages and scripts where `man` and each shell look.

use std::io::Write as _;
use std::path::PathBuf;

use clap::{Args, CommandFactory, ValueEnum};

/// The shells occ-scan writes completions for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Shell {
    /// bash.
    Bash,
    /// zsh.
    Zsh,
    /// fish.
    Fish,
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

/// occ-scan(8) and a page per visible subcommand, as (path under a man directory, roff).
pub fn pages() -> std::io::Result<Vec<(String, Vec<u8>)>> {
    fn walk(cmd: clap::Command, out: &mut Vec<(String, Vec<u8>)>) -> std::io::Result<()> {
        let subs: Vec<clap::Command> = cmd
            .get_subcommands()
            .filter(|s| !s.is_hide_set())
            .cloned()
            .collect();
        let man = clap_mangen::Man::new(cmd).section("8").manual("occ");
        let mut text = Vec::new();
        man.render(&mut text)?;
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
    let mut cmd = crate::cli::Cli::command().disable_help_subcommand(true);
    cmd.build();
    let mut out = Vec::new();
    walk(cmd, &mut out)?;
    Ok(out)
}

/// The completion script for `shell`.
pub fn completion(shell: Shell) -> Vec<u8> {
    let generator = match shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
    };
    let mut cmd = without_hidden(crate::cli::Cli::command(), "occ-scan");
    let mut out = Vec::new();
    clap_complete::generate(generator, &mut cmd, "occ-scan", &mut out);
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

/// `occ-scan man [--dir DIR]`: exit 0, or 2 when a page cannot be written.
pub fn run_man(a: ManArgs) -> i32 {
    let written = pages().and_then(|pages| match &a.dir {
        None => std::io::stdout().write_all(&pages[0].1),
        Some(dir) => {
            for (rel, text) in &pages {
                let file = dir.join(rel);
                occ_base::atomic::write_private(
                    &file,
                    text,
                    occ_base::atomic::Options::durable().create_parents(),
                )
                .map_err(|e| e.into_source())?;
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644))?;
                println!("{}", file.display());
            }
            Ok(())
        }
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
