#!/usr/bin/env bash
# Benchmark: the README's first command (playbooks/site.yaml on the local connection).
#   bench/site.sh [RUNS]      (default 5)
# Prints the median wall time of a first (fresh target) and a second (nothing to change) run
# of the release build, and how many commands (processes) each task ran on the host, from
# the JSON events. Baseline in the same run: `ansible-playbook` on the same playbook with a
# local connection, when installed.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-5}
cargo build --release --quiet
BIN=$PWD/target/release/rdeploy
if [ -n "${CARGO_TARGET_DIR:-}" ]; then
  case "$CARGO_TARGET_DIR" in /*) BIN=$CARGO_TARGET_DIR/release/rdeploy ;; *) BIN=$PWD/$CARGO_TARGET_DIR/release/rdeploy ;; esac
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
now() { date +%s.%N; }
first=() second=()
for i in $(seq "$RUNS"); do
  root=$work/run$i
  t0=$(now); "$BIN" run playbooks/site.yaml -i inventory/local.yaml -e "app_root=$root" --output json >"$work/first.json"; t1=$(now)
  "$BIN" run playbooks/site.yaml -i inventory/local.yaml -e "app_root=$root" --output json >"$work/second.json"; t2=$(now)
  first+=("$(echo "$t1 - $t0" | awk '{print $1 - $3}')")
  second+=("$(echo "$t2 - $t1" | awk '{print $1 - $3}')")
done
printf 'site.yaml, local connection, %s runs (release build)\n' "$RUNS"
printf '  first run (fresh target)   median %.3f s\n' "$(printf '%s\n' "${first[@]}" | median)"
printf '  second run (no changes)    median %.3f s\n' "$(printf '%s\n' "${second[@]}" | median)"
python3 - "$work/first.json" "$work/second.json" <<'PY'
import json, sys
for label, path in (("first", sys.argv[1]), ("second", sys.argv[2])):
    task, rows = None, []
    for line in open(path):
        e = json.loads(line)
        if e["event"] == "task":
            task = e["name"]
        elif e["event"] == "result":
            r = e["result"]
            rows.append((task, r["status"], r["commands"]))
    total = sum(c for _, _, c in rows)
    print(f"  {label} run: {total} commands for {len(rows)} task results "
          f"({total / max(len(rows), 1):.2f} per task)")
    for t, s, c in rows:
        print(f"    {c:2d}  {s:8s} {t}")
PY
if command -v ansible-playbook >/dev/null; then
  root=$work/ansible
  # The interpreter next to ansible-playbook (a venv's python), not whatever `python3` is first.
  py=$(dirname "$(command -v ansible-playbook)")/python
  [ -x "$py" ] || py=$(command -v python3)
  ans=(ansible-playbook -i inventory/local.yaml playbooks/site.yaml -e "app_root=$root" -e "ansible_python_interpreter=$py")
  t0=$(now); "${ans[@]}" >"$work/ansible1.log" 2>&1 || { echo "  ansible-playbook failed:"; tail -5 "$work/ansible1.log"; exit 0; }; t1=$(now)
  "${ans[@]}" >"$work/ansible2.log" 2>&1 || { echo "  ansible-playbook failed:"; tail -5 "$work/ansible2.log"; exit 0; }; t2=$(now)
  printf '  ansible-playbook first %.3f s, second %.3f s\n' "$(echo "$t1 $t0" | awk '{print $1-$2}')" "$(echo "$t2 $t1" | awk '{print $1-$2}')"
else
  echo "  ansible-playbook not installed: no Ansible baseline"
fi
