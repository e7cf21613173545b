//! Socket collection: every TCP and UDP socket on the host with its owning process, read
//! natively from /proc (one pass per network namespace) or, where there is no /proc, from
//! `lsof -F`. It never guesses an owner: what it cannot see is reported as unknown, and the
//! reduced visibility is stated in [`Visibility`].

pub mod lsof;
pub mod netlink;
pub mod procfs;
pub mod procnet;

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Serialize, Serializer};

use crate::error::ScanError;

/// Transport protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

impl Protocol {
    /// `"tcp"` or `"udp"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Address family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    /// AF_INET.
    Ipv4,
    /// AF_INET6.
    Ipv6,
}

/// Socket state, named as the kernel and `ss` name them. UDP sockets are `UNCONN` (bound,
/// not connected: a UDP "listener") or `ESTABLISHED` (connected).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SocketState {
    /// TCP 01, or a connected UDP socket.
    Established,
    /// TCP 02: an outbound connection being opened.
    SynSent,
    /// TCP 03.
    SynRecv,
    /// TCP 04.
    FinWait1,
    /// TCP 05.
    FinWait2,
    /// TCP 06.
    TimeWait,
    /// TCP 07.
    Close,
    /// TCP 08.
    CloseWait,
    /// TCP 09.
    LastAck,
    /// TCP 0A.
    Listen,
    /// TCP 0B.
    Closing,
    /// TCP 0C.
    NewSynRecv,
    /// UDP 07: bound and not connected.
    Unconn,
    /// Anything else (the kernel's number, or 0 for an unparsable lsof state).
    Unknown(u8),
}

impl SocketState {
    /// The state from a /proc/net `st` value.
    pub fn from_proc(protocol: Protocol, code: u8) -> SocketState {
        match (protocol, code) {
            (Protocol::Udp, 0x07) => SocketState::Unconn,
            (_, 0x01) => SocketState::Established,
            (_, 0x02) => SocketState::SynSent,
            (_, 0x03) => SocketState::SynRecv,
            (_, 0x04) => SocketState::FinWait1,
            (_, 0x05) => SocketState::FinWait2,
            (_, 0x06) => SocketState::TimeWait,
            (_, 0x07) => SocketState::Close,
            (_, 0x08) => SocketState::CloseWait,
            (_, 0x09) => SocketState::LastAck,
            (_, 0x0A) => SocketState::Listen,
            (_, 0x0B) => SocketState::Closing,
            (_, 0x0C) => SocketState::NewSynRecv,
            (_, other) => SocketState::Unknown(other),
        }
    }

    /// The state from its name (`LISTEN`, `SYN_SENT`, as lsof's `TST=` prints them).
    pub fn from_name(name: &str) -> SocketState {
        match name {
            "ESTABLISHED" => SocketState::Established,
            "SYN_SENT" => SocketState::SynSent,
            "SYN_RECV" | "SYN_RCVD" => SocketState::SynRecv,
            "FIN_WAIT1" | "FIN_WAIT_1" => SocketState::FinWait1,
            "FIN_WAIT2" | "FIN_WAIT_2" => SocketState::FinWait2,
            "TIME_WAIT" => SocketState::TimeWait,
            "CLOSE" | "CLOSED" => SocketState::Close,
            "CLOSE_WAIT" => SocketState::CloseWait,
            "LAST_ACK" => SocketState::LastAck,
            "LISTEN" => SocketState::Listen,
            "CLOSING" => SocketState::Closing,
            "UNCONN" => SocketState::Unconn,
            _ => SocketState::Unknown(0),
        }
    }

    /// The name, as in `ss`.
    pub fn as_str(self) -> &'static str {
        match self {
            SocketState::Established => "ESTABLISHED",
            SocketState::SynSent => "SYN_SENT",
            SocketState::SynRecv => "SYN_RECV",
            SocketState::FinWait1 => "FIN_WAIT1",
            SocketState::FinWait2 => "FIN_WAIT2",
            SocketState::TimeWait => "TIME_WAIT",
            SocketState::Close => "CLOSE",
            SocketState::CloseWait => "CLOSE_WAIT",
            SocketState::LastAck => "LAST_ACK",
            SocketState::Listen => "LISTEN",
            SocketState::Closing => "CLOSING",
            SocketState::NewSynRecv => "NEW_SYN_RECV",
            SocketState::Unconn => "UNCONN",
            SocketState::Unknown(_) => "UNKNOWN",
        }
    }
}

impl Serialize for SocketState {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl fmt::Display for SocketState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One socket. The first ten fields follow osquery's `listening_ports` /
/// `process_open_sockets` column meanings (with strings for protocol and family); owner fields
/// are `None` (JSON `null`) when the owner could not be seen — never guessed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Socket {
    /// Local address (`0.0.0.0` / `::` for a wildcard bind).
    pub address: IpAddr,
    /// Local port.
    pub port: u16,
    /// `tcp` or `udp`.
    pub protocol: Protocol,
    /// `ipv4` or `ipv6` (the socket's family; an IPv4-mapped address stays `ipv6`).
    pub family: Family,
    /// Owning process id (the lowest pid when several processes share the socket).
    pub pid: Option<u32>,
    /// The owner's kernel comm name (up to 15 bytes, never truncated further).
    pub comm: Option<String>,
    /// The owner's full executable path.
    pub path: Option<String>,
    /// The owner's real uid.
    pub uid: Option<u32>,
    /// Socket state.
    pub state: SocketState,
    /// Network namespace inode (`/proc/<pid>/ns/net`), when known.
    pub net_namespace: Option<u64>,
    /// Remote address (unspecified when not connected).
    pub remote_address: IpAddr,
    /// Remote port (0 when not connected).
    pub remote_port: u16,
    /// Socket inode (osquery's `socket`), when known.
    pub socket: Option<u64>,
    /// The owner's file descriptor for the socket.
    pub fd: Option<u32>,
    /// The uid the kernel records for the socket (known even when the owner is not).
    pub socket_uid: Option<u32>,
    /// The owner's command line.
    pub cmdline: Option<Vec<String>>,
}

impl Socket {
    /// Whether this is a listener: TCP in LISTEN, or UDP bound and not connected.
    pub fn is_listening(&self) -> bool {
        match self.protocol {
            Protocol::Tcp => self.state == SocketState::Listen,
            Protocol::Udp => self.state == SocketState::Unconn && self.port != 0,
        }
    }

    /// Whether the owning process is known.
    pub fn owner_known(&self) -> bool {
        self.pid.is_some()
    }

    /// `addr:port`, with brackets for IPv6.
    pub fn local_endpoint(&self) -> String {
        endpoint(self.address, self.port)
    }

    /// `addr:port` of the peer, with brackets for IPv6.
    pub fn remote_endpoint(&self) -> String {
        endpoint(self.remote_address, self.remote_port)
    }

    /// The owner for text output: `comm (pid N, /path)` or `unknown owner`.
    pub fn owner_label(&self) -> String {
        match (self.pid, &self.comm, &self.path) {
            (Some(pid), comm, path) => format!(
                "{} (pid {pid}, {})",
                comm.as_deref().unwrap_or("unknown"),
                path.as_deref().unwrap_or("exe unknown")
            ),
            (None, ..) => "unknown owner".to_owned(),
        }
    }
}

/// `addr:port`, with brackets for IPv6.
pub fn endpoint(addr: IpAddr, port: u16) -> String {
    match addr {
        IpAddr::V4(a) => format!("{a}:{port}"),
        IpAddr::V6(a) => format!("[{a}]:{port}"),
    }
}

/// How the sockets were collected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// /proc/net tables plus /proc/<pid>/fd.
    Proc,
    /// `lsof -F` machine output.
    Lsof,
}

impl Method {
    /// `"proc"` or `"lsof"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Proc => "proc",
            Method::Lsof => "lsof",
        }
    }

    /// A sentence on what the method reads.
    pub fn description(self) -> &'static str {
        match self {
            Method::Proc => {
                "native: sock_diag netlink for the scanner's own network namespace and \
                 /proc/<pid>/net/{tcp,tcp6,udp,udp6} once per other namespace (or when netlink \
                 fails), owners from /proc/<pid>/fd socket inodes"
            }
            Method::Lsof => "lsof -nP -w -i -F machine output (no /proc)",
        }
    }
}

/// Which method to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum MethodChoice {
    /// Native (sock_diag netlink and /proc) where /proc exists, else lsof.
    #[default]
    Auto,
    /// Native only: sock_diag netlink and /proc.
    Proc,
    /// lsof only.
    Lsof,
}

/// One network namespace the scan looked at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NamespaceInfo {
    /// The namespace inode, when known.
    pub inode: Option<u64>,
    /// The pid whose /proc/<pid>/net tables were read (None: the reader's own /proc/net).
    pub representative_pid: Option<u32>,
    /// Whether its tables could be read.
    pub readable: bool,
    /// Sockets found in it.
    pub sockets: usize,
    /// Where its table came from: `netlink` (sock_diag), `proc` (/proc/.../net), both, or
    /// `none`.
    pub source: &'static str,
}

/// What the scan could and could not see. Reduced visibility is reported, never an error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Visibility {
    /// True when every socket's owner was found and every process and namespace was read.
    pub complete: bool,
    /// Sockets (with an inode) whose owning process could not be seen.
    pub unknown_owner_sockets: usize,
    /// Processes seen in the process table.
    pub processes: usize,
    /// Processes whose fd table could not be read (another user's, without root).
    pub processes_uninspectable: usize,
    /// Network namespaces scanned.
    pub namespaces: Vec<NamespaceInfo>,
    /// Whether the scanner ran as root.
    pub root: bool,
    /// Sentences for the report.
    pub notes: Vec<String>,
}

/// The result of one collection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Collection {
    /// The method used.
    pub method: Method,
    /// Every TCP and UDP socket seen, one entry per socket (not per pid).
    pub sockets: Vec<Socket>,
    /// What could not be seen.
    pub visibility: Visibility,
}

/// Where and how to collect.
#[derive(Debug, Clone)]
pub struct CollectOptions {
    /// Which method.
    pub method: MethodChoice,
    /// The proc mount (`/proc`; tests point it at a captured tree).
    pub proc_root: PathBuf,
    /// The lsof binary; `None` searches PATH and the usual sbin directories.
    pub lsof: Option<PathBuf>,
    /// Timeout for lsof.
    pub timeout: Duration,
}

impl Default for CollectOptions {
    fn default() -> Self {
        CollectOptions {
            method: MethodChoice::Auto,
            proc_root: PathBuf::from("/proc"),
            lsof: None,
            timeout: Duration::from_secs(20),
        }
    }
}

/// Collects every TCP and UDP socket. `Auto` uses /proc when its tables are readable and falls
/// back to lsof; it fails only when no method works.
pub fn collect(opts: &CollectOptions) -> Result<Collection, ScanError> {
    match opts.method {
        MethodChoice::Proc => procfs::collect(&opts.proc_root),
        MethodChoice::Lsof => lsof::collect(opts.lsof.as_deref(), opts.timeout),
        MethodChoice::Auto => match procfs::collect(&opts.proc_root) {
            Ok(c) => Ok(c),
            Err(proc_err) => {
                lsof::collect(opts.lsof.as_deref(), opts.timeout).map_err(|lsof_err| {
                    ScanError::NoSource {
                        proc_error: proc_err.to_string(),
                        lsof_error: lsof_err.to_string(),
                    }
                })
            }
        },
    }
}

/// Blind spots every polling scan has, plus the method's own.
pub fn blind_spots(method: Method) -> Vec<String> {
    let mut v = vec![
        "point-in-time sample: sockets opened and closed between scans (short-lived \
         connections, DNS lookups) are not seen"
            .to_owned(),
        "raw, packet and unix sockets are not listed; QUIC and other UDP traffic shows only as \
         connected UDP sockets"
            .to_owned(),
    ];
    match method {
        Method::Proc => v.push(
            "a namespace is only seen through a process in it; a namespace with no visible \
             process (or held only by a bind mount) is not scanned"
                .to_owned(),
        ),
        Method::Lsof => {
            v.push("lsof lists only sockets of processes it can inspect; other users' sockets are missing (not unknown) unless run as root".to_owned());
            v.push("lsof sees only its own network namespace".to_owned());
        }
    }
    v
}

/// Whether this process runs with euid 0.
pub fn running_as_root() -> bool {
    nix::unistd::geteuid().is_root()
}
