# service_facts_show_states: `systemctl show NAME --property=ActiveState` for each unit file
# that list-units did not list (the `service_facts` module), after
# service_facts_systemd_guard.sh.
#
# Runs after the prelude (src/modules/system/service_facts.rs): C locale, PATH with the sbin
# folders, `has_ PROGRAM`. Stdin: not read.
# Arguments: none.
# Output: `NAME<TAB>RC<TAB>OUTPUT` lines (tabs and newlines of OUTPUT made spaces).
# Exit: 0.
{ systemctl list-units --no-pager --type service --all --plain 2>/dev/null | awk '/\.service/ { print "U " $1 }'
  systemctl list-unit-files --no-pager --type service --all 2>/dev/null | awk '/\.service/ { print "F " $1 }'; } |
awk '$1 == "U" { s[$2] = 1; next } !($2 in s) { s[$2] = 1; print $2 }' |
while read -r n_; do o_=$(systemctl show "$n_" --property=ActiveState 2>/dev/null); r_=$?
  printf '%s\t%s\t%s\n' "$n_" "$r_" "$(printf '%s' "$o_" | tr '\t\n' '  ')"; done
exit 0
