//! The one opener for files that steer occ (policy and configuration files): opened without
//! following a final symlink or blocking on a FIFO, then checked on the open descriptor, so the
//! file cannot be swapped between check and read. It never hands out a file that failed a check.

use std::fs::{File, Metadata, OpenOptions};
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// A file that passed every check, with the metadata they were made on.
#[derive(Debug)]
pub struct Trusted {
    /// The open file, positioned at its start.
    pub file: File,
    /// `fstat` of `file`.
    pub metadata: Metadata,
}

/// Which check a file failed. A missing file is not an error: [`open`] returns `Ok(None)`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrustError {
    /// The path's last component is a symlink (or the path has too many of them: `ELOOP`).
    #[error("{} is a symlink", path.display())]
    Symlink {
        /// The path.
        path: PathBuf,
    },
    /// `open` failed for another reason (permissions, a missing directory in between, ...).
    #[error("cannot open {}: {source}", path.display())]
    Open {
        /// The path.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// `fstat` on the open file failed.
    #[error("cannot inspect {}: {source}", path.display())]
    Stat {
        /// The path.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// Not a regular file: a directory, FIFO, device or socket.
    #[error("{} is not a regular file", path.display())]
    NotRegular {
        /// The path.
        path: PathBuf,
    },
    /// Owned by neither the trusted uid nor root.
    #[error("{} is owned by uid {owner}, not by uid {trusted} or root", path.display())]
    ForeignOwner {
        /// The path.
        path: PathBuf,
        /// The file's owner.
        owner: u32,
        /// The uid that was trusted besides root.
        trusted: u32,
    },
    /// Writable by group or others.
    #[error("{} is writable by group or others (mode {mode:o})", path.display())]
    Writable {
        /// The path.
        path: PathBuf,
        /// The permission bits (`st_mode & 0o7777`).
        mode: u32,
    },
}

/// Opens `path` for reading if it is a regular file, not a symlink, owned by `trusted_uid` or
/// root, and not writable by group or others. `Ok(None)` when it does not exist.
pub fn open(path: &Path, trusted_uid: u32) -> Result<Option<Trusted>, TrustError> {
    let file = match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(TrustError::Symlink { path: path.into() })
        }
        Err(source) => {
            return Err(TrustError::Open {
                path: path.into(),
                source,
            })
        }
    };
    let metadata = file.metadata().map_err(|source| TrustError::Stat {
        path: path.into(),
        source,
    })?;
    check(path, &metadata, trusted_uid)?;
    Ok(Some(Trusted { file, metadata }))
}

/// The checks [`open`] makes, on metadata the caller took from a descriptor it opened itself
/// (never from a path, which could change before the open).
pub fn check(path: &Path, metadata: &Metadata, trusted_uid: u32) -> Result<(), TrustError> {
    if !metadata.file_type().is_file() {
        return Err(TrustError::NotRegular { path: path.into() });
    }
    let owner = metadata.uid();
    if owner != trusted_uid && owner != 0 {
        return Err(TrustError::ForeignOwner {
            path: path.into(),
            owner,
            trusted: trusted_uid,
        });
    }
    if metadata.mode() & 0o022 != 0 {
        return Err(TrustError::Writable {
            path: path.into(),
            mode: metadata.mode() & 0o7777,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::os::unix::fs::PermissionsExt;
    use std::time::Duration;

    use super::*;

    /// Our effective uid, as the owner of a file we just created (no FFI needed).
    fn my_uid(dir: &Path) -> u32 {
        let p = dir.join(".uid-probe");
        std::fs::write(&p, b"").unwrap();
        std::fs::metadata(&p).unwrap().uid()
    }

    fn file_with_mode(dir: &Path, name: &str, mode: u32) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, b"{}").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        p
    }

    macro_rules! modes {
        ($($name:ident: $mode:expr => $ok:expr;)*) => {$(
            #[test]
            fn $name() {
                let d = tempfile::tempdir().unwrap();
                let me = my_uid(d.path());
                let p = file_with_mode(d.path(), "f", $mode);
                match (open(&p, me), $ok) {
                    (Ok(Some(t)), true) => assert!(t.metadata.is_file()),
                    (Err(TrustError::Writable { mode, .. }), false) => assert_eq!(mode, $mode),
                    (other, _) => panic!("mode {:o}: {other:?}", $mode),
                }
            }
        )*};
    }

    modes! {
        mode_600_is_trusted: 0o600 => true;
        mode_400_is_trusted: 0o400 => true;
        mode_644_is_trusted: 0o644 => true;
        mode_4755_is_trusted: 0o4755 => true;
        mode_620_is_refused: 0o620 => false;
        mode_602_is_refused: 0o602 => false;
        mode_666_is_refused: 0o666 => false;
        mode_1622_is_refused: 0o1622 => false;
    }

    #[test]
    fn missing_file_is_none() {
        let d = tempfile::tempdir().unwrap();
        assert!(matches!(open(&d.path().join("absent"), 0), Ok(None)));
    }

    #[test]
    fn returns_the_file_at_its_start() {
        let d = tempfile::tempdir().unwrap();
        let me = my_uid(d.path());
        let p = file_with_mode(d.path(), "f", 0o600);
        let mut t = open(&p, me).unwrap().unwrap();
        let mut s = String::new();
        t.file.read_to_string(&mut s).unwrap();
        assert_eq!(s, "{}");
    }

    #[test]
    fn symlink_is_refused_even_to_a_good_file() {
        let d = tempfile::tempdir().unwrap();
        let me = my_uid(d.path());
        let good = file_with_mode(d.path(), "good", 0o600);
        let link = d.path().join("link");
        std::os::unix::fs::symlink(&good, &link).unwrap();
        assert!(matches!(open(&link, me), Err(TrustError::Symlink { path }) if path == link));
    }

    #[test]
    fn directory_is_not_regular() {
        let d = tempfile::tempdir().unwrap();
        let me = my_uid(d.path());
        assert!(matches!(
            open(d.path(), me),
            Err(TrustError::NotRegular { .. })
        ));
    }

    #[test]
    fn fifo_is_refused_without_blocking() {
        let d = tempfile::tempdir().unwrap();
        let me = my_uid(d.path());
        let fifo = d.path().join("fifo");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .map(|s| s.success());
        if made.ok() != Some(true) {
            eprintln!("SKIP: needs mkfifo");
            return;
        }
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || tx.send(open(&fifo, me).map(|t| t.is_some())));
        let got = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("open blocked on a FIFO");
        assert!(matches!(got, Err(TrustError::NotRegular { .. })), "{got:?}");
    }

    #[test]
    fn foreign_owner_is_refused_and_root_is_trusted() {
        let d = tempfile::tempdir().unwrap();
        let me = my_uid(d.path());
        let p = file_with_mode(d.path(), "f", 0o600);
        if me == 0 {
            // As root: a file owned by someone else is refused, root's own is trusted for any uid.
            std::os::unix::fs::chown(&p, Some(4242), None).unwrap();
            let e = open(&p, 1000).unwrap_err();
            assert!(
                matches!(
                    e,
                    TrustError::ForeignOwner {
                        owner: 4242,
                        trusted: 1000,
                        ..
                    }
                ),
                "{e:?}"
            );
            assert!(e
                .to_string()
                .ends_with("is owned by uid 4242, not by uid 1000 or root"));
            std::os::unix::fs::chown(&p, Some(0), None).unwrap();
            assert!(open(&p, 1000).unwrap().is_some());
        } else {
            let e = open(&p, me + 1).unwrap_err();
            assert!(
                matches!(e, TrustError::ForeignOwner { owner, trusted, .. }
                    if owner == me && trusted == me + 1),
                "{e:?}"
            );
            // Root-owned and not group/other-writable: trusted whatever the uid asked for.
            let etc = Path::new("/etc/passwd");
            match std::fs::metadata(etc) {
                Ok(m) if m.uid() == 0 && m.mode() & 0o022 == 0 => {
                    assert!(open(etc, me + 1).unwrap().is_some());
                }
                _ => eprintln!("SKIP: no root-owned /etc/passwd to check root is trusted"),
            }
        }
    }

    #[test]
    fn unreadable_file_is_an_open_error_unless_root() {
        let d = tempfile::tempdir().unwrap();
        let me = my_uid(d.path());
        let p = file_with_mode(d.path(), "f", 0o000);
        match open(&p, me) {
            Err(TrustError::Open { source, .. }) => {
                assert_eq!(source.kind(), io::ErrorKind::PermissionDenied)
            }
            Ok(Some(_)) if me == 0 => {}
            other => panic!("{other:?}"),
        }
    }
}
