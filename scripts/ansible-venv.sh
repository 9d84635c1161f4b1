#!/usr/bin/env bash
# The test oracle: ansible-core in a virtualenv of its own (never a requirement of rdeploy
# itself). Creates target/ansible-venv once (or $RDEPLOY_ANSIBLE_VENV) and prints the path of
# its ansible-playbook. Safe to run again: an existing, working venv is kept.
#   scripts/ansible-venv.sh          create if missing, print .../bin/ansible-playbook
set -euo pipefail
cd "$(dirname "$0")/.."

# The version the compatibility tests compare against (issue 12: ansible-core 2.19).
ANSIBLE_CORE_SPEC='ansible-core>=2.19,<2.20'
venv=${RDEPLOY_ANSIBLE_VENV:-$PWD/target/ansible-venv}

if [ -x "$venv/bin/ansible-playbook" ] && "$venv/bin/ansible-playbook" --version >/dev/null 2>&1; then
  echo "$venv/bin/ansible-playbook"
  exit 0
fi

py=$(command -v python3 || true)
[ -n "$py" ] || { echo "python3 is required for the ansible-core oracle" >&2; exit 1; }
if ! "$py" -c 'import venv, ensurepip' >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-venv >&2
  else
    echo "please install python3-venv" >&2; exit 1
  fi
fi
rm -rf "$venv"
mkdir -p "$(dirname "$venv")"
"$py" -m venv "$venv" >&2
"$venv/bin/pip" install -q --disable-pip-version-check "$ANSIBLE_CORE_SPEC" >&2
echo "$venv/bin/ansible-playbook"
