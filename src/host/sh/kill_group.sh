# kill_group: ends the process group a session line started (kill_group_cmd in
# transport/cmd.rs), after `set -- -PGID TENTHS ;`: SIGTERM, up to TENTHS tenths of a second
# for it to go (checked every 0.1 s), then SIGKILL.
#
# Arguments: -PGID (the group, negated) and TENTHS.
# Stdin: not read.
# Output: none.
# Exit: always 0.
# Needs: `sleep 0.1` (GNU, BusyBox; not POSIX).
kill -s TERM -- "$1" 2>/dev/null; i=0; while kill -s 0 -- "$1" 2>/dev/null && [ "$i" -lt "$2" ]; do sleep 0.1; i=$((i+1)); done; kill -s KILL -- "$1" 2>/dev/null; :
