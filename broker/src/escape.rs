//! Escaping of text the requester controls (argv, cwd, reason, env names and values, session
//! ids, paths) before an approver or an auditor sees it. Every display path escapes through
//! here; it must never let a character that hides, reorders, overlays or blanks text reach a
//! terminal unescaped. Two rules: [`escape_text`] for readable text, and [`escape_raw`] for raw
//! log bytes shown exactly as stored.
//!
//! What is escaped, as `\u{…}` (lowercase hex, at least four digits):
//! - every character of general category Cc (control, ESC so ANSI included), Cf (format: bidi
//!   controls, zero-width characters, tags, soft hyphen, BOM, invisible operators), Co (private
//!   use), Cn (unassigned in the tables occ was built with, so a character Unicode assigns later
//!   is escaped until occ knows it), Zl, Zp, and Zs other than the ASCII space. Surrogates (Cs)
//!   cannot occur in a Rust string; in raw bytes they are invalid UTF-8 and shown as `\xNN`;
//! - characters that render blank without being spaces: the Hangul fillers (U+115F, U+1160,
//!   U+3164, U+FFA0), the braille blank U+2800, the Khmer inherent vowels U+17B4/U+17B5;
//! - combining marks (Mn, Me) that can hide or overlay text: the combining grapheme joiner
//!   U+034F, variation selectors (U+FE00–FE0F, U+E0100–E01EF), the overlay marks (U+0334–0338,
//!   U+20D2/20D3, U+20D8–20DA, U+20E5/20E6, U+20EA/20EB), every enclosing mark (Me), a mark
//!   that follows no letter (at the start, after a space, digit or symbol), and a third or
//!   later mark on one letter (stacked "Zalgo" marks that spill over other lines). A letter
//!   with one or two ordinary marks is kept, so decomposed accents (`e` + U+0301) and most
//!   scripts that write vowels as marks stay readable; NFC-precomposed letters are single code
//!   points and are never touched;
//! - U+26A0 (⚠) itself, so the `⚠mixed-script` marker below only ever comes from occ.
//!
//! A word (a run of letters, marks and digits) that mixes letters of two scripts, such as
//! `раsswd` with a Cyrillic `р` and `а`, is followed by [`MIXED_SCRIPT`]. Han, Hiragana,
//! Katakana, Bopomofo and Hangul count as one script (they are written together); letters of
//! the Common and Inherited scripts (digits, punctuation, marks) never make a word mixed.

use std::fmt::Write as _;

use unicode_general_category::{get_general_category, GeneralCategory as Gc};
use unicode_script::{Script, UnicodeScript as _};

/// The marker written after a word that mixes letters of two scripts.
pub const MIXED_SCRIPT: &str = "\u{26a0}mixed-script";

/// Characters that render as nothing or as blank space while being letters or symbols.
fn is_blank_looking(c: char) -> bool {
    matches!(
        c,
        '\u{115F}' | '\u{1160}' | '\u{3164}' | '\u{FFA0}' | '\u{2800}' | '\u{17B4}' | '\u{17B5}'
    )
}

/// Combining marks escaped wherever they stand: they join, select glyph variants or draw over
/// the character before them.
fn is_hiding_mark(c: char) -> bool {
    matches!(
        c,
        '\u{034F}'
            | '\u{0334}'..='\u{0338}'
            | '\u{20D2}'..='\u{20D3}'
            | '\u{20D8}'..='\u{20DA}'
            | '\u{20E5}'..='\u{20E6}'
            | '\u{20EA}'..='\u{20EB}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{E0100}'..='\u{E01EF}'
            | '\u{26A0}'
    )
}

/// Whether `c`, standing on its own, is escaped (marks are judged with their context in
/// [`Escaper`]).
fn always_escaped(c: char) -> bool {
    if c == ' ' {
        return false;
    }
    matches!(
        get_general_category(c),
        Gc::Control
            | Gc::Format
            | Gc::PrivateUse
            | Gc::Unassigned
            | Gc::Surrogate
            | Gc::LineSeparator
            | Gc::ParagraphSeparator
            | Gc::SpaceSeparator
            | Gc::EnclosingMark
    ) || is_blank_looking(c)
        || is_hiding_mark(c)
}

fn is_mark(c: char) -> bool {
    matches!(
        get_general_category(c),
        Gc::NonspacingMark | Gc::SpacingMark | Gc::EnclosingMark
    )
}

/// Most ordinary marks kept on one letter.
const MAX_MARKS_PER_LETTER: u8 = 2;

/// Which characters of a string are escaped: a small state machine over the marks.
#[derive(Default)]
struct Escaper {
    /// Ordinary marks kept on the current letter; `None` when no letter precedes.
    marks: Option<u8>,
}

impl Escaper {
    fn escapes(&mut self, c: char) -> bool {
        if always_escaped(c) {
            self.marks = None;
            return true;
        }
        if is_mark(c) {
            return match self.marks {
                Some(n) if n < MAX_MARKS_PER_LETTER => {
                    self.marks = Some(n + 1);
                    false
                }
                _ => true,
            };
        }
        self.marks = c.is_alphabetic().then_some(0);
        false
    }
}

/// The script a letter counts for when judging mixed words; `None` for characters that never
/// make a word mixed.
fn letter_script(c: char) -> Option<Script> {
    if !c.is_alphabetic() {
        return None;
    }
    match c.script() {
        Script::Common | Script::Inherited | Script::Unknown => None,
        Script::Hiragana | Script::Katakana | Script::Bopomofo | Script::Hangul => {
            Some(Script::Han)
        }
        s => Some(s),
    }
}

/// Escaped characters end a word: they are shown as escapes, not as letters.
fn in_word(c: char) -> bool {
    (c.is_alphanumeric() || is_mark(c)) && !always_escaped(c)
}

/// Whether one word mixes letters of two scripts.
fn is_mixed(word: &str) -> bool {
    let mut first = None;
    for s in word.chars().filter_map(letter_script) {
        match first {
            None => first = Some(s),
            Some(f) if f != s => return true,
            Some(_) => {}
        }
    }
    false
}

/// Byte ranges of the words of `s` that mix scripts.
fn mixed_word_ends(s: &str) -> Vec<usize> {
    let mut ends = Vec::new();
    let mut start = None;
    for (i, c) in s.char_indices().chain(std::iter::once((s.len(), ' '))) {
        match (start, in_word(c) && i < s.len()) {
            (None, true) => start = Some(i),
            (Some(b), false) => {
                if is_mixed(&s[b..i]) {
                    ends.push(i);
                }
                start = None;
            }
            _ => {}
        }
    }
    ends
}

/// Whether any word of `s` mixes letters of two scripts.
pub fn has_mixed_script(s: &str) -> bool {
    !mixed_word_ends(s).is_empty()
}

/// Escapes one string for display: `\n`, `\t`, `\r`, `\\`, and `\u{XXXX}` for every
/// character the module documentation lists; printable text, including non-ASCII letters, is
/// kept as is, and each mixed-script word is followed by [`MIXED_SCRIPT`].
pub fn escape_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let ends = mixed_word_ends(s);
    let mut next_end = ends.iter().peekable();
    let mut esc = Escaper::default();
    for (i, c) in s.char_indices() {
        if next_end.next_if(|e| **e == i).is_some() {
            out.push_str(MIXED_SCRIPT);
        }
        let escaped = esc.escapes(c);
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if escaped => {
                let _ = write!(out, "\\u{{{:04x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    if next_end.next().is_some() {
        out.push_str(MIXED_SCRIPT);
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

/// Prints an argv as a bracketed list of quoted strings, so word boundaries are unambiguous:
/// `["rm", "-rf", "a b"]`. Quotes and backslashes are backslashed; the characters
/// [`escape_text`] escapes are shown the same way, as `\u{…}` (one code point each, whatever
/// plane); a mixed-script word is followed by [`MIXED_SCRIPT`] inside its string.
pub fn argv_list(argv: &[String]) -> String {
    let mut out = String::from("[");
    for (i, a) in argv.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push('"');
        let ends = mixed_word_ends(a);
        let mut next_end = ends.iter().peekable();
        let mut esc = Escaper::default();
        for (i, c) in a.char_indices() {
            if next_end.next_if(|e| **e == i).is_some() {
                out.push_str(MIXED_SCRIPT);
            }
            let escaped = esc.escapes(c);
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\t' => out.push_str("\\t"),
                '\r' => out.push_str("\\r"),
                c if escaped => {
                    let _ = write!(out, "\\u{{{:04x}}}", c as u32);
                }
                c => out.push(c),
            }
        }
        if next_end.next().is_some() {
            out.push_str(MIXED_SCRIPT);
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
        no_break_space_is_escaped: "rm\u{a0}-rf" => "rm\\u{00a0}-rf";
        ideographic_space_is_escaped: "a\u{3000}b" => "a\\u{3000}b";
        private_use_is_escaped: "a\u{e000}b" => "a\\u{e000}b";
        unassigned_is_escaped: "a\u{378}b" => "a\\u{0378}b";
        tag_characters_are_escaped: "ok\u{e0041}\u{e007f}" => "ok\\u{e0041}\\u{e007f}";
        warning_sign_is_escaped_so_markers_are_occs: "a\u{26a0}mixed-script" => "a\\u{26a0}mixed-script";
        decomposed_accent_is_kept: "cafe\u{301}" => "cafe\u{301}";
        two_marks_on_a_letter_are_kept: "e\u{323}\u{302}" => "e\u{323}\u{302}";
        third_mark_on_a_letter_is_escaped: "a\u{301}\u{302}\u{303}" => "a\u{301}\u{302}\\u{0303}";
        mark_at_the_start_is_escaped: "\u{301}x" => "\\u{0301}x";
        mark_after_a_space_is_escaped: "a \u{301}" => "a \\u{0301}";
        mark_after_a_digit_is_escaped: "1\u{301}" => "1\\u{0301}";
        enclosing_mark_is_escaped: "e\u{20dd}" => "e\\u{20dd}";
        overlay_mark_on_a_letter_is_escaped: "rm -r\u{338}f" => "rm -r\\u{0338}f";
        variation_selector_supplement_is_escaped: "a\u{e0100}" => "a\\u{e0100}";
        mixed_latin_cyrillic_word_is_marked: "/etc/\u{440}\u{430}sswd" => "/etc/\u{440}\u{430}sswd\u{26a0}mixed-script";
        mixed_word_in_the_middle_is_marked: "cat p\u{430}sswd now" => "cat p\u{430}sswd\u{26a0}mixed-script now";
        mixed_latin_greek_word_is_marked: "\u{391}BC" => "\u{391}BC\u{26a0}mixed-script";
        each_mixed_word_is_marked: "\u{440}ass p\u{430}ss ok" => "\u{440}ass\u{26a0}mixed-script p\u{430}ss\u{26a0}mixed-script ok";
        all_cyrillic_word_is_not_marked: "\u{43f}\u{430}\u{440}\u{43e}\u{43b}\u{44c}" => "\u{43f}\u{430}\u{440}\u{43e}\u{43b}\u{44c}";
        latin_and_cyrillic_words_apart_are_not_marked: "passwd \u{43f}\u{430}\u{440}" => "passwd \u{43f}\u{430}\u{440}";
        japanese_scripts_together_are_not_marked: "\u{65e5}\u{672c}\u{30c6}\u{30ad}\u{3059}\u{3068}" => "\u{65e5}\u{672c}\u{30c6}\u{30ad}\u{3059}\u{3068}";
        digits_do_not_make_a_word_mixed: "abc123" => "abc123";
    }

    /// Every code point the approver's view must never show raw (issue 12): each is escaped
    /// between two letters, in text and in argv.
    #[test]
    fn every_listed_hiding_character_is_escaped() {
        let mut listed: Vec<u32> = Vec::new();
        listed.extend(0xE0000..=0xE007F);
        listed.extend([
            0x2062, 0x3164, 0x115F, 0x1160, 0x180E, 0x034F, 0x0336, 0x2800, 0xFFA0,
        ]);
        listed.extend(0xFE00..=0xFE0F);
        listed.extend(0x200B..=0x200F);
        listed.extend([
            0x2028, 0x2029, 0x00AD, 0xFEFF, 0x061C, 0x2060, 0x17B4, 0x17B5,
        ]);
        listed.extend(0x202A..=0x202E);
        listed.extend(0x2066..=0x2069);
        listed.extend(0x2000..=0x200A);
        listed.extend([0x00A0, 0x1680, 0x202F, 0x205F, 0x3000]);
        for cp in listed {
            let c = char::from_u32(cp).unwrap();
            let hex = format!("{cp:04x}");
            assert_eq!(
                escape_text(&format!("a{c}b")),
                format!("a\\u{{{hex}}}b"),
                "U+{cp:04X} in text"
            );
            assert_eq!(
                argv_list(&[format!("a{c}b")]),
                format!("[\"a\\u{{{hex}}}b\"]"),
                "U+{cp:04X} in argv"
            );
        }
    }

    #[test]
    fn every_format_control_private_and_separator_character_is_escaped() {
        // Walks the whole code space: what the module promises by category holds for all of it.
        for c in (0..=0x10FFFFu32).filter_map(char::from_u32) {
            let cat = get_general_category(c);
            let must = matches!(
                cat,
                Gc::Control
                    | Gc::Format
                    | Gc::PrivateUse
                    | Gc::Unassigned
                    | Gc::LineSeparator
                    | Gc::ParagraphSeparator
                    | Gc::EnclosingMark
            ) || (cat == Gc::SpaceSeparator && c != ' ');
            if must {
                let got = escape_text(&format!("a{c}"));
                assert!(
                    !got.contains(c) && got.starts_with("a\\"),
                    "U+{:04X} ({cat:?}) shown raw: {got:?}",
                    c as u32
                );
            }
        }
    }

    #[test]
    fn argv_list_marks_mixed_script_and_escapes_any_plane_as_one_code_point() {
        let argv = vec!["/usr/bin/cat".to_string(), "/etc/p\u{430}sswd".to_string()];
        assert_eq!(
            argv_list(&argv),
            "[\"/usr/bin/cat\", \"/etc/p\u{430}sswd\u{26a0}mixed-script\"]"
        );
        assert_eq!(argv_list(&["\u{e0041}".into()]), r#"["\u{e0041}"]"#);
        assert_eq!(
            argv_list(&["a\u{1b}[2J\u{202e}\"\\".into()]),
            r#"["a\u{001b}[2J\u{202e}\"\\"]"#
        );
        assert!(has_mixed_script("p\u{430}sswd"));
        assert!(!has_mixed_script("passwd"));
    }

    #[test]
    fn surrogates_in_raw_bytes_are_shown_as_hex() {
        // WTF-8 / CESU-8 encoded surrogate U+D800: invalid UTF-8, so never shown as a character.
        assert_eq!(escape_bytes(b"a\xed\xa0\x80b"), "a\\xed\\xa0\\x80b");
    }

    #[test]
    fn argv_list_keeps_word_boundaries() {
        let argv = vec!["rm".to_string(), "a b".to_string(), "\"q\"".to_string()];
        assert_eq!(argv_list(&argv), r#"["rm", "a b", "\"q\""]"#);
    }

    #[test]
    fn argv_list_escapes_spoofing_characters() {
        let argv = vec!["echo".to_string(), "\u{1b}]0;x\u{7}\u{202e}".to_string()];
        assert_eq!(
            argv_list(&argv),
            r#"["echo", "\u{001b}]0;x\u{0007}\u{202e}"]"#
        );
    }

    #[test]
    fn invalid_utf8_bytes_are_shown_as_hex() {
        assert_eq!(escape_bytes(b"a\xffb\n"), "a\\xffb\\n");
    }
}
