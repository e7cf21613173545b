//! `occ man` and `occ completions`: the manual pages and shell completions, generated from the
//! clap definitions of `occ` itself, plus the hand-written `occ-policy(5)` (the file formats).
//! Hidden subcommands: `occ install` writes their output where `man` and each shell look.

use std::path::PathBuf;

use clap::{Args, CommandFactory};

/// The hand-written page for the policy files' formats.
pub const POLICY_PAGE: (&str, &str) = (
    "man5/occ-policy.5",
    include_str!("../../../docs/man/occ-policy.5"),
);

pub use occ_scan::docs_cli::{completion_of, pages_of, write_pages, Shell};

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

/// occ's pages: occ(8), one per visible subcommand, and occ-policy(5).
pub fn pages() -> Result<Vec<(String, Vec<u8>)>, String> {
    let mut out = pages_of(super::Cli::command())?;
    out.push((POLICY_PAGE.0.to_string(), POLICY_PAGE.1.as_bytes().to_vec()));
    Ok(out)
}

/// occ's completion script for `shell`.
pub fn completion(shell: Shell) -> Vec<u8> {
    completion_of(super::Cli::command(), "occ", shell)
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
