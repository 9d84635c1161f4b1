#!/usr/bin/env bash
# Benchmark: validate and plan a large fleet without connecting to anything.
#   bench/plan.sh [HOSTS] [TASKS]     (defaults: 2000 hosts, 200 tasks)
# Generates an INI inventory with HOSTS hosts in 4 groups (with group_vars and host ranges)
# and a playbook with TASKS templated tasks in a role, then times `rdeploy plan` and `rdeploy
# run --syntax-check/--list-tasks/--list-hosts` (release build) over several runs and prints
# the median wall time and peak RSS. Baseline in the same run: `ansible-playbook --syntax-check`,
# `--list-tasks` and `--list-hosts` when ansible is installed, with the ratio of median times.
# RUNS (default 5) sets the number of runs per command.
set -euo pipefail
cd "$(dirname "$0")/.."
HOSTS=${1:-2000}
TASKS=${2:-200}
RUNS=${RUNS:-5}
cargo build --release --quiet
TARGET_DIR=${CARGO_TARGET_DIR:-target}
case $TARGET_DIR in /*) ;; *) TARGET_DIR=$PWD/$TARGET_DIR ;; esac
BIN=$TARGET_DIR/release/rdeploy
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

python3 - "$work" "$HOSTS" "$TASKS" <<'PY'
import os, sys
work, hosts, tasks = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
groups = ["web", "api", "db", "cache"]
os.makedirs(f"{work}/inventory/group_vars", exist_ok=True)
with open(f"{work}/inventory/hosts.ini", "w") as f:
    per = hosts // len(groups)
    for i, g in enumerate(groups):
        n = per if i < len(groups) - 1 else hosts - per * (len(groups) - 1)
        f.write(f"[{g}]\n{g}[0001:{n:04d}].example.com app_shard={i}\n\n")
    f.write("[prod:children]\n" + "\n".join(groups) + "\n")
with open(f"{work}/inventory/group_vars/all.yaml", "w") as f:
    f.write("app_root: /srv/app\napp_user: app\napp_port: 8080\n")
for g in groups:
    with open(f"{work}/inventory/group_vars/{g}.yaml", "w") as f:
        f.write(f"role_name: {g}\nlisten: 0.0.0.0\n")
os.makedirs(f"{work}/roles/big/tasks", exist_ok=True)
os.makedirs(f"{work}/roles/big/defaults", exist_ok=True)
with open(f"{work}/roles/big/defaults/main.yml", "w") as f:
    f.write("release: '1.0.{{ app_shard }}'\n")
with open(f"{work}/roles/big/tasks/main.yml", "w") as f:
    for t in range(tasks):
        k = t % 4
        if k == 0:
            f.write(f"- name: dir {t}\n  file:\n    path: \"{{{{ app_root }}}}/d{t}\"\n    state: directory\n    mode: '0755'\n")
        elif k == 1:
            f.write(f"- name: line {t}\n  lineinfile:\n    path: \"{{{{ app_root }}}}/conf\"\n    line: \"k{t}={{{{ listen }}}}:{{{{ app_port }}}}\"\n    create: yes\n  when: role_name != 'db'\n")
        elif k == 2:
            f.write(f"- name: run {t}\n  command: echo {{{{ release }}}} {t}\n  args:\n    creates: \"{{{{ app_root }}}}/m{t}\"\n  register: r{t}\n")
        else:
            f.write(f"- name: copy {t}\n  copy:\n    content: \"{{{{ inventory_hostname }}}} {{{{ release | upper }}}}\\n\"\n    dest: \"{{{{ app_root }}}}/f{t}\"\n  tags: [files]\n")
with open(f"{work}/site.yaml", "w") as f:
    f.write("- hosts: prod\n  serial: [1, '10%', '100%']\n  gather_facts: no\n  roles:\n    - big\n")
PY

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
declare -A WALL
measure() { # key, label, command...
  local key=$1 label=$2; shift 2
  local times=() rss=()
  for _ in $(seq "$RUNS"); do
    /usr/bin/time -f '%e %M' -o "$work/time" "$@" >/dev/null 2>"$work/err" || { cat "$work/err" >&2; return 1; }
    read -r t m <"$work/time"; times+=("$t"); rss+=("$m")
  done
  local t m
  t=$(printf '%s\n' "${times[@]}" | median)
  m=$(printf '%s\n' "${rss[@]}" | median)
  WALL[$key]=$t
  printf '%-44s median %7.3f s   peak RSS %7.1f MB\n' "$label" "$t" "$(awk "BEGIN {print $m/1024}")"
}
ratio() { # label, ansible key, rdeploy key
  awk -v a="${WALL[$2]}" -v r="${WALL[$3]}" -v l="$1" 'BEGIN {
    if (r <= 0) printf "%-44s rdeploy under the timer resolution (0.01 s)\n", l
    else if (a >= r) printf "%-44s rdeploy %.1fx faster\n", l, a / r
    else printf "%-44s rdeploy %.1fx SLOWER\n", l, r / a }'
}

echo "hosts=$HOSTS tasks=$TASKS runs=$RUNS"
# Sanity: the generated fleet is valid for rdeploy and plans into the expected batches.
"$BIN" plan "$work/site.yaml" -i "$work/inventory" --output json | python3 -c '
import json, sys
p = json.load(sys.stdin)["plays"][0]
print("plan: %d hosts, batches %s, %d tasks" % (len(p["hosts"]), "/".join(str(len(b)) for b in p["batches"]), len(p["tasks"])))'
measure plan "rdeploy plan" "$BIN" plan "$work/site.yaml" -i "$work/inventory"
measure syntax "rdeploy run --syntax-check" "$BIN" run "$work/site.yaml" -i "$work/inventory" --syntax-check
measure tasks "rdeploy run --list-tasks" "$BIN" run "$work/site.yaml" -i "$work/inventory" --list-tasks
measure hosts "rdeploy run --list-hosts" "$BIN" run "$work/site.yaml" -i "$work/inventory" --list-hosts
if command -v ansible-playbook >/dev/null; then
  echo "baseline: $(ansible-playbook --version 2>/dev/null | sed -n 1p)"
  export ANSIBLE_NOCOLOR=1 ANSIBLE_HOST_KEY_CHECKING=0 ANSIBLE_LOCAL_TEMP="$work/ansible-tmp"
  measure a_syntax "ansible-playbook --syntax-check" ansible-playbook -i "$work/inventory" "$work/site.yaml" --syntax-check
  measure a_tasks "ansible-playbook --list-tasks" ansible-playbook -i "$work/inventory" "$work/site.yaml" --list-tasks
  measure a_hosts "ansible-playbook --list-hosts" ansible-playbook -i "$work/inventory" "$work/site.yaml" --list-hosts
  ratio "--syntax-check: rdeploy vs ansible-playbook" a_syntax syntax
  ratio "--list-tasks:   rdeploy vs ansible-playbook" a_tasks tasks
  ratio "--list-hosts:   rdeploy vs ansible-playbook" a_hosts hosts
else
  echo "ansible-playbook not installed: no Ansible baseline (pip install ansible-core to add one)"
fi
