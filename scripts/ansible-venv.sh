#!/usr/bin/env bash
# The test oracle: ansible-core in a virtualenv of its own (never a requirement of rdeploy
# itself). Creates target/ansible-venv once (or $RDEPLOY_ANSIBLE_VENV) and prints the path of
# its ansible-playbook. Safe to run again: an existing, working venv is kept.
#   scripts/ansible-venv.sh          create if missing, print .../bin/ansible-playbook
set -euo pipefail
cd "$(dirname "$0")/.."

# The version the compatibility tests compare against (issue 12: ansible-core 2.19), and the
# `ansible` bundle of the same generation, from which only the collections public roles use
# most (ansible.posix: mount, sysctl, authorized_key...; community.general: ini_file, npm,
# timezone...) are unpacked into the venv, so the oracle accepts what ansible-playbook with the
# usual bundle accepts.
ANSIBLE_CORE_SPEC='ansible-core>=2.19,<2.20'
ANSIBLE_BUNDLE_SPEC='ansible>=12,<13'
COLLECTIONS='ansible/posix community/general'
venv=${RDEPLOY_ANSIBLE_VENV:-$PWD/target/ansible-venv}

# collections: unpacks $COLLECTIONS from the bundle's wheel into the venv (once).
collections() {
  local site
  site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  local c missing=0
  for c in $COLLECTIONS; do [ -d "$site/ansible_collections/$c" ] || missing=1; done
  [ "$missing" = 1 ] || return 0
  local dl
  dl=$(mktemp -d)
  "$venv/bin/pip" download -q --disable-pip-version-check --no-deps --only-binary=:all: -d "$dl" "$ANSIBLE_BUNDLE_SPEC" >&2
  "$venv/bin/python" - "$dl" "$site" $COLLECTIONS <<'PY'
import glob, sys, zipfile
dl, site, wanted = sys.argv[1], sys.argv[2], sys.argv[3:]
prefixes = tuple("ansible_collections/%s/" % c for c in wanted)
with zipfile.ZipFile(glob.glob(dl + "/ansible-*.whl")[0]) as z:
    for name in z.namelist():
        if name.startswith(prefixes):
            z.extract(name, site)
PY
  rm -rf "$dl"
}

if [ -x "$venv/bin/ansible-playbook" ] && "$venv/bin/ansible-playbook" --version >/dev/null 2>&1; then
  collections
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
collections
echo "$venv/bin/ansible-playbook"
