# service_facts_systemd_guard: goes on only when systemd is the init system (Ansible's
# is_systemd_managed), in front of the `service_facts` module's systemd reads.
#
# Runs after the prelude (src/modules/system/service_facts.rs): C locale, PATH with the sbin
# folders, `has_ PROGRAM`. Stdin: not read.
# Arguments: none.
# Output: none.
# Exit: 127 when systemd does not manage this host; otherwise it goes on.
has_ systemctl || exit 127
{ [ -e /run/systemd/system/ ] || [ -e /dev/.run/systemd/ ] || [ -e /dev/.systemd/ ] || [ "$(cat /proc/1/comm 2>/dev/null)" = systemd ]; } || exit 127

