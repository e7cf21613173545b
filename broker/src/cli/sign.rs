//! Signed approvals on the command line: `occ approvals --statement ID` prints what to sign,
//! `occ sign FILE` signs it with `ssh-keygen -Y sign -n occ-approval` (any machine with
//! OpenSSH can do the same by hand), and `occ approve ID --signature FILE|-` (or `occ deny`)
//! submits a statement with its signature. The bundle `occ sign` prints (the statement, then
//! the armored signature) is what travels: paste it anywhere, submit it from anywhere.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use super::admin::{call, finish};
use crate::gate::admin::AdminRequest;
use crate::signed::statement::FORMAT;

/// Where the armored signature starts.
const BEGIN: &str = "-----BEGIN SSH SIGNATURE-----";

/// `occ sign`.
#[derive(clap::Args, Debug)]
pub struct SignArgs {
    /// The statement file (from `occ approvals --statement ID > FILE`).
    pub statement: PathBuf,
    /// The private key (or, with ssh-agent, its public half); default: the first of
    /// ~/.ssh/id_ed25519_sk, id_ecdsa_sk, id_ed25519, id_ecdsa that exists.
    #[arg(short = 'f', long = "key")]
    pub key: Option<PathBuf>,
    /// Print JSON (`statement`, `signature`, `signature_file`).
    #[arg(long)]
    pub json: bool,
}

/// Runs `occ sign`: `ssh-keygen -Y sign -n occ-approval -f KEY FILE` writes FILE.sig; the
/// bundle to submit (statement, then signature) goes to stdout.
pub fn sign(a: SignArgs) -> i32 {
    match sign_file(&a) {
        Ok((statement, signature, sig_file)) => {
            if a.json {
                println!(
                    "{}",
                    serde_json::json!({
                        "statement": statement,
                        "signature": signature,
                        "signature_file": sig_file.display().to_string(),
                    })
                );
            } else {
                print!("{statement}{signature}");
                eprintln!(
                    "occ: signed; submit the lines above with `occ approve ID --signature -` \
                     (or the file {})",
                    sig_file.display()
                );
            }
            0
        }
        Err(e) => {
            eprintln!("occ: {e}");
            2
        }
    }
}

fn sign_file(a: &SignArgs) -> Result<(String, String, PathBuf), String> {
    let statement = std::fs::read_to_string(&a.statement)
        .map_err(|e| format!("cannot read the statement {}: {e}", a.statement.display()))?;
    if !statement.starts_with(FORMAT) {
        return Err(format!(
            "{} is not an occ approval statement (it must start with {FORMAT:?}); print one \
             with `occ approvals --statement ID > FILE`",
            a.statement.display()
        ));
    }
    let key = match &a.key {
        Some(k) => k.clone(),
        None => default_key().ok_or(
            "no key given and none of ~/.ssh/id_ed25519_sk, id_ecdsa_sk, id_ed25519, id_ecdsa \
             exists; pass -f KEY",
        )?,
    };
    let sig_file = PathBuf::from(format!("{}.sig", a.statement.display()));
    let _ = std::fs::remove_file(&sig_file);
    let out = Command::new("ssh-keygen")
        .args(["-Y", "sign", "-n", crate::signed::NAMESPACE, "-f"])
        .arg(&key)
        .arg(&a.statement)
        .output()
        .map_err(|e| format!("cannot run ssh-keygen (install OpenSSH's client): {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "ssh-keygen -Y sign failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let signature = std::fs::read_to_string(&sig_file)
        .map_err(|e| format!("ssh-keygen wrote no {}: {e}", sig_file.display()))?;
    Ok((statement, signature, sig_file))
}

fn default_key() -> Option<PathBuf> {
    let home = std::env::var_os("HOME")?;
    ["id_ed25519_sk", "id_ecdsa_sk", "id_ed25519", "id_ecdsa"]
        .iter()
        .map(|n| Path::new(&home).join(".ssh").join(n))
        .find(|p| p.exists())
}

/// A statement and signature as submitted.
#[derive(Debug, PartialEq, Eq)]
pub struct Submission {
    /// The statement, when the input carried it (a bundle).
    pub statement: Option<String>,
    pub signature: String,
}

/// Splits a bundle (statement lines, then the armored signature) or takes a bare signature.
pub fn read_submission(text: &str) -> Result<Submission, String> {
    let at = text.find(BEGIN).ok_or(
        "no -----BEGIN SSH SIGNATURE----- block in the input; give the .sig file or the bundle \
         `occ sign` printed",
    )?;
    let (head, sig) = text.split_at(at);
    let statement = match head.find(FORMAT) {
        Some(start) => Some(head[start..].to_string()),
        None if head.trim().is_empty() => None,
        None => return Err("text before the signature is not an occ approval statement".into()),
    };
    Ok(Submission {
        statement,
        signature: sig.to_string(),
    })
}

/// Reads `--signature FILE|-`. A bare signature in `X.sig` takes its statement from `X`.
pub fn load_submission(source: &Path) -> Result<Submission, String> {
    let text = if source == Path::new("-") {
        let mut t = String::new();
        std::io::stdin()
            .read_to_string(&mut t)
            .map_err(|e| format!("cannot read the signature from stdin: {e}"))?;
        t
    } else {
        std::fs::read_to_string(source)
            .map_err(|e| format!("cannot read the signature {}: {e}", source.display()))?
    };
    let mut sub = read_submission(&text)?;
    if sub.statement.is_none() {
        if let Some(stmt) = source
            .to_str()
            .and_then(|s| s.strip_suffix(".sig"))
            .filter(|s| Path::new(s).is_file())
        {
            sub.statement = Some(
                std::fs::read_to_string(stmt)
                    .map_err(|e| format!("cannot read the statement {stmt}: {e}"))?,
            );
        }
    }
    Ok(sub)
}

/// Submits a signed decision on `id`; `scope` names the statement to ask the broker for when
/// the input carried only a signature.
pub fn submit(id: &str, source: &Path, scope: &str, json_out: bool) -> i32 {
    let sub = match load_submission(source) {
        Ok(s) => s,
        Err(e) => return finish(json_out, Err(e), |_| String::new()),
    };
    let id = id.trim_start_matches('#').to_string();
    let statement = match sub.statement {
        Some(s) => s,
        None => match call(&AdminRequest::Statement {
            id: id.clone(),
            scope: scope.to_string(),
        }) {
            Ok((true, v)) => v["statement"].as_str().unwrap_or_default().to_string(),
            other => return finish(json_out, other, |_| String::new()),
        },
    };
    let req = AdminRequest::Signed {
        id,
        statement,
        signature: sub.signature,
    };
    finish(json_out, call(&req), |v: &Value| match v.get("denied") {
        Some(id) => format!(
            "signed: denied #{}\n",
            crate::escape::escape_text(id.as_str().unwrap_or(""))
        ),
        None => format!("signed: {}", super::admin::approve_text(v)),
    })
}

/// Runs `occ approvals --statement ID --scope S`.
pub fn print_statement(id: &str, scope: &str, json_out: bool) -> i32 {
    let req = AdminRequest::Statement {
        id: id.trim_start_matches('#').to_string(),
        scope: scope.to_string(),
    };
    finish(json_out, call(&req), |v| {
        v.get("statement")
            .and_then(|x| x.as_str())
            .unwrap_or_default()
            .to_string()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bundle_splits_into_statement_and_signature() {
        let bundle = format!("{FORMAT}\nrequest: x\n{BEGIN}\nAAAA\n-----END SSH SIGNATURE-----\n");
        let s = read_submission(&format!("pasted:\n{bundle}")).unwrap();
        assert_eq!(
            s.statement.as_deref(),
            Some(&bundle[..bundle.find(BEGIN).unwrap()])
        );
        assert!(s.signature.starts_with(BEGIN));
        let bare = read_submission(&bundle[bundle.find(BEGIN).unwrap()..]).unwrap();
        assert_eq!(bare.statement, None);
        assert!(read_submission("no signature").is_err());
        assert!(read_submission(&format!("approve it!\n{BEGIN}\n")).is_err());
    }
}
