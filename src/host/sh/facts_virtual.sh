# facts_virtual: the `virtual` fact group: the signs Ansible's Linux virtualization check
# reads.
#
# Part of the read-only fact gathering (src/exec/facts): the prologue, then each asked group in
# a subshell, in ONE command. Changes nothing on the host; every read may fail (a missing file
# or tool gives an empty section). Trusted text: no value from a playbook or a host is in it.
# Arguments: none. Stdin: not read.
# Output: sections cgroup1, environ1, virt (KEY=VALUE lines).
# Exit: not used.
# shellcheck disable=SC2002 # cat | tr: the missing file's error goes to /dev/null as any other.
s cgroup1; cat /proc/1/cgroup
s environ1; tr '\000' '\n' < /proc/1/environ | grep '^container='
s virt; for f in /proc/vz /proc/lve /proc/bc /.dockerenv /.dockerinit /proc/xen /dev/kvm; do
if [ -e "$f" ]; then echo "exists=$f"; fi; done
printf 'systemd_container=%s\n' "$(cat /run/systemd/container)"
printf 'xen_caps=%s\n' "$(cat /proc/xen/capabilities | tr '\n' ' ')"
for f in product_name sys_vendor product_family bios_vendor; do
printf '%s=%s\n' "$f" "$(cat "/sys/devices/virtual/dmi/id/$f")"; done
printf 'vxid=%s\n' "$(grep '^VxID:' /proc/self/status)"
printf 'cpu_models=%s\n' "$(grep -E '^(model name|vendor_id)' /proc/cpuinfo | sort -u | tr '\n' '|')"
printf 'modules=%s\n' "$(cut -d' ' -f1 /proc/modules | tr '\n' ' ')"
