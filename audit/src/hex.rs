//! Lowercase hex, the only encoding the log uses for digests and keys. Decoding never
//! panics on any input; uppercase is accepted only where a key is read, never for a hash.

const DIGITS: &[u8; 16] = b"0123456789abcdef";

/// Lowercase hex of `bytes`.
pub fn encode(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    s
}

const fn nibbles(upper: bool) -> [u8; 256] {
    let mut t = [0xffu8; 256];
    let mut i = 0;
    while i < 10 {
        t[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        t[b'a' as usize + i] = 10 + i as u8;
        if upper {
            t[b'A' as usize + i] = 10 + i as u8;
        }
        i += 1;
    }
    t
}
static ANY_CASE: [u8; 256] = nibbles(true);
static LOWER: [u8; 256] = nibbles(false);

fn decode_with(s: &[u8], table: &[u8; 256]) -> Option<[u8; 32]> {
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    let mut bad = 0u8;
    for (o, pair) in out.iter_mut().zip(s.chunks_exact(2)) {
        let (h, l) = (table[usize::from(pair[0])], table[usize::from(pair[1])]);
        bad |= h | l;
        *o = h << 4 | (l & 0xf);
    }
    // Valid nibbles are < 16; any 0xff marks a bad digit.
    (bad < 16).then_some(out)
}

/// Decodes exactly 64 hex digits (either case) into 32 bytes.
pub fn decode32(s: &[u8]) -> Option<[u8; 32]> {
    decode_with(s, &ANY_CASE)
}

/// Decodes exactly 64 *lowercase* hex digits, the only form a chain hash or seal may take.
pub fn decode32_lower(s: &[u8]) -> Option<[u8; 32]> {
    decode_with(s, &LOWER)
}

/// Lowercase hex of a digest into a fixed buffer (no allocation).
pub fn encode32(bytes: &[u8; 32]) -> [u8; 64] {
    let mut out = [0u8; 64];
    for (o, b) in out.chunks_exact_mut(2).zip(bytes) {
        o[0] = DIGITS[usize::from(b >> 4)];
        o[1] = DIGITS[usize::from(b & 0xf)];
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn decodes_and_rejects() {
        let h = "00ff7a".repeat(10) + "0a1b";
        let d = super::decode32(h.as_bytes()).expect("hex");
        assert_eq!(super::encode(&d), h);
        assert_eq!(&super::encode32(&d)[..], h.as_bytes());
        assert!(super::decode32_lower(h.to_uppercase().as_bytes()).is_none());
        assert!(super::decode32(h.to_uppercase().as_bytes()).is_some());
        assert!(super::decode32(&[b'g'; 64]).is_none());
        assert!(super::decode32(b"00").is_none());
    }
}
