//! Signed approvals end to end (issue 16), in user mode as the agent user: the approver signs
//! the broker's statement with an SSH key on "another machine" (a directory the agent cannot
//! read), the agent itself relays the signature, and the command runs. Every forgery is
//! refused and audited, and the audited approval re-verifies with stock `ssh-keygen -Y verify`.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

use crate::approval::{pending_id, ready, text, AgentHome};

/// The approver's machine: a root-only directory with keys and signed files.
pub(crate) struct Signer {
    dir: tempfile::TempDir,
}

impl Signer {
    pub(crate) fn new() -> Option<Signer> {
        if Command::new("ssh-keygen").arg("-?").output().is_err() {
            occ_tests::skip("needs ssh-keygen (Debian's openssh-client)");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        Some(Signer { dir })
    }

    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A new Ed25519 key; returns its public line.
    pub(crate) fn keygen(&self, name: &str) -> String {
        let ok = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
            .arg(self.path(name))
            .status()
            .unwrap()
            .success();
        assert!(ok);
        std::fs::read_to_string(self.path(&format!("{name}.pub")))
            .unwrap()
            .trim()
            .to_string()
    }

    /// `ssh-keygen -Y sign -n NS -f KEY` over `statement`; returns the armored signature.
    pub(crate) fn sign(&self, key: &str, ns: &str, statement: &str) -> String {
        let file = self.path("statement");
        std::fs::write(&file, statement).unwrap();
        let _ = std::fs::remove_file(self.path("statement.sig"));
        let out = Command::new("ssh-keygen")
            .args(["-Y", "sign", "-n", ns, "-f"])
            .arg(self.path(key))
            .arg(&file)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        std::fs::read_to_string(self.path("statement.sig")).unwrap()
    }
}

fn statement(h: &AgentHome, id: &str, scope: &str) -> String {
    let out = h.occ(&["approvals", "--statement", id, "--scope", scope]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout)
}

/// The agent relays `bundle` with `occ approve ID --signature -`.
fn submit(h: &AgentHome, verb: &str, id: &str, bundle: &str) -> Output {
    h.occ_with_stdin(&[verb, id, "--signature", "-"], bundle)
}

fn refused_with(h: &AgentHome, out: &Output, code: &str) {
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains(&format!("({code})")),
        "want {code}: {}",
        text(&out.stderr)
    );
    let last = h
        .events()
        .into_iter()
        .rev()
        .find(|e| e["event_type"] == "signed_approval_refused")
        .expect("refusal audited");
    assert_eq!(last["reason_code"], code, "{last}");
}

fn allowed_signers(h: &AgentHome, alice: &str, mallory: &str) {
    h.write_security(
        "allowed_signers",
        &format!(
            "alice@example.com namespaces=\"occ-approval\" {alice}\n\
             mallory@example.com namespaces=\"git\" {mallory}\n"
        ),
    );
}

#[test]
fn a_signed_statement_relayed_by_the_agent_approves_and_forgeries_are_refused() {
    let Some(ids) = ready() else { return };
    let Some(s) = Signer::new() else { return };
    let h = AgentHome::new(ids);
    let alice = s.keygen("alice");
    let mallory = s.keygen("mallory");
    allowed_signers(&h, &alice, &mallory);

    let id = pending_id(&h.sudo(&["-n", "/usr/bin/id", "-u"], &[]));
    let other = pending_id(&h.sudo(&["-n", "/usr/bin/true"], &[]));
    let stmt = statement(&h, &id, "once");
    assert!(stmt.starts_with("occ-approval-statement v1\n"), "{stmt}");
    assert!(stmt.contains(&format!("request: {id}\n")), "{stmt}");
    assert!(
        stmt.contains("command: [\"/usr/bin/id\", \"-u\"]\n"),
        "{stmt}"
    );
    assert!(stmt.contains("scope: once\n"), "{stmt}");

    // Another request's statement, signed by a good key, does not approve this one.
    let other_stmt = statement(&h, &other, "once");
    let other_sig = s.sign("alice", "occ-approval", &other_stmt);
    refused_with(
        &h,
        &submit(&h, "approve", &id, &format!("{other_stmt}{other_sig}")),
        "statement_mismatch",
    );
    // Its signature under this request's statement does not verify.
    refused_with(
        &h,
        &submit(&h, "approve", &id, &format!("{stmt}{other_sig}")),
        "signature_invalid",
    );
    // An edited statement: the command line changed after signing.
    let sig = s.sign("alice", "occ-approval", &stmt);
    let edited = stmt.replace("\"-u\"", "\"-g\"");
    refused_with(
        &h,
        &submit(&h, "approve", &id, &format!("{edited}{sig}")),
        "statement_mismatch",
    );
    // The same statement, signed for session: the signature is over "once".
    let session = statement(&h, &id, "session");
    refused_with(
        &h,
        &submit(&h, "approve", &id, &format!("{session}{sig}")),
        "signature_invalid",
    );
    // The wrong namespace.
    let git = s.sign("alice", "git", &stmt);
    refused_with(
        &h,
        &submit(&h, "approve", &id, &format!("{stmt}{git}")),
        "signature_namespace",
    );
    // A key not allowed to sign approvals (listed for git only).
    let by_mallory = s.sign("mallory", "occ-approval", &stmt);
    refused_with(
        &h,
        &submit(&h, "approve", &id, &format!("{stmt}{by_mallory}")),
        "signer_not_allowed",
    );
    assert_eq!(h.pending().len(), 2, "nothing was decided");
    assert_eq!(
        h.sudo(&["-n", "/usr/bin/id", "-u"], &[]).status.code(),
        Some(1)
    );

    // The real one, relayed by the agent itself: approved, and the command runs once.
    let ok = submit(&h, "approve", &id, &format!("{stmt}{sig}"));
    assert!(ok.status.success(), "{}", text(&ok.stderr));
    assert!(text(&ok.stdout).contains(&format!("signed: approved #{id} (once)")));
    let run = h.sudo(&["-n", "/usr/bin/id", "-u"], &[]);
    assert_eq!(run.status.code(), Some(0), "{}", text(&run.stderr));
    assert_eq!(text(&run.stdout).trim(), "0");

    // A replay, also after a restart, is refused.
    refused_with(
        &h,
        &submit(&h, "approve", &id, &format!("{stmt}{sig}")),
        "signature_replayed",
    );
    h.stop_broker();
    // A new broker (the shim starts one on demand) still knows the statement was used.
    pending_id(&h.sudo(&["-n", "/usr/bin/whoami"], &[]));
    refused_with(
        &h,
        &submit(&h, "approve", &id, &format!("{stmt}{sig}")),
        "signature_replayed",
    );

    // The audit record proves who approved; stock ssh-keygen re-verifies it.
    let granted = h
        .events()
        .into_iter()
        .find(|e| e["event_type"] == "approval_granted")
        .unwrap();
    assert_eq!(granted["request_id"], id.as_str());
    assert_eq!(granted["channel"], "signature");
    assert_eq!(granted["approver"], "alice");
    assert_eq!(granted["signer_principal"], "alice@example.com");
    assert!(granted["signer_fingerprint"]
        .as_str()
        .unwrap()
        .starts_with("SHA256:"));
    assert_eq!(granted["statement"], stmt.as_str());
    ssh_keygen_verifies(&s, &granted, &h.home.join("security/allowed_signers"));

    let out = h.occ(&["audit", "approvals", "--verify"]);
    assert!(
        out.status.success(),
        "{} {}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let line = text(&out.stdout);
    assert!(
        line.lines()
            .any(|l| l.contains(&format!("#{id}  once  alice  verified"))),
        "{line}"
    );
    // A log whose statement was rewritten no longer verifies.
    let log = h.home.join("security/privileged-audit.jsonl");
    // (The copy is the agent's: the auditor here is the broker's user.)
    let forged = h.home.join("forged.jsonl");
    std::fs::write(
        &forged,
        std::fs::read_to_string(&log)
            .unwrap()
            .replace("scope: once", "scope: session"),
    )
    .unwrap();
    std::os::unix::fs::chown(&forged, Some(h.uid), Some(h.gid)).unwrap();
    let out = h.occ(&[
        "audit",
        "approvals",
        "--verify",
        "--log",
        forged.to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{} {}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(
        text(&out.stdout).contains("FAILED"),
        "{}",
        text(&out.stdout)
    );

    // A signed denial ends the other request, and the agent is told.
    let deny = statement(&h, &other, "deny");
    let deny_sig = s.sign("alice", "occ-approval", &deny);
    let out = submit(&h, "deny", &other, &format!("{deny}{deny_sig}"));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let denied = h
        .events()
        .into_iter()
        .rev()
        .find(|e| e["event_type"] == "approval_denied")
        .unwrap();
    assert_eq!(denied["signer_principal"], "alice@example.com");
    assert_eq!(h.pending().len(), 1, "only the whoami request is left");
    h.verify_intact();
}

/// Cuts the statement and signature out of `event` and checks them with
/// `ssh-keygen -Y verify -f allowed_signers -I PRINCIPAL -n occ-approval -s SIG < STATEMENT`.
fn ssh_keygen_verifies(s: &Signer, event: &Value, signers: &Path) {
    let stmt = s.path("cut-statement");
    let sig = s.path("cut-statement.sig");
    std::fs::write(&stmt, event["statement"].as_str().unwrap()).unwrap();
    std::fs::write(&sig, event["signature"].as_str().unwrap()).unwrap();
    let out = Command::new("sh")
        .arg("-c")
        .arg("ssh-keygen -Y verify -f \"$1\" -I \"$2\" -n occ-approval -s \"$3\" < \"$4\"")
        .args(["sh"])
        .arg(signers)
        .arg(event["signer_principal"].as_str().unwrap())
        .arg(&sig)
        .arg(&stmt)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{} {}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(text(&out.stdout).contains("Good \"occ-approval\" signature for alice@example.com"));
}

#[test]
fn an_expired_statement_is_refused_and_require_signature_refuses_the_plain_approve() {
    let Some(ids) = ready() else { return };
    let Some(s) = Signer::new() else { return };
    let h = AgentHome::with_test_clock(ids);
    let alice = s.keygen("alice");
    let mallory = s.keygen("mallory");
    allowed_signers(&h, &alice, &mallory);
    h.write_security(
        "broker.json",
        "{\"version\": 1, \"approval\": {\"require_signature\": true}}\n",
    );

    // doctor: one key may sign; with none, nobody could approve.
    assert_eq!(doctor_signers(&h)["status"], "ok");
    h.write_security(
        "allowed_signers",
        &format!("mallory namespaces=\"git\" {mallory}\n"),
    );
    let check = doctor_signers(&h);
    assert_eq!(check["status"], "fail", "{check}");
    assert!(check["detail"]
        .as_str()
        .unwrap()
        .contains("nobody can approve"));
    allowed_signers(&h, &alice, &mallory);

    let id = pending_id(&h.sudo(&["-n", "/usr/bin/true"], &[]));
    let plain = h.occ(&["approve", &id, "--yes"]);
    refused_with(&h, &plain, "signature_required");
    assert_eq!(h.pending().len(), 1);

    let stmt = statement(&h, &id, "once");
    let sig = s.sign("alice", "occ-approval", &stmt);
    h.advance_minutes(31);
    refused_with(
        &h,
        &submit(&h, "approve", &id, &format!("{stmt}{sig}")),
        "statement_expired",
    );
    assert!(h.pending().is_empty(), "the request expired");
    h.verify_intact();
}

/// `occ doctor --json`'s allowed_signers check.
fn doctor_signers(h: &AgentHome) -> Value {
    let out = h.occ(&["doctor", "--json"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "allowed_signers")
        .cloned()
        .unwrap_or_else(|| panic!("no allowed_signers check: {v}"))
}

/// `occ sign STATEMENT -f KEY` makes the bundle `--signature -` takes; a bare signature file
/// `X.sig` passed as `--signature FILE` takes its statement from `X` beside it; a key that
/// `allowed_signers` does not list at all is refused like one listed for another namespace.
#[test]
fn occ_sign_bundles_a_sig_file_finds_its_statement_and_an_unlisted_key_is_refused() {
    let Some(ids) = ready() else { return };
    let Some(s) = Signer::new() else { return };
    let h = AgentHome::new(ids);
    let alice = s.keygen("alice");
    let mallory = s.keygen("mallory");
    let _carol = s.keygen("carol");
    allowed_signers(&h, &alice, &mallory);
    // `occ sign` on the approver's machine: root here, with the key in its own directory.
    let occ_sign = |stmt_file: &Path| {
        let out = Command::new(h.home.join("bin/occ"))
            .arg("sign")
            .arg(stmt_file)
            .arg("-f")
            .arg(s.path("alice"))
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stdout)
    };

    // The bundle on stdout, relayed as `--signature -`.
    let id = pending_id(&h.sudo(&["-n", "/usr/bin/id", "-u"], &[]));
    let file = s.path("first");
    std::fs::write(&file, statement(&h, &id, "once")).unwrap();
    let bundle = occ_sign(&file);
    assert!(
        bundle.starts_with("occ-approval-statement v1\n")
            && bundle.contains("-----BEGIN SSH SIGNATURE-----"),
        "{bundle}"
    );
    let ok = submit(&h, "approve", &id, &bundle);
    assert!(ok.status.success(), "{}", text(&ok.stderr));
    let run = h.sudo(&["-n", "/usr/bin/id", "-u"], &[]);
    assert_eq!(text(&run.stdout), "0\n", "{}", text(&run.stderr));

    // `--signature X.sig`: the statement is read from X (both handed to the agent's side).
    let id = pending_id(&h.sudo(&["-n", "/usr/bin/id", "-g"], &[]));
    let file = s.path("second");
    std::fs::write(&file, statement(&h, &id, "once")).unwrap();
    occ_sign(&file);
    let shared = tempfile::tempdir().unwrap();
    std::fs::set_permissions(shared.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    for name in ["second", "second.sig"] {
        let to = shared.path().join(name);
        std::fs::copy(s.path(name), &to).unwrap();
        std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let sig = shared.path().join("second.sig");
    let ok = h.occ(&["approve", &id, "--signature", &sig.display().to_string()]);
    assert!(ok.status.success(), "{}", text(&ok.stderr));
    assert!(
        text(&ok.stdout).contains(&format!("signed: approved #{id} (once)")),
        "{}",
        text(&ok.stdout)
    );
    let run = h.sudo(&["-n", "/usr/bin/id", "-g"], &[]);
    assert_eq!(text(&run.stdout), "0\n", "{}", text(&run.stderr));

    // Carol's key is in no line of allowed_signers.
    let id = pending_id(&h.sudo(&["-n", "/usr/bin/true"], &[]));
    let stmt = statement(&h, &id, "once");
    let by_carol = s.sign("carol", "occ-approval", &stmt);
    refused_with(
        &h,
        &submit(&h, "approve", &id, &format!("{stmt}{by_carol}")),
        "signer_not_allowed",
    );
    assert_eq!(h.pending().len(), 1, "nothing was decided");
}
