//! Escaping of text the requester controls (argv, cwd, reason, env values) before an approver
//! or an auditor sees it. Every display path escapes through here; it must never let a
//! control, ANSI or bidi character reach a terminal unescaped. Two rules: [`escape_text`] for
//! readable text, and [`escape_raw`] for raw log bytes shown exactly as stored.

use std::fmt::Write as _;

/// Characters that reorder text on screen (Unicode bidi controls), so an argv could read
/// differently from what runs (the "Trojan Source" class).
fn is_bidi_control(c: char) -> bool {
    matches!(
        c,
        '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
    )
}

/// Invisible characters that can hide or join text: zero-width spaces and joiners, BOM.
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{200B}'..='\u{200D}' | '\u{2060}' | '\u{FEFF}' | '\u{00AD}'
    )
}

fn needs_escape(c: char) -> bool {
    c.is_control() || is_bidi_control(c) || is_invisible(c) || c == '\u{2028}' || c == '\u{2029}'
}

/// Escapes one string for display: `\n`, `\t`, `\r`, `\\`, and `\u{XXXX}` for every other
/// control, bidi or invisible character (ESC, so ANSI sequences, included). Printable text,
/// including non-ASCII letters, is kept as is.
pub fn escape_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if needs_escape(c) => {
                let _ = write!(out, "\\u{{{:04x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// Escapes text that may not be UTF-8: invalid bytes become `\xNN`.
pub fn escape_bytes(b: &[u8]) -> String {
    let mut out = String::with_capacity(b.len());
    for chunk in b.utf8_chunks() {
        out.push_str(&escape_text(chunk.valid()));
        for byte in chunk.invalid() {
            let _ = write!(out, "\\x{byte:02x}");
        }
    }
    out
}

/// Escapes raw bytes byte for byte: printable ASCII is kept, every other byte (controls, DEL,
/// every byte of a non-ASCII character) becomes `\xNN`. For showing audit-log lines, whose
/// bytes are evidence, exactly as stored.
pub fn escape_raw(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len());
    for &c in b {
        if (0x20..0x7f).contains(&c) {
            s.push(c as char);
        } else {
            let _ = write!(s, "\\x{c:02x}");
        }
    }
    s
}

/// Prints an argv as a JSON array of escaped strings, so word boundaries are unambiguous:
/// `["rm", "-rf", "a b"]`.
pub fn argv_json(argv: &[String]) -> String {
    let mut out = String::from("[");
    for (i, a) in argv.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push('"');
        for c in a.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\t' => out.push_str("\\t"),
                '\r' => out.push_str("\\r"),
                c if needs_escape(c) => {
                    let _ = write!(out, "\\u{:04x}", c as u32);
                }
                c => out.push(c),
            }
        }
        out.push('"');
    }
    out.push(']');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    macro_rules! escapes {
        ($($name:ident: $input:expr => $want:expr;)*) => {$(
            #[test]
            fn $name() {
                assert_eq!(escape_text($input), $want);
            }
        )*};
    }

    escapes! {
        plain_text_is_kept: "apt-get install nginx" => "apt-get install nginx";
        non_ascii_letters_are_kept: "café ünïcode" => "café ünïcode";
        newline_is_escaped: "a\nb" => "a\\nb";
        ansi_escape_is_neutralised: "\u{1b}[31mred\u{1b}[0m" => "\\u{001b}[31mred\\u{001b}[0m";
        carriage_return_cannot_overwrite: "ok\rEVIL" => "ok\\rEVIL";
        bidi_override_is_escaped: "ls \u{202E}txt.exe" => "ls \\u{202e}txt.exe";
        bidi_isolate_is_escaped: "a\u{2066}b\u{2069}" => "a\\u{2066}b\\u{2069}";
        zero_width_space_is_escaped: "r\u{200B}m" => "r\\u{200b}m";
        del_is_escaped: "x\u{7f}" => "x\\u{007f}";
        backslash_is_doubled: "a\\nb" => "a\\\\nb";
        c1_control_is_escaped: "\u{9b}31m" => "\\u{009b}31m";
    }

    #[test]
    fn argv_json_keeps_word_boundaries() {
        let argv = vec!["rm".to_string(), "a b".to_string(), "\"q\"".to_string()];
        assert_eq!(argv_json(&argv), r#"["rm", "a b", "\"q\""]"#);
    }

    #[test]
    fn argv_json_escapes_spoofing_characters() {
        let argv = vec!["echo".to_string(), "\u{1b}]0;x\u{7}\u{202e}".to_string()];
        assert_eq!(argv_json(&argv), r#"["echo", "\u001b]0;x\u0007\u202e"]"#);
    }

    #[test]
    fn invalid_utf8_bytes_are_shown_as_hex() {
        assert_eq!(escape_bytes(b"a\xffb\n"), "a\\xffb\\n");
    }
}
