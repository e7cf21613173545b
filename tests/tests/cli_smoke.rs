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
