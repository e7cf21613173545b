//! The fallback collector for hosts without /proc: `lsof -F` machine output (NUL-separated
//! fields), parsed strictly. Never the human table: its columns shift and its COMMAND column
//! is truncated. lsof exits 1 when nothing matches; that is an empty result, not a failure.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use super::{Collection, Family, Method, Protocol, Socket, SocketState, Visibility};
use crate::error::ScanError;
use crate::exec;
use crate::net;

/// One internet socket as lsof reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LsofSocket {
    /// Process id.
    pub pid: u32,
    /// Command name (`+c 0`: lsof's full name).
    pub comm: Option<String>,
    /// Process uid.
    pub uid: Option<u32>,
    /// File descriptor.
    pub fd: Option<u32>,
    /// Family.
    pub family: Family,
    /// Protocol.
    pub protocol: Protocol,
    /// The DEVICE field; on Linux the socket inode.
    pub device: Option<u64>,
    /// Local address and port.
    pub local: (IpAddr, u16),
    /// Remote address and port, when connected.
    pub remote: Option<(IpAddr, u16)>,
    /// The TCP state (`TST=`), when given.
    pub tcp_state: Option<String>,
}

/// Parses `lsof -F0 pcuftPnTd` output. Returns the sockets and the number of file sets that
/// looked like sockets but did not parse.
pub fn parse_sockets(out: &[u8]) -> (Vec<LsofSocket>, usize) {
    let mut sockets = Vec::new();
    let mut malformed = 0;
    let mut pid: Option<u32> = None;
    let mut comm: Option<String> = None;
    let mut uid: Option<u32> = None;
    for line in out.split(|&b| b == b'\n') {
        let mut fields = line.split(|&b| b == 0).filter(|f| !f.is_empty()).peekable();
        let Some(first) = fields.peek() else { continue };
        if first.first() == Some(&b'p') {
            pid = None;
            comm = None;
            uid = None;
            for f in fields {
                let v = &f[1..];
                match f[0] {
                    b'p' => pid = text(v).and_then(|s| s.parse().ok()),
                    b'c' => comm = text(v).map(str::to_owned),
                    b'u' => uid = text(v).and_then(|s| s.parse().ok()),
                    _ => {}
                }
            }
            continue;
        }
        let Some(pid) = pid else { continue };
        let mut file = FileSet::default();
        for f in fields {
            let v = text(&f[1..]);
            match f[0] {
                b'f' => file.fd = v.and_then(|s| s.parse().ok()),
                b't' => file.kind = v.map(str::to_owned),
                b'P' => file.proto = v.map(str::to_owned),
                b'd' => file.device = v.and_then(|s| s.parse().ok()),
                b'n' => file.name = v.map(str::to_owned),
                b'T' => {
                    if let Some(st) = v.and_then(|s| s.strip_prefix("ST=")) {
                        file.tcp_state = Some(st.to_owned());
                    }
                }
                _ => {}
            }
        }
        let family = match file.kind.as_deref() {
            Some("IPv4") => Family::Ipv4,
            Some("IPv6") => Family::Ipv6,
            _ => continue,
        };
        let protocol = match file.proto.as_deref() {
            Some("TCP") => Protocol::Tcp,
            Some("UDP") => Protocol::Udp,
            _ => continue,
        };
        let Some((local, remote)) = file.name.as_deref().and_then(|n| parse_name(n, family)) else {
            malformed += 1;
            continue;
        };
        sockets.push(LsofSocket {
            pid,
            comm: comm.clone(),
            uid,
            fd: file.fd,
            family,
            protocol,
            device: file.device,
            local,
            remote,
            tcp_state: file.tcp_state,
        });
    }
    (sockets, malformed)
}

#[derive(Default)]
struct FileSet {
    fd: Option<u32>,
    kind: Option<String>,
    proto: Option<String>,
    device: Option<u64>,
    name: Option<String>,
    tcp_state: Option<String>,
}

fn text(v: &[u8]) -> Option<&str> {
    std::str::from_utf8(v).ok()
}

type Endpoints = ((IpAddr, u16), Option<(IpAddr, u16)>);

/// `127.0.0.1:5000->10.0.0.1:443`, `[::1]:8443`, `*:22`, `*:*`.
fn parse_name(name: &str, family: Family) -> Option<Endpoints> {
    let (local, remote) = match name.split_once("->") {
        Some((l, r)) => (l, Some(r)),
        None => (name, None),
    };
    let local = parse_endpoint(local, family)?;
    let remote = match remote {
        Some(r) => Some(parse_endpoint(r, family)?),
        None => None,
    };
    Some((local, remote))
}

fn parse_endpoint(s: &str, family: Family) -> Option<(IpAddr, u16)> {
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (h, p) = rest.split_once("]:")?;
        (h, p)
    } else {
        s.rsplit_once(':')?
    };
    let host = host.split('%').next().unwrap_or(host);
    let addr = if host == "*" {
        net::wildcard(family == Family::Ipv6)
    } else {
        host.parse().ok()?
    };
    let port = if port == "*" { 0 } else { port.parse().ok()? };
    Some((addr, port))
}

/// Parses `lsof -F0 pn -d txt` output: pid → the first text file (the executable).
pub fn parse_exe_paths(out: &[u8]) -> HashMap<u32, String> {
    let mut map = HashMap::new();
    let mut pid = None;
    for line in out.split(|&b| b == b'\n') {
        for f in line.split(|&b| b == 0).filter(|f| !f.is_empty()) {
            let v = text(&f[1..]);
            match f[0] {
                b'p' => pid = v.and_then(|s| s.parse::<u32>().ok()),
                b'n' => {
                    if let (Some(p), Some(n)) = (pid, v) {
                        map.entry(p).or_insert_with(|| n.to_owned());
                    }
                }
                _ => {}
            }
        }
    }
    map
}

/// Runs lsof and builds the collection.
pub fn collect(lsof: Option<&Path>, timeout: Duration) -> Result<Collection, ScanError> {
    let bin = match lsof {
        Some(p) => p.to_path_buf(),
        None => exec::find_program("lsof").ok_or_else(|| ScanError::LsofUnavailable {
            detail: "not found on PATH or in /usr/sbin, /usr/bin, /sbin, /bin".to_owned(),
        })?,
    };
    let mut cmd = Command::new(&bin);
    cmd.args(["-nP", "-w", "+c", "0", "-i", "-F0pcuftPnTd"]);
    let out = run_lsof(cmd, &bin, timeout)?;
    let (raw, malformed) = parse_sockets(&out);

    let mut pids: Vec<u32> = raw.iter().map(|s| s.pid).collect();
    pids.sort_unstable();
    pids.dedup();
    let exes = if pids.is_empty() {
        HashMap::new()
    } else {
        let list = pids
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let mut cmd = Command::new(&bin);
        cmd.args(["-nP", "-w", "-a", "-p", &list, "-d", "txt", "-F0pn"]);
        parse_exe_paths(&run_lsof(cmd, &bin, timeout)?)
    };

    // One entry per socket: processes sharing a socket (same inode) collapse to the lowest pid.
    let mut by_key: HashMap<String, Socket> = HashMap::new();
    for s in raw {
        let (remote_address, remote_port) = s
            .remote
            .unwrap_or((net::wildcard(s.family == Family::Ipv6), 0));
        let state = match (s.protocol, &s.tcp_state, s.remote) {
            (Protocol::Tcp, Some(st), _) => SocketState::from_name(st),
            (Protocol::Tcp, None, _) => SocketState::Unknown(0),
            (Protocol::Udp, _, Some(_)) => SocketState::Established,
            (Protocol::Udp, _, None) => SocketState::Unconn,
        };
        let key = match s.device {
            Some(d) => format!("inode {d}"),
            None => format!(
                "{:?} {:?} {:?} {:?} {:?}",
                s.protocol, s.local, s.remote, state, s.pid
            ),
        };
        let socket = Socket {
            address: s.local.0,
            port: s.local.1,
            protocol: s.protocol,
            family: s.family,
            pid: Some(s.pid),
            comm: s.comm,
            path: exes.get(&s.pid).cloned(),
            uid: s.uid,
            state,
            net_namespace: None,
            remote_address,
            remote_port,
            socket: s.device,
            fd: s.fd,
            socket_uid: None,
            cmdline: None,
        };
        match by_key.get(&key) {
            Some(old) if old.pid <= socket.pid => {}
            _ => {
                by_key.insert(key, socket);
            }
        }
    }
    let mut sockets: Vec<Socket> = by_key.into_values().collect();
    sockets.sort_by(|a, b| {
        (a.protocol, a.family, a.port, a.pid, a.socket)
            .cmp(&(b.protocol, b.family, b.port, b.pid, b.socket))
    });

    let root = super::running_as_root();
    let mut notes = Vec::new();
    if !root {
        notes.push(
            "lsof ran without root: sockets of other users' processes are not listed at all"
                .to_owned(),
        );
    }
    if malformed > 0 {
        notes.push(format!(
            "{malformed} lsof socket record(s) did not parse and were skipped"
        ));
    }
    if cfg!(target_os = "linux") {
        notes.push(
            "lsof on Linux sees only its own network namespace and never lists sockets whose \
             owner it cannot see; use --method proc for the full picture"
                .to_owned(),
        );
    }
    Ok(Collection {
        method: Method::Lsof,
        sockets,
        visibility: Visibility {
            complete: root && !cfg!(target_os = "linux"),
            unknown_owner_sockets: 0,
            processes: pids.len(),
            processes_uninspectable: 0,
            namespaces: Vec::new(),
            root,
            notes,
        },
    })
}

fn run_lsof(cmd: Command, bin: &Path, timeout: Duration) -> Result<Vec<u8>, ScanError> {
    let failed = |detail: String| ScanError::ToolFailed {
        tool: bin.display().to_string(),
        detail,
    };
    let done = exec::run(cmd, None, timeout).map_err(|e| ScanError::LsofUnavailable {
        detail: e.to_string(),
    })?;
    if done.timed_out {
        return Err(failed(format!(
            "timed out after {} ms and was killed",
            timeout.as_millis()
        )));
    }
    // A cut table would read as fewer sockets: an incomplete scan is a failed scan.
    if done.truncated {
        return Err(failed(format!(
            "wrote more than {} MiB, so its table was cut",
            exec::CAPTURE_CAP >> 20
        )));
    }
    match done.code {
        Some(0) => Ok(done.stdout),
        // lsof exits 1 when it matches nothing (or some of several -p pids vanished).
        Some(1) if !done.stdout.is_empty() || done.stderr.is_empty() => Ok(done.stdout),
        _ => Err(failed(format!(
            "{}: {}",
            done.status
                .map_or_else(|| "killed".to_owned(), |s| s.to_string()),
            String::from_utf8_lossy(&done.stderr).trim()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn parses_process_and_file_sets() {
        let out = b"p11340\0R11338\0cpython3\0u0\0\n\
f3\0tIPv4\0d18016\0PTCP\0n127.0.0.1:50641\0TST=LISTEN\0TQR=0\0TQS=0\0\n\
f4\0tIPv6\0d18017\0PUDP\0n[::1]:44646\0TQR=0\0TQS=0\0\n\
f5\0tIPv4\0d18018\0PTCP\0n127.0.0.1:59508->127.0.0.1:50641\0TST=ESTABLISHED\0\n\
f6\0tunix\0d99\0n/run/x.sock\0\n\
p22\0csshd\0u0\0\n\
f3\0tIPv6\0d500\0PTCP\0n*:22\0TST=LISTEN\0\n\
f4\0tIPv4\0d501\0PUDP\0n*:*\0\n";
        let (s, bad) = parse_sockets(out);
        assert_eq!(bad, 0);
        assert_eq!(s.len(), 5);
        assert_eq!(s[0].pid, 11340);
        assert_eq!(s[0].comm.as_deref(), Some("python3"));
        assert_eq!(s[0].uid, Some(0));
        assert_eq!(s[0].local, (ip("127.0.0.1"), 50641));
        assert_eq!(s[0].tcp_state.as_deref(), Some("LISTEN"));
        assert_eq!(s[0].device, Some(18016));
        assert_eq!(s[1].family, Family::Ipv6);
        assert_eq!(s[1].protocol, Protocol::Udp);
        assert_eq!(s[1].local, (ip("::1"), 44646));
        assert_eq!(s[2].remote, Some((ip("127.0.0.1"), 50641)));
        assert_eq!(s[3].pid, 22);
        assert_eq!(s[3].local, (ip("::"), 22));
        assert_eq!(s[4].local, (ip("0.0.0.0"), 0));
    }

    #[test]
    fn unparsable_names_are_counted() {
        let out = b"p1\0cx\0\nf3\0tIPv4\0PTCP\0nexample.com:http\0TST=LISTEN\0\n";
        let (s, bad) = parse_sockets(out);
        assert!(s.is_empty());
        assert_eq!(bad, 1);
    }

    #[test]
    fn exe_paths_take_the_first_text_file() {
        let out = b"p10\0\nftxt\0n/usr/bin/python3.11\0\nftxt\0n/usr/lib/libx.so\0\np11\0\nftxt\0n/usr/sbin/sshd\0\n";
        let m = parse_exe_paths(out);
        assert_eq!(m.get(&10).map(String::as_str), Some("/usr/bin/python3.11"));
        assert_eq!(m.get(&11).map(String::as_str), Some("/usr/sbin/sshd"));
    }
}
