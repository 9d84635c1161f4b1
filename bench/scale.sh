#!/usr/bin/env bash
# Benchmark of issue 13 (scale): rdeploy on N test-fleet hosts (real sshd, loopback, K hosts
# per sshd) of which 5% fail, a quarter each way: connection refused, blackholed (SYNs
# dropped), authentication failure, a failing task. Prints the wall time, the controller's
# peak RSS, the descriptors it held at most and at the recap (bound: 4 x forks + 64), its
# children, the fleet user's processes left on the hosts, and the failed hosts per category
# (each must be exactly the hosts made to fail that way, else exit 1).
#   bench/scale.sh [N] [--per-sshd K] [--forks F] [--connect-timeout S]
#   (defaults: N = 1000, K = 50, F = 50, S = 20)
# Needs root and what the test fleet needs (scripts/test.sh --install-only). See
# examples/scale_bench.rs.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet --bin rdeploy --example scale_bench
TARGET=${CARGO_TARGET_DIR:-target}
case "$TARGET" in /*) ;; *) TARGET=$PWD/$TARGET ;; esac
RDEPLOY_BIN=$TARGET/release/rdeploy exec "$TARGET/release/examples/scale_bench" "$@"
