//! Integration tests for occ-scan.

mod compliance_checks;
mod compliance_support;
mod compliance_notify;
mod compliance_schedule;
