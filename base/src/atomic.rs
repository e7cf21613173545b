//! The one atomic writer for private files: a new 0600 temp file beside the target, written,
//! fsynced and renamed over it, then the directory fsynced. Readers see the old content or the
//! new, never a mix; it must never open an existing file at the temp name or leave its temp
//! file behind after an error.

use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// How [`write_private`] writes. Start from [`Options::durable`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    fsync: bool,
    parents: bool,
    serialized: bool,
}

impl Options {
    /// Fsyncs the file before the rename and the directory after it, so the new content
    /// survives a crash once the call returns. The parent directory must exist.
    pub const fn durable() -> Options {
        Options {
            fsync: true,
            parents: false,
            serialized: false,
        }
    }

    /// Creates missing parent directories first, with mode 0700.
    pub const fn create_parents(mut self) -> Options {
        self.parents = true;
        self
    }

    /// Skips both fsyncs, for files the next run rewrites anyway. Readers still never see a
    /// half-written file, but a crash soon after the call may lose the new content.
    pub const fn without_fsync(mut self) -> Options {
        self.fsync = false;
        self
    }

    /// For callers that hold a lock every writer of this path takes: the temp name is fixed
    /// (`.name.tmp`) and one left by a crash is removed first, so stale content (an old seal
    /// key, say) never lingers beside the target. Without the lock, two writers would race.
    pub const fn serialized(mut self) -> Options {
        self.serialized = true;
        self
    }
}

impl Default for Options {
    fn default() -> Self {
        Options::durable()
    }
}

/// Why [`write_private`] failed. The target holds its old content unless the failed step was
/// the directory fsync, which comes after the rename.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AtomicError {
    /// A missing parent directory could not be created.
    #[error("cannot create directory {}: {source}", dir.display())]
    CreateDir {
        /// The directory.
        dir: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// A step of the write failed.
    #[error("cannot write {} ({step}): {source}", path.display())]
    Write {
        /// The target path.
        path: PathBuf,
        /// The step that failed, e.g. "create the temp file".
        step: &'static str,
        /// The error.
        source: io::Error,
    },
}

impl AtomicError {
    /// The directory or target path at fault.
    pub fn path(&self) -> &Path {
        match self {
            AtomicError::CreateDir { dir, .. } => dir,
            AtomicError::Write { path, .. } => path,
        }
    }

    /// The underlying I/O error, for callers whose own error type names the path already.
    pub fn into_source(self) -> io::Error {
        match self {
            AtomicError::CreateDir { source, .. } | AtomicError::Write { source, .. } => source,
        }
    }
}

/// Counter that makes each unserialized temp name unique within this process; the pid makes it
/// unique among live processes.
static NEXT_TEMP: AtomicU64 = AtomicU64::new(0);

/// Fresh temp names tried before giving up. Only a directory littered with temp files of a
/// crashed process that had our pid needs more than one.
const TEMP_TRIES: u32 = 64;

/// Replaces `path` with `bytes` atomically, as a file of mode 0600 (before the umask). A
/// symlink at `path` is replaced, never followed.
pub fn write_private(path: &Path, bytes: &[u8], opts: Options) -> Result<(), AtomicError> {
    write_with(path, bytes, opts, &NEXT_TEMP)
}

fn write_with(
    path: &Path,
    bytes: &[u8],
    opts: Options,
    counter: &AtomicU64,
) -> Result<(), AtomicError> {
    let fail = |step: &'static str| {
        move |source: io::Error| AtomicError::Write {
            path: path.to_owned(),
            step,
            source,
        }
    };
    let name = path.file_name().ok_or_else(|| {
        fail("name a temp file")(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the path has no file name",
        ))
    })?;
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if opts.parents {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|source| AtomicError::CreateDir {
                dir: dir.to_owned(),
                source,
            })?;
    }
    let name = name.to_string_lossy();
    let (tmp, mut file) = if opts.serialized {
        create_fixed_temp(&dir.join(format!(".{name}.tmp")))
    } else {
        create_unique_temp(dir, &name, counter)
    }
    .map_err(fail("create the temp file"))?;
    let moved = (|| {
        file.write_all(bytes).map_err(fail("write the temp file"))?;
        if opts.fsync {
            file.sync_all().map_err(fail("fsync the temp file"))?;
        }
        drop(file);
        std::fs::rename(&tmp, path).map_err(fail("rename the temp file over it"))
    })();
    if let Err(e) = moved {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    if opts.fsync {
        sync_dir(dir).map_err(fail("fsync its directory"))?;
    }
    Ok(())
}

/// A new file, exclusively: an existing file or symlink at `path` is an error, never opened.
fn create_new(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
}

fn create_fixed_temp(tmp: &Path) -> io::Result<(PathBuf, File)> {
    // Unlinking removes a stale symlink itself, not what it points to.
    match std::fs::remove_file(tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    create_new(tmp).map(|f| (tmp.to_owned(), f))
}

fn create_unique_temp(dir: &Path, name: &str, counter: &AtomicU64) -> io::Result<(PathBuf, File)> {
    let pid = std::process::id();
    let mut tries = 1;
    loop {
        let n = counter.fetch_add(1, Ordering::Relaxed);
        let tmp = dir.join(format!(".{name}.tmp-{pid}-{n}"));
        match create_new(&tmp) {
            Ok(f) => return Ok((tmp, f)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && tries < TEMP_TRIES => tries += 1,
            Err(e) => return Err(e),
        }
    }
}

/// Fsyncs a directory, so a rename or create inside it survives a crash. A symlink to the
/// directory is followed: the rename that came before resolved the same path.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(dir)?
        .sync_all()
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    fn mode(p: &Path) -> u32 {
        std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn writes_0600_replaces_and_leaves_no_temp() {
        for opts in [
            Options::durable(),
            Options::durable().without_fsync(),
            Options::durable().serialized(),
        ] {
            let d = tempfile::tempdir().unwrap();
            let p = d.path().join("state.json");
            std::fs::write(&p, b"old and longer").unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
            write_private(&p, b"new", opts).unwrap();
            assert_eq!(std::fs::read(&p).unwrap(), b"new", "{opts:?}");
            assert_eq!(mode(&p), 0o600, "{opts:?}");
            assert_eq!(names(d.path()), ["state.json"], "{opts:?}");
        }
    }

    #[test]
    fn creates_parents_0700_only_when_asked() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("a/b/out");
        let e = write_private(&p, b"x", Options::durable()).unwrap_err();
        assert!(
            matches!(&e, AtomicError::Write { step: "create the temp file", source, .. }
                if source.kind() == io::ErrorKind::NotFound),
            "{e:?}"
        );
        assert_eq!(e.path(), p);
        write_private(&p, b"x", Options::durable().create_parents()).unwrap();
        assert_eq!(mode(&d.path().join("a")), 0o700);
        assert_eq!(mode(&d.path().join("a/b")), 0o700);
        assert_eq!(std::fs::read(&p).unwrap(), b"x");
    }

    #[test]
    fn symlink_at_target_is_replaced_not_followed() {
        let d = tempfile::tempdir().unwrap();
        let victim = d.path().join("victim");
        std::fs::write(&victim, b"keep").unwrap();
        let p = d.path().join("link");
        std::os::unix::fs::symlink(&victim, &p).unwrap();
        write_private(&p, b"new", Options::durable()).unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"keep");
        assert!(std::fs::symlink_metadata(&p).unwrap().is_file());
        assert_eq!(std::fs::read(&p).unwrap(), b"new");
    }

    #[test]
    fn stale_or_planted_temps_are_never_opened_and_do_not_block() {
        // A hard link or symlink at a temp name must not be written through (an O_TRUNC open
        // would truncate the victim and keep its mode), and must not stop the write.
        let d = tempfile::tempdir().unwrap();
        let victim = d.path().join("victim");
        std::fs::write(&victim, b"keep").unwrap();
        let pid = std::process::id();
        std::fs::hard_link(&victim, d.path().join(format!(".out.tmp-{pid}-0"))).unwrap();
        std::os::unix::fs::symlink(&victim, d.path().join(format!(".out.tmp-{pid}-1"))).unwrap();
        let counter = AtomicU64::new(0);
        let p = d.path().join("out");
        write_with(&p, b"new", Options::durable(), &counter).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"new");
        assert_eq!(mode(&p), 0o600);
        assert_eq!(std::fs::read(&victim).unwrap(), b"keep");
        assert_eq!(counter.load(Ordering::Relaxed), 3);
    }

    #[test]
    fn gives_up_after_bounded_tries() {
        let d = tempfile::tempdir().unwrap();
        let pid = std::process::id();
        for n in 0..u64::from(TEMP_TRIES) {
            std::fs::write(d.path().join(format!(".out.tmp-{pid}-{n}")), b"").unwrap();
        }
        let counter = AtomicU64::new(0);
        let p = d.path().join("out");
        let e = write_with(&p, b"x", Options::durable(), &counter).unwrap_err();
        assert!(
            matches!(&e, AtomicError::Write { source, .. }
                if source.kind() == io::ErrorKind::AlreadyExists),
            "{e:?}"
        );
        assert!(!p.exists());
    }

    #[test]
    fn serialized_removes_a_stale_temp_and_never_follows_it() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("audit-seal.key");
        let tmp = d.path().join(".audit-seal.key.tmp");
        std::fs::write(&tmp, b"old key").unwrap();
        write_private(&p, b"k1", Options::durable().serialized()).unwrap();
        assert_eq!(names(d.path()), ["audit-seal.key"]);

        let victim = d.path().join("victim");
        std::fs::write(&victim, b"keep").unwrap();
        std::os::unix::fs::symlink(&victim, &tmp).unwrap();
        write_private(&p, b"k2", Options::durable().serialized()).unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"keep");
        assert_eq!(std::fs::read(&p).unwrap(), b"k2");
        assert_eq!(names(d.path()), ["audit-seal.key", "victim"]);
    }

    #[test]
    fn failed_rename_removes_the_temp_and_names_the_step() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("busy");
        std::fs::create_dir(&p).unwrap();
        std::fs::write(p.join("inside"), b"").unwrap();
        let e = write_private(&p, b"x", Options::durable()).unwrap_err();
        assert!(
            matches!(
                &e,
                AtomicError::Write {
                    step: "rename the temp file over it",
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(e.to_string().contains(&*p.to_string_lossy()), "{e}");
        assert_eq!(names(d.path()), ["busy"]);
    }

    #[test]
    fn a_path_without_a_file_name_is_refused() {
        let e = write_private(Path::new("/"), b"x", Options::durable()).unwrap_err();
        assert!(
            matches!(&e, AtomicError::Write { source, .. }
                if source.kind() == io::ErrorKind::InvalidInput),
            "{e:?}"
        );
    }
}
