//! Man pages and shell completions: where `occ install` puts them and how. occ's own come from
//! its clap definitions in this process (`cli::docs`); occ-scan's from the occ-scan binary
//! being installed (`occ-scan man --dir`, `occ-scan completions SHELL`). Each file is recorded
//! in the manifest (`FileKind::Doc`), so `occ uninstall` removes exactly these, and the
//! directories it had to create. A page or script that cannot be made is a warning, never a
//! failed install: they document occ, they guard nothing.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::cli::docs::{self, Shell};
use crate::install::manifest::FileKind;
use crate::install::setup::Ctx;

/// Where the pages and the completion scripts go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Targets {
    /// The man directory holding `man5/` and `man8/`.
    pub man: PathBuf,
    /// bash-completion's completions directory.
    pub bash: PathBuf,
    /// A directory for zsh's `fpath`.
    pub zsh: PathBuf,
    /// fish's completions directory.
    pub fish: PathBuf,
}

impl Targets {
    /// User mode: pages under the install prefix (`$OCC_HOME/share/man`: man-db finds it
    /// while `$OCC_HOME/bin` is on PATH), completions where each shell looks for a user's own:
    /// `${XDG_DATA_HOME:-~/.local/share}/bash-completion/completions`,
    /// `${XDG_DATA_HOME:-~/.local/share}/zsh/site-functions`,
    /// `${XDG_CONFIG_HOME:-~/.config}/fish/completions`.
    pub fn user(occ_home: &Path) -> Targets {
        let home = crate::paths::user_home();
        // The XDG spec ignores a relative value.
        let xdg = |var: &str, default: &str| {
            std::env::var_os(var)
                .map(PathBuf::from)
                .filter(|p| p.is_absolute())
                .unwrap_or_else(|| home.join(default))
        };
        let data = xdg("XDG_DATA_HOME", ".local/share");
        Targets {
            man: occ_home.join("share/man"),
            bash: data.join("bash-completion/completions"),
            zsh: data.join("zsh/site-functions"),
            fish: xdg("XDG_CONFIG_HOME", ".config").join("fish/completions"),
        }
    }

    /// System mode: the `/usr/local` directories man, bash-completion, zsh and fish read by
    /// default.
    pub fn system() -> Targets {
        let share = Path::new("/usr/local/share");
        Targets {
            man: share.join("man"),
            bash: share.join("bash-completion/completions"),
            zsh: share.join("zsh/site-functions"),
            fish: share.join("fish/vendor_completions.d"),
        }
    }

    fn shell_dir(&self, shell: Shell) -> &Path {
        match shell {
            Shell::Bash => &self.bash,
            Shell::Zsh => &self.zsh,
            Shell::Fish => &self.fish,
        }
    }
}

/// Every file to install: (path, bytes). Problems with occ-scan's part are returned beside
/// what could be made.
fn files(t: &Targets, occ_scan: &Path) -> (Vec<(PathBuf, Vec<u8>)>, Vec<String>) {
    let mut out = Vec::new();
    let mut problems = Vec::new();
    match docs::pages() {
        Ok(pages) => out.extend(pages.into_iter().map(|(rel, b)| (t.man.join(rel), b))),
        Err(e) => problems.push(format!("occ's manual pages could not be rendered: {e}")),
    }
    match scan_pages(occ_scan) {
        Ok(pages) => out.extend(pages.into_iter().map(|(rel, b)| (t.man.join(rel), b))),
        Err(e) => problems.push(format!("occ-scan's manual pages were not installed: {e}")),
    }
    for shell in Shell::ALL {
        let dir = t.shell_dir(shell);
        out.push((dir.join(shell.file_name("occ")), docs::completion(shell)));
        let name = format!("{shell:?}").to_lowercase();
        match run_scan(occ_scan, &["completions", &name]) {
            Ok(script) => out.push((dir.join(shell.file_name("occ-scan")), script)),
            Err(e) => problems.push(format!(
                "occ-scan's {name} completion was not installed: {e}"
            )),
        }
    }
    (out, problems)
}

/// Runs `occ-scan ARGS`; its stdout, or why not.
fn run_scan(occ_scan: &Path, args: &[&str]) -> Result<Vec<u8>, String> {
    let out = Command::new(occ_scan)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", occ_scan.display()))?;
    if !out.status.success() || out.stdout.is_empty() {
        return Err(format!(
            "`{} {}` failed ({}): {}",
            occ_scan.display(),
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(out.stdout)
}

/// occ-scan's pages, written by `occ-scan man --dir` into a private staging directory and read
/// back, as (path under a man directory, bytes).
fn scan_pages(occ_scan: &Path) -> Result<Vec<(String, Vec<u8>)>, String> {
    use std::os::unix::fs::DirBuilderExt;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let staging =
        std::env::temp_dir().join(format!("occ-install-man-{}-{nanos}", std::process::id()));
    // A new directory of ours (create fails if anything is there already).
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&staging)
        .map_err(|e| format!("cannot create {}: {e}", staging.display()))?;
    let staged = (|| {
        let dir = staging.to_string_lossy().into_owned();
        run_scan(occ_scan, &["man", "--dir", &dir])?;
        let man8 = staging.join("man8");
        let mut pages = Vec::new();
        for e in std::fs::read_dir(&man8).map_err(|e| format!("{}: {e}", man8.display()))? {
            let e = e.map_err(|e| e.to_string())?;
            let name = e.file_name().to_string_lossy().into_owned();
            let bytes = std::fs::read(e.path()).map_err(|e| e.to_string())?;
            pages.push((format!("man8/{name}"), bytes));
        }
        pages.sort();
        if pages.is_empty() {
            return Err(format!("`occ-scan man --dir` wrote nothing in {dir}"));
        }
        Ok(pages)
    })();
    let _ = std::fs::remove_dir_all(&staging);
    staged
}

/// Installs the pages and completion scripts at `t`, recording each file and each directory it
/// creates; `occ_scan` is the occ-scan binary being installed. Returns the lines for "next".
pub(crate) fn install(cx: &mut Ctx, t: &Targets, occ_scan: &Path) -> Vec<String> {
    let (files, problems) = files(t, occ_scan);
    cx.report.warnings.extend(problems);
    let first = cx.report.changes.len();
    for (file, bytes) in files {
        let Some(dir) = file.parent() else { continue };
        let done = cx
            .mkdir_mode(dir, 0o755)
            .and_then(|()| cx.put(&file, &bytes, 0o644, FileKind::Doc));
        if let Err(e) = done {
            cx.report
                .warnings
                .push(format!("{} was not installed: {e}", file.display()));
        }
    }
    // One line per directory rather than one per page: occ has a page per subcommand.
    let added = cx.report.changes.split_off(first);
    let mut copied: Vec<(String, Vec<String>)> = Vec::new();
    for c in added {
        let p = Path::new(&c.target);
        match (c.action, p.parent(), p.file_name()) {
            ("copy", Some(dir), Some(name)) => {
                let dir = dir.display().to_string();
                let name = name.to_string_lossy().into_owned();
                match copied.iter_mut().find(|(d, _)| *d == dir) {
                    Some((_, names)) => names.push(name),
                    None => copied.push((dir, vec![name])),
                }
            }
            _ => cx.report.changes.push(c),
        }
    }
    for (dir, names) in copied {
        let shown = if names.len() > 4 {
            format!("{}, …", names[..3].join(", "))
        } else {
            names.join(", ")
        };
        cx.change(
            "copy",
            dir,
            format!("{} file(s), mode 644: {shown}", names.len()),
        );
    }
    let mut next = Vec::new();
    if crate::install::tool::which("zsh").is_some() {
        next.push(format!(
            "zsh completions are in {0}: if it is not in your fpath, add `fpath=({0} $fpath)` to ~/.zshrc before compinit",
            t.zsh.display()
        ));
    }
    next
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_targets_follow_xdg_and_the_install_prefix() {
        let t = Targets::user(Path::new("/h/.openclaw"));
        assert_eq!(t.man, Path::new("/h/.openclaw/share/man"));
        assert!(t.bash.ends_with("bash-completion/completions"), "{t:?}");
        assert!(t.zsh.ends_with("zsh/site-functions"), "{t:?}");
        assert!(t.fish.ends_with("fish/completions"), "{t:?}");
        let s = Targets::system();
        assert_eq!(s.man, Path::new("/usr/local/share/man"));
        assert_eq!(
            s.bash,
            Path::new("/usr/local/share/bash-completion/completions")
        );
    }
}
