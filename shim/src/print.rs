//! Every line the shim prints, word for word as DESIGN.md's table says. Nothing else in the
//! shim formats user-facing text.

use std::io::Write;

/// `sudo: approval pending (occ #ID, expires TIME): an approver can run: occ approve ID`, with
/// ` --confirm-untrusted` when the request is untrusted: the exact command that will work.
pub fn pending_line(id: &str, expires_at: &str, untrusted: bool) -> String {
    let confirm = if untrusted {
        " --confirm-untrusted"
    } else {
        ""
    };
    format!(
        "sudo: approval pending (occ #{id}, expires {expires_at}): an approver can run: \
         occ approve {id}{confirm}"
    )
}

/// `sudo: waiting for approval (occ #ID): occ approve ID`
pub fn waiting_line(id: &str) -> String {
    format!("sudo: waiting for approval (occ #{id}): occ approve {id}")
}

/// `sudo: MESSAGE (occ: REASON_CODE)`
pub fn refuse_line(message: &str, reason_code: &str) -> String {
    format!("sudo: {message} (occ: {reason_code})")
}

/// `sudo: occ broker unavailable: DETAIL (occ: broker_unavailable)`
pub fn unavailable_line(detail: &str) -> String {
    format!("sudo: occ broker unavailable: {detail} (occ: broker_unavailable)")
}

/// occ's own help, printed only when the broker cannot be reached.
pub fn local_help(detail: &str) -> String {
    format!(
        "usage: sudo [options] command [args...]\n\
         \n\
         This sudo is occ's shim: every request goes to the occ broker, which checks policy,\n\
         asks a human approver and audits each step. The broker answers `sudo -h` with the\n\
         full option list; it is not reachable now ({detail}).\n\
         An approver lists pending requests with `occ approvals` and approves with\n\
         `occ approve ID`.\n"
    )
}

/// occ's own version text, printed only when the broker cannot be reached.
pub fn local_version(detail: &str) -> String {
    format!(
        "occ sudo shim version {}\nocc broker: not reachable ({detail})\n",
        env!("CARGO_PKG_VERSION")
    )
}

/// Writes one whole line to stderr (a single write, so lines from racing shims don't mix).
pub fn err(line: &str) {
    let mut s = String::with_capacity(line.len() + 1);
    s.push_str(line);
    s.push('\n');
    let _ = std::io::stderr().lock().write_all(s.as_bytes());
}

/// Writes text to stdout.
pub fn out(text: &str) {
    let mut o = std::io::stdout().lock();
    let _ = o.write_all(text.as_bytes());
    let _ = o.flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_match_the_design_table_word_for_word() {
        assert_eq!(
            pending_line("ab12cd34", "2025-01-31T12:30:00Z", false),
            "sudo: approval pending (occ #ab12cd34, expires 2025-01-31T12:30:00Z): an approver \
             can run: occ approve ab12cd34"
        );
        assert_eq!(
            pending_line("ab12cd34", "2025-01-31T12:30:00Z", true),
            "sudo: approval pending (occ #ab12cd34, expires 2025-01-31T12:30:00Z): an approver \
             can run: occ approve ab12cd34 --confirm-untrusted"
        );
        assert_eq!(
            waiting_line("ab12cd34"),
            "sudo: waiting for approval (occ #ab12cd34): occ approve ab12cd34"
        );
        assert_eq!(
            refuse_line("command blocked by rule rm", "policy_block"),
            "sudo: command blocked by rule rm (occ: policy_block)"
        );
        assert_eq!(
            unavailable_line("no socket"),
            "sudo: occ broker unavailable: no socket (occ: broker_unavailable)"
        );
    }
}
