//! occ-scan: host monitoring (ports, egress) and compliance checks for scheduled jobs.
#![forbid(unsafe_code)]
