# service_sysv_enable: sets a SysV service's boot links (src/modules/system/service.rs), with
# update-rc.d (Debian) or chkconfig (Red Hat).
#
# Arguments (set -- by the builder): NAME on|off
# Stdin: not read.
# Output: the tool's.
# Exit: the tool's; 1 when neither tool is there.

if command -v update-rc.d >/dev/null 2>&1; then
  if [ "$2" = on ]; then update-rc.d "$1" defaults && update-rc.d "$1" enable; else update-rc.d "$1" disable; fi
elif command -v chkconfig >/dev/null 2>&1; then
  chkconfig "$1" "$2"
else
  printf 'rdeploy: neither update-rc.d nor chkconfig found to change boot links\n' >&2; exit 1
fi
