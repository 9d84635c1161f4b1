# service_read_state: a service's state (the `service`/`systemd` modules' check,
# src/modules/system/service.rs).
#
# Arguments (set -- by the builder): NAME SCOPE MANAGER
#   NAME     the unit or init script
#   SCOPE    systemctl's scope flag (--system, --user)
#   MANAGER  systemd or sysv to skip detection; auto detects (systemctl and /run/systemd/system)
# Stdin: not read.
# Output: `manager systemd|sysv|none`, then `load STATE`, `active STATE`, `enabled RC STATE`
#   (systemd) or `load loaded|not-found`, `running RC`, `enabled yes|no` (SysV).
# Exit: 0.

n_=$1 f_=$2
if [ "$3" = systemd ] || { [ "$3" != sysv ] && command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; }; then
  printf 'manager systemd\n'
  l_=$(systemctl "$f_" show -p LoadState --value -- "$n_" 2>/dev/null)
  printf 'load %s\n' "${l_:-unknown}"
  a_=$(systemctl "$f_" is-active -- "$n_" 2>/dev/null)
  printf 'active %s\n' "${a_:-unknown}"
  e_=$(systemctl "$f_" is-enabled -- "$n_" 2>/dev/null)
  printf 'enabled %s %s\n' "$?" "${e_:-unknown}"
  exit 0
fi
if ! command -v service >/dev/null 2>&1; then printf 'manager none\n'; exit 0; fi
printf 'manager sysv\n'
if [ -x "/etc/init.d/$n_" ]; then printf 'load loaded\n'; else printf 'load not-found\n'; fi
service "$n_" status >/dev/null 2>&1
printf 'running %s\n' "$?"
e_=no
for l_ in /etc/rc[2345].d/S[0-9][0-9]"$n_"; do [ -e "$l_" ] && e_=yes; done
printf 'enabled %s\n' "$e_"

