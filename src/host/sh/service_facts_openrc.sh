# service_facts_openrc: OpenRC's services (the `service_facts` module).
#
# Runs after the prelude (src/modules/system/service_facts.rs): C locale, PATH with the sbin
# folders, `has_ PROGRAM`. Stdin: not read.
# Arguments: none.
# Output: `rc-status -a -s -m` lines (brackets removed), a line with the byte 036, then
#   `rc-update show -v` lines.
# Exit: 127 when OpenRC is not the service manager; else 0.
has_ rc-status && has_ rc-update && ! has_ chkconfig && ! { has_ initctl; } || exit 127
rc-status -a -s -m 2>&1 | grep '^ ' | tr -d '[]'
printf '\036\n'
rc-update show -v 2>&1 | grep '|'
exit 0
