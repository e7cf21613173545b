//! Signed approvals: an approver signs the broker's approval statement for a pending request
//! with an SSH key (`ssh-keygen -Y sign -n occ-approval`), anyone who can reach the admin socket
//! submits it, and the broker accepts it only when the SSHSIG verifies (RustCrypto's `ssh-key`,
//! no hand-rolled crypto), the namespace is `occ-approval`, the key is in `allowed_signers`, the
//! statement is byte for byte the one the broker builds for that request, it has not expired and
//! it was never used before (the used set survives restarts). Because the signature is a
//! standard SSHSIG, an auditor re-checks it years later with stock `ssh-keygen -Y verify`.

pub mod replay;
pub mod signers;
pub mod statement;

use ssh_key::{HashAlg, PublicKey, SshSig};

pub use signers::{approver_of, AllowedSigners};
pub use statement::{Asked, Named};

/// The SSHSIG namespace of approval signatures.
pub const NAMESPACE: &str = "occ-approval";

/// The file name of the signers list in the config directory (`/etc/occ`, `security/`).
pub const ALLOWED_SIGNERS: &str = "allowed_signers";

/// Who signed, once the signature checked out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signer {
    /// The principal of the allowed_signers line.
    pub principal: String,
    /// The approver it names ([`approver_of`]).
    pub approver: String,
    /// `SHA256:…` of the key, as `ssh-keygen -l` prints it.
    pub fingerprint: String,
}

/// Why a signature was refused; each names the fix.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SigError {
    #[error("not an SSH signature ({0}); paste the whole -----BEGIN SSH SIGNATURE----- block")]
    Malformed(String),
    #[error(
        "the signature is for namespace {0:?}, not \"occ-approval\"; sign with \
         `ssh-keygen -Y sign -n occ-approval`"
    )]
    Namespace(String),
    #[error(
        "key {0} may not sign approvals: it is not in allowed_signers with \
         namespaces=\"occ-approval\" (or its valid-after/valid-before excludes now)"
    )]
    UnknownKey(String),
    #[error("key {0} is listed for several approvers ({1}); give each approver their own key")]
    Ambiguous(String, String),
    #[error("the signature does not verify over this statement (signed another text?)")]
    BadSignature,
}

impl SigError {
    /// The `reason_code` audited with the refusal.
    pub fn code(&self) -> &'static str {
        match self {
            SigError::Malformed(_) => "signature_malformed",
            SigError::Namespace(_) => "signature_namespace",
            SigError::UnknownKey(_) | SigError::Ambiguous(..) => "signer_not_allowed",
            SigError::BadSignature => "signature_invalid",
        }
    }
}

/// The fingerprint of the key inside an armored signature, if it parses (for audit records of
/// refusals).
pub fn fingerprint_of(armored: &str) -> Option<String> {
    let sig = SshSig::from_pem(armored.trim()).ok()?;
    Some(sig.public_key().fingerprint(HashAlg::Sha256).to_string())
}

/// Verifies `armored` over `statement` against `signers` at `now_secs`.
pub fn verify(
    signers: &AllowedSigners,
    statement: &[u8],
    armored: &str,
    now_secs: u64,
) -> Result<Signer, SigError> {
    let sig = SshSig::from_pem(armored.trim()).map_err(|e| SigError::Malformed(e.to_string()))?;
    if sig.namespace() != NAMESPACE {
        return Err(SigError::Namespace(sig.namespace().to_string()));
    }
    let fingerprint = sig.public_key().fingerprint(HashAlg::Sha256).to_string();
    let lines = signers.signers_of(sig.public_key(), now_secs);
    let mut principals: Vec<&String> = lines.iter().flat_map(|e| &e.principals).collect();
    principals.sort();
    principals.dedup();
    let mut approvers: Vec<&str> = principals.iter().map(|p| approver_of(p)).collect();
    approvers.dedup();
    match approvers.len() {
        0 => return Err(SigError::UnknownKey(fingerprint)),
        1 => {}
        _ => return Err(SigError::Ambiguous(fingerprint, approvers.join(", "))),
    }
    PublicKey::from(sig.public_key().clone())
        .verify(NAMESPACE, statement, &sig)
        .map_err(|_| SigError::BadSignature)?;
    Ok(Signer {
        principal: principals[0].clone(),
        approver: approvers[0].to_string(),
        fingerprint,
    })
}

#[cfg(test)]
mod tests;
