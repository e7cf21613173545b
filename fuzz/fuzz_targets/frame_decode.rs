//! Fuzzes the frame decoder with untrusted bytes: it must never panic, and whatever decodes must
//! re-encode to exactly the bytes it came from (no two encodings of one frame).
//! Run: `cd fuzz && cargo +nightly fuzz run frame_decode`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    while let Ok((frame, used)) = occ_proto::decode(rest) {
        let again = occ_proto::encode(&frame).expect("a decoded frame re-encodes");
        assert_eq!(again.as_slice(), &rest[..used]);
        rest = &rest[used..];
    }
});
