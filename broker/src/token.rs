//! Approval tokens. A generated token (128 random bits) is kept as its SHA-256
//! (`approval.token_sha256`), compared by hashing both sides and comparing the fixed-length
//! digests in constant time. A token a human chose is kept as a salted argon2id PHC string
//! (`approval.token_argon2id`), so a guessable token cannot be found from the file by a fast
//! search; argon2's verify compares in constant time. The token itself must never be logged,
//! audited or kept after the check.

use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq;

/// The fewest characters a token a human chose may have.
pub const MIN_CHOSEN_CHARS: usize = 20;

/// A configured token, as broker.json (or the legacy env file) keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stored {
    /// Lowercase hex SHA-256 of a generated token.
    Sha256(String),
    /// argon2id PHC string of a chosen token.
    Argon2id(String),
}

impl Stored {
    /// The token configured in `approval`, if any (the argon2id key first: the loader refuses
    /// both at once).
    pub fn of(approval: &occ_policy::file::ApprovalConfig) -> Option<Stored> {
        approval
            .token_argon2id
            .clone()
            .map(Stored::Argon2id)
            .or_else(|| approval.token_sha256.clone().map(Stored::Sha256))
    }

    /// Whether `typed` is the token.
    pub fn verify(&self, typed: &str) -> bool {
        match self {
            Stored::Sha256(d) => verify(typed, d),
            Stored::Argon2id(phc) => verify_argon2id(typed, phc),
        }
    }

    /// The broker.json key it is kept under.
    pub fn key(&self) -> &'static str {
        match self {
            Stored::Sha256(_) => "token_sha256",
            Stored::Argon2id(_) => "token_argon2id",
        }
    }
}

/// Why a chosen token is refused, if it is.
pub fn chosen_problem(token: &str) -> Option<String> {
    let n = token.chars().count();
    (n < MIN_CHOSEN_CHARS).then(|| {
        format!(
            "a token you choose must be at least {MIN_CHOSEN_CHARS} characters (this one has \
             {n}); or use --generate for a random one"
        )
    })
}

/// The argon2id PHC string of `token` with a fresh random salt and argon2's default
/// parameters (m=19456 KiB, t=2, p=1: OWASP's recommendation).
pub fn hash_argon2id(token: &str) -> Result<String, String> {
    use argon2::password_hash::PasswordHasher as _;
    argon2::Argon2::default()
        .hash_password(token.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| format!("cannot hash the token: {e}"))
}

/// Checks `typed` against an argon2id PHC string; a malformed string never matches.
pub fn verify_argon2id(typed: &str, phc: &str) -> bool {
    use argon2::password_hash::PasswordVerifier as _;
    if !phc.starts_with("$argon2id$") {
        return false;
    }
    argon2::Argon2::default()
        .verify_password(typed.as_bytes(), phc)
        .is_ok()
}

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

/// Sets (`Some`) or clears (`None`) the token in broker.json: the new one under its key, the
/// other token key removed, every other key kept. Checks that the result still loads, and
/// replaces the file atomically with mode 0600.
pub fn write_stored(file: &std::path::Path, token: Option<&Stored>) -> Result<(), String> {
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
    approval.remove("token_sha256");
    approval.remove("token_argon2id");
    if let Some(t) = token {
        let (Stored::Sha256(v) | Stored::Argon2id(v)) = t;
        approval.insert(t.key().into(), Value::String(v.clone()));
    }
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
    fn a_chosen_token_is_kept_as_salted_argon2id_and_verifies() {
        let token = "correct horse battery staple";
        let a = hash_argon2id(token).unwrap();
        let b = hash_argon2id(token).unwrap();
        assert!(a.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{a}");
        assert_ne!(a, b, "salted: the same token hashes differently");
        assert!(!a.contains(token));
        let stored = Stored::Argon2id(a.clone());
        assert!(stored.verify(token));
        assert!(!stored.verify("correct horse battery stapl"));
        assert!(!stored.verify(""));
        assert!(!verify_argon2id(
            token,
            "$argon2i$v=19$m=8,t=1,p=1$c2FsdA$aGFzaA"
        ));
        assert!(!verify_argon2id(token, &a.replace("argon2id", "argon2d")));
    }

    #[test]
    fn a_chosen_token_must_have_twenty_characters() {
        assert!(chosen_problem(&"x".repeat(19))
            .unwrap()
            .contains("at least 20"));
        assert_eq!(chosen_problem(&"x".repeat(20)), None);
        // Characters, not bytes.
        assert!(chosen_problem(&"é".repeat(19)).is_some());
    }

    #[test]
    fn writing_one_token_key_removes_the_other() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("broker.json");
        std::fs::write(&f, r#"{"version": 1, "allow_shells": true}"#).unwrap();
        write_stored(&f, Some(&Stored::Sha256(hash_hex("abc")))).unwrap();
        let phc = hash_argon2id("a token of twenty chars").unwrap();
        write_stored(&f, Some(&Stored::Argon2id(phc.clone()))).unwrap();
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&f).unwrap()).unwrap();
        assert_eq!(v["approval"]["token_argon2id"], phc.as_str());
        assert!(v["approval"].get("token_sha256").is_none());
        assert_eq!(v["allow_shells"], true);
        write_stored(&f, None).unwrap();
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&f).unwrap()).unwrap();
        assert_eq!(v["approval"], serde_json::json!({}));
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
