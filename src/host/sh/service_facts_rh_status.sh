# service_facts_rh_status: `service NAME status` for each NAME (the `service_facts` module on
# Red Hat style hosts).
#
# Runs after the prelude (src/modules/system/service_facts.rs): C locale, PATH with the sbin
# folders, `has_ PROGRAM`. Stdin: not read.
# Arguments: NAME...
# Output: `NAME<TAB>RC<TAB>STDERR` lines (tabs and newlines of STDERR made spaces).
# Exit: 0.
for n_ do e_=$(service "$n_" status 2>&1 >/dev/null); r_=$?
  printf '%s\t%s\t%s\n' "$n_" "$r_" "$(printf '%s' "$e_" | tr '\t\n' '  ')"; done
exit 0
