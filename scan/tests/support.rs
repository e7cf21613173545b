//! Test support: fake /proc trees built from captured tables, and honest skips.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

/// Reports a skipped test; under `OCC_REQUIRE_FULL_TESTS=1` a skip is a failure.
pub fn skip(why: &str) {
    if std::env::var("OCC_REQUIRE_FULL_TESTS").as_deref() == Ok("1") {
        panic!("SKIP not allowed under OCC_REQUIRE_FULL_TESTS=1: {why}");
    }
    eprintln!("SKIP: {why}");
}

/// The captured tables under `tests/fixtures/proc/<name>`.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/proc")
        .join(name)
}

/// A process in a fake proc tree.
pub struct FakeProcess<'a> {
    pub pid: u32,
    pub net_ns: u64,
    pub comm: &'a str,
    pub exe: &'a str,
    pub uid: u32,
    pub cmdline: &'a [&'a str],
    /// (fd, socket inode)
    pub sockets: &'a [(u32, u64)],
}

/// A directory laid out like /proc.
pub struct FakeProc {
    pub dir: tempfile::TempDir,
}

impl FakeProc {
    pub fn new() -> FakeProc {
        FakeProc {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// Copies captured tables into `<root>/<sub>` (`net` or `<pid>/net`).
    pub fn tables(&self, sub: &str, fixture_name: &str) {
        let dst = self.root().join(sub);
        fs::create_dir_all(&dst).unwrap();
        for e in fs::read_dir(fixture(fixture_name)).unwrap() {
            let e = e.unwrap();
            fs::copy(e.path(), dst.join(e.file_name())).unwrap();
        }
    }

    /// Adds /proc/<pid> with ns/net, fd/, comm, exe, status and cmdline.
    pub fn process(&self, p: &FakeProcess<'_>) {
        let d = self.root().join(p.pid.to_string());
        fs::create_dir_all(d.join("ns")).unwrap();
        fs::create_dir_all(d.join("fd")).unwrap();
        symlink(format!("net:[{}]", p.net_ns), d.join("ns/net")).unwrap();
        symlink("/dev/null", d.join("fd/0")).unwrap();
        symlink("pipe:[777]", d.join("fd/1")).unwrap();
        for (fd, inode) in p.sockets {
            symlink(
                format!("socket:[{inode}]"),
                d.join("fd").join(fd.to_string()),
            )
            .unwrap();
        }
        fs::write(d.join("comm"), format!("{}\n", p.comm)).unwrap();
        symlink(p.exe, d.join("exe")).unwrap();
        fs::write(
            d.join("status"),
            format!(
                "Name:\t{}\nUid:\t{u}\t{u}\t{u}\t{u}\nGid:\t0\t0\t0\t0\n",
                p.comm,
                u = p.uid
            ),
        )
        .unwrap();
        let mut cmdline = p.cmdline.join("\0");
        cmdline.push('\0');
        fs::write(d.join("cmdline"), cmdline).unwrap();
    }

    /// A process whose fd table cannot be read (as another user's would be).
    pub fn hidden_process(&self, pid: u32) {
        let d = self.root().join(pid.to_string());
        fs::create_dir_all(&d).unwrap();
        fs::write(d.join("fd"), "not a directory").unwrap();
    }

    /// `<root>/self` → `<pid>`.
    pub fn self_is(&self, pid: u32) {
        symlink(pid.to_string(), self.root().join("self")).unwrap();
    }
}
