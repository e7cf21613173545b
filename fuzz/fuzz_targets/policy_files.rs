//! Fuzzes the strict loaders of command-policy.json, prompt-policy.json and broker.json with
//! untrusted text: every input is either a typed config or an error naming the file; never a
//! panic.
//! Run: `cd fuzz && cargo +nightly fuzz run policy_files`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use occ_policy::file::{BrokerConfig, CommandPolicy, PromptPolicy};
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = CommandPolicy::parse(Path::new("command-policy.json"), text);
    let _ = PromptPolicy::parse(Path::new("prompt-policy.json"), text);
    let _ = BrokerConfig::parse(Path::new("broker.json"), text);
});
