#!/usr/bin/env bash
# The README's test command: installs what the tests need on a fresh machine, then runs
# every test (unit, fixture and end-to-end). Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v cargo >/dev/null || { echo "cargo is required (https://rustup.rs)" >&2; exit 1; }
# Tools the test suites use. Later suites (the SSH fleet) add openssh-server and iproute2 here.
command -v python3 >/dev/null || need+=(python3)
command -v sudo >/dev/null || need+=(sudo)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
  else
    echo "please install: ${need[*]}" >&2; exit 1
  fi
fi

cargo test --all-targets --locked "$@"
