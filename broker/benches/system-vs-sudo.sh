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
runuser -u "$cmp_user" -- /usr/bin/sudo -n /usr/bin/true ||
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

as_agent() {
  runuser -u "$agent" -- env -i PATH="$home/bin:/usr/bin:/bin" HOME="$work" \
    OPENCLAW_TASK_SESSION_ID=bench LANG=C "$@"
}
as_cmp() {
  runuser -u "$cmp_user" -- env -i PATH="/usr/bin:/bin" HOME="$work" LANG=C "$@"
}

as_agent "$home/bin/sudo" -n /usr/bin/true 2>/dev/null || true
id=$("$bin_dir/occ" approvals --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')
"$bin_dir/occ" approve "$id" --session >/dev/null
as_agent "$home/bin/sudo" -n /usr/bin/true

echo "== sudo -n true: occ system broker (session grant) vs the real sudo, $runs runs each"
hyperfine -N --warmup 30 --runs "$runs" --export-json "$work/hf.json" \
  "runuser -u $agent -- env -i PATH=$home/bin:/usr/bin:/bin OPENCLAW_TASK_SESSION_ID=bench LANG=C $home/bin/sudo -n /usr/bin/true" \
  "runuser -u $cmp_user -- env -i PATH=/usr/bin:/bin LANG=C /usr/bin/sudo -n /usr/bin/true" >/dev/null
python3 - "$work/hf.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["results"]
occ, real = r[0], r[1]
for x, name in ((occ, "occ system"), (real, "real sudo")):
    print(f"{name:10} median {x['median']*1000:6.2f} ms   mean {x['mean']*1000:6.2f} ms ± {x['stddev']*1000:.2f}")
print(f"occ - sudo median {(occ['median']-real['median'])*1000:+6.2f} ms")
PY
echo "== where the time goes: one occ run under strace -c of the broker is in the README"
as_agent "$home/bin/sudo" -n /usr/bin/true
