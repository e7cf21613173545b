#!/usr/bin/env bash
# Peak RSS and time of the release `occ audit verify` on the 1,000,000-event log that
# `cargo bench -p occ-audit` generates, and on its first 100,000 lines, to show memory does not
# grow with the log. Usage: audit/benches/rss.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
dir=target/occ-audit-bench
log=$dir/privileged-audit.jsonl
[ -f "$dir/complete" ] || { echo "run \`cargo bench -p occ-audit\` first; it generates $log" >&2; exit 2; }
cargo build --release -q -p occ-broker
head -n 100000 "$log" > "$dir/first-100k.jsonl"
for f in "$dir/first-100k.jsonl" "$log"; do
  /usr/bin/time -v target/release/occ audit verify "$f" > "$dir/verify.out" 2> "$dir/time.txt" || true
  lines=$(wc -l < "$f")
  rss=$(awk -F': ' '/Maximum resident/ {print $2}' "$dir/time.txt")
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$dir/time.txt")
  user=$(awk -F': ' '/User time/ {print $2}' "$dir/time.txt")
  sys=$(awk -F': ' '/System time/ {print $2}' "$dir/time.txt")
  echo "$lines events: peak RSS ${rss} KiB, wall ${wall}, user ${user}s, sys ${sys}s; $(head -c 200 "$dir/verify.out")"
done
