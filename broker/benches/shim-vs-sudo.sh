#!/usr/bin/env bash
# Whole-process cost of an agent's `sudo -n true` through occ (session grant, default
# durability) against the real `/usr/bin/sudo -n true`, side by side in one hyperfine run, and
# the broker's end-to-end decisions per second (shim → broker → audit append → answer).
#
# usage: broker/benches/shim-vs-sudo.sh [BIN_DIR] [AGENT_USER]
#   BIN_DIR     holds release `occ` and `occ-shim` (default: target/release)
#   AGENT_USER  the unprivileged user to run as (default: occ-agent); needs NOPASSWD sudo for
#               /usr/bin/true, as the CI drop-in gives it. Run this script as root.
set -euo pipefail
bin_dir=$(realpath "${1:-target/release}")
agent=${2:-occ-agent}
runs=${RUNS:-500}
command -v hyperfine >/dev/null || { echo "needs hyperfine (apt-get install hyperfine)" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "run as root (it switches to $agent)" >&2; exit 2; }

work=$(mktemp -d /tmp/occ-bench.XXXXXX)
chmod 0755 "$work"
home=$work/openclaw
mkdir -p "$home/bin"
cp "$bin_dir/occ-shim" "$home/bin/sudo"
cp "$bin_dir/occ" "$home/bin/occ"
chown -R "$agent:" "$home"
chmod 0700 "$home" "$home/bin"
trap 'kill "$(cat "$home/run/broker.pid" 2>/dev/null)" 2>/dev/null || true; rm -rf "$work"' EXIT

as_agent() {
  runuser -u "$agent" -- env -i PATH="$home/bin:/usr/bin:/bin" HOME="$work" OCC_HOME="$home" \
    OCC_MODE=user OPENCLAW_TASK_SESSION_ID=bench LANG=C "$@"
}

as_agent sudo -n /usr/bin/true 2>/dev/null || true
id=$(as_agent occ approvals --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')
as_agent occ approve "$id" --session >/dev/null

echo "== sudo -n true: occ shim (session grant) vs the real sudo, $runs runs each"
as_agent hyperfine -N --warmup 30 --runs "$runs" --export-json "$home/hf.json" \
  "$home/bin/sudo -n /usr/bin/true" "/usr/bin/sudo -n /usr/bin/true" >/dev/null
python3 - "$home/hf.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["results"]
occ, real = r[0], r[1]
for x, name in ((occ, "occ shim"), (real, "real sudo")):
    print(f"{name:10} median {x['median']*1000:6.2f} ms   mean {x['mean']*1000:6.2f} ms ± {x['stddev']*1000:.2f}")
print(f"occ adds   median {(occ['median']-real['median'])*1000:6.2f} ms")
PY

echo "== broker decisions per second (new pending requests, 8 callers at once)"
n=2000
start=$(date +%s%N)
seq "$n" | as_agent xargs -P 8 -I{} "$home/bin/sudo" -n /usr/bin/echo "req-{}" 2>/dev/null || true
end=$(date +%s%N)
python3 -c "import sys; n,s,e=int(sys.argv[1]),int(sys.argv[2]),int(sys.argv[3]); print(f'{n} requests in {(e-s)/1e9:.2f} s = {n/((e-s)/1e9):.0f} decisions/s (whole processes: shim start, broker decision, audit append, answer)')" "$n" "$start" "$end"
