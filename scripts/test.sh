#!/usr/bin/env bash
# The README's test command: installs what the tests need on a fresh machine, then runs
# every test (unit, fixture and end-to-end). Safe to run again.
#   scripts/test.sh                  install what is missing, then cargo test
#   scripts/test.sh --install-only   install what is missing, run nothing
#   scripts/test.sh ARGS...          extra ARGS go to cargo test
set -euo pipefail
cd "$(dirname "$0")/.."

install_only=0
if [ "${1:-}" = "--install-only" ]; then install_only=1; shift; fi

# has BINARY: the binary is on PATH or at the absolute path given.
has() { case "$1" in /*) [ -x "$1" ] ;; *) command -v "$1" >/dev/null ;; esac; }

need=()
# want PACKAGE BINARY...: PACKAGE is installed when one of its BINARYs is missing.
want() {
  local pkg=$1; shift
  local b
  for b in "$@"; do
    if ! has "$b"; then need+=("$pkg"); return; fi
  done
}

[ "$install_only" = 1 ] || has cargo || { echo "cargo is required (https://rustup.rs)" >&2; exit 1; }
# Tools the test suites use. The SSH fleet (tests/support/fleet.rs) needs the first five;
# its tests use ps on the hosts, and become tests use sudo.
want openssh-server /usr/sbin/sshd
want openssh-client ssh ssh-keygen
want iproute2 ip
want util-linux unshare nsenter
want mount mount
want procps ps sysctl
want cron crontab
want sudo sudo
want python3 python3
want curl curl
# The health-probe tests: `from: host` HTTP falls back to wget, TLS probes need a server.
want wget wget
want openssl openssl
# tests/progress.rs runs rdeploy on a pseudo-terminal with `script` (util-linux, in bsdutils).
want bsdutils script
# The repository-key modules (apt_key, rpm_key) and their tests make and read keys with gpg;
# the apt tests build a .deb with dpkg-deb.
want gpg gpg
want dpkg dpkg-deb
# tests/sysconf.rs drives ufw in the fleet's own network namespace (never the machine's).
want ufw /usr/sbin/ufw
# tests/host_sh.rs checks the host programs (src/host/sh) with shellcheck and runs them under
# dash, bash --posix and busybox sh, with GNU and with BusyBox tools.
want shellcheck shellcheck
want busybox busybox
# tests/approval.rs opens `rdeploy show --html` pages in headless Chromium.
want chromium chromium
# tests/blue_green.rs switches a real HAProxy (Debian's package, started by the test, never as
# a system service) through its runtime API, which the haproxy module reaches with socat.
want haproxy /usr/sbin/haproxy
want socat socat
# useradd (passwd) and kill (procps/util-linux) are part of every Debian base system.

if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && has apt-get; then
    echo "installing: ${need[*]}" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
  else
    echo "please install: ${need[*]}" >&2; exit 1
  fi
fi
# sshd refuses to start without its privilege-separation directory.
if [ "$(id -u)" = 0 ] && [ ! -d /run/sshd ]; then mkdir -p -m 0755 /run/sshd; fi

# The compatibility tests compare rdeploy with ansible-playbook (ansible-core in a venv of its
# own, tests only): RDEPLOY_ANSIBLE_PLAYBOOK names it for them.
RDEPLOY_ANSIBLE_PLAYBOOK=$(scripts/ansible-venv.sh)
export RDEPLOY_ANSIBLE_PLAYBOOK

[ "$install_only" = 1 ] && exit 0

# cargo test, then one total over every test binary ("N passed, N failed"), from the
# "test result:" lines; the exit code stays cargo's. Only stdout goes through tee, so libtest
# is told to keep its colours when stdout is a terminal.
color=()
if [ -t 1 ]; then
  case " $* " in *" -- "*) color=(--color=always) ;; *) color=(-- --color=always) ;; esac
fi
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
cargo test --all-targets --locked "$@" ${color[@]+"${color[@]}"} | tee "$log"
status=${PIPESTATUS[0]}
# The SSH end-to-end tests once more with the file plane's fallback forced (issue 16): every
# file operation through shell programs, as on a host without the sftp subsystem.
if [ $# -eq 0 ]; then
  echo "== tests/ssh.rs again with the shell file plane forced (RDEPLOY_FILE_PLANE=shell)"
  RDEPLOY_FILE_PLANE=shell cargo test --locked --test ssh ${color[@]+"${color[@]}"} | tee -a "$log"
  forced=${PIPESTATUS[0]}
  if [ "$status" = 0 ]; then status=$forced; fi
fi
set -e
sed 's/\x1b\[[0-9;]*m//g' "$log" | awk '
  /^test result:/ {
    for (i = 2; i <= NF; i++) {
      if ($i == "passed;") passed += $(i - 1)
      if ($i == "failed;") failed += $(i - 1)
    }
  }
  END { printf "%d passed, %d failed\n", passed, failed }'
exit "$status"
