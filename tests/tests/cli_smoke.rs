use std::process::Command;

#[test]
fn occ_help_and_version_work() {
    let out = Command::new(occ_tests::bin("occ"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("audit"), "{text}");
    let out = Command::new(occ_tests::bin("occ"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("occ "));
}

#[test]
fn occ_unknown_subcommand_is_usage_error() {
    let out = Command::new(occ_tests::bin("occ"))
        .arg("frobnicate")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// The workspace root: two levels above this crate's manifest.
fn workspace_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ lives in the workspace")
        .to_path_buf()
}

/// Builds `occ` as a packager does (`cargo build --release --workspace`: features unified over
/// every workspace member, this tests crate included) and checks it carries no clock control:
/// `advance-clock` is an unknown subcommand and the admin op's name is nowhere in the binary.
#[test]
fn packaged_occ_has_no_clock_control() {
    let root = workspace_root();
    let target = root.join("target/packager");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(&cargo)
        .args([
            "build",
            "--release",
            "--workspace",
            "--bin",
            "occ",
            "--target-dir",
        ])
        .arg(&target)
        .current_dir(&root)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cargo build --release --workspace failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let occ = target.join("release/occ");
    let run = Command::new(&occ)
        .args(["advance-clock", "1"])
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(2), "advance-clock must be unknown");
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(err.contains("unrecognized subcommand"), "{err}");
    let bytes = std::fs::read(&occ).unwrap();
    for needle in [
        &b"advance_clock"[..],
        b"advance-clock",
        b"test-clock-offset",
    ] {
        assert!(
            !bytes.windows(needle.len()).any(|w| w == needle),
            "{} contains {:?}",
            occ.display(),
            String::from_utf8_lossy(needle)
        );
    }
}

/// The test clock lives only in `occ-test-clock`, a binary of the tests crate: `occ` built
/// in this same workspace build does not know the subcommand either.
#[test]
fn workspace_occ_rejects_advance_clock() {
    let out = Command::new(occ_tests::bin("occ"))
        .args(["advance-clock", "1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unrecognized subcommand"));
}
