//! The port and egress scans as the compliance checks see them: one socket collection through
//! the sockets half of occ-scan, judged against both monitoring files, serialised to the same
//! JSON that `occ-scan ports --json` and `occ-scan egress --json` print. A failure is kept as
//! an error, never as an empty (clean-looking) report.

use std::time::Duration;

use super::facts::NetReport;
use super::Paths;
use crate::resolve::Resolver;
use crate::sockets::{self, CollectOptions};
use crate::{egress, files, ports};

/// Timeout for the lsof fallback and for each name lookup.
const LSOF_TIMEOUT: Duration = Duration::from_secs(10);
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(1);

fn to_report(what: &str, v: Result<serde_json::Value, String>) -> NetReport {
    match v {
        Ok(v) => NetReport::Ok(v),
        Err(e) => NetReport::Failed(format!("{what} scan failed: {e}")),
    }
}

/// Collects sockets once and evaluates both files.
pub fn scan(paths: &Paths) -> (NetReport, NetReport) {
    let opts = CollectOptions {
        timeout: LSOF_TIMEOUT,
        ..CollectOptions::default()
    };
    let collection = match sockets::collect(&opts) {
        Ok(c) => c,
        Err(e) => {
            let msg = e.to_string();
            return (
                to_report("port", Err(msg.clone())),
                to_report("egress", Err(msg)),
            );
        }
    };
    let ports_json = files::load_approved_ports(&paths.security_file("approved_ports.json"))
        .map_err(|e| e.to_string())
        .and_then(|rules| {
            serde_json::to_value(ports::evaluate(&collection, &rules)).map_err(|e| e.to_string())
        });
    let egress_json = files::load_egress_allowlist(&paths.security_file("egress_allowlist.json"))
        .map_err(|e| e.to_string())
        .and_then(|rules| {
            let mut resolver = Resolver::new(RESOLVE_TIMEOUT);
            serde_json::to_value(egress::evaluate(&collection, &rules, &mut resolver))
                .map_err(|e| e.to_string())
        });
    (
        to_report("port", ports_json),
        to_report("egress", egress_json),
    )
}
