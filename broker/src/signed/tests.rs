//! SSHSIG verification against signatures made by the real `ssh-keygen -Y sign`.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::*;

/// A fresh Ed25519 key in `dir` named `name`; returns its public line.
fn keygen(dir: &Path, name: &str) -> (PathBuf, String) {
    let key = dir.join(name);
    let ok = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
        .arg(&key)
        .status()
        .expect("ssh-keygen (openssh-client) is needed for these tests")
        .success();
    assert!(ok);
    let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    (key, public.trim().to_string())
}

/// `ssh-keygen -Y sign -n NS` over `text`; returns the armored signature.
fn sign(dir: &Path, key: &Path, ns: &str, text: &str) -> String {
    let msg = dir.join("msg");
    std::fs::write(&msg, text).unwrap();
    let _ = std::fs::remove_file(dir.join("msg.sig"));
    let ok = Command::new("ssh-keygen")
        .args(["-q", "-Y", "sign", "-n", ns, "-f"])
        .arg(key)
        .arg(&msg)
        .status()
        .unwrap()
        .success();
    assert!(ok);
    std::fs::read_to_string(dir.join("msg.sig")).unwrap()
}

const NOW: u64 = 1_800_000_000;

#[test]
fn a_real_ssh_keygen_signature_verifies_and_every_change_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (alice, alice_pub) = keygen(dir.path(), "alice");
    let (mallory, mallory_pub) = keygen(dir.path(), "mallory");
    let signers = AllowedSigners::parse(&format!(
        "alice@example.com namespaces=\"occ-approval\" {alice_pub}\n\
         mallory namespaces=\"git\" {mallory_pub}\n"
    ))
    .unwrap();
    let text = "occ-approval-statement v1\nrequest: x\n";
    let sig = sign(dir.path(), &alice, NAMESPACE, text);

    let who = verify(&signers, text.as_bytes(), &sig, NOW).unwrap();
    assert_eq!(who.principal, "alice@example.com");
    assert_eq!(who.approver, "alice");
    assert!(who.fingerprint.starts_with("SHA256:"), "{who:?}");
    assert_eq!(fingerprint_of(&sig), Some(who.fingerprint.clone()));

    let edited = text.replace("x", "y");
    assert_eq!(
        verify(&signers, edited.as_bytes(), &sig, NOW),
        Err(SigError::BadSignature)
    );
    let git = sign(dir.path(), &alice, "git", text);
    assert_eq!(
        verify(&signers, text.as_bytes(), &git, NOW),
        Err(SigError::Namespace("git".into()))
    );
    let by_mallory = sign(dir.path(), &mallory, NAMESPACE, text);
    assert!(
        matches!(
            verify(&signers, text.as_bytes(), &by_mallory, NOW),
            Err(SigError::UnknownKey(_))
        ),
        "a key listed only for git signs no approvals"
    );
    assert!(matches!(
        verify(&signers, text.as_bytes(), "not a signature", NOW),
        Err(SigError::Malformed(_))
    ));
    let later = AllowedSigners::parse(&format!(
        "alice namespaces=\"occ-approval\",valid-after=\"20990101Z\" {alice_pub}\n"
    ))
    .unwrap();
    assert!(matches!(
        verify(&later, text.as_bytes(), &sig, NOW),
        Err(SigError::UnknownKey(_))
    ));
    let shared = AllowedSigners::parse(&format!(
        "alice namespaces=\"occ-approval\" {alice_pub}\nbob namespaces=\"occ-approval\" {alice_pub}\n"
    ))
    .unwrap();
    assert!(matches!(
        verify(&shared, text.as_bytes(), &sig, NOW),
        Err(SigError::Ambiguous(..))
    ));
}
