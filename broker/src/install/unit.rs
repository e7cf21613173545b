//! systemd units: the `occ-broker.service` unit (user and system), and quoting for unit
//! files. Text is rendered here and written elsewhere, so golden tests can compare it byte
//! for byte. occ writes no drop-in for the gateway: OpenClaw puts the login shell's PATH
//! before the gateway's, so only `tools.exec.pathPrepend` holds (see `pathinj`).

use std::path::{Path, PathBuf};

/// The broker's unit name.
pub const BROKER_UNIT: &str = "occ-broker.service";
/// OpenClaw's gateway unit name.
pub const GATEWAY_UNIT: &str = "openclaw-gateway.service";

/// The unit template shipped in `install/`.
pub const BROKER_TEMPLATE: &str = include_str!("../../../install/occ-broker.service");
/// The system broker's unit template shipped in `install/`.
pub const SYSTEM_BROKER_TEMPLATE: &str = include_str!("../../../install/occ-broker-system.service");
/// Where the system broker's unit goes.
pub const SYSTEM_UNIT_DIR: &str = "/etc/systemd/system";

/// `$XDG_CONFIG_HOME/systemd/user`, else `$HOME/.config/systemd/user`.
pub fn user_unit_dir() -> PathBuf {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|d| !d.is_empty() && Path::new(d).is_absolute())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            std::env::var_os("HOME")
                .filter(|h| !h.is_empty())
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("/"))
                .join(".config")
        });
    base.join("systemd").join("user")
}

/// Quotes one value for a unit file: a double-quoted string in which `\` and `"` are escaped
/// and `%` is doubled (systemd expands `%` specifiers); with `exec`, `$` is doubled too
/// (ExecStart= expands `$VAR`). Control characters are refused: a unit line cannot hold them.
pub fn quote(value: &str, exec: bool) -> Result<String, String> {
    if value.chars().any(char::is_control) {
        return Err(format!(
            "{value:?} holds a control character, which a systemd unit file cannot hold; use \
             another OCC_HOME"
        ));
    }
    let mut out = String::from("\"");
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '%' => out.push_str("%%"),
            '$' if exec => out.push_str("$$"),
            c => out.push(c),
        }
    }
    out.push('"');
    Ok(out)
}

/// The broker's unit for `home`, running `occ` from `occ_bin`.
pub fn broker_unit(home: &Path, occ_bin: &Path) -> Result<String, String> {
    let env = quote(&format!("OCC_HOME={}", home.display()), false)?;
    let exe = quote(&occ_bin.display().to_string(), true)?;
    Ok(BROKER_TEMPLATE
        .replace("@OCC_HOME_ENV@", &env)
        .replace("@OCC_BIN@", &exe))
}

/// The system broker's unit, running `occ` from `occ_bin` as root.
pub fn system_broker_unit(occ_bin: &Path) -> Result<String, String> {
    let exe = quote(&occ_bin.display().to_string(), true)?;
    Ok(SYSTEM_BROKER_TEMPLATE.replace("@OCC_BIN@", &exe))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_escapes_what_systemd_expands() {
        let cases: &[(&str, bool, &str)] = &[
            ("/home/a/.openclaw", false, "\"/home/a/.openclaw\""),
            ("/a b/100%", false, "\"/a b/100%%\""),
            ("/x$y\"z\\", true, "\"/x$$y\\\"z\\\\\""),
            ("/x$y", false, "\"/x$y\""),
        ];
        for (v, exec, want) in cases {
            assert_eq!(quote(v, *exec).as_deref(), Ok(*want), "{v}");
        }
        assert!(quote("a\nb", false).is_err());
    }

    #[test]
    fn system_unit_runs_the_root_broker_and_sets_no_sandbox() {
        let text = system_broker_unit(Path::new("/usr/local/bin/occ")).unwrap();
        assert!(text.contains("\nExecStart=\"/usr/local/bin/occ\" broker --system --foreground\n"));
        for d in [
            "Type=simple",
            "Restart=on-failure",
            "ExecReload=/bin/kill -HUP $MAINPID",
        ] {
            assert!(text.contains(&format!("\n{d}\n")), "{d} missing");
        }
        // Directives that would narrow approved commands appear only in the comment block.
        for d in [
            "ProtectSystem=",
            "ProtectHome=",
            "NoNewPrivileges=",
            "PrivateTmp=",
            "CapabilityBoundingSet=",
            "SystemCallFilter=",
            "UMask=",
        ] {
            for line in text.lines().filter(|l| l.contains(d)) {
                assert!(line.starts_with('#'), "{d} is set: {line}");
            }
            assert!(text.contains(d), "{d} is not listed as left out");
        }
    }
}
