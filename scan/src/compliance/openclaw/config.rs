//! occ-scan's own reading of `openclaw.json`, for when the `openclaw` CLI cannot answer: JSON5,
//! with `$include` resolved as OpenClaw resolves it (relative to the including file, confined to
//! the config's directory and `OPENCLAW_INCLUDE_ROOTS`, symlinks re-checked, arrays deep-merged
//! in order, sibling keys over the included object, at most 10 levels, no cycles, 2 MB a file).
//! What OpenClaw would refuse is refused here too, naming the file; nothing is ever guessed.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::instance::normalize;
use crate::compliance::files::read_optional;
use crate::error::ScanError;

/// The directive's key.
pub const INCLUDE_KEY: &str = "$include";
/// How deep includes may nest (OpenClaw's limit).
pub const MAX_DEPTH: usize = 10;
/// The largest include file OpenClaw reads.
pub const MAX_FILE_BYTES: u64 = 2 * 1024 * 1024;
/// Include paths must be shorter than this, before and after resolution.
const MAX_PATH_LEN: usize = 4096;

/// The config with every `$include` resolved, and the files it was read from.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigFile {
    /// The resolved config.
    pub value: Value,
    /// The config file, then each included file in the order read.
    pub files: Vec<PathBuf>,
}

/// Reads `path` (JSON5) and resolves its includes. `Ok(None)` when it does not exist; an
/// include that is missing, unreadable, outside the allowed directories, cyclic, too deep or
/// not JSON5 is an error naming the file and the fix.
pub fn read(path: &Path, include_roots: &[PathBuf]) -> Result<Option<ConfigFile>, ScanError> {
    let Some(text) = read_optional(path)? else {
        return Ok(None);
    };
    let value = parse(path, &text)?;
    let dir = path.parent().map(normalize).unwrap_or_default();
    let mut roots = vec![Root::new(dir)];
    roots.extend(include_roots.iter().map(|r| Root::new(normalize(r))));
    let mut reader = Reader {
        roots,
        files: vec![path.to_path_buf()],
    };
    let value = reader.process(value, &[normalize(path)])?;
    Ok(Some(ConfigFile {
        value,
        files: reader.files,
    }))
}

fn parse(path: &Path, text: &str) -> Result<Value, ScanError> {
    json5::from_str::<Value>(text).map_err(|e| {
        ScanError::invalid(
            path,
            "(JSON5)",
            e.to_string(),
            "fix the syntax; `openclaw config validate` shows where",
        )
    })
}

/// OpenClaw's merge of included content: objects key by key, arrays concatenated, anything
/// else replaced by `source`.
pub fn deep_merge(target: Value, source: Value) -> Value {
    match (target, source) {
        (Value::Object(mut t), Value::Object(s)) => {
            for (k, v) in s {
                let merged = match t.remove(&k) {
                    Some(old) => deep_merge(old, v),
                    None => v,
                };
                t.insert(k, merged);
            }
            Value::Object(t)
        }
        (Value::Array(mut t), Value::Array(s)) => {
            t.extend(s);
            Value::Array(t)
        }
        (_, s) => s,
    }
}

/// A directory includes may read from: as written, and its real path.
struct Root {
    lexical: PathBuf,
    real: PathBuf,
}

impl Root {
    fn new(lexical: PathBuf) -> Root {
        let real = std::fs::canonicalize(&lexical).unwrap_or_else(|_| lexical.clone());
        Root { lexical, real }
    }
}

struct Reader {
    roots: Vec<Root>,
    files: Vec<PathBuf>,
}

impl Reader {
    /// Resolves the includes in `v`, read from the last file of `chain` (the files that led
    /// here, the config first).
    fn process(&mut self, v: Value, chain: &[PathBuf]) -> Result<Value, ScanError> {
        match v {
            Value::Array(a) => a
                .into_iter()
                .map(|x| self.process(x, chain))
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array),
            Value::Object(mut m) => {
                let Some(directive) = m.remove(INCLUDE_KEY) else {
                    return self.process_map(m, chain).map(Value::Object);
                };
                let included = self.include(directive, chain)?;
                if m.is_empty() {
                    return Ok(included);
                }
                let file = chain.last().map(PathBuf::as_path).unwrap_or(Path::new(""));
                if !included.is_object() {
                    return Err(ScanError::invalid(
                        file,
                        INCLUDE_KEY,
                        "has sibling keys, but the included content is not an object",
                        "include an object, or move the sibling keys into the included file",
                    ));
                }
                let rest = self.process_map(m, chain)?;
                Ok(deep_merge(included, Value::Object(rest)))
            }
            other => Ok(other),
        }
    }

    fn process_map(
        &mut self,
        m: Map<String, Value>,
        chain: &[PathBuf],
    ) -> Result<Map<String, Value>, ScanError> {
        m.into_iter()
            .map(|(k, v)| self.process(v, chain).map(|v| (k, v)))
            .collect()
    }

    fn include(&mut self, directive: Value, chain: &[PathBuf]) -> Result<Value, ScanError> {
        let file = chain.last().map(PathBuf::as_path).unwrap_or(Path::new(""));
        match directive {
            Value::String(p) => self.load(&p, chain),
            Value::Array(items) => {
                let mut merged = Value::Object(Map::new());
                for item in items {
                    let Value::String(p) = item else {
                        return Err(ScanError::invalid(
                            file,
                            INCLUDE_KEY,
                            format!("array item {item} is not a path"),
                            "list file paths as strings",
                        ));
                    };
                    merged = deep_merge(merged, self.load(&p, chain)?);
                }
                Ok(merged)
            }
            other => Err(ScanError::invalid(
                file,
                INCLUDE_KEY,
                format!("is {other}, not a path or a list of paths"),
                "write a file path, or a list of them",
            )),
        }
    }

    fn load(&mut self, raw: &str, chain: &[PathBuf]) -> Result<Value, ScanError> {
        let from = chain.last().map(PathBuf::as_path).unwrap_or(Path::new(""));
        let key = format!("{INCLUDE_KEY} {raw:?}");
        let refuse = |message: String, fix: &str| Err(ScanError::invalid(from, &key, message, fix));
        if raw.contains('\0') || raw.len() >= MAX_PATH_LEN {
            return refuse(
                format!("is not a usable path (a NUL byte, or {MAX_PATH_LEN} characters or more)"),
                "write a plain relative path",
            );
        }
        let dir = from.parent().unwrap_or(Path::new("/"));
        let resolved = normalize(&dir.join(raw));
        if resolved.as_os_str().len() >= MAX_PATH_LEN {
            return refuse(
                format!("resolves to a path of {MAX_PATH_LEN} characters or more"),
                "write a shorter path",
            );
        }
        let allowed = |roots: &[Root], p: &Path, real: bool| {
            roots
                .iter()
                .any(|r| p.starts_with(if real { &r.real } else { &r.lexical }))
        };
        if !allowed(&self.roots, &resolved, false) {
            return refuse(
                format!(
                    "{} is outside the config's directory and OPENCLAW_INCLUDE_ROOTS",
                    resolved.display()
                ),
                "keep included files beside openclaw.json, or add their directory to OPENCLAW_INCLUDE_ROOTS",
            );
        }
        match std::fs::canonicalize(&resolved) {
            Ok(real) if !allowed(&self.roots, &real, true) => {
                return refuse(
                    format!(
                        "{} is a symlink to {}, outside the allowed directories",
                        resolved.display(),
                        real.display()
                    ),
                    "include the real file from an allowed directory",
                );
            }
            Ok(_) => {}
            Err(source) => {
                return Err(ScanError::Read {
                    path: resolved,
                    source,
                })
            }
        }
        if chain.contains(&resolved) {
            let cycle: Vec<String> = chain
                .iter()
                .chain(std::iter::once(&resolved))
                .map(|p| p.display().to_string())
                .collect();
            return refuse(
                format!("circular include: {}", cycle.join(" -> ")),
                "remove the include that leads back",
            );
        }
        if chain.len() > MAX_DEPTH {
            return refuse(
                format!("includes nest deeper than {MAX_DEPTH} levels"),
                "flatten the include chain",
            );
        }
        let text = read_guarded(&resolved)?;
        let parsed = parse(&resolved, &text)?;
        self.files.push(resolved.clone());
        let mut next = chain.to_vec();
        next.push(resolved);
        self.process(parsed, &next)
    }
}

/// Reads an include as OpenClaw's guard does: a regular file, no other hard link, at most
/// [`MAX_FILE_BYTES`].
fn read_guarded(path: &Path) -> Result<String, ScanError> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).map_err(|source| ScanError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let fix = "make it a regular file under 2 MB with a single link";
    if !m.is_file() {
        return Err(ScanError::invalid(
            path,
            "(file)",
            "is not a regular file",
            fix,
        ));
    }
    if m.nlink() > 1 {
        return Err(ScanError::invalid(
            path,
            "(file)",
            format!(
                "has {} hard links; OpenClaw refuses hard-linked includes",
                m.nlink()
            ),
            fix,
        ));
    }
    if m.len() > MAX_FILE_BYTES {
        return Err(ScanError::invalid(
            path,
            "(file)",
            format!("is {} bytes, over OpenClaw's 2 MB include limit", m.len()),
            fix,
        ));
    }
    match read_optional(path)? {
        Some(t) => Ok(t),
        None => Err(ScanError::Read {
            path: path.to_path_buf(),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn write(p: &Path, s: &str) {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, s).unwrap();
    }

    fn read_ok(p: &Path, roots: &[PathBuf]) -> ConfigFile {
        read(p, roots).unwrap().unwrap()
    }

    #[test]
    fn includes_merge_as_openclaw_documents() {
        // The shape of OpenClaw's docs: a section from one file, a list deep-merged in order,
        // sibling keys over the included object, nested includes relative to their file.
        let d = tempfile::tempdir().unwrap();
        let cfg = d.path().join("openclaw.json");
        write(
            &cfg,
            r#"{
  gateway: { port: 18789 },
  agents: { $include: "./agents.json5" },
  channels: {
    $include: ["./channels/base.json5", "./channels/work.json5"],
    telegram: { dmPolicy: "allowlist" },
  },
}"#,
        );
        write(
            &d.path().join("agents.json5"),
            r#"{ entries: { main: { $include: "./sub/main.json5" } } }"#,
        );
        write(&d.path().join("sub/main.json5"), r#"{ workspace: "/w" }"#);
        write(
            &d.path().join("channels/base.json5"),
            r#"{ telegram: { dmPolicy: "pairing", allowFrom: ["1"], groups: { a: { requireMention: true } } } }"#,
        );
        write(
            &d.path().join("channels/work.json5"),
            r#"{ telegram: { allowFrom: ["2"], accounts: { work: { dmPolicy: "open" } } } }"#,
        );
        let c = read_ok(&cfg, &[]);
        assert_eq!(
            c.value,
            json!({
                "gateway": {"port": 18789},
                "agents": {"entries": {"main": {"workspace": "/w"}}},
                "channels": {"telegram": {
                    "dmPolicy": "allowlist",
                    "allowFrom": ["1", "2"],
                    "groups": {"a": {"requireMention": true}},
                    "accounts": {"work": {"dmPolicy": "open"}}
                }}
            })
        );
        assert_eq!(c.files.len(), 5, "{:?}", c.files);
        // The same file twice, side by side, is no cycle.
        write(
            &cfg,
            r#"{ a: { $include: "./agents.json5" }, b: { $include: "./agents.json5" } }"#,
        );
        assert_eq!(
            read_ok(&cfg, &[]).value["b"]["entries"]["main"]["workspace"],
            "/w"
        );
    }

    #[test]
    fn refusals_name_the_file() {
        let d = tempfile::tempdir().unwrap();
        let cfg = d.path().join("oc/openclaw.json");
        let err = |text: &str, roots: &[PathBuf]| {
            write(&cfg, text);
            read(&cfg, roots).unwrap_err().to_string()
        };
        // Missing: a read error naming the include.
        let e = err(r#"{ channels: { $include: "./missing.json5" } }"#, &[]);
        assert!(
            e.contains("missing.json5") && e.starts_with("cannot read"),
            "{e}"
        );
        // A cycle.
        write(&d.path().join("oc/a.json5"), r#"{ $include: "./b.json5" }"#);
        write(
            &d.path().join("oc/b.json5"),
            r#"{ x: { $include: "./a.json5" } }"#,
        );
        let e = err(r#"{ channels: { $include: "./a.json5" } }"#, &[]);
        assert!(
            e.contains("circular include") && e.contains("b.json5"),
            "{e}"
        );
        // Outside the config's directory, unless OPENCLAW_INCLUDE_ROOTS allows it.
        write(
            &d.path().join("shared/ch.json5"),
            r#"{ telegram: { dmPolicy: "open" } }"#,
        );
        let text = r#"{ channels: { $include: "../shared/ch.json5" } }"#;
        let e = err(text, &[]);
        assert!(
            e.contains("outside the config's directory") && e.contains("openclaw.json"),
            "{e}"
        );
        let c = read_ok(&cfg, &[d.path().join("shared")]);
        assert_eq!(c.value["channels"]["telegram"]["dmPolicy"], "open");
        // A symlink in the directory that leads out of it.
        std::os::unix::fs::symlink(
            d.path().join("shared/ch.json5"),
            d.path().join("oc/link.json5"),
        )
        .unwrap();
        let e = err(r#"{ channels: { $include: "./link.json5" } }"#, &[]);
        assert!(e.contains("symlink"), "{e}");
        // Sibling keys over something that is not an object.
        write(&d.path().join("oc/list.json5"), "[1, 2]");
        let e = err(r#"{ x: { $include: "./list.json5", y: 1 } }"#, &[]);
        assert!(e.contains("sibling keys"), "{e}");
        // Not JSON5: names the included file.
        write(&d.path().join("oc/bad.json5"), "{ nope: ");
        let e = err(r#"{ x: { $include: "./bad.json5" } }"#, &[]);
        assert!(e.contains("bad.json5") && e.contains("JSON5"), "{e}");
        // A directive that is neither a path nor a list of paths.
        let e = err(r#"{ x: { $include: 3 } }"#, &[]);
        assert!(e.contains("$include"), "{e}");
        // Hard links are refused, as OpenClaw's guard refuses them.
        std::fs::hard_link(
            d.path().join("oc/list.json5"),
            d.path().join("oc/hard.json5"),
        )
        .unwrap();
        let e = err(r#"{ x: { $include: "./hard.json5" } }"#, &[]);
        assert!(e.contains("hard links"), "{e}");
    }

    #[test]
    fn depth_is_limited_to_ten_levels() {
        let d = tempfile::tempdir().unwrap();
        let cfg = d.path().join("openclaw.json");
        write(&cfg, r#"{ x: { $include: "./l1.json5" } }"#);
        for i in 1..=11 {
            write(
                &d.path().join(format!("l{i}.json5")),
                &format!(r#"{{ v: {i}, n: {{ $include: "./l{}.json5" }} }}"#, i + 1),
            );
        }
        // Ten levels read; the eleventh include is refused.
        write(&d.path().join("l10.json5"), r#"{ v: 10 }"#);
        assert_eq!(read_ok(&cfg, &[]).files.len(), 11);
        write(
            &d.path().join("l10.json5"),
            r#"{ v: 10, n: { $include: "./l11.json5" } }"#,
        );
        write(&d.path().join("l11.json5"), r#"{ v: 11 }"#);
        let e = read(&cfg, &[]).unwrap_err().to_string();
        assert!(e.contains("deeper than 10"), "{e}");
    }

    #[test]
    fn an_absent_config_is_none() {
        let d = tempfile::tempdir().unwrap();
        assert!(read(&d.path().join("openclaw.json"), &[])
            .unwrap()
            .is_none());
    }
}
