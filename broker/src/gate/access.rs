//! Who may do what on the system broker: `requesters` and `approvers` in `broker.json` name
//! users and `%groups`, matched against the uid the kernel reported (SO_PEERCRED), never
//! against anything the caller says. Refusals of strangers are audited at a bounded rate, so a
//! flood cannot fill the log.

use std::collections::HashMap;
use std::sync::Mutex;

use nix::unistd::{Group, Uid, User};

/// Whether the user with `uid` is named in `list` (a user name, or `%group` for a group the
/// user belongs to, by primary gid or membership). An unknown uid matches nothing.
pub fn listed(list: &[String], uid: u32) -> bool {
    let Ok(Some(user)) = User::from_uid(Uid::from_raw(uid)) else {
        return false;
    };
    list.iter().any(|entry| match entry.strip_prefix('%') {
        Some(group) => in_group(&user, group),
        None => entry == &user.name,
    })
}

fn in_group(user: &User, group: &str) -> bool {
    match Group::from_name(group) {
        Ok(Some(g)) => g.gid == user.gid || g.mem.iter().any(|m| m == &user.name),
        _ => false,
    }
}

/// Whether the process `pid` runs a program only root can change: the file and every
/// directory above it root-owned and not writable by group or others (a sticky directory such
/// as /tmp may be: nobody but root can rename or remove root's entries in it). Approvers must
/// use the root-installed `occ`, never a copy the agent could have replaced.
pub fn root_controlled_exe(pid: i32) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let exe = std::fs::read_link(format!("/proc/{pid}/exe"))
        .map_err(|e| format!("cannot tell which program pid {pid} runs: {e}"))?;
    let mut at = Some(exe.as_path());
    while let Some(p) = at {
        let md = std::fs::metadata(p).map_err(|e| format!("{}: {e}", p.display()))?;
        let sticky_dir = md.is_dir() && md.mode() & 0o1000 != 0;
        let writable = if sticky_dir { 0 } else { md.mode() & 0o022 };
        if md.uid() != 0 || writable != 0 {
            return Err(format!(
                "{} runs from {}, which someone other than root can change ({}); approve with \
                 the root-installed occ (/usr/local/bin/occ)",
                pid,
                exe.display(),
                p.display()
            ));
        }
        at = p.parent();
    }
    Ok(())
}

/// At most one audited refusal per uid per window; the rest are counted and reported with
/// the next one.
#[derive(Debug, Default)]
pub struct RateLimit {
    last: Mutex<HashMap<u32, (u64, u64)>>,
}

/// How often a stranger's refusal is written to the audit log.
pub const REFUSAL_AUDIT_WINDOW_MS: u64 = 60_000;

impl RateLimit {
    /// Whether to audit a refusal of `uid` now; `Some(n)` carries how many were suppressed
    /// since the last audited one.
    pub fn admit(&self, uid: u32, now_ms: u64) -> Option<u64> {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        let entry = last.entry(uid).or_insert((0, 0));
        if entry.0 != 0 && now_ms.saturating_sub(entry.0) < REFUSAL_AUDIT_WINDOW_MS {
            entry.1 += 1;
            return None;
        }
        let suppressed = entry.1;
        *entry = (now_ms.max(1), 0);
        Some(suppressed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_is_listed_by_name_and_by_its_group() {
        assert!(listed(&["root".into()], 0));
        assert!(listed(&["%root".into()], 0));
        assert!(!listed(
            &["%no-such-group-occ".into(), "nobody-occ".into()],
            0
        ));
        assert!(!listed(&["root".into()], 4_000_000_000), "unknown uid");
    }

    /// Runs a copy of /bin/sleep from `dir` and judges it.
    fn judged_from(dir: &std::path::Path) -> Result<(), String> {
        let exe = dir.join("sleep");
        // A cp child, not a descriptor of ours, so no forked sibling can hold it open for write.
        let copied = std::process::Command::new("cp")
            .arg("/bin/sleep")
            .arg(&exe)
            .status()
            .unwrap();
        assert!(copied.success());
        let mut child = std::process::Command::new(&exe).arg("5").spawn().unwrap();
        let verdict = root_controlled_exe(child.id() as i32);
        let _ = child.kill();
        let _ = child.wait();
        verdict
    }

    #[test]
    fn a_program_in_a_user_writable_place_is_not_root_controlled() {
        use std::os::unix::fs::PermissionsExt;
        if !nix::unistd::geteuid().is_root() {
            eprintln!("SKIP: needs root (the files must be root's to be judged root-controlled)");
            assert!(
                std::env::var_os("OCC_REQUIRE_FULL_TESTS").is_none(),
                "SKIP under OCC_REQUIRE_FULL_TESTS"
            );
            return;
        }
        let d = tempfile::tempdir().unwrap();
        std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let open = d.path().join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
        let verdict = judged_from(&open);
        assert!(
            verdict.as_ref().is_err_and(|e| e.contains("open")),
            "a world-writable directory is refused: {verdict:?}"
        );
        let sticky = d.path().join("sticky");
        std::fs::create_dir(&sticky).unwrap();
        std::fs::set_permissions(&sticky, std::fs::Permissions::from_mode(0o1777)).unwrap();
        assert_eq!(
            judged_from(&sticky),
            Ok(()),
            "root's file in a sticky directory"
        );
        let mut sleep = std::process::Command::new("/bin/sleep")
            .arg("5")
            .spawn()
            .unwrap();
        let ok = root_controlled_exe(sleep.id() as i32);
        let _ = sleep.kill();
        let _ = sleep.wait();
        assert_eq!(ok, Ok(()), "/bin/sleep is root's");
    }

    #[test]
    fn refusals_are_audited_once_per_window_with_a_count() {
        let r = RateLimit::default();
        assert_eq!(r.admit(7, 1_000), Some(0));
        assert_eq!(r.admit(7, 2_000), None);
        assert_eq!(r.admit(7, 3_000), None);
        assert_eq!(r.admit(8, 3_000), Some(0), "per uid");
        assert_eq!(r.admit(7, 1_000 + REFUSAL_AUDIT_WINDOW_MS), Some(2));
    }
}
