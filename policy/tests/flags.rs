//! The risk flags through the whole pipeline (`evaluate`) and `occ explain --json`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use occ_policy::{Caller, Context, PolicyConfig};

fn explain(words: &[&str], stdin_is_tty: bool) -> serde_json::Value {
    let ctx = Context::new(Caller::from_uid(0), PathBuf::from("/"), BTreeMap::new())
        .with_stdin_tty(stdin_is_tty);
    let ev = occ_policy::evaluate(words, &ctx, &Ok(PolicyConfig::default()));
    let j = occ_policy::explain::to_json(&ev);
    let req = ev.request.expect("resolved");
    assert_eq!(req.runs_arbitrary_code, req.flags.runs_arbitrary_code);
    assert_eq!(
        req.flags.requester_writable_input,
        !req.requester_writable.is_empty()
    );
    j
}

fn flags(j: &serde_json::Value) -> Vec<&str> {
    j["flags"]
        .as_array()
        .expect("flags is an array")
        .iter()
        .map(|v| v.as_str().expect("a name"))
        .collect()
}

#[test]
fn stdin_from_requester_needs_a_writer_and_a_stdin_that_is_no_terminal() {
    let piped = explain(&["tee", "/etc/occ-test-x"], false);
    assert_eq!(flags(&piped), ["writes_files", "stdin_from_requester"]);
    assert_eq!(piped["runs_arbitrary_code"], false);
    let tty = explain(&["tee", "/etc/occ-test-x"], true);
    assert_eq!(flags(&tty), ["writes_files"]);
    let reader = explain(&["cat", "/etc/hosts"], false);
    assert!(flags(&reader).is_empty(), "{reader}");
    assert_eq!(reader["requester_writable"], serde_json::json!([]));
}

#[test]
fn ex_is_flagged_like_vi_and_shells_by_sudo_s() {
    if occ_policy::resolve::resolve_command("ex", "/usr/bin:/bin", "/".as_ref()).is_ok() {
        let j = explain(&["ex", "/etc/hosts"], true);
        assert_eq!(j["runs_arbitrary_code"], true);
        assert!(flags(&j).contains(&"runs_arbitrary_code"), "{j}");
    } else {
        eprintln!("note: no ex on this host");
    }
    let j = explain(&["curl", "-o", "/etc/x", "https://example.org/"], true);
    assert!(flags(&j).contains(&"writes_files"), "{j}");
    let j = explain(&["curl", "https://example.org/"], true);
    assert!(!flags(&j).contains(&"writes_files"), "{j}");
}

#[test]
fn explain_text_warns_of_stdin_content() {
    let ctx = Context::new(Caller::from_uid(0), PathBuf::from("/"), BTreeMap::new());
    let ev = occ_policy::evaluate(&["dd", "of=/etc/x"], &ctx, &Ok(PolicyConfig::default()));
    let text = occ_policy::explain::to_text(&ev, &["dd".into(), "of=/etc/x".into()]);
    assert!(
        text.contains("the requester supplies the content on stdin"),
        "{text}"
    );
}
