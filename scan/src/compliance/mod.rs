//! Evidence-based compliance for occ: the checks behind `occ-scan assess`, the reports
//! (summary JSON, HTML dashboard, Prometheus textfile), `notify`, `preflight`, `cycle` and
//! `schedule`. A check that cannot gather its evidence says `not_assessed`; it never reads a
//! failure as "compliant".
//!
//! One assessment, in order: `files` (occ's files; the policy files through occ-policy, as the
//! broker loads them), `facts` (host probes), `openclaw` (OpenClaw as its CLI and its files
//! say it is) and `netscan` (the port and egress scans) gather evidence; `checks` judges it, one verdict per entry of `checks::CHECKS`; `report` merges
//! the verdicts with `map` and `state` into a `model::Assessment`, which `dashboard` and `prom`
//! render. `audit` verifies the audit log; `util` holds writes, dates and digests. The model
//! imports no other module here, and no module imports one that imports it back.

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
pub mod openclaw;
pub mod preflight;
pub mod prom;
pub mod report;
pub mod schedule;
pub mod state;
pub mod util;
