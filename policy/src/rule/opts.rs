//! The option form of a deny rule: `rm (-r|-R|--recursive) /*`. A word in parentheses is an
//! *option group*; a rule with at least one is read the way getopt reads a command line, so one
//! rule matches every spelling of the same flags:
//!
//! - `-r` in a group matches the short option anywhere among the request's options, alone
//!   (`-r -f`) or grouped (`-rf`, `-fr`, `-Rfv`);
//! - `--recursive` matches the long option, also abbreviated as getopt_long accepts
//!   (`--rec`) and with a value (`--recursive=x`);
//! - any other alternative (`(of=/dev/*)`) is a glob that matches some operand, anywhere;
//! - the words outside parentheses match operands in order, with any other operands and options
//!   around them (`rm -rf --no-preserve-root /tmp/a /` still has `/`);
//! - operands that are paths are also tried lexically normalised (`//`, `/.`, `/..` and a
//!   trailing `/` all mean `/`).
//!
//! A group matches when any of its alternatives does; every group must match. The form errs
//! towards matching more, which is why it is accepted in deny lists only.

use super::{ArgWord, RuleError};

/// One alternative inside `( | )`.
#[derive(Clone, Debug)]
enum Alt {
    /// `-x`.
    Short(char),
    /// `--name`.
    Long(String),
    /// A glob matched against any operand.
    Operand(ArgWord),
}

/// A compiled option-form argument matcher.
#[derive(Clone, Debug)]
pub(super) struct OptionForm {
    groups: Vec<Vec<Alt>>,
    /// Words outside groups: an ordered subsequence of the operands.
    operands: Vec<ArgWord>,
}

/// Whether a rule word is an option group.
pub(super) fn is_group(word: &str) -> bool {
    word.len() >= 2 && word.starts_with('(') && word.ends_with(')')
}

fn alt(text: &str) -> Result<Alt, RuleError> {
    let bad = |why: &str| RuleError::OptionGroup {
        word: text.to_string(),
        detail: why.to_string(),
    };
    if let Some(long) = text.strip_prefix("--") {
        if long.is_empty() || long.contains(['=', ' ']) {
            return Err(bad("a long option is written --name"));
        }
        return Ok(Alt::Long(long.to_string()));
    }
    if let Some(short) = text.strip_prefix('-') {
        let mut chars = short.chars();
        return match (chars.next(), chars.next()) {
            (Some(c), None) if c != '-' => Ok(Alt::Short(c)),
            _ => Err(bad(
                "a short option is one letter (-r); write grouped letters as separate \
                 groups: (-r) (-f)",
            )),
        };
    }
    if text.is_empty() {
        return Err(bad("an alternative is empty"));
    }
    Ok(Alt::Operand(ArgWord::new(text)?))
}

impl OptionForm {
    /// Compiles the words after the command. `**` is accepted and means nothing here: other
    /// arguments are always allowed.
    pub(super) fn compile(words: &[String]) -> Result<OptionForm, RuleError> {
        let mut form = OptionForm {
            groups: Vec::new(),
            operands: Vec::new(),
        };
        for w in words {
            if is_group(w) {
                let inner = &w[1..w.len() - 1];
                let alts = inner.split('|').map(alt).collect::<Result<Vec<_>, _>>()?;
                form.groups.push(alts);
            } else if w != "**" {
                form.operands.push(ArgWord::new(w)?);
            }
        }
        Ok(form)
    }

    pub(super) fn matches(&self, args: &[String]) -> bool {
        let line = CommandLine::read(args);
        self.groups
            .iter()
            .all(|alts| alts.iter().any(|a| line.has(a)))
            && line.has_in_order(&self.operands)
    }
}

/// A request's arguments as getopt would see them, without knowing the command's table.
struct CommandLine<'a> {
    shorts: Vec<char>,
    longs: Vec<&'a str>,
    operands: Vec<(&'a str, Option<String>)>,
}

impl<'a> CommandLine<'a> {
    fn read(args: &'a [String]) -> CommandLine<'a> {
        let mut line = CommandLine {
            shorts: Vec::new(),
            longs: Vec::new(),
            operands: Vec::new(),
        };
        let mut options_end = false;
        for a in args {
            if options_end || a == "-" || !a.starts_with('-') {
                line.operands.push((a.as_str(), normalized(a)));
            } else if a == "--" {
                options_end = true;
            } else if let Some(long) = a.strip_prefix("--") {
                line.longs.push(long.split('=').next().unwrap_or(long));
            } else {
                // `-rf`: every letter, as if each took no value. A short option with an
                // attached value (`-n5`) adds letters that are not there; for a deny rule
                // that errs towards refusing.
                line.shorts.extend(a.chars().skip(1));
            }
        }
        line
    }

    fn operand_matches(word: &ArgWord, (raw, norm): &(&str, Option<String>)) -> bool {
        word.matches(raw) || norm.as_deref().is_some_and(|n| word.matches(n))
    }

    fn has(&self, alt: &Alt) -> bool {
        match alt {
            Alt::Short(c) => self.shorts.contains(c),
            // getopt_long takes any unambiguous prefix; an ambiguous one fails in the command
            // itself, so taking every prefix only errs towards refusing.
            Alt::Long(name) => self
                .longs
                .iter()
                .any(|l| !l.is_empty() && name.starts_with(l)),
            Alt::Operand(w) => self.operands.iter().any(|o| Self::operand_matches(w, o)),
        }
    }

    fn has_in_order(&self, words: &[ArgWord]) -> bool {
        let mut ops = self.operands.iter();
        words
            .iter()
            .all(|w| ops.by_ref().any(|o| Self::operand_matches(w, o)))
    }
}

/// The lexical normal form of a path operand, or of the value in `key=/path`: repeated `/`,
/// `.` and `..` folded (`..` never climbs above `/`), no trailing `/`. `None` when it is not a
/// path or is already normal.
fn normalized(arg: &str) -> Option<String> {
    let (key, path) = match arg.find("=/") {
        Some(i) if !arg.starts_with('/') => (&arg[..=i], &arg[i + 1..]),
        _ => ("", arg),
    };
    if !path.starts_with('/') {
        return None;
    }
    let mut parts: Vec<&str> = Vec::new();
    for comp in path.split('/') {
        match comp {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    let norm = format!("{key}/{}", parts.join("/"));
    (norm != arg).then_some(norm)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(words: &[&str]) -> OptionForm {
        let words: Vec<String> = words.iter().map(|s| s.to_string()).collect();
        OptionForm::compile(&words).expect("compiles")
    }

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn one_rule_matches_every_spelling_of_rm_rf_root() {
        let rm = form(&["(-r|-R|--recursive)", "/*"]);
        for spelled in [
            "-rf /",
            "-r -f /",
            "-fr /",
            "-Rf /",
            "-R /",
            "--recursive --force /",
            "--recursive /",
            "--rec --force /",
            "-rf --no-preserve-root /",
            "--no-preserve-root -rf /",
            "-rf -- /",
            "-rf //",
            "-rf /.",
            "-rf /tmp/..",
            "-rvf /etc",
            "-rf /tmp/a /",
            "-r -f -v -- /home/",
        ] {
            assert!(rm.matches(&args(spelled)), "rm {spelled}");
        }
        for other in [
            "-f /",
            "-rf tmp",
            "-rf /etc/x",
            "/",
            "-- -r",
            "-f --force /",
        ] {
            assert!(!rm.matches(&args(other)), "rm {other}");
        }
    }

    #[test]
    fn operands_keep_their_order_and_groups_can_match_operands() {
        let chmod = form(&["(-R|--recursive)", "/"]);
        assert!(chmod.matches(&args("-R 777 /")));
        assert!(chmod.matches(&args("--recursive -v u+s /")));
        assert!(chmod.matches(&args("-Rv 777 //")));
        assert!(!chmod.matches(&args("-R 777 /srv")));
        let dd = form(&["(of=/dev/*)"]);
        assert!(dd.matches(&args("if=/dev/zero of=/dev/sda bs=1M")));
        assert!(dd.matches(&args("of=/dev//sda")));
        assert!(!dd.matches(&args("if=/dev/sda of=/tmp/img")));
        let ordered = form(&["(-x)", "a", "b"]);
        assert!(ordered.matches(&args("-x a z b")));
        assert!(!ordered.matches(&args("-x b a")));
    }

    #[test]
    fn bad_groups_are_refused_with_the_reason() {
        for bad in [&["(-rf)"][..], &["(--)"], &["(-r|)"], &["(--a=b)"]] {
            let words: Vec<String> = bad.iter().map(|s| s.to_string()).collect();
            assert!(
                matches!(
                    OptionForm::compile(&words),
                    Err(RuleError::OptionGroup { .. })
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn normal_forms() {
        for (raw, want) in [
            ("/", None),
            ("//", Some("/")),
            ("/./", Some("/")),
            ("/a/../..", Some("/")),
            ("/etc/", Some("/etc")),
            ("of=/dev//sda", Some("of=/dev/sda")),
            ("etc", None),
        ] {
            assert_eq!(normalized(raw).as_deref(), want, "{raw}");
        }
    }
}
