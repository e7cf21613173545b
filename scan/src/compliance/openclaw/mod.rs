//! OpenClaw as it is, for the checks: which instance (`instance`: `OPENCLAW_CONFIG_PATH`,
//! `OPENCLAW_STATE_DIR`, profiles), its config as the CLI resolves it (`cli`) or, when the CLI
//! cannot answer, as occ-scan reads it with its `$include`s (`config`), its channels and
//! accounts by OpenClaw's schema (`channels`), OpenClaw's own `security audit` (`security_audit`)
//! and its backup archives (`backups`). It gathers and shapes evidence; it judges nothing.

pub mod backups;
pub mod channels;
pub mod cli;
pub mod config;
pub mod instance;
pub mod security_audit;

use std::path::PathBuf;

use serde_json::{Map, Value};

use self::cli::CliConfig;
use self::instance::Instance;
use crate::error::ScanError;

/// The config the checks read, and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct OcConfig {
    /// The config (from the CLI: only the keys occ-scan asked for).
    pub value: Value,
    /// Whether the `openclaw` CLI resolved it.
    pub from_cli: bool,
    /// The active config file.
    pub path: PathBuf,
    /// The files read: the config, then its includes (from the CLI: the config alone).
    pub files: Vec<PathBuf>,
    /// For the evidence: `` `openclaw config get` (config /…/openclaw.json) `` or
    /// `/…/openclaw.json and 2 included file(s), read by occ-scan (…why…)`.
    pub source: String,
}

/// The config as the CLI resolved it when it answered (`cli`), else `instance`'s config file
/// read by occ-scan with its includes; `no_cli` says why the CLI was not asked. `Ok(None)`:
/// there is no config file.
pub fn load(
    cli: Option<&Result<CliConfig, String>>,
    no_cli: &str,
    instance: &Instance,
) -> Result<Option<OcConfig>, ScanError> {
    let why = match cli {
        Some(Ok(c)) => {
            let mut m = Map::new();
            for (k, v) in [("channels", &c.channels), ("gateway", &c.gateway)] {
                if let Some(v) = v {
                    m.insert(k.to_string(), v.clone());
                }
            }
            return Ok(Some(OcConfig {
                value: Value::Object(m),
                from_cli: true,
                path: c.file.clone(),
                files: vec![c.file.clone()],
                source: format!("`openclaw config get` (config {})", c.file.display()),
            }));
        }
        Some(Err(e)) => format!("the openclaw CLI failed: {e}"),
        None => no_cli.to_string(),
    };
    let Some(read) = config::read(&instance.config_path, &instance.include_roots)? else {
        return Ok(None);
    };
    let includes = read.files.len() - 1;
    Ok(Some(OcConfig {
        value: read.value,
        from_cli: false,
        path: instance.config_path.clone(),
        files: read.files.clone(),
        source: format!(
            "{}{}, read by occ-scan ({why})",
            instance.config_path.display(),
            if includes > 0 {
                format!(" and {includes} included file(s)")
            } else {
                String::new()
            }
        ),
    }))
}
