//! Integration tests for occ-scan.
