//! `install-manifest.json`: every path `occ install` created or changed, with the sha256 of
//! what it wrote, so `occ uninstall` removes exactly that and nothing else. It is cumulative:
//! a second install keeps what the first one recorded.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The manifest's format version.
pub const VERSION: u32 = 1;

/// What a recorded file is, which decides how uninstall treats it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileKind {
    /// `bin/occ`, `bin/occ-scan`, `bin/sudo`: removed.
    Binary,
    /// A policy template: removed only when unchanged since install.
    Policy,
    /// A systemd unit or drop-in occ wrote: removed.
    Unit,
    /// A manual page or shell completion script: removed.
    Doc,
    /// A file of occ's OpenClaw plugin (`occ-exec-env`): removed.
    Plugin,
}

/// One file occ wrote.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    /// Absolute path.
    pub path: PathBuf,
    /// What it is.
    pub kind: FileKind,
    /// sha256 of the bytes occ wrote (lowercase hex).
    pub sha256: String,
}

/// A file that was in occ's way, moved aside; uninstall moves it back.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Backup {
    /// Where it was.
    pub original: PathBuf,
    /// Where it is now.
    pub backup: PathBuf,
}

/// A directory whose mode occ tightened; uninstall restores the old mode.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModeChange {
    /// The directory.
    pub path: PathBuf,
    /// Its mode before (permission bits).
    pub before: u32,
}

/// How the broker was started, so uninstall can stop it the same way.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "how", rename_all = "snake_case", deny_unknown_fields)]
pub enum BrokerStart {
    /// `systemctl --user enable --now UNIT`.
    Systemd {
        /// The unit name.
        unit: String,
    },
    /// `occ broker` started directly (it daemonises itself).
    Spawned,
}

/// A change to the agent's PATH.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum PathInjection {
    /// `openclaw config set KEY VALUE` (the global pathPrepend or one agent's own list);
    /// reverted by taking occ's entry (the first of `value`) out of the key as it is then,
    /// keeping every other entry; unset only when nothing is left and `previous` was unset.
    OpenclawConfig {
        /// The config key.
        key: String,
        /// Its value before occ touched it; `None` when it was unset.
        previous: Option<serde_json::Value>,
        /// What occ set.
        value: serde_json::Value,
    },
    /// `openclaw config set KEY …` on a key occ owns whole (`plugins.entries.occ-exec-env`);
    /// reverted by `openclaw config unset KEY`.
    OpenclawOwned {
        /// The config key.
        key: String,
    },
    /// A systemd drop-in for the gateway unit, written by earlier releases (its file is also
    /// a `files` entry, so uninstall removes it). occ no longer writes one: OpenClaw puts the
    /// login shell's PATH before the gateway's, so it never held.
    SystemdDropIn {
        /// The gateway unit.
        unit: String,
        /// The drop-in file.
        file: PathBuf,
        /// The PATH value written.
        path: String,
    },
    /// Nothing could be changed; the admin was shown this line.
    Manual {
        /// The line to add.
        line: String,
    },
}

/// A group `occ install --system` created or changed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupChange {
    /// The group.
    pub group: String,
    /// Whether occ created it (uninstall deletes it) or found it.
    pub created: bool,
    /// Users occ added to it (uninstall takes them out when it keeps the group).
    #[serde(default)]
    pub added: Vec<String>,
}

/// What only a system-mode install records.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SystemRecord {
    /// The agent's user (the one requester `occ install --system` wrote).
    pub agent: String,
    /// The approvers entries written to broker.json.
    pub approvers: Vec<String>,
    /// Groups created or changed.
    #[serde(default)]
    pub groups: Vec<GroupChange>,
    /// What was made in the agent's home, as the agent (its own dirs, the shim, PATH
    /// injections). Only the agent's uid ever acts on it: uninstall hands it back to a child
    /// running as the agent.
    #[serde(default)]
    pub agent_home: Option<Box<Manifest>>,
}

/// The whole manifest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Format version ([`VERSION`]).
    pub version: u32,
    /// `$OCC_HOME` it was made for.
    pub home: PathBuf,
    /// occ's version at the last install.
    pub occ_version: String,
    /// RFC 3339 time of the last install.
    pub installed_at: String,
    /// Directories occ created, in creation order (removed in reverse, when empty).
    #[serde(default)]
    pub dirs: Vec<PathBuf>,
    /// Files occ wrote.
    #[serde(default)]
    pub files: Vec<FileEntry>,
    /// Files moved aside.
    #[serde(default)]
    pub backups: Vec<Backup>,
    /// Directory modes tightened.
    #[serde(default)]
    pub mode_changes: Vec<ModeChange>,
    /// Files the broker makes at run time that go when occ goes (never the audit log).
    #[serde(default)]
    pub runtime: Vec<PathBuf>,
    /// How the broker was started.
    #[serde(default)]
    pub broker: Option<BrokerStart>,
    /// PATH injections, in the order made.
    #[serde(default)]
    pub path: Vec<PathInjection>,
    /// System mode only (`/var/lib/occ/install-manifest.json`); absent in user mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<SystemRecord>,
}

impl Manifest {
    /// An empty manifest for `home`.
    pub fn new(home: &Path) -> Manifest {
        Manifest {
            version: VERSION,
            home: home.to_path_buf(),
            occ_version: env!("CARGO_PKG_VERSION").to_string(),
            installed_at: occ_audit::now_rfc3339(),
            dirs: Vec::new(),
            files: Vec::new(),
            backups: Vec::new(),
            mode_changes: Vec::new(),
            runtime: Vec::new(),
            broker: None,
            path: Vec::new(),
            system: None,
        }
    }

    /// Reads the manifest; `Ok(None)` when there is none.
    pub fn load(file: &Path) -> Result<Option<Manifest>, String> {
        Manifest::load_as(file, nix::unistd::geteuid().as_raw())
    }

    /// Reads the manifest as `uid` would trust it (owned by `uid` or root).
    pub fn load_as(file: &Path, uid: u32) -> Result<Option<Manifest>, String> {
        // Same checks as every file the broker reads: ours, regular, not group/other-writable.
        let text = match occ_policy::file::read_checked(file, uid) {
            Ok(Some(t)) => t,
            Ok(None) => return Ok(None),
            Err(e) => return Err(e.to_string()),
        };
        let m: Manifest = serde_json::from_str(&text).map_err(|e| {
            format!(
                "{} is not a valid install manifest ({e}); fix or remove it, then run `occ install` again",
                file.display()
            )
        })?;
        if m.version != VERSION {
            return Err(format!(
                "{}: manifest version {} is not {VERSION}; use the occ that wrote it to uninstall",
                file.display(),
                m.version
            ));
        }
        Ok(Some(m))
    }

    /// Writes the manifest atomically with mode 0600.
    pub fn save(&self, file: &Path) -> Result<(), String> {
        let text = serde_json::to_string_pretty(self).map_err(|e| e.to_string())? + "\n";
        crate::paths::write_private(file, text.as_bytes())
    }

    /// Records a created directory once.
    pub fn add_dir(&mut self, p: &Path) {
        if !self.dirs.iter().any(|d| d == p) {
            self.dirs.push(p.to_path_buf());
        }
    }

    /// Records a written file, updating an older record of the same path in place.
    pub fn add_file(&mut self, path: &Path, kind: FileKind, sha256: &str) {
        let entry = FileEntry {
            path: path.to_path_buf(),
            kind,
            sha256: sha256.to_string(),
        };
        match self.files.iter_mut().find(|f| f.path == path) {
            Some(f) => *f = entry,
            None => self.files.push(entry),
        }
    }

    /// The record of one file.
    pub fn file(&self, path: &Path) -> Option<&FileEntry> {
        self.files.iter().find(|f| f.path == path)
    }

    /// Records a runtime file once.
    pub fn add_runtime(&mut self, p: &Path) {
        if !self.runtime.iter().any(|d| d == p) {
            self.runtime.push(p.to_path_buf());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_round_trips_and_refuses_unknown_keys() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("install-manifest.json");
        let mut m = Manifest::new(dir.path());
        m.add_dir(dir.path());
        m.add_dir(dir.path());
        m.add_file(&dir.path().join("bin/sudo"), FileKind::Binary, "aa");
        m.add_file(&dir.path().join("bin/occ"), FileKind::Binary, "bb");
        m.add_file(&dir.path().join("bin/sudo"), FileKind::Binary, "cc");
        m.path.push(PathInjection::OpenclawConfig {
            key: "tools.exec.pathPrepend".into(),
            previous: None,
            value: serde_json::json!(["/x"]),
        });
        m.broker = Some(BrokerStart::Systemd {
            unit: "occ-broker.service".into(),
        });
        assert_eq!(m.dirs.len(), 1);
        assert_eq!(m.files[0].sha256, "cc", "updated in place, order kept");
        m.save(&file).unwrap();
        assert_eq!(Manifest::load(&file).unwrap(), Some(m));
        // Rewriting keeps the 0600 mode save() gave the file.
        std::fs::write(&file, "{\"version\": 1, \"bogus\": 1}").unwrap();
        let err = Manifest::load(&file).unwrap_err();
        assert!(err.contains("install-manifest.json"), "{err}");
        assert_eq!(Manifest::load(&dir.path().join("none")).unwrap(), None);
    }
}
