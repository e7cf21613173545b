//! Evidence-based compliance for occ: the checks behind `occ-scan assess`, the reports
//! (summary JSON, HTML dashboard, Prometheus textfile), `notify`, `preflight`, `cycle` and
//! `schedule`. A check that cannot gather its evidence says `not_assessed`; it never reads a
//! failure as "compliant".

pub mod audit;
pub mod checks;
pub mod cycle;
pub mod dashboard;
pub mod facts;
pub mod files;
pub mod map;
pub mod model;
pub mod netscan;
pub mod notify;
pub mod preflight;
pub mod prom;
pub mod report;
pub mod schedule;
pub mod state;
pub mod util;
