//! `prompt-policy.json`, `command-policy.json` (the rules, compiled; every bad rule reported)
//! and the code-runner catalogue, parsed strictly and read one file at a time.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use super::*;

/// `prompt-policy.json`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromptPolicy {
    /// Untrusted-source requests need `--confirm-untrusted` from the approver.
    #[serde(default = "yes")]
    pub require_confirmation_for_untrusted: bool,
    /// A run that started from a channel message (OpenClaw's `OPENCLAW_CHANNEL_CONTEXT`, or
    /// the channel occ's OpenClaw plugin names) counts as an untrusted source.
    #[serde(default = "yes")]
    pub channel_requests_untrusted: bool,
}

fn yes() -> bool {
    true
}

impl Default for PromptPolicy {
    fn default() -> Self {
        PromptPolicy {
            require_confirmation_for_untrusted: true,
            channel_requests_untrusted: true,
        }
    }
}

impl PromptPolicy {
    /// Parses `prompt-policy.json` text.
    pub fn parse(file: &Path, text: &str) -> Result<PromptPolicy, FileError> {
        parse_typed(file, text)
    }

    /// Parses `prompt-policy.json` text, reporting every bad key.
    pub fn parse_all(file: &Path, text: &str) -> Result<PromptPolicy, Vec<FileError>> {
        parse_typed_all(file, text)
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
                        "fix the rule; see docs/policy.md, the rule language",
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

/// The category generated from GTFOBins: programs that can run code through some option or
/// file they are given, not only shells and interpreters.
const GENERATED_CATEGORY: &str = "gtfobins";

/// The only version of `code-runners.json` occ reads.
const CODE_RUNNERS_VERSION: u32 = 2;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCodeRunners {
    version: u32,
    #[serde(default)]
    #[allow(dead_code)]
    description: String,
    source: CatalogueSource,
    #[allow(dead_code)]
    local_additions: String,
    runs_arbitrary_code: BTreeMap<String, Vec<String>>,
    writes_files: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    patterns: RawPatterns,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPatterns {
    #[serde(default)]
    runs_arbitrary_code: Vec<String>,
    #[serde(default)]
    writes_files: Vec<String>,
}

/// Where the catalogue's generated lists came from (`code-runners.json` `source`).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogueSource {
    /// The catalogue the names were taken from.
    pub catalogue: String,
    /// Its git commit (40 hex digits).
    pub commit: String,
    /// When it was read (`YYYY-MM-DD`).
    pub retrieved: String,
    /// Which of its functions were taken.
    pub functions: Vec<String>,
    /// How names and functions became flags.
    #[serde(default)]
    pub method: String,
}

/// What the catalogue says of one file name.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Listed {
    /// Listed under `runs_arbitrary_code` (by name, versioned name or pattern).
    pub runs_arbitrary_code: bool,
    /// Listed under `writes_files`.
    pub writes_files: bool,
}

impl Listed {
    /// Both flags of `self` or `other`.
    pub fn or(self, other: Listed) -> Listed {
        Listed {
            runs_arbitrary_code: self.runs_arbitrary_code || other.runs_arbitrary_code,
            writes_files: self.writes_files || other.writes_files,
        }
    }
}

/// The risk catalogue (`references/code-runners.json`): names that can run arbitrary code
/// (shells, interpreters, wrappers, tools with hooks, compilers) and names that write files.
#[derive(Clone, Debug)]
pub struct CodeRunners {
    // Shared by clones: the broker hands every request a copy of the catalogue.
    code: Arc<HashSet<String>>,
    /// The `runs_arbitrary_code` names of the hand-reviewed categories (every one but the
    /// generated `gtfobins`): programs that run what they are given as code.
    reviewed: Arc<HashSet<String>>,
    writes: Arc<HashSet<String>>,
    code_patterns: Patterns,
    writes_patterns: Patterns,
    source: Option<CatalogueSource>,
    /// Other names for the listed files, per secure_path (built by `flags` on first use and
    /// shared by clones, so one loaded policy builds it once).
    pub(crate) aliases: crate::flags::AliasCache,
}

/// Glob patterns on a file name, with their text for comparison and display.
#[derive(Clone, Debug)]
struct Patterns {
    text: Vec<String>,
    set: globset::GlobSet,
}

impl Patterns {
    fn empty() -> Patterns {
        Patterns {
            text: Vec::new(),
            set: globset::GlobSet::empty(),
        }
    }

    fn compile(file: &Path, key: &str, text: &[String]) -> Result<Patterns, FileError> {
        let mut b = globset::GlobSetBuilder::new();
        for (i, t) in text.iter().enumerate() {
            let at = format!("patterns.{key}[{i}]");
            if t.is_empty() || t.contains('/') {
                return Err(invalid(
                    file,
                    &at,
                    format!("pattern {t:?} must be a non-empty file-name glob without '/'"),
                    "write a glob on the file name, e.g. \"gcc-*\"",
                ));
            }
            let g = globset::GlobBuilder::new(t)
                .literal_separator(true)
                .build()
                .map_err(|e| {
                    invalid(
                        file,
                        &at,
                        format!("pattern {t:?}: {e}"),
                        "write a glob on the file name, e.g. \"gcc-*\"",
                    )
                })?;
            b.add(g);
        }
        let set = b.build().map_err(|e| {
            invalid(
                file,
                &format!("patterns.{key}"),
                e.to_string(),
                "write globs on the file name, e.g. \"gcc-*\"",
            )
        })?;
        Ok(Patterns {
            text: text.to_vec(),
            set,
        })
    }
}

impl PartialEq for CodeRunners {
    fn eq(&self, other: &Self) -> bool {
        self.code == other.code
            && self.writes == other.writes
            && self.code_patterns.text == other.code_patterns.text
            && self.writes_patterns.text == other.writes_patterns.text
            && self.source == other.source
    }
}

impl Eq for CodeRunners {}

/// Checks every name of one category: a file name, never a path or empty.
fn names_of(
    file: &Path,
    key: &str,
    cats: BTreeMap<String, Vec<String>>,
) -> Result<HashSet<String>, FileError> {
    let mut out = HashSet::new();
    for (cat, names) in cats {
        for (i, n) in names.into_iter().enumerate() {
            if n.is_empty() || n.contains('/') || n.chars().any(char::is_whitespace) {
                return Err(invalid(
                    file,
                    &format!("{key}.{cat}[{i}]"),
                    format!("{n:?} is not a file name"),
                    "write the command's file name, without a directory (\"python3\")",
                ));
            }
            out.insert(n);
        }
    }
    Ok(out)
}

impl CodeRunners {
    /// The catalogue shipped in `references/code-runners.json` (embedded at build time; a
    /// unit test proves it parses).
    /// Parsed once per process and shared: a user-mode broker loads its policy for every
    /// request, and the catalogue, its compiled patterns and its alias map need not be rebuilt
    /// each time (the alias map refreshes itself, see `flags::AliasCache`).
    pub fn builtin() -> CodeRunners {
        static BUILTIN: OnceLock<CodeRunners> = OnceLock::new();
        BUILTIN
            .get_or_init(|| {
                CodeRunners::parse(
                    Path::new("references/code-runners.json"),
                    templates::CODE_RUNNERS,
                )
                .unwrap_or_else(|_| CodeRunners::empty())
            })
            .clone()
    }

    fn empty() -> CodeRunners {
        CodeRunners {
            code: Arc::default(),
            reviewed: Arc::default(),
            writes: Arc::default(),
            code_patterns: Patterns::empty(),
            writes_patterns: Patterns::empty(),
            source: None,
            aliases: Default::default(),
        }
    }

    /// Parses a catalogue strictly: an unknown key, a name that is not a file name, a bad
    /// glob or another version is refused, naming the file and the key.
    pub fn parse(file: &Path, text: &str) -> Result<CodeRunners, FileError> {
        // The version first, so an old file is told what changed rather than which key
        // is unknown.
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(text) {
            if let Some(n) = v.get("version").and_then(|n| n.as_u64()) {
                if n != u64::from(CODE_RUNNERS_VERSION) {
                    return Err(invalid(
                        file,
                        "version",
                        format!("version {n} is not supported"),
                        "write \"version\": 2 with runs_arbitrary_code, writes_files, source and local_additions (see references/code-runners.json)",
                    ));
                }
            }
        }
        let raw: RawCodeRunners = parse_typed(file, text)?;
        if raw.version != CODE_RUNNERS_VERSION {
            return Err(invalid(
                file,
                "version",
                format!("version {} is not supported", raw.version),
                "write \"version\": 2",
            ));
        }
        let c = &raw.source.commit;
        if c.len() != 40 || !c.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(invalid(
                file,
                "source.commit",
                format!("{c:?} is not a git commit"),
                "write the catalogue's commit as 40 hex digits",
            ));
        }
        let reviewed: BTreeMap<String, Vec<String>> = raw
            .runs_arbitrary_code
            .iter()
            .filter(|(cat, _)| cat.as_str() != GENERATED_CATEGORY)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        Ok(CodeRunners {
            code: Arc::new(names_of(
                file,
                "runs_arbitrary_code",
                raw.runs_arbitrary_code,
            )?),
            reviewed: Arc::new(names_of(file, "runs_arbitrary_code", reviewed)?),
            writes: Arc::new(names_of(file, "writes_files", raw.writes_files)?),
            code_patterns: Patterns::compile(
                file,
                "runs_arbitrary_code",
                &raw.patterns.runs_arbitrary_code,
            )?,
            writes_patterns: Patterns::compile(file, "writes_files", &raw.patterns.writes_files)?,
            source: Some(raw.source),
            aliases: Default::default(),
        })
    }

    /// What the catalogue says of a file name: listed directly, as a versioned name
    /// (`python3.11` for `python3` or `python`, `perl5.36.0` for `perl`, `gcc-12` for `gcc`),
    /// or matching a pattern (`x86_64-linux-gnu-gcc-12`).
    pub fn classify(&self, file_name: &str) -> Listed {
        let mut out = self.classify_exact(file_name);
        let trimmed =
            file_name.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.' || c == '-');
        // Check every cut inside the trailing version: "python3.11" -> "python3", "python".
        let mut cut = file_name.len();
        while cut > trimmed.len() {
            cut -= 1;
            out = out.or(self.classify_exact(&file_name[..cut]));
        }
        out
    }

    fn classify_exact(&self, name: &str) -> Listed {
        if name.is_empty() {
            return Listed::default();
        }
        Listed {
            runs_arbitrary_code: self.code.contains(name) || self.code_patterns.set.is_match(name),
            writes_files: self.writes.contains(name) || self.writes_patterns.set.is_match(name),
        }
    }

    /// Whether a file name is listed as running arbitrary code (see [`CodeRunners::classify`]).
    pub fn lists(&self, file_name: &str) -> bool {
        self.classify(file_name).runs_arbitrary_code
    }

    /// Whether a file name is a shell, interpreter, wrapper, hook-running tool or compiler: a
    /// program that would run text it is handed as code. Judged on the hand-reviewed
    /// categories and the patterns (versioned names too, in any letter case), not on the
    /// generated GTFOBins list, whose entries (curl, mail) run code only through options a
    /// fixed argv does not give. The notifier rule ([`crate::notifier`]) uses it.
    pub fn is_shell_or_interpreter(&self, file_name: &str) -> bool {
        let lower = file_name.to_ascii_lowercase();
        let names = [file_name, lower.as_str()];
        let hit = names.into_iter().any(|name| {
            let trimmed =
                name.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.' || c == '-');
            let mut cut = name.len();
            loop {
                let n = &name[..cut];
                if !n.is_empty()
                    && (self.reviewed.contains(n) || self.code_patterns.set.is_match(n))
                {
                    return true;
                }
                if cut <= trimmed.len() {
                    return false;
                }
                cut -= 1;
            }
        });
        hit
    }

    /// Whether a file name is listed as writing files (see [`CodeRunners::classify`]).
    pub fn writes(&self, file_name: &str) -> bool {
        self.classify(file_name).writes_files
    }

    /// Where the generated lists came from; `None` only for the empty fallback.
    pub fn source(&self) -> Option<&CatalogueSource> {
        self.source.as_ref()
    }

    /// How many distinct names are listed (both lists, patterns not counted).
    pub fn len(&self) -> usize {
        self.code.union(&self.writes).count()
    }

    /// Whether no names are listed.
    pub fn is_empty(&self) -> bool {
        self.code.is_empty() && self.writes.is_empty()
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
