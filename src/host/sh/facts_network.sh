# facts_network: the `network` fact group: default routes and every interface under
# /sys/class/net with its addresses (`ip addr`, primary and secondary as Ansible asks for them).
# Like Ansible, no network facts at all on a host without ip.
#
# Part of the read-only fact gathering (src/exec/facts): the prologue, then each asked group in
# a subshell, in ONE command. Changes nothing on the host; every read may fail (a missing file
# or tool gives an empty section). Trusted text: no value from a playbook or a host is in it.
# Arguments: none. Stdin: not read.
# Output: sections ip, route4, route6, local4, local6, and per interface `if NAME` (KEY=VALUE
#   lines), `primary NAME` and `secondary NAME` (ip addr output).
# Exit: not used.
# shellcheck disable=SC2012 # brif holds interface names only.
s ip; command -v ip
s route4; ip -4 route get 8.8.8.8
s route6; ip -6 route get 2404:6800:400a:800::1012
s local4; ip -4 route show table local; s local6; ip -6 route show table local
for d in /sys/class/net/*; do [ -d "$d" ] || continue; n=${d##*/}; s "if $n"
for f in address mtu operstate type flags speed; do
if [ -e "$d/$f" ]; then printf '%s=%s\n' "$f" "$(cat "$d/$f")"; fi; done
if [ -e "$d/device/driver/module" ]; then
printf 'module=%s\n' "$(basename "$(readlink -f "$d/device/driver/module")")"; fi
if [ -e "$d/device" ]; then printf 'pciid=%s\n' "$(basename "$(readlink "$d/device")")"; fi
if [ -e "$d/bridge" ]; then echo bridge=1
printf 'brif=%s\n' "$(ls "$d/brif" | tr '\n' ' ')"
printf 'bridge_id=%s\n' "$(cat "$d/bridge/bridge_id")"
printf 'stp_state=%s\n' "$(cat "$d/bridge/stp_state")"; fi
if [ -e "$d/bonding" ]; then echo bonding=1
for f in slaves mode miimon lacp_rate primary all_slaves_active; do
printf 'bond_%s=%s\n' "$f" "$(cat "$d/bonding/$f")"; done; fi
if [ -e "$d/bonding_slave" ]; then
printf 'perm_macaddress=%s\n' "$(cat "$d/bonding_slave/perm_hwaddr")"; fi
s "primary $n"; ip addr show primary dev "$n" || ip addr show dev "$n"
s "secondary $n"; ip addr show secondary dev "$n"; done
