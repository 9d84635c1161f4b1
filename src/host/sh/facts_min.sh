# facts_min: the `min` fact group: platform, distribution, user, date and time, DNS,
# environment, LSB, SELinux, package and service manager, Python.
#
# Part of the read-only fact gathering (src/exec/facts): the prologue, then each asked group in
# a subshell, in ONE command. Changes nothing on the host; every read may fail (a missing file
# or tool gives an empty section). Trusted text: no value from a playbook or a host is in it.
# Arguments: none. Stdin: not read.
# Output: sections uname, fqdn, bits, id, passwd, machine_id, os_release, debian_version,
#   centos_release, lsb_release, lsb_file, date, tz, resolv, selinux, pkg, init, env (one
#   NAME=VALUE line per variable, further lines of a value as `+LINE`), python (one JSON line,
#   from the first Python found; RDEPLOY_FACTS_PYTHON first).
# Exit: not used.
s uname; uname -n; uname -s; uname -r; uname -m; uname -v
s fqdn; a=$(getent hosts "$(uname -n)" | awk '{print $1; exit}')
if [ -n "$a" ]; then getent hosts "$a" | head -n 1; fi
s bits; getconf LONG_BIT || case $(uname -m) in *64*|s390x) echo 64;; *) echo 32;; esac
s id; id -un; id -u; id -g; id -ru; id -rg
s passwd; getent passwd "$(id -un)" || grep "^$(id -un):" /etc/passwd
s machine_id; cat /var/lib/dbus/machine-id || cat /etc/machine-id
s os_release; cat /etc/os-release || cat /usr/lib/os-release
s debian_version; cat /etc/debian_version
s centos_release; cat /etc/centos-release
s lsb_release; if command -v lsb_release >/dev/null; then lsb_release -a; fi
s lsb_file; cat /etc/lsb-release
s date; date '+%Y|%m|%A|%w|%W|%d|%H|%M|%S|%s|%Z|%z|%N'
s tz; y=$(date +%Y); date -d "$y-01-01 12:00" '+%Z %z'; date -d "$y-07-01 12:00" '+%Z %z'
s resolv; cat /etc/resolv.conf
s selinux; if [ -r /sys/fs/selinux/enforce ]; then cat /sys/fs/selinux/enforce; fi
s pkg; for f in /usr/bin/rpm-ostree /usr/bin/yum /usr/bin/dnf-3 /usr/bin/dnf5 /usr/bin/apt-get /usr/bin/zypper /usr/sbin/urpmi /usr/bin/pacman /bin/opkg /sbin/apk /usr/bin/emerge /usr/bin/xbps-install /usr/bin/swupd /usr/bin/dnf /usr/bin/microdnf /run/ostree-booted; do
if [ -e "$f" ]; then echo "$f"; fi; done
if [ -e /usr/bin/dnf ]; then echo "dnf_target=$(readlink -f /usr/bin/dnf)"; fi
if [ -x /usr/bin/rpm ] && /usr/bin/rpm -q --whatprovides /usr/bin/apt-get >/dev/null; then
echo apt_rpm; fi
s init; if [ -r /proc/1/comm ]; then echo "comm=$(cat /proc/1/comm)"
elif [ -L /sbin/init ]; then echo "comm=$(readlink /sbin/init)"; fi
if command -v systemctl >/dev/null; then echo systemctl
for c in /run/systemd/system/ /dev/.run/systemd/ /dev/.systemd/; do
if [ -e "$c" ]; then echo systemd_canary; fi; done
case $(readlink /sbin/init) in *systemd) echo systemd_init;; esac; fi
if command -v initctl >/dev/null && [ -e /etc/init/ ]; then echo upstart; fi
if [ -e /sbin/openrc ]; then echo openrc; fi
if [ -e /etc/init.d/ ]; then echo sysvinit; fi
if [ -e /etc/dinit.d/ ]; then echo dinit; fi
s env; awk 'BEGIN { for (k in ENVIRON) { n = split(ENVIRON[k], p, "\n")
printf "%s=%s\n", k, p[1]; for (i = 2; i <= n; i++) print "+" p[i] } }'
s python; for p in "${RDEPLOY_FACTS_PYTHON:-}" python3.14 python3.13 python3.12 python3.11 python3.10 python3.9 python3.8 /usr/bin/python3 python3; do
if [ -n "$p" ] && p=$(command -v "$p") && "$p" -c 'import sys, json
try:
    import ssl
    h = hasattr(ssl, "SSLContext")
except ImportError:
    h = False
v = sys.version_info
print(json.dumps({"executable": sys.executable, "has_sslcontext": h, "type": sys.implementation.name, "version": {"major": v[0], "minor": v[1], "micro": v[2], "releaselevel": v[3], "serial": v[4]}, "version_info": list(v)}))'
then break; fi; done
