# service_facts_chkconfig: chkconfig's listing with Ansible's retries (the `service_facts`
# module): `-l --allservices` (SLES 11) when no line has seven runlevels but some has one,
# `--list` (RHEL 5) when its error asks for it.
#
# Runs after the prelude (src/modules/system/service_facts.rs): C locale, PATH with the sbin
# folders, `has_ PROGRAM`. Stdin: not read.
# Arguments: none.
# Output: chkconfig's lines.
# Exit: 127 no chkconfig; 3 no temporary file; else printf's.
has_ chkconfig || exit 127
full_='^.*[[:space:]]+[0-9]:(on|off)[[:space:]]+[0-9]:(on|off)[[:space:]]+[0-9]:(on|off)[[:space:]]+[0-9]:(on|off)[[:space:]]+[0-9]:(on|off)[[:space:]]+[0-9]:(on|off)[[:space:]]+[0-9]:(on|off)'
e_=$(mktemp) || exit 3
o_=$(chkconfig 2>"$e_")
if ! printf '%s\n' "$o_" | grep -Eq "$full_"; then
  if printf '%s\n' "$o_" | grep -Eq '^.*[[:space:]]+(on|off)'; then o_=$(chkconfig -l --allservices 2>/dev/null)
  elif grep -q -e --list "$e_"; then o_=$(chkconfig --list 2>/dev/null); fi
fi
rm -f -- "$e_"
printf '%s\n' "$o_"
