//! What `install` writes, rendered from the templates: the systemd units, the crontab line and
//! the launchd plist, each path quoted for its format.

use std::path::Path;

use super::*;

fn refuse_newlines(what: &str, s: &str) -> Result<(), ScanError> {
    if s.contains(['\n', '\r', '\0']) {
        return Err(ScanError::Schedule {
            message: format!("{what} contains a newline or NUL"),
            fix: "install occ-scan and OCC_HOME under plain paths".into(),
        });
    }
    Ok(())
}

/// Quotes one word for a systemd command line or Environment= value.
pub fn systemd_quote(s: &str) -> String {
    let mut o = String::from("\"");
    for c in s.chars() {
        match c {
            '\\' => o.push_str("\\\\"),
            '"' => o.push_str("\\\""),
            '%' => o.push_str("%%"),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

/// Quotes a word for an ExecStart line (`$` is also expanded there).
pub(super) fn exec_quote(s: &str) -> String {
    systemd_quote(s).replace('$', "$$")
}

/// Renders the service and timer units.
pub fn render_systemd(
    exe: &Path,
    home: &Path,
    every: Every,
) -> Result<(String, String), ScanError> {
    let exe_s = exe.to_string_lossy();
    let home_s = home.to_string_lossy();
    refuse_newlines("the occ-scan path", &exe_s)?;
    refuse_newlines("OCC_HOME", &home_s)?;
    let service = SERVICE_TEMPLATE
        .replace(
            "@ENVIRONMENT@",
            &systemd_quote(&format!("OCC_HOME={home_s}")),
        )
        .replace(
            "@EXEC_START@",
            &format!("{} cycle --quiet", exec_quote(&exe_s)),
        );
    let timer = TIMER_TEMPLATE
        .replace("@EVERY_TEXT@", &every.text())
        .replace("@ON_CALENDAR@", &every.on_calendar());
    Ok((service, timer))
}

/// Quotes a word for sh (inside a crontab line), then escapes cron's `%`.
pub fn cron_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''")).replace('%', "\\%")
}

/// The crontab line.
pub fn render_cron(exe: &Path, home: &Path, every: Every) -> Result<String, ScanError> {
    let exe_s = exe.to_string_lossy();
    let home_s = home.to_string_lossy();
    refuse_newlines("the occ-scan path", &exe_s)?;
    refuse_newlines("OCC_HOME", &home_s)?;
    Ok(format!(
        "{} OCC_HOME={} {} cycle --quiet {CRON_MARKER}",
        every.cron_fields(),
        cron_quote(&home_s),
        cron_quote(&exe_s)
    ))
}

/// Escapes text for XML.
pub fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

/// Renders the launchd plist.
pub fn render_plist(exe: &Path, home: &Path, every: Every) -> Result<String, ScanError> {
    let exe_s = exe.to_string_lossy();
    let home_s = home.to_string_lossy();
    refuse_newlines("the occ-scan path", &exe_s)?;
    refuse_newlines("OCC_HOME", &home_s)?;
    let logs = home.join("logs");
    Ok(PLIST_TEMPLATE
        .replace("@LABEL@", LABEL)
        .replace("@EXE@", &xml_escape(&exe_s))
        .replace("@OCC_HOME@", &xml_escape(&home_s))
        .replace("@SECONDS@", &every.seconds().to_string())
        .replace(
            "@LOG_OUT@",
            &xml_escape(&logs.join("occ-scan.out.log").to_string_lossy()),
        )
        .replace(
            "@LOG_ERR@",
            &xml_escape(&logs.join("occ-scan.err.log").to_string_lossy()),
        ))
}
