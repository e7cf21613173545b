#!/usr/bin/env bash
# Whole-process cost of an agent's `sudo -n true` through the shim to the SYSTEM broker (a live
# --session grant, audit.fsync at its default `always`) against `/usr/bin/sudo -n true` for a
# user with a NOPASSWD rule, side by side in one hyperfine run. The system broker runs the
# command itself: no real sudo, no PAM, no sudoers parsing per call.
#
# usage: broker/benches/system-vs-sudo.sh [BIN_DIR] [AGENT_USER] [SUDO_USER]
#   BIN_DIR     holds release `occ` and `occ-shim` (default: target/release)
#   AGENT_USER  the agent (default: occ-bench-agent, created if missing; it gets no sudo rights)
#   SUDO_USER   the comparison user with NOPASSWD sudo for /usr/bin/true (default: occ-agent,
#               as the CI drop-in gives it)
# Run as root on a machine without a real occ system install: it uses /etc/occ, /run/occ,
# /var/lib/occ and /var/log/occ and removes them afterwards (it refuses if /etc/occ exists).
set -euo pipefail
bin_dir=$(realpath "${1:-target/release}")
agent=${2:-occ-bench-agent}
cmp_user=${3:-occ-agent}
runs=${RUNS:-500}
command -v hyperfine >/dev/null || { echo "needs hyperfine (apt-get install hyperfine)" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 2; }
[ -e /etc/occ ] && { echo "/etc/occ exists: this would disturb a real system install" >&2; exit 2; }
id "$agent" >/dev/null 2>&1 || useradd --create-home --shell /bin/sh "$agent"
setpriv --reuid="$cmp_user" --regid="$cmp_user" --init-groups /usr/bin/sudo -n /usr/bin/true ||
  { echo "$cmp_user needs NOPASSWD sudo for /usr/bin/true" >&2; exit 2; }

work=$(mktemp -d /tmp/occ-sysbench.XXXXXX)
chmod 0755 "$work"
cleanup() {
  kill "$(cat /run/occ/broker.pid 2>/dev/null)" 2>/dev/null || true
  sleep 0.5
  rm -rf "$work" /etc/occ /var/lib/occ /var/log/occ /run/occ
}
trap cleanup EXIT
install -d -m 0700 /etc/occ
printf '{"version": 1, "requesters": ["%s"], "approvers": ["root"]}\n' "$agent" >/etc/occ/broker.json
cp references/command-policy.json references/prompt-policy.json /etc/occ/
chmod 0600 /etc/occ/*.json
"$bin_dir/occ" broker --system >/dev/null
home=$work/openclaw
mkdir -p "$home/bin"
cp "$bin_dir/occ-shim" "$home/bin/sudo"
chown -R "$agent:" "$home"

# setpriv switches uid, gid and groups without a PAM session, so neither side pays for one.
as_agent=(setpriv --reuid="$agent" --regid="$agent" --init-groups env -i PATH="$home/bin:/usr/bin:/bin"
  HOME="$work" OPENCLAW_TASK_SESSION_ID=bench LANG=C)
as_cmp=(setpriv --reuid="$cmp_user" --regid="$cmp_user" --init-groups env -i PATH=/usr/bin:/bin
  HOME="$work" LANG=C)
as_agent() { "${as_agent[@]}" "$@"; }

as_agent "$home/bin/sudo" -n /usr/bin/true 2>/dev/null || true
id=$("$bin_dir/occ" approvals --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')
"$bin_dir/occ" approve "$id" --session >/dev/null
as_agent "$home/bin/sudo" -n /usr/bin/true

echo "== sudo -n true: occ system broker (session grant) vs the real sudo, $runs runs each"
hyperfine -N --warmup 30 --runs "$runs" --export-json "$work/hf.json" \
  "${as_agent[*]} $home/bin/sudo -n /usr/bin/true" \
  "${as_cmp[*]} /usr/bin/sudo -n /usr/bin/true" >/dev/null
python3 - "$work/hf.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["results"]
occ, real = r[0], r[1]
for x, name in ((occ, "occ system"), (real, "real sudo")):
    print(f"{name:10} median {x['median']*1000:6.2f} ms   mean {x['mean']*1000:6.2f} ms ± {x['stddev']*1000:.2f}")
print(f"occ - sudo median {(occ['median']-real['median'])*1000:+6.2f} ms")
PY
echo "== where the broker's time goes (audit timestamps of the last 50 runs)"
python3 - /var/log/occ/privileged-audit.jsonl <<'PY'
import json, sys, datetime
ev = [json.loads(l) for l in open(sys.argv[1])]
ts = lambda e: datetime.datetime.fromisoformat(e["timestamp"].replace("Z", "+00:00")).timestamp() * 1000
runs, last = [], {}
for e in ev:
    t = e["event_type"]
    if t == "request_received": last = {"rr": ts(e)}
    elif t == "exec_start" and "rr" in last: last["es"] = ts(e)
    elif t == "exec_finish" and "es" in last:
        runs.append((last["es"] - last["rr"], ts(e) - last["es"], e.get("run_time", 0))); last = {}
runs = runs[-50:]
med = lambda xs: sorted(xs)[len(xs) // 2]
print(f"request_received -> exec_start (decide, spawn, exec_start durable): median {med([r[0] for r in runs]):.0f} ms")
print(f"exec_start -> exec_finish (release, exec, run, waitpid):          median {med([r[1] for r in runs]):.0f} ms")
print("(timestamps have millisecond resolution)")
PY
