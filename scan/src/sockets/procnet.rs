//! Parser for the kernel's /proc/net/{tcp,tcp6,udp,udp6} tables. Pure and allocation-light:
//! it reads bytes, never panics on malformed input, and counts the lines it had to skip.
//!
//! Addresses are printed by the kernel as the in-memory 32-bit words in the host's byte order
//! (byte-reversed on little-endian), so they are decoded with native-endian conversions; the
//! tables are only ever read on the host that wrote them. Ports are plain big-endian hex.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::Family;

/// One row of a table, before owners are attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawSocket {
    /// Local address.
    pub local: IpAddr,
    /// Local port.
    pub local_port: u16,
    /// Remote address.
    pub remote: IpAddr,
    /// Remote port.
    pub remote_port: u16,
    /// The `st` column.
    pub state: u8,
    /// The `uid` column.
    pub uid: u32,
    /// The `inode` column (0 for sockets without one, e.g. TIME_WAIT).
    pub inode: u64,
}

/// A parsed table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Table {
    /// The rows that parsed.
    pub sockets: Vec<RawSocket>,
    /// Rows that did not parse (skipped, and reported).
    pub malformed: usize,
}

/// Parses one table's bytes. The first line (the header) is skipped.
pub fn parse_table(text: &[u8], family: Family) -> Table {
    let mut table = Table::default();
    // Each row is ~150 bytes; reserve once instead of growing.
    table.sockets.reserve(text.len() / 150);
    for line in text.split(|&b| b == b'\n').skip(1) {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match parse_row(line, family) {
            Some(s) => table.sockets.push(s),
            None => table.malformed += 1,
        }
    }
    table
}

fn parse_row(line: &[u8], family: Family) -> Option<RawSocket> {
    let mut fields = line
        .split(|b| b.is_ascii_whitespace())
        .filter(|f| !f.is_empty());
    let sl = fields.next()?;
    if sl.last() != Some(&b':') {
        return None;
    }
    let (local, local_port) = parse_endpoint(fields.next()?, family)?;
    let (remote, remote_port) = parse_endpoint(fields.next()?, family)?;
    let state = u8::try_from(hex(fields.next()?)?).ok()?;
    // tx_queue:rx_queue, tr:tm->when, retrnsmt
    let mut fields = fields.skip(3);
    let uid = dec(fields.next()?)?;
    let _timeout = fields.next()?;
    let inode = dec64(fields.next()?)?;
    Some(RawSocket {
        local,
        local_port,
        remote,
        remote_port,
        state,
        uid: u32::try_from(uid).ok()?,
        inode,
    })
}

/// `0100007F:1F90` → (127.0.0.1, 8080); IPv6 takes 32 hex digits.
fn parse_endpoint(field: &[u8], family: Family) -> Option<(IpAddr, u16)> {
    let colon = field.iter().position(|&b| b == b':')?;
    let (addr, port) = (&field[..colon], &field[colon + 1..]);
    let port = u16::try_from(hex(port)?).ok()?;
    let ip = match family {
        Family::Ipv4 => {
            if addr.len() != 8 {
                return None;
            }
            IpAddr::V4(Ipv4Addr::from(hex(addr)?.to_ne_bytes()))
        }
        Family::Ipv6 => {
            if addr.len() != 32 {
                return None;
            }
            let mut bytes = [0u8; 16];
            for (i, word) in addr.chunks_exact(8).enumerate() {
                bytes[i * 4..i * 4 + 4].copy_from_slice(&hex(word)?.to_ne_bytes());
            }
            IpAddr::V6(Ipv6Addr::from(bytes))
        }
    };
    Some((ip, port))
}

/// Up to 8 hex digits.
fn hex(s: &[u8]) -> Option<u32> {
    if s.is_empty() || s.len() > 8 {
        return None;
    }
    let mut v: u32 = 0;
    for &b in s {
        let d = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            b'A'..=b'F' => b - b'A' + 10,
            _ => return None,
        };
        v = (v << 4) | u32::from(d);
    }
    Some(v)
}

fn dec(s: &[u8]) -> Option<u64> {
    dec64(s)
}

fn dec64(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    let mut v: u64 = 0;
    for &b in s {
        if !b.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HDR4: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n";

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    // The byte-order cases assume a little-endian host, like every machine CI runs on.
    #[cfg(target_endian = "little")]
    #[test]
    fn parses_ipv4_rows_table() {
        let text = format!(
            "{HDR4}   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 4242 1 0000000000000000 100 0 0 10 0\n\
             \x20  1: 0202000A:C350 0101A8C0:01BB 02 00000001:00000000 01:00000064 00000002     0        0 77 2 0000000000000000 20 4 0 10 -1\n"
        );
        let t = parse_table(text.as_bytes(), Family::Ipv4);
        assert_eq!(t.malformed, 0);
        assert_eq!(t.sockets.len(), 2);
        assert_eq!(t.sockets[0].local, ip("127.0.0.1"));
        assert_eq!(t.sockets[0].local_port, 8080);
        assert_eq!(t.sockets[0].state, 0x0A);
        assert_eq!(t.sockets[0].uid, 1000);
        assert_eq!(t.sockets[0].inode, 4242);
        assert_eq!(t.sockets[1].local, ip("10.0.2.2"));
        assert_eq!(t.sockets[1].local_port, 50000);
        assert_eq!(t.sockets[1].remote, ip("192.168.1.1"));
        assert_eq!(t.sockets[1].remote_port, 443);
        assert_eq!(t.sockets[1].state, 2);
    }

    #[cfg(target_endian = "little")]
    #[test]
    fn parses_ipv6_words_in_host_order() {
        let text = "hdr\n   0: 00000000000000000000000001000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 9 1 0000000000000000 100 0 0 10 0\n\
                    \x20  1: 0000000000000000FFFF00000100007F:0016 B80D0120000000000000000001000000:01BB 01 00000000:00000000 00:00000000 00000000     0        0 10 1 0000000000000000 100 0 0 10 0\n";
        let t = parse_table(text.as_bytes(), Family::Ipv6);
        assert_eq!(t.malformed, 0);
        assert_eq!(t.sockets[0].local, ip("::1"));
        assert_eq!(t.sockets[1].local, ip("::ffff:127.0.0.1"));
        assert_eq!(t.sockets[1].remote, ip("2001:db8::1"));
    }

    #[test]
    fn malformed_rows_are_counted_not_fatal() {
        let cases = [
            "   0: 0100007F:1F90",                                   // cut short
            "   0: 0100007G:1F90 00000000:0000 0A 0:0 0:0 0 0 0 1",  // bad hex
            "   0: 0100007F:1F90 00000000:0000 0A 0:0 0:0 0 x 0 1",  // bad uid
            "   0: 0100007F:FFFFF 00000000:0000 0A 0:0 0:0 0 0 0 1", // port too large
            "   0: 00007F:1F90 00000000:0000 0A 0:0 0:0 0 0 0 1",    // short address
            "junk",
        ];
        for row in cases {
            let text = format!("{HDR4}{row}\n");
            let t = parse_table(text.as_bytes(), Family::Ipv4);
            assert_eq!((t.sockets.len(), t.malformed), (0, 1), "{row}");
        }
    }

    #[test]
    fn empty_and_header_only_tables_are_empty() {
        assert_eq!(parse_table(b"", Family::Ipv4), Table::default());
        assert_eq!(parse_table(HDR4.as_bytes(), Family::Ipv6), Table::default());
    }
}
