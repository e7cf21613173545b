//! systemd user units: the `occ-broker.service` unit, the gateway's PATH drop-in, quoting
//! for unit files, and reading a unit's effective `Environment=`. Text is rendered here and
//! written elsewhere, so golden tests can compare it byte for byte.

use std::path::{Path, PathBuf};

/// The broker's unit name.
pub const BROKER_UNIT: &str = "occ-broker.service";
/// OpenClaw's gateway unit name.
pub const GATEWAY_UNIT: &str = "openclaw-gateway.service";
/// The drop-in file name occ writes for the gateway.
pub const DROP_IN: &str = "occ.conf";

/// The unit template shipped in `install/`.
pub const BROKER_TEMPLATE: &str = include_str!("../../../install/occ-broker.service");
/// The system broker's unit template shipped in `install/`.
pub const SYSTEM_BROKER_TEMPLATE: &str = include_str!("../../../install/occ-broker-system.service");
/// Where the system broker's unit goes.
pub const SYSTEM_UNIT_DIR: &str = "/etc/systemd/system";
/// The drop-in template shipped in `install/`.
pub const DROP_IN_TEMPLATE: &str = include_str!("../../../install/openclaw-gateway-occ.conf");

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

/// The gateway drop-in that sets the full `path`.
pub fn drop_in(path: &str) -> Result<String, String> {
    let env = quote(&format!("PATH={path}"), false)?;
    Ok(DROP_IN_TEMPLATE.replace("@PATH_ENV@", &env))
}

/// Splits `systemctl show -p Environment` output (`Environment=A=1 B="x y"`) into
/// assignments, honouring double quotes and backslash escapes.
pub fn parse_environment(text: &str) -> Vec<String> {
    let body = text
        .lines()
        .find_map(|l| l.strip_prefix("Environment="))
        .unwrap_or("");
    split_words(body)
}

fn split_words(s: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (_, '\\') => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
                in_word = true;
            }
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    words
}

/// The `PATH=` value among assignments.
pub fn path_of(assignments: &[String]) -> Option<String> {
    assignments
        .iter()
        .rev()
        .find_map(|a| a.strip_prefix("PATH=").map(str::to_string))
}

/// `path` with every copy of `dir` removed and `dir` put first.
pub fn prepend(dir: &Path, path: &str) -> String {
    let d = dir.display().to_string();
    let rest: Vec<&str> = path
        .split(':')
        .filter(|p| !p.is_empty() && *p != d && Path::new(p) != dir)
        .collect();
    if rest.is_empty() {
        d
    } else {
        format!("{d}:{}", rest.join(":"))
    }
}

/// The value of `Environment="PATH=…"` in a drop-in occ wrote.
pub fn drop_in_path(text: &str) -> Option<String> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("Environment="))
        .flat_map(split_words)
        .collect::<Vec<_>>()
        .iter()
        .rev()
        .find_map(|a| a.strip_prefix("PATH=").map(str::to_string))
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
    fn environment_parsing_finds_path() {
        let env =
            parse_environment("Environment=HOME=/h \"NAME=a b\" PATH=/usr/local/bin:/usr/bin\n");
        assert_eq!(env, ["HOME=/h", "NAME=a b", "PATH=/usr/local/bin:/usr/bin"]);
        assert_eq!(path_of(&env).as_deref(), Some("/usr/local/bin:/usr/bin"));
        assert!(path_of(&parse_environment("Environment=\n")).is_none());
    }

    #[test]
    fn prepend_is_idempotent() {
        let d = Path::new("/h/.openclaw/bin");
        let once = prepend(d, "/usr/bin:/h/.openclaw/bin:/bin");
        assert_eq!(once, "/h/.openclaw/bin:/usr/bin:/bin");
        assert_eq!(prepend(d, &once), once);
        assert_eq!(prepend(d, ""), "/h/.openclaw/bin");
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

    #[test]
    fn drop_in_round_trips_its_path() {
        let text = drop_in("/h/.openclaw/bin:/usr/bin").unwrap();
        assert_eq!(
            drop_in_path(&text).as_deref(),
            Some("/h/.openclaw/bin:/usr/bin")
        );
    }
}
