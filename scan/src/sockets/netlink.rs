//! The scanner's own network namespace through `NETLINK_SOCK_DIAG` (inet_diag), as `ss` reads
//! it: one dump per (family, protocol) instead of /proc/net/{tcp,…}, whose every read(2)
//! re-walks the kernel's whole socket hash (1–2 ms each on a large host). Rows come back in
//! the same shape as the /proc parser's, so owners and namespaces are attached identically.
//! Any error makes the caller fall back to the /proc table for that (family, protocol).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::AsRawFd;

use nix::sys::socket::{
    recv, sendto, socket, AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType,
};

use super::procnet::RawSocket;
use super::{Family, Protocol};

const SOCK_DIAG_BY_FAMILY: u16 = 20;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_DUMP: u16 = 0x300;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLMSG_HDRLEN: usize = 16;
const INET_DIAG_MSG_LEN: usize = 72;

/// Dumps every socket of one family and protocol in this process's network namespace.
pub fn dump(family: Family, protocol: Protocol) -> Result<Vec<RawSocket>, String> {
    let fd = socket(
        AddressFamily::Netlink,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        SockProtocol::NetlinkSockDiag,
    )
    .map_err(|e| format!("netlink socket: {e}"))?;
    let req = request(family, protocol);
    sendto(
        fd.as_raw_fd(),
        &req,
        &NetlinkAddr::new(0, 0),
        MsgFlags::empty(),
    )
    .map_err(|e| format!("netlink send: {e}"))?;
    let mut out = Vec::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = recv(fd.as_raw_fd(), &mut buf, MsgFlags::empty())
            .map_err(|e| format!("netlink recv: {e}"))?;
        if n == 0 {
            return Err("netlink: connection closed before NLMSG_DONE".to_owned());
        }
        if parse_messages(&buf[..n], family, &mut out)? {
            return Ok(out);
        }
    }
}

/// nlmsghdr + inet_diag_req_v2 asking for every state.
fn request(family: Family, protocol: Protocol) -> Vec<u8> {
    let len = (NLMSG_HDRLEN + 56) as u32;
    let mut r = Vec::with_capacity(len as usize);
    r.extend_from_slice(&len.to_ne_bytes());
    r.extend_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    r.extend_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    r.extend_from_slice(&1u32.to_ne_bytes()); // seq
    r.extend_from_slice(&0u32.to_ne_bytes()); // pid: the kernel
    r.push(match family {
        Family::Ipv4 => 2,  // AF_INET
        Family::Ipv6 => 10, // AF_INET6
    });
    r.push(match protocol {
        Protocol::Tcp => 6,  // IPPROTO_TCP
        Protocol::Udp => 17, // IPPROTO_UDP
    });
    r.push(0); // no extensions
    r.push(0);
    r.extend_from_slice(&u32::MAX.to_ne_bytes()); // all states
    r.extend_from_slice(&[0u8; 48]); // inet_diag_sockid: no filter
    r
}

fn u16_ne(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_ne(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn u16_be(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn addr(b: &[u8], at: usize, family: Family) -> Option<IpAddr> {
    Some(match family {
        Family::Ipv4 => {
            let o: [u8; 4] = b.get(at..at + 4)?.try_into().ok()?;
            IpAddr::V4(Ipv4Addr::from(o))
        }
        Family::Ipv6 => {
            let o: [u8; 16] = b.get(at..at + 16)?.try_into().ok()?;
            IpAddr::V6(Ipv6Addr::from(o))
        }
    })
}

/// Parses one datagram of netlink messages; true once NLMSG_DONE is seen.
fn parse_messages(mut b: &[u8], family: Family, out: &mut Vec<RawSocket>) -> Result<bool, String> {
    while b.len() >= NLMSG_HDRLEN {
        let len = u32_ne(b, 0).ok_or("netlink: short header")? as usize;
        let kind = u16_ne(b, 4).ok_or("netlink: short header")?;
        if len < NLMSG_HDRLEN || len > b.len() {
            return Err(format!("netlink: bad message length {len}"));
        }
        let payload = &b[NLMSG_HDRLEN..len];
        match kind {
            NLMSG_DONE => return Ok(true),
            NLMSG_ERROR => {
                let errno = u32_ne(payload, 0).map_or(0, |e| e as i32);
                return Err(format!(
                    "netlink: sock_diag refused the request ({})",
                    nix::errno::Errno::from_raw(-errno)
                ));
            }
            SOCK_DIAG_BY_FAMILY => {
                if payload.len() < INET_DIAG_MSG_LEN {
                    return Err("netlink: short inet_diag_msg".to_owned());
                }
                let parsed = (|| {
                    Some(RawSocket {
                        state: payload[1],
                        local_port: u16_be(payload, 4)?,
                        remote_port: u16_be(payload, 6)?,
                        local: addr(payload, 8, family)?,
                        remote: addr(payload, 24, family)?,
                        uid: u32_ne(payload, 64)?,
                        inode: u64::from(u32_ne(payload, 68)?),
                    })
                })();
                out.push(parsed.ok_or("netlink: malformed inet_diag_msg")?);
            }
            _ => {}
        }
        let step = (len + 3) & !3;
        b = b.get(step..).unwrap_or(&[]);
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_fresh_listener_in_the_dump() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let rows = dump(Family::Ipv4, Protocol::Tcp).unwrap();
        let row = rows
            .iter()
            .find(|r| r.local_port == port && r.state == 0x0A)
            .expect("listener in the sock_diag dump");
        assert_eq!(row.local, IpAddr::V4(Ipv4Addr::LOCALHOST));
        assert_ne!(row.inode, 0);
    }

    #[test]
    fn rejects_truncated_messages() {
        let mut out = Vec::new();
        let mut msg = vec![0u8; NLMSG_HDRLEN + 10];
        msg[..4].copy_from_slice(&((NLMSG_HDRLEN + 10) as u32).to_ne_bytes());
        msg[4..6].copy_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
        assert!(parse_messages(&msg, Family::Ipv4, &mut out).is_err());
        msg[..4].copy_from_slice(&999u32.to_ne_bytes());
        assert!(parse_messages(&msg, Family::Ipv4, &mut out).is_err());
    }
}
