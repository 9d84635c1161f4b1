# service_detect: which tool manages services, for a daemon_reload with no unit to read
# (src/modules/system/service.rs).
#
# Arguments: none. Stdin: not read.
# Output: `manager systemd|sysv|none`, as service_read_state.sh prints it.
# Exit: 0.

if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then printf 'manager systemd\n'
elif command -v service >/dev/null 2>&1; then printf 'manager sysv\n'
else printf 'manager none\n'; fi
