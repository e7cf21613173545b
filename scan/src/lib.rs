//! occ-scan: host monitoring for scheduled jobs. The sockets half: native collection
//! (`sockets`), the listening-port check (`ports`), the egress check (`egress`) and the
//! monitoring files (`files`). The compliance half (`compliance`): evidence-based checks and
//! their reports. Shared by both: the one home resolver (`paths`), the one error type
//! (`error`) and the one way to run a child process (`exec`). Every result is typed and
//! serialisable; a scan that fails is an error, never an empty report that reads as clean.
#![forbid(unsafe_code)]

pub mod cli;
pub mod compliance;
pub mod compliance_cli;
pub mod docs_cli;
pub mod egress;
pub mod error;
pub mod exec;
pub mod files;
pub mod net;
pub mod paths;
pub mod ports;
pub mod resolve;
pub mod sockets;

pub use error::ScanError;

use std::fmt::Write as _;

use sockets::Visibility;

/// Now, as RFC 3339 UTC with seconds (`2026-11-22T23:00:00Z`).
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

/// The visibility lines of a text report.
pub(crate) fn render_visibility(t: &mut String, v: &Visibility) {
    if v.complete {
        let _ = writeln!(t, "Visibility: complete");
    } else {
        let _ = writeln!(t, "Visibility: REDUCED");
        for n in &v.notes {
            let _ = writeln!(t, "  - {n}");
        }
    }
}
