#!/bin/sh
# occ installer. User mode (default): checks the toolchain, builds the release binaries and the
# static sudo shim, then runs `occ install`, which copies them into $OCC_HOME/bin (default
# ~/.openclaw/bin), writes missing policy templates, starts the broker and puts the shim first
# in the agent's PATH. System mode (--system, as root): the same build, then
# `occ install --system`: root-owned binaries in /usr/local, /etc/occ naming the agent and its
# approvers, the shim first in the agent's PATH, and the root broker service.
# Idempotent: run it again to upgrade. POSIX sh; no bash, python or npm.
#
#   ./install/install.sh [--dry-run] [--bin-dir DIR]
#   sudo ./install/install.sh --system --agent USER --approver USER|%GROUP
#        [--create-approvers-group] [--bin-dir DIR]
#
#   --dry-run      print every step and every change, make none (user mode)
#   --bin-dir DIR  install prebuilt binaries from DIR (occ, occ-scan, occ-shim); no build
#   --system       system mode: a root broker service; needs --agent and --approver
#   --agent USER   system mode: the agent's user (never root)
#   --approver X   system mode: who approves, a user or %group (never the agent)
#   --create-approvers-group
#                  system mode: create the occ-approvers group, add the --approver user to
#                  it, and make the group the approvers
#
# Environment: CARGO_TARGET_DIR (honoured), OCC_HOME, ALLOW_ROOT=1 (user mode as root anyway).
set -eu

prog=install.sh
say() { printf '%s\n' "$*"; }
die() { printf '%s: %s\n' "$prog" "$*" >&2; exit 2; }

dry_run=0
bin_dir=
system=0
agent=
approver=
create_group=0
while [ $# -gt 0 ]; do
  case $1 in
    --dry-run) dry_run=1 ;;
    --bin-dir)
      [ $# -ge 2 ] || die "--bin-dir needs a directory"
      bin_dir=$2
      shift ;;
    --bin-dir=*) bin_dir=${1#--bin-dir=} ;;
    --system) system=1 ;;
    --agent)
      [ $# -ge 2 ] || die "--agent needs a user name"
      agent=$2
      shift ;;
    --agent=*) agent=${1#--agent=} ;;
    --approver)
      [ $# -ge 2 ] || die "--approver needs a user or %group name"
      approver=$2
      shift ;;
    --approver=*) approver=${1#--approver=} ;;
    --create-approvers-group) create_group=1 ;;
    -h|--help)
      sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//'
      exit 0 ;;
    *) die "unknown option '$1' (see --help)" ;;
  esac
  shift
done

# Prints a command, then runs it unless this is a dry run.
run() {
  say "+ $*"
  if [ "$dry_run" = 0 ]; then
    "$@"
  fi
}

if [ "$system" = 1 ]; then
  [ -n "$agent" ] && [ -n "$approver" ] ||
    die "--system needs --agent USER and --approver USER|%GROUP (see --help)"
  [ "$dry_run" = 0 ] || die "--dry-run is not available with --system yet"
  [ "$(id -u)" = 0 ] || die "--system installs a root service: run it as root, e.g.
sudo $0 --system --agent $agent --approver $approver --bin-dir target/release"
else
  [ -z "$agent$approver" ] && [ "$create_group" = 0 ] ||
    die "--agent, --approver and --create-approvers-group go with --system"
  if [ "$(id -u)" = 0 ] && [ "${ALLOW_ROOT:-0}" != 1 ]; then
    die "refusing to run as root: occ's user mode installs for the agent's own user. Run it as
that user, or set ALLOW_ROOT=1 if root really is the agent's user (or pass --system)."
  fi
fi

here=$(cd "$(dirname "$0")/.." && pwd)

if [ -n "$bin_dir" ]; then
  [ -d "$bin_dir" ] || die "--bin-dir $bin_dir: no such directory"
  bin_dir=$(cd "$bin_dir" && pwd)
  for f in occ occ-scan occ-shim; do
    [ -x "$bin_dir/$f" ] || die "--bin-dir $bin_dir has no executable $f; build with
cargo build --release -p occ-broker -p occ-scan -p occ-shim (not --workspace: that links the
test-only clock into occ), or pass the directory that holds occ, occ-scan and occ-shim"
  done
  from=$bin_dir
  shim=$bin_dir/occ-shim
else
  # Toolchain.
  if ! command -v cargo >/dev/null 2>&1; then
    die "cargo is not on PATH. Install Rust 1.85 or newer (https://rustup.rs:
curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh), open a new shell, then run
$0 again; or pass --bin-dir DIR with prebuilt binaries."
  fi
  rustc_v=$(rustc --version 2>/dev/null || true)
  say "toolchain: ${rustc_v:-rustc not found} ($(command -v cargo))"
  cd "$here"
  target_dir=${CARGO_TARGET_DIR:-$here/target}
  case $target_dir in /*) ;; *) target_dir=$here/$target_dir ;; esac

  if [ "$(uname -m)" != x86_64 ]; then
    die "only x86_64 Linux builds of the static shim are wired up here; build occ-shim
statically for $(uname -m) yourself and pass --bin-dir"
  fi
  # The shim must be static: musl when the target is there (or rustup can add it), else a
  # static glibc build.
  musl=x86_64-unknown-linux-musl
  static=
  if command -v rustup >/dev/null 2>&1; then
    if rustup target list --installed 2>/dev/null | grep -qx "$musl"; then
      static=musl
    elif [ "$dry_run" = 1 ]; then
      say "+ rustup target add $musl"
      static=musl
    elif rustup target add "$musl"; then
      static=musl
    fi
  fi

  run cargo build --release -p occ-broker -p occ-scan ||
    die "cargo build failed; see the errors above (rustup default stable sets a toolchain)"
  shim=
  if [ "$static" = musl ]; then
    if run cargo build --release -p occ-shim --target "$musl"; then
      shim=$target_dir/$musl/release/occ-shim
    else
      say "the musl build failed; falling back to a static glibc build"
    fi
  else
    say "the $musl target is not available; falling back to a static glibc build"
  fi
  if [ -z "$shim" ]; then
    gnu=x86_64-unknown-linux-gnu
    say "+ RUSTFLAGS=\"-C target-feature=+crt-static\" cargo build --release -p occ-shim --target $gnu"
    if [ "$dry_run" = 0 ]; then
      RUSTFLAGS="-C target-feature=+crt-static" \
        cargo build --release -p occ-shim --target "$gnu" ||
        die "cannot build the static shim (musl and static glibc both failed); see the errors above"
    fi
    shim=$target_dir/$gnu/release/occ-shim
  fi
  from=$target_dir/release
fi

if [ "$dry_run" = 1 ]; then
  if [ -x "$from/occ" ]; then
    say "+ $from/occ install --dry-run --from $from --shim $shim"
    "$from/occ" install --dry-run --from "$from" --shim "$shim"
  else
    say "+ $from/occ install --from $from --shim $shim"
  fi
  say "dry run: nothing was changed"
  exit 0
fi

if [ "$system" = 1 ]; then
  set -- --system --agent "$agent" --approver "$approver"
  [ "$create_group" = 0 ] || set -- "$@" --create-approvers-group
  say "+ $from/occ install $* --from $from --shim $shim"
  set +e
  "$from/occ" install "$@" --from "$from" --shim "$shim"
  rc=$?
  set -e
  [ "$rc" -le 1 ] || exit "$rc"
  cat <<EOF

What next:
  - $agent's sudo now asks the root broker. An approver ($approver) sees and decides with
      /usr/local/bin/occ approvals
      /usr/local/bin/occ approve ID
  - Check the boundary at any time (as root):   /usr/local/bin/occ doctor --system
  - The audit log is /var/log/occ/privileged-audit.jsonl; as root: occ audit verify
  - Remove everything occ installed (keeps the audit log): sudo /usr/local/bin/occ uninstall --system
EOF
  exit "$rc"
fi

say "+ $from/occ install --from $from --shim $shim"
set +e
"$from/occ" install --from "$from" --shim "$shim"
rc=$?
set -e
[ "$rc" -le 1 ] || exit "$rc"

# `occ install` printed "What next", written from its checks (the agent's PATH, its real sudo).
exit "$rc"
