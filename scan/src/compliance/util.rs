//! Small helpers shared by the compliance modules: atomic 0600 writes, UTC dates, file digests
//! and modes. Nothing here decides a verdict. (Child processes and PATH lookups: `crate::exec`.)

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use occ_base::atomic::{self, Options};
use sha2::{Digest, Sha256};

// The atomic writers below keep their signatures while they move to a shared crate; the name is
// occ-scan's one error type.
use crate::error::ScanError as ComplianceError;

/// Writes `bytes` to `path` atomically: a temp file in the same directory (mode 0600), fsync,
/// rename, then fsync of the directory. Creates missing parent directories with mode 0700.
pub fn atomic_write(path: &Path, bytes: &[u8]) -> Result<(), ComplianceError> {
    write_renamed(path, bytes, Options::durable())
}

/// Like [`atomic_write`] but without the fsyncs: for reports that the next run rewrites
/// anyway. Readers still see the old file or the new one, never a half-written one.
pub fn atomic_write_report(path: &Path, bytes: &[u8]) -> Result<(), ComplianceError> {
    write_renamed(path, bytes, Options::durable().without_fsync())
}

/// Pretty JSON report with a trailing newline, written as [`atomic_write_report`] does.
pub fn atomic_write_json_report(
    path: &Path,
    value: &impl serde::Serialize,
) -> Result<(), ComplianceError> {
    let mut bytes = serde_json::to_vec_pretty(value).map_err(|e| ComplianceError::Write {
        path: path.to_path_buf(),
        source: std::io::Error::other(e),
    })?;
    bytes.push(b'\n');
    write_renamed(path, &bytes, Options::durable().without_fsync())
}

fn write_renamed(path: &Path, bytes: &[u8], opts: Options) -> Result<(), ComplianceError> {
    atomic::write_private(path, bytes, opts.create_parents()).map_err(|e| ComplianceError::Write {
        path: path.to_path_buf(),
        source: e.into_source(),
    })
}

/// Writes pretty JSON with a trailing newline, atomically.
pub fn atomic_write_json(
    path: &Path,
    value: &impl serde::Serialize,
) -> Result<(), ComplianceError> {
    let mut bytes = serde_json::to_vec_pretty(value).map_err(|e| ComplianceError::Write {
        path: path.to_path_buf(),
        source: std::io::Error::other(e),
    })?;
    bytes.push(b'\n');
    atomic_write(path, &bytes)
}

/// Seconds since the Unix epoch.
pub fn unix_secs(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

/// RFC 3339 UTC timestamp with seconds and `Z`.
pub fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

/// Parses an RFC 3339 timestamp.
pub fn parse_rfc3339(s: &str) -> Option<SystemTime> {
    humantime::parse_rfc3339_weak(s).ok()
}

/// Days since the epoch to (year, month, day), proleptic Gregorian.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month as u32, day as u32)
}

/// `YYYY-MM-DD` (UTC) of a time plus `add_days`.
pub fn date_plus_days(t: SystemTime, add_days: i64) -> String {
    let days = unix_secs(t).div_euclid(86_400) + add_days;
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Lowercase hex SHA-256 of a file's content, streamed.
pub fn sha256_file(p: &Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(p)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex(&h.finalize()))
}

/// Lowercase hex of bytes.
pub use occ_base::hex::encode as hex;

/// Mode bits (permission part) of a path, not following a final symlink.
pub fn mode_of(p: &Path) -> std::io::Result<u32> {
    std::fs::symlink_metadata(p).map(|m| m.permissions().mode() & 0o7777)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        let t = UNIX_EPOCH + Duration::from_secs(86_400 * 19_723 + 5);
        assert_eq!(date_plus_days(t, 14), "2024-01-15");
    }

    #[test]
    fn atomic_write_is_0600() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("sub/x.json");
        atomic_write(&p, b"{}\n").unwrap();
        assert_eq!(mode_of(&p).unwrap(), 0o600);
        assert_eq!(std::fs::read(&p).unwrap(), b"{}\n");
        assert_eq!(std::fs::read_dir(d.path().join("sub")).unwrap().count(), 1);
    }

    #[test]
    fn atomic_write_report_is_0600_replaces_and_leaves_no_temp() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("reports/summary.json");
        atomic_write_report(&p, b"old and longer").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        atomic_write_json_report(&p, &serde_json::json!({"a": 1})).unwrap();
        assert_eq!(mode_of(&p).unwrap(), 0o600);
        assert_eq!(mode_of(&d.path().join("reports")).unwrap(), 0o700);
        assert_eq!(std::fs::read(&p).unwrap(), b"{\n  \"a\": 1\n}\n");
        assert_eq!(
            std::fs::read_dir(d.path().join("reports")).unwrap().count(),
            1
        );
    }

    #[test]
    fn hex_is_lowercase_and_matches_sha256_file() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("abc");
        std::fs::write(&p, b"abc").unwrap();
        // FIPS 180-2 test vector.
        assert_eq!(
            sha256_file(&p).unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(hex(&[0xAB, 0x01]), "ab01");
    }
}
