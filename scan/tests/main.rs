//! Integration tests for the occ-scan library: captured /proc tables parsed through a fake
//! proc tree, and live sockets opened by this process and by child processes.

mod compliance_checks;
mod compliance_notify;
mod compliance_openclaw;
mod compliance_schedule;
mod compliance_support;
mod layout;
mod live;
mod parsing;
mod support;
