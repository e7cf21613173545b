//! The native Linux collector: walk /proc once to map socket inodes to processes and group
//! processes by network namespace, then read each namespace's tables once (through one
//! representative pid). Owners it cannot see stay unknown; it never infers them.

use std::collections::{BTreeMap, HashMap};
use std::ffi::{CStr, CString};
use std::fs;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::path::{Path, PathBuf};

use nix::dir::Dir;
use nix::errno::Errno;
use nix::fcntl::{readlinkat, OFlag};
use nix::sys::stat::Mode;

use super::procnet::{self, RawSocket};
use super::{Collection, Family, Method, NamespaceInfo, Protocol, Socket, SocketState, Visibility};
use crate::error::ScanError;

const TABLES: [(&str, Protocol, Family); 4] = [
    ("tcp", Protocol::Tcp, Family::Ipv4),
    ("tcp6", Protocol::Tcp, Family::Ipv6),
    ("udp", Protocol::Udp, Family::Ipv4),
    ("udp6", Protocol::Udp, Family::Ipv6),
];

/// Who holds a socket inode: the lowest pid and its fd.
#[derive(Debug, Clone, Copy)]
struct Holder {
    pid: u32,
    fd: u32,
}

/// What one pass over /proc/<pid> found.
#[derive(Debug, Default)]
struct ProcessWalk {
    holders: HashMap<u64, Holder>,
    /// namespace inode → pids in it, ascending.
    namespaces: BTreeMap<u64, Vec<u32>>,
    processes: usize,
    uninspectable: usize,
}

/// Details of a socket's owner.
#[derive(Debug, Clone, Default)]
struct Owner {
    comm: Option<String>,
    path: Option<String>,
    uid: Option<u32>,
    cmdline: Option<Vec<String>>,
}

/// Collects every socket under `root` (normally `/proc`).
pub fn collect(root: &Path) -> Result<Collection, ScanError> {
    let own_ns = read_ns_inode(&root.join("self/ns/net"));
    let walk = walk_processes(root).map_err(|e| ScanError::ProcUnavailable {
        root: root.to_path_buf(),
        detail: format!("cannot list processes: {e}"),
    })?;

    let mut sockets = Vec::new();
    let mut namespaces = Vec::new();
    let mut notes = Vec::new();
    let mut malformed = 0usize;

    // The reader's own namespace: sock_diag netlink on the real /proc (as ss does), else the
    // /proc/net tables (always tried, even when the inode is unknown because /proc/self is
    // hidden).
    let use_netlink = root == Path::new("/proc");
    let own = read_tables(&root.join("net"), use_netlink);
    match own {
        Ok((raw, bad, source)) => {
            malformed += bad;
            let n = raw.len();
            sockets.extend(raw.into_iter().map(|(p, f, r)| (p, f, r, own_ns)));
            namespaces.push(NamespaceInfo {
                inode: own_ns,
                representative_pid: None,
                readable: true,
                sockets: n,
                source,
            });
        }
        Err(e) if walk.namespaces.is_empty() => {
            return Err(ScanError::ProcUnavailable {
                root: root.to_path_buf(),
                detail: e,
            });
        }
        Err(e) => {
            notes.push(format!(
                "the scanner's own namespace tables are unreadable: {e}"
            ));
            namespaces.push(NamespaceInfo {
                inode: own_ns,
                representative_pid: None,
                readable: false,
                sockets: 0,
                source: "none",
            });
        }
    }

    for (&ns, pids) in &walk.namespaces {
        if Some(ns) == own_ns {
            continue;
        }
        let mut read = None;
        for &pid in pids {
            if let Ok(r) = read_tables(&root.join(pid.to_string()).join("net"), false) {
                read = Some((pid, r));
                break;
            }
        }
        match read {
            Some((pid, (raw, bad, source))) => {
                malformed += bad;
                let n = raw.len();
                sockets.extend(raw.into_iter().map(|(p, f, r)| (p, f, r, Some(ns))));
                namespaces.push(NamespaceInfo {
                    inode: Some(ns),
                    representative_pid: Some(pid),
                    readable: true,
                    sockets: n,
                    source,
                });
            }
            None => {
                notes.push(format!(
                    "network namespace {ns}: no process's tables could be read; its sockets are \
                     not listed"
                ));
                namespaces.push(NamespaceInfo {
                    inode: Some(ns),
                    representative_pid: pids.first().copied(),
                    readable: false,
                    sockets: 0,
                    source: "none",
                });
            }
        }
    }

    let mut owners: HashMap<u32, Owner> = HashMap::new();
    let mut out = Vec::with_capacity(sockets.len());
    let mut unknown = 0usize;
    // Socket inodes are unique host-wide; a namespace reached twice (its inode unknown once)
    // must not list its sockets twice.
    let mut seen = std::collections::HashSet::with_capacity(sockets.len());
    for (protocol, family, raw, ns) in sockets {
        if raw.inode != 0 && !seen.insert(raw.inode) {
            continue;
        }
        let holder = if raw.inode == 0 {
            None
        } else {
            walk.holders.get(&raw.inode).copied()
        };
        if raw.inode != 0 && holder.is_none() {
            unknown += 1;
        }
        let owner = holder.map(|h| {
            owners
                .entry(h.pid)
                .or_insert_with(|| read_owner(&root.join(h.pid.to_string())))
                .clone()
        });
        let owner = owner.unwrap_or_default();
        out.push(Socket {
            address: raw.local,
            port: raw.local_port,
            protocol,
            family,
            pid: holder.map(|h| h.pid),
            comm: owner.comm,
            path: owner.path,
            uid: owner.uid,
            state: SocketState::from_proc(protocol, raw.state),
            net_namespace: ns,
            remote_address: raw.remote,
            remote_port: raw.remote_port,
            socket: (raw.inode != 0).then_some(raw.inode),
            fd: holder.map(|h| h.fd),
            socket_uid: Some(raw.uid),
            cmdline: owner.cmdline,
        });
    }

    let root_user = super::running_as_root();
    if unknown > 0 {
        notes.push(format!(
            "{unknown} socket(s) with unknown owner: the owning process is not visible to this \
             user{}",
            if root_user {
                " (it lives outside this pid namespace or hides its /proc entry)"
            } else {
                "; run as root for full visibility"
            }
        ));
    }
    if walk.uninspectable > 0 {
        notes.push(format!(
            "{} of {} process(es) could not be inspected (fd table or namespace unreadable)",
            walk.uninspectable, walk.processes
        ));
    }
    if malformed > 0 {
        notes.push(format!("{malformed} malformed table row(s) skipped"));
    }
    let complete = unknown == 0 && walk.uninspectable == 0 && namespaces.iter().all(|n| n.readable);
    Ok(Collection {
        method: Method::Proc,
        sockets: out,
        visibility: Visibility {
            complete,
            unknown_owner_sockets: unknown,
            processes: walk.processes,
            processes_uninspectable: walk.uninspectable,
            namespaces,
            root: root_user,
            notes,
        },
    })
}

type Rows = Vec<(Protocol, Family, RawSocket)>;

/// Reads the four tables under `net_dir` (or, with `netlink`, asks sock_diag and reads a
/// table only when netlink fails for it). A missing IPv6 table is fine (IPv6 disabled); all
/// four missing or unreadable is an error. Returns the rows, the malformed count and the source.
fn read_tables(net_dir: &Path, netlink: bool) -> Result<(Rows, usize, &'static str), String> {
    let mut rows = Vec::new();
    let mut malformed = 0;
    let mut read_any = false;
    let mut first_err = None;
    let (mut via_netlink, mut via_proc) = (false, false);
    for (name, protocol, family) in TABLES {
        if netlink {
            if let Ok(raw) = super::netlink::dump(family, protocol) {
                read_any = true;
                via_netlink = true;
                rows.extend(raw.into_iter().map(|s| (protocol, family, s)));
                continue;
            }
        }
        let path = net_dir.join(name);
        match read_proc_file(&path) {
            Ok(bytes) => {
                read_any = true;
                via_proc = true;
                let t = procnet::parse_table(&bytes, family);
                malformed += t.malformed;
                rows.extend(t.sockets.into_iter().map(|s| (protocol, family, s)));
            }
            Err(e) => {
                if first_err.is_none() {
                    first_err = Some(format!("{}: {e}", path.display()));
                }
            }
        }
    }
    let source = match (via_netlink, via_proc) {
        (true, true) => "netlink+proc",
        (true, false) => "netlink",
        _ => "proc",
    };
    if read_any {
        Ok((rows, malformed, source))
    } else {
        Err(first_err.unwrap_or_else(|| format!("{}: no tables", net_dir.display())))
    }
}

/// Reads a /proc file in few, large reads: every read(2) of /proc/net/tcp re-walks the
/// kernel's socket hash, so small reads multiply the cost.
fn read_proc_file(path: &Path) -> io::Result<Vec<u8>> {
    use std::io::Read;
    let mut f = fs::File::open(path)?;
    let mut buf = vec![0u8; 1 << 18];
    let mut len = 0;
    loop {
        if len == buf.len() {
            buf.resize(buf.len() * 2, 0);
        }
        match f.read(&mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(len);
    Ok(buf)
}

/// One process's fd directory, listed but not yet resolved.
struct FdDir {
    pid: u32,
    dir: Dir,
    fds: Vec<(u32, CString)>,
}

/// Below this many fds, or with fewer cores, one thread is faster: measured on a loaded 2-core
/// VM, two threads made a 2,000-socket scan 50 % slower (they wait for a core).
const PARALLEL_MIN_FDS: usize = 8192;
const PARALLEL_MIN_CORES: usize = 4;

fn walk_processes(root: &Path) -> io::Result<ProcessWalk> {
    let mut walk = ProcessWalk::default();
    let mut pids: Vec<u32> = fs::read_dir(root)?
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()))
        .collect();
    pids.sort_unstable();

    // Phase 1: each process's namespace and fd names (getdents only).
    let mut dirs: Vec<FdDir> = Vec::new();
    let mut path = PathBuf::from(root);
    for pid in pids {
        path.push(pid.to_string());
        let ns = read_ns_inode(&path.join("ns/net"));
        path.push("fd");
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
        match Dir::open(&path, flags, Mode::empty()) {
            Ok(mut dir) => {
                walk.processes += 1;
                let fds: Vec<(u32, CString)> = dir
                    .iter()
                    .filter_map(Result::ok)
                    .filter_map(|e| {
                        let name = e.file_name();
                        let fd = std::str::from_utf8(name.to_bytes()).ok()?.parse().ok()?;
                        Some((fd, name.to_owned()))
                    })
                    .collect();
                match ns {
                    Some(ns) => walk.namespaces.entry(ns).or_default().push(pid),
                    // A zombie has no namespace link and no fds: nothing is hidden there.
                    None if fds.is_empty() => {}
                    None => walk.uninspectable += 1,
                }
                dirs.push(FdDir { pid, dir, fds });
            }
            // The process exited between listing and reading: not a visibility gap.
            Err(Errno::ENOENT | Errno::ESRCH) => {}
            Err(_) => {
                walk.processes += 1;
                walk.uninspectable += 1;
            }
        }
        path.pop();
        path.pop();
    }

    // Phase 2: readlinkat every fd relative to its directory, split across cores (one busy
    // process can hold most of the host's sockets, so split by fd, not by process).
    let work: Vec<(u32, RawFd, u32, &CStr)> = dirs
        .iter()
        .flat_map(|d| {
            let dfd = d.dir.as_raw_fd();
            d.fds
                .iter()
                .map(move |(fd, name)| (d.pid, dfd, *fd, name.as_c_str()))
        })
        .collect();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = if work.len() < PARALLEL_MIN_FDS || cores < PARALLEL_MIN_CORES {
        1
    } else {
        cores.min(4)
    };
    let chunk = work.len().div_ceil(threads).max(1);
    let resolve = |items: &[(u32, RawFd, u32, &CStr)]| -> Vec<(u64, Holder)> {
        items
            .iter()
            .filter_map(|&(pid, dfd, fd, name)| {
                let target = readlinkat(Some(dfd), name).ok()?;
                let inode = bracketed_inode(target.as_encoded_bytes(), b"socket:[")?;
                Some((inode, Holder { pid, fd }))
            })
            .collect()
    };
    let found: Vec<Vec<(u64, Holder)>> = if threads == 1 {
        vec![resolve(&work)]
    } else {
        std::thread::scope(|s| {
            let handles: Vec<_> = work
                .chunks(chunk)
                .map(|c| s.spawn(move || resolve(c)))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_default())
                .collect()
        })
    };
    // Chunks are in pid order, so the first holder seen is the lowest pid.
    walk.holders.reserve(found.iter().map(Vec::len).sum());
    for (inode, holder) in found.into_iter().flatten() {
        walk.holders.entry(inode).or_insert(holder);
    }
    Ok(walk)
}

/// `net:[4026531833]` → 4026531833.
fn read_ns_inode(link: &Path) -> Option<u64> {
    let target = fs::read_link(link).ok()?;
    bracketed_inode(target.as_os_str().as_encoded_bytes(), b"net:[")
}

/// Parses `<prefix>NNN]`.
fn bracketed_inode(s: &[u8], prefix: &[u8]) -> Option<u64> {
    let rest = s.strip_prefix(prefix)?.strip_suffix(b"]")?;
    if rest.is_empty() || rest.len() > 20 || !rest.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(rest).ok()?.parse().ok()
}

fn read_owner(dir: &Path) -> Owner {
    let comm = fs::read(dir.join("comm")).ok().map(|b| {
        let b = b.strip_suffix(b"\n").unwrap_or(&b);
        String::from_utf8_lossy(b).into_owned()
    });
    let path = fs::read_link(dir.join("exe"))
        .ok()
        .map(|p| p.to_string_lossy().into_owned());
    let uid = fs::read_to_string(dir.join("status")).ok().and_then(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|l| l.split_whitespace().next())
            .and_then(|u| u.parse().ok())
    });
    let cmdline = fs::read(dir.join("cmdline")).ok().map(|b| {
        let b = b.strip_suffix(b"\0").unwrap_or(&b);
        if b.is_empty() {
            Vec::new()
        } else {
            b.split(|&c| c == 0)
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect()
        }
    });
    Owner {
        comm,
        path,
        uid,
        cmdline,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bracketed_inode_table() {
        let cases: [(&[u8], &[u8], Option<u64>); 6] = [
            (b"socket:[12345]", b"socket:[", Some(12345)),
            (b"net:[4026531833]", b"net:[", Some(4026531833)),
            (b"pipe:[1]", b"socket:[", None),
            (b"socket:[]", b"socket:[", None),
            (b"socket:[12a]", b"socket:[", None),
            (b"/dev/null", b"socket:[", None),
        ];
        for (s, p, want) in cases {
            assert_eq!(
                bracketed_inode(s, p),
                want,
                "{}",
                String::from_utf8_lossy(s)
            );
        }
    }
}
