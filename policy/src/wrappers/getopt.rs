//! A wrapper's own command line, read the way a `+`-mode getopt_long reads it: short options
//! (grouped, with attached or separate values), long options (with unique abbreviations and
//! `=value`), up to the first operand or `--`.

/// A wrapper's options, as its getopt string and long option table say.
pub(super) struct Spec {
    /// Short options taking a value (`n` of `-n 5`, `-n5`).
    pub(super) short_arg: &'static str,
    /// Short options taking an optional value, attached only (`prlimit -n1024`).
    pub(super) short_opt: &'static str,
    /// Short options without a value.
    pub(super) short_flag: &'static str,
    pub(super) long_arg: &'static [&'static str],
    pub(super) long_opt: &'static [&'static str],
    pub(super) long_flag: &'static [&'static str],
}

/// Options read: (`-x` or `--name`, value).
pub(super) type Opts = Vec<(String, Option<String>)>;

/// Reads options the way a `+`-mode getopt_long does: up to the first operand or `--`.
/// Returns the options and the index of the first operand. An option the wrapper does not have
/// is an error: the wrapper would refuse it, but occ does not guess.
pub(super) fn getopt(args: &[String], spec: &Spec) -> Result<(Opts, usize), String> {
    let mut opts = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        if a == "--" {
            return Ok((opts, i + 1));
        }
        if a == "-" || !a.starts_with('-') {
            break;
        }
        if let Some(long) = a.strip_prefix("--") {
            let (name, attached) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (long, None),
            };
            let full = long_name(name, spec).ok_or_else(|| format!("option --{name}"))?;
            let value = if spec.long_arg.contains(&full) {
                match attached {
                    Some(v) => Some(v),
                    None => {
                        i += 1;
                        Some(
                            args.get(i)
                                .cloned()
                                .ok_or_else(|| format!("--{full} without its value"))?,
                        )
                    }
                }
            } else if spec.long_opt.contains(&full) {
                attached
            } else if attached.is_some() {
                return Err(format!("--{full} takes no value"));
            } else {
                None
            };
            opts.push((format!("--{full}"), value));
            i += 1;
            continue;
        }
        let letters: Vec<char> = a.chars().skip(1).collect();
        let mut j = 0;
        while j < letters.len() {
            let c = letters[j];
            let rest: String = letters[j + 1..].iter().collect();
            if spec.short_arg.contains(c) {
                let value = if rest.is_empty() {
                    i += 1;
                    args.get(i)
                        .cloned()
                        .ok_or_else(|| format!("-{c} without its value"))?
                } else {
                    rest
                };
                opts.push((format!("-{c}"), Some(value)));
                break;
            } else if spec.short_opt.contains(c) {
                opts.push((format!("-{c}"), (!rest.is_empty()).then_some(rest)));
                break;
            } else if spec.short_flag.contains(c) {
                opts.push((format!("-{c}"), None));
                j += 1;
            } else {
                return Err(format!("option -{c}"));
            }
        }
        i += 1;
    }
    Ok((opts, i))
}

/// The full long option an abbreviation names, as getopt_long accepts: an exact name, or the
/// one name it is a prefix of.
fn long_name(given: &str, spec: &Spec) -> Option<&'static str> {
    let all = spec
        .long_arg
        .iter()
        .chain(spec.long_opt)
        .chain(spec.long_flag);
    if let Some(exact) = all.clone().find(|n| **n == given) {
        return Some(exact);
    }
    let mut prefixed = all.filter(|n| !given.is_empty() && n.starts_with(given));
    match (prefixed.next(), prefixed.next()) {
        (Some(one), None) => Some(one),
        _ => None,
    }
}

pub(super) fn has(opts: &Opts, names: &[&str]) -> bool {
    opts.iter().any(|(o, _)| names.contains(&o.as_str()))
}
