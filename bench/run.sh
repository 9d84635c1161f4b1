#!/usr/bin/env bash
# Benchmark of issues 4 and 16: a 10-step deploy on N test-fleet hosts (real sshd,
# loopback), by rdeploy and, in the same run, four baselines doing the same 10 steps:
#   (a) a minimal in-process russh client, the steps as 10 exec channels (the floor),
#   (a') the same client doing the file steps over one SFTP session with rdeploy's safety
#   steps (check, hard-link backup, temp file + fsync + posix-rename, verification: the
#   sftp floor), (b) OpenSSH with one ControlMaster per host, (c) ansible-playbook when it
#   is on PATH (forks = N, pipelining, no facts).
#   bench/run.sh [N] [--per-sshd K] [--reps R] [--no-ansible]    (default N = 50, R = 3)
#   bench/run.sh --canary [N]     (issue 15: the same with canary steps 5/25/50/100%, a 30 s
#                                  analysis per step and an approval after 25%)
#   bench/run.sh --rolling [N]    (issue 5: playbooks/rolling-update.yaml on N hosts in 5
#                                  batches, v1 then v2; prints the v2 run's wall time and timing)
# Prints wall time, controller CPU time (user + system, reaped children included) and peak
# RSS of each contender, each measured as a child process with wait4, and the ratio of its
# wall time to the floor's; then, in runs of their own with strace -f on one host's sshd,
# the programs and processes each floor and rdeploy's first and second runs start per host.
# Needs root and what the test fleet needs (scripts/test.sh --install-only); the process
# counts need strace (skipped, and said so, without it). See examples/fleet_bench.rs for
# what each contender does.
set -euo pipefail
cd "$(dirname "$0")/.."
MODE=drive
if [ "${1:-}" = "--rolling" ]; then MODE=rolling; shift; fi
if [ "${1:-}" = "--canary" ]; then MODE=canary; shift; fi
N=${1:-50}
[ $# -gt 0 ] && shift
cargo build --release --quiet --bin rdeploy --example fleet_bench
TARGET=${CARGO_TARGET_DIR:-target}
case "$TARGET" in /*) ;; *) TARGET=$PWD/$TARGET ;; esac
# Many hosts at once: each connection (and each OpenSSH process) needs descriptors.
ulimit -n 65536 2>/dev/null || true
RDEPLOY_BIN=$TARGET/release/rdeploy exec "$TARGET/release/examples/fleet_bench" "$MODE" "$N" "$@"
