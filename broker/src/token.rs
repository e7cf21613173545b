//! Approval tokens. Only a token's SHA-256 is ever stored; comparison hashes both sides and
//! compares the fixed-length digests in constant time. The token itself must never be logged,
//! audited or kept after the check.

use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq;

/// Lowercase hex SHA-256 of a token, as kept in `broker.json` (`approval.token_sha256`).
pub fn hash_hex(token: &str) -> String {
    occ_base::hex::encode(&Sha256::digest(token.as_bytes()))
}

/// Whether `stored` (64 hex digits, either case) is a well-formed SHA-256 digest.
pub fn valid_digest_hex(stored: &str) -> bool {
    stored.len() == 64 && stored.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Checks a typed token against the stored digest in constant time. A malformed stored digest
/// never matches.
pub fn verify(typed: &str, stored_hex: &str) -> bool {
    if !valid_digest_hex(stored_hex) {
        return false;
    }
    let want = stored_hex.to_ascii_lowercase();
    let got = hash_hex(typed);
    bool::from(got.as_bytes().ct_eq(want.as_bytes()))
}

/// A fresh random 128-bit token, as 32 lowercase hex digits.
pub fn generate() -> std::io::Result<String> {
    let mut buf = [0u8; 16];
    getrandom::fill(&mut buf).map_err(std::io::Error::other)?;
    Ok(occ_base::hex::encode(&buf))
}

/// Sets or clears `approval.token_sha256` in broker.json, keeping every other key, checking
/// that the result still loads, and replacing the file atomically with mode 0600.
pub fn write_digest(file: &std::path::Path, digest: Option<&str>) -> Result<(), String> {
    use serde_json::{json, Value};
    let mut doc: Value = match std::fs::read_to_string(file) {
        Ok(t) => serde_json::from_str(&t)
            .map_err(|e| format!("{} is not valid JSON ({e}); fix it first", file.display()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => json!({"version": 1}),
        Err(e) => return Err(format!("cannot read {}: {e}", file.display())),
    };
    let obj = doc
        .as_object_mut()
        .ok_or_else(|| format!("{} must hold a JSON object", file.display()))?;
    let approval = obj.entry("approval").or_insert_with(|| json!({}));
    let approval = approval
        .as_object_mut()
        .ok_or_else(|| format!("{}: approval must be an object", file.display()))?;
    match digest {
        Some(d) => approval.insert("token_sha256".into(), Value::String(d.into())),
        None => approval.remove("token_sha256"),
    };
    let text = serde_json::to_string_pretty(&doc).map_err(|e| e.to_string())? + "\n";
    occ_policy::file::BrokerConfig::parse(file, &text).map_err(|e| e.to_string())?;
    crate::paths::write_private(file, text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_matches_sha256_of_the_token() {
        // sha256("abc"), FIPS 180-2 test vector.
        assert_eq!(
            hash_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn right_token_verifies_wrong_one_does_not() {
        let stored = hash_hex("correct horse");
        assert!(verify("correct horse", &stored));
        assert!(verify("correct horse", &stored.to_ascii_uppercase()));
        assert!(!verify("correct hors", &stored));
        assert!(!verify("", &stored));
    }

    #[test]
    fn malformed_stored_digest_never_matches() {
        assert!(!verify("x", "abc"));
        assert!(!verify("x", &"z".repeat(64)));
    }

    #[test]
    fn generated_tokens_are_128_bit_hex_and_differ() {
        let a = generate().unwrap();
        let b = generate().unwrap();
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')));
        assert_ne!(a, b);
    }
}
