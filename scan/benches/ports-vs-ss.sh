#!/usr/bin/env bash
# Benchmark: `occ-scan cycle` and `occ-scan ports` vs `ss -tulpn` vs `lsof -nP -i` on a host with N extra listening
# sockets (default 2,000), in one run: wall time (hyperfine) and peak RSS (/usr/bin/time -v).
#
#   scan/benches/ports-vs-ss.sh [N]        # needs hyperfine, iproute2 (ss), lsof, time, python3
#
# It builds occ-scan in release mode, starts one holder process with N listeners on
# 127.0.0.1, runs the tools against the same socket table, then stops the holder (by its pid).
set -euo pipefail
cd "$(dirname "$0")/../.."

n=${1:-2000}
runs=${RUNS:-30}
for tool in hyperfine ss lsof python3 /usr/bin/time; do
  command -v "$tool" >/dev/null || { echo "missing: $tool (apt-get install hyperfine iproute2 lsof python3 time)" >&2; exit 2; }
done

cargo build --release -q -p occ-scan
bin=$PWD/target/release/occ-scan
work=$(mktemp -d)
holder_pid=
cleanup() {
  if [ -n "$holder_pid" ]; then kill "$holder_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# The holder: N listening TCP sockets, kept open until its stdin closes.
mkfifo "$work/ctl"
cat >"$work/hold.py" <<'PY'
import resource, socket, sys
n = int(sys.argv[1])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, n + 256), hard))
keep = []
for _ in range(n):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()
    keep.append(s)
print("ready", flush=True)
sys.stdin.read()
PY
python3 "$work/hold.py" "$n" <"$work/ctl" >"$work/ready" &
holder_pid=$!
exec 3>"$work/ctl"
for _ in $(seq 100); do grep -q ready "$work/ready" 2>/dev/null && break; sleep 0.1; done
grep -q ready "$work/ready" || { echo "holder did not start" >&2; exit 2; }

export OCC_HOME=$work/home
mkdir -p "$OCC_HOME/security"
echo '[]' >"$OCC_HOME/security/approved_ports.json"
listening=$(ss -Htln | wc -l)
echo "== $(nproc) cores, $(uname -r); TCP listeners on the host: $listening (holder: $n)"
echo "== occ-scan ports sees: $("$bin" ports --json | python3 -c 'import json,sys; r=json.load(sys.stdin); print(r["counts"]["listening"], "listening,", len(r["findings"]), "findings")')"

# occ-scan exits 1 (findings); -i keeps hyperfine going. Output goes to /dev/null for all.
# The cycle: preflight, ports, egress, assess, reports, notify (no openclaw CLI on this host).
"$bin" cycle --quiet >/dev/null 2>&1 || true
hyperfine -N -i --warmup 3 --runs "$runs" --export-markdown "$work/wall.md" \
  -n "occ-scan cycle --quiet" "$bin cycle --quiet" \
  -n "occ-scan ports --json" "$bin ports --json" \
  -n "occ-scan ports" "$bin ports" \
  -n "ss -tulpn" "ss -tulpn" \
  -n "lsof -nP -i" "lsof -nP -i" >&2
echo
echo "### wall time ($runs runs, $n extra listeners)"
cat "$work/wall.md"

echo
echo "### peak RSS (median of 5 runs, /usr/bin/time -v)"
echo "| command | peak RSS |"
echo "|:---|---:|"
rss() {
  local name=$1; shift
  local vals=()
  for _ in 1 2 3 4 5; do
    /usr/bin/time -v -o "$work/time.txt" "$@" >/dev/null 2>&1 || true
    vals+=("$(awk -F': ' '/Maximum resident/ {print $2}' "$work/time.txt")")
  done
  local med
  med=$(printf '%s\n' "${vals[@]}" | sort -n | sed -n 3p)
  echo "| \`$name\` | $(awk -v k="$med" 'BEGIN {printf "%.1f MiB", k/1024}') |"
}
rss "occ-scan cycle --quiet" "$bin" cycle --quiet
rss "occ-scan ports --json" "$bin" ports --json
rss "ss -tulpn" ss -tulpn
rss "lsof -nP -i" lsof -nP -i

exec 3>&-
