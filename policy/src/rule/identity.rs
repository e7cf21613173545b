//! Which file a rule's command word means. A bare name means what `secure_path` finds for it;
//! a path means the file it leads to. Rules compare these canonical files with the request's
//! resolved file, so `rm`, `/usr/bin/rm`, `/bin/rm`, `../../usr/bin/rm`, a symlinked directory
//! and an alias (`ex` and `vi` both lead to `vim.basic`) all get one decision.

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::{CmdWord, Rule};

/// The canonical file `name` means on `secure_path`: the first absolute entry holding a
/// runnable file by that name, with every symlink followed. `None` when there is none.
pub fn secure_real_path(name: &str, secure_path: &str) -> Option<PathBuf> {
    if name.is_empty() || name.contains('/') || name == "." || name == ".." {
        return None;
    }
    secure_path
        .split(':')
        .filter(|d| d.starts_with('/'))
        .map(|d| Path::new(d).join(name))
        .find_map(|p| runnable_real_path(&p))
}

/// The canonical file an absolute path leads to, when it is a runnable file.
pub(super) fn runnable_real_path(p: &Path) -> Option<PathBuf> {
    let real = std::fs::canonicalize(p).ok()?;
    let m = std::fs::metadata(&real).ok()?;
    (m.is_file() && m.permissions().mode() & 0o111 != 0).then_some(real)
}

/// The canonical file each name and path rule means, mapped to the rules (by index) that name
/// it. Built once per loaded policy: one search of `secure_path` per bare-name rule.
pub(super) fn by_real_file(rules: &[Rule], secure_path: &str) -> HashMap<PathBuf, Vec<u32>> {
    let mut map: HashMap<PathBuf, Vec<u32>> = HashMap::new();
    let mut seen: HashMap<&str, Option<PathBuf>> = HashMap::new();
    for (i, rule) in rules.iter().enumerate() {
        let real = match &rule.cmd {
            CmdWord::Name(n) => seen
                .entry(n.as_str())
                .or_insert_with(|| secure_real_path(n, secure_path))
                .clone(),
            CmdWord::Path(p) => seen
                .entry(p.as_str())
                .or_insert_with(|| runnable_real_path(Path::new(p)))
                .clone(),
            CmdWord::PathGlob(_) | CmdWord::NameGlob(_) => None,
        };
        if let Some(real) = real {
            map.entry(real).or_default().push(i as u32);
        }
    }
    map
}
