//! Lowercase hex, the one encoding occ uses for digests, keys and tokens. Decoding never panics
//! on any input; uppercase is accepted only where a key is read ([`decode32`]), never for a
//! hash ([`decode32_lower`]).

const DIGITS: &[u8; 16] = b"0123456789abcdef";

/// Lowercase hex of `bytes`.
pub fn encode(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    s
}

/// Lowercase hex of a 32-byte digest into a fixed buffer (no allocation, for hot paths: the
/// audit verifier encodes one per record). Eight bytes at a time, without table lookups.
pub fn encode32(bytes: &[u8; 32]) -> [u8; 64] {
    const NIBBLES: u64 = 0x0f0f_0f0f_0f0f_0f0f;
    let mut out = [0u8; 64];
    for (o, chunk) in out.chunks_exact_mut(16).zip(bytes.chunks_exact(8)) {
        let mut w = [0u8; 8];
        w.copy_from_slice(chunk);
        let x = u64::from_le_bytes(w);
        // Byte i of the input becomes bytes 2i (high nibble) and 2i+1 (low nibble).
        let n = spread(x >> 4 & NIBBLES) | spread(x & NIBBLES) << 8;
        // '0' + n, and 39 more for a..f: n + 0x76 reaches 0x80 exactly when n >= 10.
        let ten_up = (n + 0x7676_7676_7676_7676_7676_7676_7676_7676) >> 7
            & 0x0101_0101_0101_0101_0101_0101_0101_0101;
        let ascii = n + 0x3030_3030_3030_3030_3030_3030_3030_3030 + ten_up * 39;
        o.copy_from_slice(&ascii.to_le_bytes());
    }
    out
}

/// Moves byte i of `v` to byte 2i.
fn spread(v: u64) -> u128 {
    let mut v = u128::from(v);
    v = (v | v << 32) & 0x0000_0000_ffff_ffff_0000_0000_ffff_ffff;
    v = (v | v << 16) & 0x0000_ffff_0000_ffff_0000_ffff_0000_ffff;
    (v | v << 8) & 0x00ff_00ff_00ff_00ff_00ff_00ff_00ff_00ff
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

#[cfg(test)]
mod tests {
    use super::*;

    macro_rules! encodes {
        ($($name:ident: $bytes:expr => $hex:expr;)*) => {$(
            #[test]
            fn $name() {
                assert_eq!(encode($bytes), $hex);
            }
        )*};
    }

    encodes! {
        empty: &[] => "";
        one_byte: &[0x0a] => "0a";
        every_digit: &[0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef] => "0123456789abcdef";
        extremes: &[0x00, 0xff, 0x7f, 0x80] => "00ff7f80";
    }

    #[test]
    fn encode_matches_format_for_every_byte() {
        let all: Vec<u8> = (0..=255).collect();
        let want: String = all.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(encode(&all), want);
    }

    #[test]
    fn encode32_matches_encode_for_every_byte_in_every_position() {
        for start in 0..=255u8 {
            let d: [u8; 32] = std::array::from_fn(|i| start.wrapping_add((i * 37) as u8));
            assert_eq!(
                encode32(&d).to_vec(),
                encode(&d).into_bytes(),
                "from {start}"
            );
        }
    }

    #[test]
    fn decodes_and_rejects() {
        let h = "00ff7a".repeat(10) + "0a1b";
        let d = decode32(h.as_bytes()).expect("hex");
        assert_eq!(encode(&d), h);
        assert_eq!(&encode32(&d)[..], h.as_bytes());
        assert_eq!(decode32_lower(h.as_bytes()), Some(d));
        assert!(decode32_lower(h.to_uppercase().as_bytes()).is_none());
        assert_eq!(decode32(h.to_uppercase().as_bytes()), Some(d));
        assert!(decode32(&[b'g'; 64]).is_none());
        assert!(decode32(b"00").is_none());
        assert!(decode32(&[b'0'; 66]).is_none());
    }

    #[test]
    fn one_bad_digit_anywhere_is_rejected() {
        let good = [b'a'; 64];
        for i in 0..64 {
            for bad in [b'g', b'/', b':', b'@', b'G', b' ', 0xff] {
                let mut s = good;
                s[i] = bad;
                assert!(decode32(&s).is_none(), "{i} {bad}");
            }
        }
    }
}
