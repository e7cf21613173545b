//! The port and egress scans as the compliance checks see them: one socket collection through
//! the sockets half of occ-scan, judged against both monitoring files. Each typed report is
//! saved under `assessments/` exactly as `occ-scan ports --json` and `occ-scan egress --json`
//! print it, and the checks get the rows they read ([`NetScan`]) without a JSON round trip. A
//! failure is kept as an error, never as an empty (clean-looking) report.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use serde_json::json;

use super::model::{NetReport, NetRow, NetScan, EGRESS_FILE, PORTS_FILE};
use super::util;
use crate::egress::{EgressConnection, EgressFinding, EgressReport};
use crate::paths::Paths;
use crate::ports::{PortFinding, PortsReport};
use crate::resolve::Resolver;
use crate::sockets::{self, CollectOptions, Socket};
use crate::{egress, files};

/// Timeout for the lsof fallback and for each name lookup.
const LSOF_TIMEOUT: Duration = Duration::from_secs(10);
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(1);

/// The saved reports being written beside the rest of the run. [`Saving::finish`] waits for
/// them and says which failed; dropping it waits too.
pub struct Saving {
    running: Vec<std::thread::JoinHandle<Result<(), String>>>,
    failed: Vec<String>,
}

impl Saving {
    /// Waits for every save; returns the errors (empty when all were written).
    pub fn finish(mut self) -> Vec<String> {
        let mut failed = std::mem::take(&mut self.failed);
        for h in self.running.drain(..) {
            match h.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => failed.push(e),
                Err(_) => failed.push("a report-saving thread panicked".into()),
            }
        }
        failed
    }
}

impl Drop for Saving {
    fn drop(&mut self) {
        for h in self.running.drain(..) {
            let _ = h.join();
        }
    }
}

/// Collects sockets once, evaluates both files and returns what the checks read. Both reports
/// (or their errors) are saved under `assessments/` on their own threads: a 2,000-socket report
/// is megabytes of JSON, and the checks need not wait for it.
pub fn scan(paths: &Paths) -> (NetReport, NetReport, Saving) {
    let opts = CollectOptions {
        timeout: LSOF_TIMEOUT,
        ..CollectOptions::default()
    };
    let collection = sockets::collect(&opts).map_err(|e| e.to_string());
    let ports = collection.as_ref().map_err(Clone::clone).and_then(|c| {
        files::load_approved_ports(&paths.security_file("approved_ports.json"))
            .map(|rules| crate::ports::evaluate(c, &rules))
            .map_err(|e| e.to_string())
    });
    let egress = collection.as_ref().map_err(Clone::clone).and_then(|c| {
        files::load_egress_allowlist(&paths.security_file("egress_allowlist.json"))
            .map(|rules| egress::evaluate(c, &rules, &mut Resolver::new(RESOLVE_TIMEOUT)))
            .map_err(|e| e.to_string())
    });
    let mut saving = Saving {
        running: Vec::with_capacity(2),
        failed: Vec::new(),
    };
    let p = keep(paths, PORTS_FILE, "port", ports, ports_view, &mut saving);
    let e = keep(
        paths,
        EGRESS_FILE,
        "egress",
        egress,
        egress_view,
        &mut saving,
    );
    (p, e, saving)
}

/// Returns the report's view and starts saving the report (or its error). A failed save does
/// not fail the scan: the saved file is for the admin and the dashboard; the checks use the
/// view.
fn keep<R: Serialize + Send + 'static>(
    paths: &Paths,
    file: &str,
    what: &str,
    report: Result<R, String>,
    view: fn(&R) -> NetScan,
    saving: &mut Saving,
) -> NetReport {
    let path = paths.assessment_file(file);
    let (out, job): (NetReport, Job) = match report {
        Ok(r) => (
            NetReport::Ok(Box::new(view(&r))),
            Box::new(move || save(&path, &r)),
        ),
        Err(e) => {
            let e = format!("{what} scan failed: {e}");
            let error = json!({"status": "error", "error": e});
            (NetReport::Failed(e), Box::new(move || save(&path, &error)))
        }
    };
    // The job runs exactly once: on its thread, or here when no thread can be started.
    let job = Arc::new(Mutex::new(Some(job)));
    let run = |j: &Mutex<Option<Job>>| {
        let job = j.lock().map(|mut g| g.take()).unwrap_or(None);
        job.map_or(Ok(()), |job| job())
    };
    let theirs = Arc::clone(&job);
    match std::thread::Builder::new()
        .name("save-report".into())
        .spawn(move || run(&theirs))
    {
        Ok(h) => saving.running.push(h),
        Err(_) => {
            if let Err(e) = run(&job) {
                saving.failed.push(e);
            }
        }
    }
    out
}

type Job = Box<dyn FnOnce() -> Result<(), String> + Send>;

fn save(path: &std::path::Path, report: &impl Serialize) -> Result<(), String> {
    util::atomic_write_json_report(path, report).map_err(|e| e.to_string())
}

impl From<&PortsReport> for NetScan {
    fn from(r: &PortsReport) -> NetScan {
        ports_view(r)
    }
}

impl From<&EgressReport> for NetScan {
    fn from(r: &EgressReport) -> NetScan {
        egress_view(r)
    }
}

fn ports_view(r: &PortsReport) -> NetScan {
    NetScan {
        tool: Some(r.tool.to_owned()),
        method: Some(r.method.to_owned()),
        listening_services: r.listening_services.iter().map(socket_row).collect(),
        connections: Vec::new(),
        findings: r.findings.iter().map(port_finding_row).collect(),
        blind_spots: r.blind_spots.clone(),
        counts: serde_json::to_value(&r.counts).ok(),
    }
}

fn egress_view(r: &EgressReport) -> NetScan {
    NetScan {
        tool: Some(r.tool.to_owned()),
        method: Some(r.method.to_owned()),
        listening_services: Vec::new(),
        connections: r.connections.iter().map(connection_row).collect(),
        findings: r.findings.iter().map(egress_finding_row).collect(),
        blind_spots: r.blind_spots.clone(),
        counts: serde_json::to_value(&r.counts).ok(),
    }
}

fn socket_row(s: &Socket) -> NetRow {
    NetRow {
        kind: None,
        protocol: Some(s.protocol.as_str().to_owned()),
        address: Some(s.address.to_string()),
        port: Some(s.port.into()),
        pid: s.pid.map(u64::from),
        comm: s.comm.clone(),
        path: s.path.clone(),
        uid: s.uid.map(|u| u.to_string()),
        state: Some(s.state.as_str().to_owned()),
        net_namespace: s.net_namespace,
        remote_address: Some(s.remote_address.to_string()),
        remote_port: Some(s.remote_port.into()),
        allowed_by: None,
        recommendation: None,
    }
}

fn connection_row(c: &EgressConnection) -> NetRow {
    NetRow {
        allowed_by: c.allowed_by.map(|i| i as u64),
        ..socket_row(&c.socket)
    }
}

fn port_finding_row(f: &PortFinding) -> NetRow {
    NetRow {
        kind: Some(f.kind.as_str().to_owned()),
        protocol: Some(f.protocol.as_str().to_owned()),
        address: Some(f.address.to_string()),
        port: Some(f.port.into()),
        pid: f.pid.map(u64::from),
        comm: f.command.clone(),
        path: f.exe.clone(),
        net_namespace: f.net_namespace,
        recommendation: Some(f.recommendation.clone()),
        ..NetRow::default()
    }
}

fn egress_finding_row(f: &EgressFinding) -> NetRow {
    NetRow {
        kind: Some(f.kind.to_owned()),
        protocol: Some(f.protocol.as_str().to_owned()),
        address: Some(f.address.to_string()),
        port: Some(f.port.into()),
        pid: f.pid.map(u64::from),
        comm: f.command.clone(),
        path: f.exe.clone(),
        state: Some(f.state.as_str().to_owned()),
        net_namespace: f.net_namespace,
        remote_address: Some(f.remote_host.to_string()),
        remote_port: Some(f.remote_port.into()),
        recommendation: Some(f.recommendation.clone()),
        ..NetRow::default()
    }
}
