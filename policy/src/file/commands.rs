//! `prompt-policy.json`, `command-policy.json` (the rules, compiled; every bad rule reported)
//! and the code-runner catalogue, parsed strictly and read one file at a time.

use super::*;

/// `prompt-policy.json`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromptPolicy {
    /// Untrusted-source requests need `--confirm-untrusted` from the approver.
    #[serde(default = "yes")]
    pub require_confirmation_for_untrusted: bool,
}

fn yes() -> bool {
    true
}

impl Default for PromptPolicy {
    fn default() -> Self {
        PromptPolicy {
            require_confirmation_for_untrusted: true,
        }
    }
}

impl PromptPolicy {
    /// Parses `prompt-policy.json` text.
    pub fn parse(file: &Path, text: &str) -> Result<PromptPolicy, FileError> {
        parse_typed(file, text)
    }
}

// ---------------------------------------------------------------------------------------------
// command-policy.json

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCommandPolicy {
    version: u32,
    #[serde(default)]
    allow: Vec<String>,
    #[serde(default)]
    deny: Vec<String>,
    #[serde(default)]
    allow_exact: Vec<Vec<String>>,
    #[serde(default)]
    deny_exact: Vec<Vec<String>>,
}

/// A compiled `command-policy.json`: allow-side and deny-side rules, each indexed by command.
#[derive(Clone, Debug, Default)]
pub struct CommandPolicy {
    /// `allow` and `allow_exact`.
    pub allow: RuleIndex,
    /// `deny` and `deny_exact`.
    pub deny: RuleIndex,
}

/// Whether a rule string looks like one of the original tool's regexes.
fn regex_looking(rule: &str) -> bool {
    rule.starts_with('^') || rule.contains("\\b") || rule.contains("\\s") || rule.ends_with('$')
}

/// The glob form of one of the original tool's regex rules, as well as it can be said.
pub fn glob_form_of_regex(rule: &str) -> String {
    let mut s = rule
        .trim_start_matches('^')
        .trim_end_matches('$')
        .to_string();
    for (from, to) in [
        ("\\s+", " "),
        ("\\s*", " "),
        ("\\s", " "),
        ("\\b", ""),
        (".*", " ** "),
        ("\\.", "."),
    ] {
        s = s.replace(from, to);
    }
    let words: Vec<&str> = s.split_whitespace().collect();
    let mut out = words.join(" ");
    // The regex matched a prefix of the command line: keep "any further arguments".
    if words.len() > 1 && words.last() != Some(&"**") {
        out.push_str(" **");
    }
    out
}

impl CommandPolicy {
    /// Parses and compiles `command-policy.json` text, reporting every bad rule.
    pub fn parse(file: &Path, text: &str) -> Result<CommandPolicy, Vec<FileError>> {
        let value: serde_json::Value = serde_json::from_str(text).map_err(|e| {
            vec![invalid(
                file,
                ".",
                format!(
                    "{} (line {}, column {})",
                    strip_position(&e.to_string()),
                    e.line(),
                    e.column()
                ),
                "make the file valid JSON",
            )]
        })?;
        if let Some(obj) = value.as_object() {
            let strings = |k: &str| -> Vec<String> {
                obj.get(k)
                    .and_then(|v| v.as_array())
                    .map(|a| {
                        a.iter()
                            .filter_map(|x| x.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default()
            };
            let (allow, deny) = (strings("allow"), strings("deny"));
            let regexy = allow.iter().chain(&deny).any(|r| regex_looking(r));
            if !obj.contains_key("version") || regexy {
                let why = if !obj.contains_key("version") {
                    "no \"version\": 2".to_string()
                } else {
                    "regex rules (^, \\b, \\s, $)".to_string()
                };
                let conv = |l: &[String]| -> Vec<String> {
                    l.iter().map(|r| glob_form_of_regex(r)).collect()
                };
                let suggestion =
                    serde_json::json!({"version": 2, "allow": conv(&allow), "deny": conv(&deny)});
                return Err(vec![FileError::Legacy {
                    file: file.into(),
                    why,
                    suggestion: suggestion.to_string(),
                }]);
            }
        }
        let raw: RawCommandPolicy = parse_typed(file, text).map_err(|e| vec![e])?;
        if raw.version != 2 {
            return Err(vec![invalid(
                file,
                "version",
                format!("version {} is not supported", raw.version),
                "write \"version\": 2 with glob rules",
            )]);
        }
        let mut errs = Vec::new();
        let mut pol = CommandPolicy::default();
        for (list, rules) in [(ListKind::Allow, &raw.allow), (ListKind::Deny, &raw.deny)] {
            for (index, text) in rules.iter().enumerate() {
                let id = RuleId { list, index };
                match Rule::parse(id, text) {
                    Ok(r) if list.denies() => pol.deny.push(r),
                    Ok(r) => pol.allow.push(r),
                    Err(e) => errs.push(invalid(
                        file,
                        &id.to_string(),
                        format!("rule {text:?}: {e}"),
                        "fix the rule; see the README's rule language",
                    )),
                }
            }
        }
        for (list, rules) in [
            (ListKind::AllowExact, &raw.allow_exact),
            (ListKind::DenyExact, &raw.deny_exact),
        ] {
            for (index, argv) in rules.iter().enumerate() {
                let id = RuleId { list, index };
                match Rule::exact(id, argv) {
                    Ok(r) if list.denies() => pol.deny.push(r),
                    Ok(r) => pol.allow.push(r),
                    Err(e) => errs.push(invalid(file, &id.to_string(), format!("{e}"), "write the argv with an absolute path or bare name first, e.g. [\"/usr/bin/systemctl\", \"restart\", \"nginx\"]")),
                }
            }
        }
        if errs.is_empty() {
            Ok(pol)
        } else {
            Err(errs)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// code-runners.json

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCodeRunners {
    version: u32,
    #[serde(default)]
    #[allow(dead_code)]
    description: String,
    categories: std::collections::BTreeMap<String, Vec<String>>,
}

/// Commands that can run arbitrary code (shells, interpreters, wrappers, tools with hooks).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CodeRunners {
    names: HashSet<String>,
}

impl CodeRunners {
    /// The list shipped in `references/code-runners.json`.
    pub fn builtin() -> CodeRunners {
        CodeRunners::parse(
            Path::new("references/code-runners.json"),
            templates::CODE_RUNNERS,
        )
        .unwrap_or_else(|_| CodeRunners {
            names: HashSet::new(),
        })
    }

    /// Parses a code-runners file.
    pub fn parse(file: &Path, text: &str) -> Result<CodeRunners, FileError> {
        let raw: RawCodeRunners = parse_typed(file, text)?;
        if raw.version != 1 {
            return Err(invalid(
                file,
                "version",
                "unsupported version",
                "write \"version\": 1",
            ));
        }
        Ok(CodeRunners {
            names: raw.categories.into_values().flatten().collect(),
        })
    }

    /// Whether a file name is listed, directly or as a versioned name (`python3.11` for
    /// `python3` or `python`, `perl5.36.0` for `perl`).
    pub fn lists(&self, file_name: &str) -> bool {
        if self.names.contains(file_name) {
            return true;
        }
        let trimmed =
            file_name.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.' || c == '-');
        // Check every cut inside the trailing version: "python3.11" -> "python3", "python".
        let mut cut = file_name.len();
        while cut > trimmed.len() {
            cut -= 1;
            let head = &file_name[..cut];
            if self.names.contains(head) {
                return true;
            }
        }
        false
    }

    /// How many names are listed.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether no names are listed.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

impl CommandPolicy {
    /// Reads `command-policy.json` at `file` as `reader_uid` would ([`read_checked`]) and
    /// compiles it, reporting every bad rule: `Ok(None)` when it does not exist.
    pub fn load(file: &Path, reader_uid: u32) -> Result<Option<CommandPolicy>, Vec<FileError>> {
        read_checked(file, reader_uid)
            .map_err(|e| vec![e])?
            .map(|text| CommandPolicy::parse(file, &text))
            .transpose()
    }
}

impl PromptPolicy {
    /// Reads `prompt-policy.json` at `file` as `reader_uid` would ([`read_checked`]) and
    /// parses it: `Ok(None)` when it does not exist.
    pub fn load(file: &Path, reader_uid: u32) -> Result<Option<PromptPolicy>, FileError> {
        read_checked(file, reader_uid)?
            .map(|text| PromptPolicy::parse(file, &text))
            .transpose()
    }
}
