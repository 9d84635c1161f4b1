//! The read-only POSIX shell that collects facts: one fixed script per fact group, joined
//! into one command, so gathering is one round trip whatever `gather_subset` asks for.
//!
//! Owns what is read on the host and how it is printed: `@@NAME` lines open sections of raw
//! file or command output, which [`super::parse`] reads. Trusted text written here: no value
//! from a playbook or a host ever becomes part of it. It must not change the host, and every
//! read is allowed to fail (a missing file or tool gives an empty section).

/// Prologue of every gathering: errors of missing tools are not facts, and `s NAME` opens a
/// section.
pub const PROLOGUE: &str = "exec 2>/dev/null; s() { printf '\\n@@%s\\n' \"$1\"; }; \
t=; command -v timeout >/dev/null && t=\"timeout ${RDEPLOY_FACTS_TIMEOUT:-10}\"";

/// The `min` group: platform, distribution, user, date and time, DNS, environment, LSB,
/// SELinux, package and service manager, Python.
pub const MIN: &str = "s uname; uname -n; uname -s; uname -r; uname -m; uname -v; \
s fqdn; a=$(getent hosts \"$(uname -n)\" | awk '{print $1; exit}'); \
if [ -n \"$a\" ]; then getent hosts \"$a\" | head -n 1; fi; \
s bits; getconf LONG_BIT || case $(uname -m) in *64*|s390x) echo 64;; *) echo 32;; esac; \
s id; id -un; id -u; id -g; id -ru; id -rg; \
s passwd; getent passwd \"$(id -un)\" || grep \"^$(id -un):\" /etc/passwd; \
s machine_id; cat /var/lib/dbus/machine-id || cat /etc/machine-id; \
s os_release; cat /etc/os-release || cat /usr/lib/os-release; \
s debian_version; cat /etc/debian_version; \
s centos_release; cat /etc/centos-release; \
s lsb_release; if command -v lsb_release >/dev/null; then lsb_release -a; fi; \
s lsb_file; cat /etc/lsb-release; \
s date; date '+%Y|%m|%A|%w|%W|%d|%H|%M|%S|%s|%Z|%z|%N'; \
s tz; y=$(date +%Y); date -d \"$y-01-01 12:00\" '+%Z %z'; date -d \"$y-07-01 12:00\" '+%Z %z'; \
s resolv; cat /etc/resolv.conf; \
s selinux; if [ -r /sys/fs/selinux/enforce ]; then cat /sys/fs/selinux/enforce; fi; \
s pkg; for f in /usr/bin/rpm-ostree /usr/bin/yum /usr/bin/dnf-3 /usr/bin/dnf5 /usr/bin/apt-get \
/usr/bin/zypper /usr/sbin/urpmi /usr/bin/pacman /bin/opkg /sbin/apk /usr/bin/emerge \
/usr/bin/xbps-install /usr/bin/swupd /usr/bin/dnf /usr/bin/microdnf /run/ostree-booted; do \
if [ -e \"$f\" ]; then echo \"$f\"; fi; done; \
if [ -e /usr/bin/dnf ]; then echo \"dnf_target=$(readlink -f /usr/bin/dnf)\"; fi; \
if [ -x /usr/bin/rpm ] && /usr/bin/rpm -q --whatprovides /usr/bin/apt-get >/dev/null; then \
echo apt_rpm; fi; \
s init; if [ -r /proc/1/comm ]; then echo \"comm=$(cat /proc/1/comm)\"; \
elif [ -L /sbin/init ]; then echo \"comm=$(readlink /sbin/init)\"; fi; \
if command -v systemctl >/dev/null; then echo systemctl; \
for c in /run/systemd/system/ /dev/.run/systemd/ /dev/.systemd/; do \
if [ -e \"$c\" ]; then echo systemd_canary; fi; done; \
case $(readlink /sbin/init) in *systemd) echo systemd_init;; esac; fi; \
if command -v initctl >/dev/null && [ -e /etc/init/ ]; then echo upstart; fi; \
if [ -e /sbin/openrc ]; then echo openrc; fi; \
if [ -e /etc/init.d/ ]; then echo sysvinit; fi; \
if [ -e /etc/dinit.d/ ]; then echo dinit; fi; \
s env; awk 'BEGIN { for (k in ENVIRON) { n = split(ENVIRON[k], p, \"\\n\"); \
printf \"%s=%s\\n\", k, p[1]; for (i = 2; i <= n; i++) print \"+\" p[i] } }'; \
s python; for p in \"${RDEPLOY_FACTS_PYTHON:-}\" python3.14 python3.13 python3.12 python3.11 \
python3.10 python3.9 python3.8 /usr/bin/python3 python3; do \
if [ -n \"$p\" ] && p=$(command -v \"$p\") && \"$p\" -c 'import sys, json
try:
    import ssl
    h = hasattr(ssl, \"SSLContext\")
except ImportError:
    h = False
v = sys.version_info
print(json.dumps({\"executable\": sys.executable, \"has_sslcontext\": h, \"type\": sys.implementation.name, \"version\": {\"major\": v[0], \"minor\": v[1], \"micro\": v[2], \"releaselevel\": v[3], \"serial\": v[4]}, \"version_info\": list(v)}))'; \
then break; fi; done";

/// The `network` group: default routes, every interface under `/sys/class/net` with its
/// addresses (`ip addr`, primary and secondary as Ansible asks for them). Like Ansible, no
/// network facts at all on a host without `ip`.
pub const NETWORK: &str = "s ip; command -v ip; \
s route4; ip -4 route get 8.8.8.8; \
s route6; ip -6 route get 2404:6800:400a:800::1012; \
s local4; ip -4 route show table local; s local6; ip -6 route show table local; \
for d in /sys/class/net/*; do [ -d \"$d\" ] || continue; n=${d##*/}; s \"if $n\"; \
for f in address mtu operstate type flags speed; do \
if [ -e \"$d/$f\" ]; then printf '%s=%s\\n' \"$f\" \"$(cat \"$d/$f\")\"; fi; done; \
if [ -e \"$d/device/driver/module\" ]; then \
printf 'module=%s\\n' \"$(basename \"$(readlink -f \"$d/device/driver/module\")\")\"; fi; \
if [ -e \"$d/device\" ]; then printf 'pciid=%s\\n' \"$(basename \"$(readlink \"$d/device\")\")\"; fi; \
if [ -e \"$d/bridge\" ]; then echo bridge=1; \
printf 'brif=%s\\n' \"$(ls \"$d/brif\" | tr '\\n' ' ')\"; \
printf 'bridge_id=%s\\n' \"$(cat \"$d/bridge/bridge_id\")\"; \
printf 'stp_state=%s\\n' \"$(cat \"$d/bridge/stp_state\")\"; fi; \
if [ -e \"$d/bonding\" ]; then echo bonding=1; \
for f in slaves mode miimon lacp_rate primary all_slaves_active; do \
printf 'bond_%s=%s\\n' \"$f\" \"$(cat \"$d/bonding/$f\")\"; done; fi; \
if [ -e \"$d/bonding_slave\" ]; then \
printf 'perm_macaddress=%s\\n' \"$(cat \"$d/bonding_slave/perm_hwaddr\")\"; fi; \
s \"primary $n\"; ip addr show primary dev \"$n\" || ip addr show dev \"$n\"; \
s \"secondary $n\"; ip addr show secondary dev \"$n\"; done";

/// The `hardware` group: memory, processors, mounts (with their sizes; reading one mount's
/// size may take `gather_timeout` seconds, 10 by default, as in Ansible, so a hung network
/// mount does not hang the gathering).
pub const HARDWARE: &str = "s meminfo; cat /proc/meminfo; \
s cpuinfo; grep -E '^(processor|vendor_id|model name|physical id|core id|cpu cores|siblings|Processor|cpu|Vendor)[[:space:]]*:' /proc/cpuinfo; \
s xen; if [ -e /proc/xen ]; then echo xen; elif [ \"$(cat /sys/hypervisor/type)\" = xen ]; then echo xen; fi; \
if grep -q '^flags.*\\<vme\\>' /proc/cpuinfo; then echo vme; fi; \
s nproc; nproc; \
s uptime; cat /proc/uptime; \
s bind; if command -v findmnt >/dev/null; then findmnt --list --noheadings --notruncate; fi; \
s lsblk; if command -v lsblk >/dev/null; then lsblk --list --noheadings --paths --output NAME,UUID --exclude 2; fi; \
s mounts; m=/etc/mtab; [ -e \"$m\" ] || m=/proc/mounts; \
while read -r dev mnt fs opts dump pass rest; do \
case $dev in /*|\\\\*|*:/*) ;; *) continue;; esac; [ \"$fs\" = none ] && continue; \
printf 'M %s %s %s %s %s %s\\n' \"$dev\" \"$mnt\" \"$fs\" \"$opts\" \"$dump\" \"$pass\"; \
$t stat -f -c 'S %S %s %b %a %c %d' \"$(printf '%b' \"$mnt\")\" </dev/null; \
done < \"$m\"";

/// The `virtual` group: the signs Ansible's Linux virtualization check reads.
pub const VIRTUAL: &str = "s cgroup1; cat /proc/1/cgroup; \
s environ1; tr '\\000' '\\n' < /proc/1/environ | grep '^container='; \
s virt; for f in /proc/vz /proc/lve /proc/bc /.dockerenv /.dockerinit /proc/xen /dev/kvm; do \
if [ -e \"$f\" ]; then echo \"exists=$f\"; fi; done; \
printf 'systemd_container=%s\\n' \"$(cat /run/systemd/container)\"; \
printf 'xen_caps=%s\\n' \"$(cat /proc/xen/capabilities | tr '\\n' ' ')\"; \
for f in product_name sys_vendor product_family bios_vendor; do \
printf '%s=%s\\n' \"$f\" \"$(cat \"/sys/devices/virtual/dmi/id/$f\")\"; done; \
printf 'vxid=%s\\n' \"$(grep '^VxID:' /proc/self/status)\"; \
printf 'cpu_models=%s\\n' \"$(grep -E '^(model name|vendor_id)' /proc/cpuinfo | sort -u | tr '\\n' '|')\"; \
printf 'modules=%s\\n' \"$(cut -d' ' -f1 /proc/modules | tr '\\n' ' ')\"";
