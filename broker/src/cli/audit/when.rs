//! `--since` and `--until` as journalctl reads them: an RFC 3339 time, a date, `today`,
//! `yesterday`, `tomorrow`, `now`, a signed offset (`-2h`, `+30m`), or a bare duration meaning
//! that long ago (`10m`). Dates and day names are midnight UTC, the time zone of the log.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

const DAY: u64 = 86_400;

fn midnight(now: SystemTime, days_back: i64) -> Option<SystemTime> {
    let secs = now.duration_since(UNIX_EPOCH).ok()?.as_secs();
    let today = secs - secs % DAY;
    let t = i128::from(today) - i128::from(days_back) * i128::from(DAY);
    u64::try_from(t)
        .ok()
        .map(|t| UNIX_EPOCH + Duration::from_secs(t))
}

/// Reads one time argument, relative to `now`.
pub(super) fn parse(s: &str, now: SystemTime) -> Option<SystemTime> {
    let s = s.trim();
    match s {
        "now" => return Some(now),
        "today" => return midnight(now, 0),
        "yesterday" => return midnight(now, 1),
        "tomorrow" => return midnight(now, -1),
        _ => {}
    }
    if let Some(rest) = s.strip_prefix('-') {
        return now.checked_sub(humantime::parse_duration(rest).ok()?);
    }
    if let Some(rest) = s.strip_prefix('+') {
        return now.checked_add(humantime::parse_duration(rest).ok()?);
    }
    if let Ok(d) = humantime::parse_duration(s) {
        return now.checked_sub(d);
    }
    let date_only = s.len() == 10 && s.as_bytes()[4] == b'-' && s.as_bytes()[7] == b'-';
    if date_only {
        return humantime::parse_rfc3339(&format!("{s}T00:00:00Z")).ok();
    }
    humantime::parse_rfc3339_weak(s.trim_end_matches('Z')).ok()
}

/// The message for an argument [`parse`] cannot read.
pub(super) fn unreadable(flag: &str, s: &str) -> String {
    format!(
        "{flag} {s:?}: not a time; write an RFC 3339 time (2026-12-06T10:00:00Z), a date \
         (2026-12-06, midnight UTC), today, yesterday, now, an offset (-2h, +30m) or a duration \
         ago (10m)"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> SystemTime {
        humantime::parse_rfc3339(s).expect("time")
    }

    #[test]
    fn journalctl_forms() {
        let now = at("2026-12-06T15:30:00Z");
        for (arg, want) in [
            ("now", "2026-12-06T15:30:00Z"),
            ("today", "2026-12-06T00:00:00Z"),
            ("yesterday", "2026-12-05T00:00:00Z"),
            ("tomorrow", "2026-12-07T00:00:00Z"),
            ("-2h", "2026-12-06T13:30:00Z"),
            ("+30m", "2026-12-06T16:00:00Z"),
            ("10m", "2026-12-06T15:20:00Z"),
            ("1day", "2026-12-05T15:30:00Z"),
            ("2026-12-01", "2026-12-01T00:00:00Z"),
            ("2026-12-01T08:09:10Z", "2026-12-01T08:09:10Z"),
            ("2026-12-01 08:09:10", "2026-12-01T08:09:10Z"),
            ("2026-12-01T08:09:10.5Z", "2026-12-01T08:09:10.5Z"),
        ] {
            assert_eq!(parse(arg, now), Some(at(want)), "{arg}");
        }
        for bad in ["", "soon", "2026-13-01", "-", "+x", "12/06/2026"] {
            assert_eq!(parse(bad, now), None, "{bad}");
        }
    }
}
