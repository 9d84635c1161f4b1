#!/usr/bin/env bash
# Benchmark: validate and plan a large fleet without connecting to anything.
#   bench/plan.sh [HOSTS] [TASKS]     (defaults: 2000 hosts, 200 tasks)
# Generates an INI inventory with HOSTS hosts in 4 groups (with group_vars and host ranges)
# and a playbook with TASKS templated tasks in a role, then times `rdeploy plan` and
# `rdeploy run --syntax-check` (release build) over several runs and prints the median wall
# time and peak RSS. Baseline in the same run: `ansible-playbook --syntax-check` and
# `--list-hosts` when ansible is installed.
set -euo pipefail
cd "$(dirname "$0")/.."
HOSTS=${1:-2000}
TASKS=${2:-200}
RUNS=${RUNS:-5}
cargo build --release --quiet
BIN=$PWD/target/release/rdeploy
[ -n "${CARGO_TARGET_DIR:-}" ] && BIN=$CARGO_TARGET_DIR/release/rdeploy
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
measure() { # label, command...
  local label=$1; shift
  local times=() rss=()
  for _ in $(seq "$RUNS"); do
    /usr/bin/time -f '%e %M' -o "$work/time" "$@" >/dev/null 2>"$work/err" || { cat "$work/err" >&2; return 1; }
    read -r t m <"$work/time"; times+=("$t"); rss+=("$m")
  done
  printf '%-42s median %6.3f s   peak RSS %6.1f MB\n' "$label" \
    "$(printf '%s\n' "${times[@]}" | median)" "$(printf "%s\n" "${rss[@]}" | median | awk "{print \$1/1024}")"
}
echo "hosts=$HOSTS tasks=$TASKS runs=$RUNS"
measure "rdeploy plan" "$BIN" plan "$work/site.yaml" -i "$work/inventory"
measure "rdeploy run --syntax-check" "$BIN" run "$work/site.yaml" -i "$work/inventory" --syntax-check
measure "rdeploy run --list-tasks" "$BIN" run "$work/site.yaml" -i "$work/inventory" --list-tasks
if command -v ansible-playbook >/dev/null; then
  measure "ansible-playbook --syntax-check" ansible-playbook -i "$work/inventory" "$work/site.yaml" --syntax-check
  measure "ansible-playbook --list-hosts" ansible-playbook -i "$work/inventory" "$work/site.yaml" --list-hosts
else
  echo "ansible-playbook not installed: no Ansible baseline (pip install ansible-core to add one)"
fi
