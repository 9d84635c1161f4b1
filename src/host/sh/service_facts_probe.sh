# service_facts_probe: which service tools are there, and whether systemd is the init system
# (the `service_facts` module).
#
# Runs after the prelude (src/modules/system/service_facts.rs): C locale, PATH with the sbin
# folders, `has_ PROGRAM`. Stdin: not read.
# Arguments: none.
# Output: one line per tool found (service, chkconfig, initctl, rc-status, rc-update,
#   systemctl), `canary` per systemd run folder, `init-systemd`, `init.d`.
# Exit: 0.
for p_ in service chkconfig initctl rc-status rc-update systemctl; do has_ "$p_" && printf '%s\n' "$p_"; done
for c_ in /run/systemd/system/ /dev/.run/systemd/ /dev/.systemd/; do [ -e "$c_" ] && echo canary; done
[ "$(cat /proc/1/comm 2>/dev/null)" = systemd ] && echo init-systemd
[ -e /etc/init.d ] && echo init.d
exit 0
