# facts_hardware: the `hardware` fact group: memory, processors, mounts with their sizes
# (reading one mount's size may take $t's seconds, 10 by default as in Ansible, so a hung
# network mount does not hang the gathering).
#
# Part of the read-only fact gathering (src/exec/facts): the prologue, then each asked group in
# a subshell, in ONE command. Changes nothing on the host; every read may fail (a missing file
# or tool gives an empty section). Trusted text: no value from a playbook or a host is in it.
# Arguments: none. Stdin: not read.
# Output: sections meminfo, cpuinfo, xen, nproc, uptime, bind, lsblk, mounts (`M DEV MOUNT FS
#   OPTS DUMP PASS` then `S BLOCK FRAGMENT BLOCKS AVAIL INODES FREE_INODES` per mount).
# Exit: not used.
# shellcheck disable=SC2154 # t is set by facts_prologue.sh.
s meminfo; cat /proc/meminfo
s cpuinfo; grep -E '^(processor|vendor_id|model name|physical id|core id|cpu cores|siblings|Processor|cpu|Vendor)[[:space:]]*:' /proc/cpuinfo
s xen; if [ -e /proc/xen ]; then echo xen; elif [ "$(cat /sys/hypervisor/type)" = xen ]; then echo xen; fi
if grep -q '^flags.*\<vme\>' /proc/cpuinfo; then echo vme; fi
s nproc; nproc
s uptime; cat /proc/uptime
s bind; if command -v findmnt >/dev/null; then findmnt --list --noheadings --notruncate; fi
s lsblk; if command -v lsblk >/dev/null; then lsblk --list --noheadings --paths --output NAME,UUID --exclude 2; fi
s mounts; m=/etc/mtab; [ -e "$m" ] || m=/proc/mounts
while read -r dev mnt fs opts dump pass rest; do
case $dev in /*|\\*|*:/*) ;; *) continue;; esac; [ "$fs" = none ] && continue
printf 'M %s %s %s %s %s %s\n' "$dev" "$mnt" "$fs" "$opts" "$dump" "$pass"
$t stat -f -c 'S %S %s %b %a %c %d' "$(printf '%b' "$mnt")" </dev/null
done < "$m"
