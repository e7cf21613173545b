#!/usr/bin/env bash
# `occ audit verify` (every check: canonical form, chain hashes, links, seq, head) against one
# `openssl dgst -sha256` pass over the same 200,000-event log, in one hyperfine run. The log is
# written once through the real writer (`examples/bench_log.rs`) and kept in
# target/occ-verify-bench/. Both read the file from the page cache, dropped and read back in
# first so every run starts from the same state.
# Usage: audit/benches/verify-vs-openssl.sh [EVENTS] [RUNS]
set -euo pipefail
cd "$(dirname "$0")/../.."
events=${1:-200000}
runs=${2:-30}
for tool in hyperfine openssl; do
  if ! command -v "$tool" >/dev/null; then
    echo "installing $tool" >&2
    apt-get update -qq && apt-get install -y -qq "$tool" >/dev/null
  fi
done
cargo build --release -q -p occ-broker --bin occ
cargo build --release -q -p occ-audit --example bench_log
dir=target/occ-verify-bench/$events
log=$dir/privileged-audit.jsonl
if [ ! -f "$dir/complete" ]; then
  rm -rf "$dir" && mkdir -p "$dir"
  target/release/examples/bench_log "$events" "$log"
  touch "$dir/complete"
fi
# The same page-cache state for both tools and every run of this script: the log is dropped
# from the cache and read back in (as after a reboot), not left as the writer cached it.
dd if="$log" iflag=nocache count=0 status=none
cat "$log" > /dev/null
echo "log: $log, $(wc -l < "$log") events, $(stat -c %s "$log") bytes; $(nproc) cores"
target/release/occ audit verify --log "$log"
echo "load before: $(uptime)"
hyperfine -N --warmup 3 --runs "$runs" --export-markdown "$dir/hyperfine.md" \
  "target/release/occ audit verify --log $log" \
  "openssl dgst -sha256 $log"
echo "load after: $(uptime)"
