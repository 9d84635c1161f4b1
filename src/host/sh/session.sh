# session: the process-group supervisor, the tail of every SSH exec line (session_line in
# transport/cmd.rs), after `[exec </dev/null; ]set -- ARGV... ; `. Run by the login user's shell.
#
# Arguments: ARGV, the command (Cmd::wrap: `sh -c SCRIPT`, or sudo/su around it).
# Stdin: the command's (or /dev/null when it has none).
# Output: `RDEPLOY-PGID PGID` as the first line (the transport strips it and anything a login
#   script printed before it: it kills that group on timeout or cancel, see kill_group.sh), then
#   the command's own output.
# How: sshd has already made the login shell a session and group leader (setsid() in
#   session.c); this checks it in /proc/self/stat (pid field = process-group field) with
#   built-ins only, then, when the shell is `sh` and ARGV is `sh -c SCRIPT`, evaluates SCRIPT
#   in this very shell (positional parameters and its own variables cleared first: one exec
#   less per command), else `exec`s ARGV. Where that cannot be confirmed (no /proc, another SSH
#   server) it falls back to util-linux `setsid -w`, and without setsid to the current group.
# Exit: the command's.
# One line on purpose, byte for byte what was sent before it became a file (it is sent with
# every command).
g_=; p_=x; c_=; if IFS= read -r g_ 2>/dev/null < /proc/self/stat; then p_=${g_%% *}; c_=${g_#*'('}; c_=${c_%') '*}; g_=${g_##*') '}; g_=${g_#* * }; g_=${g_%% *}; fi; if [ "$g_" = "$p_" ]; then printf 'RDEPLOY-PGID %s\n' "$$"; if [ "$c_" = sh ] && [ $# -eq 3 ] && [ "$1" = sh ] && [ "$2" = -c ]; then c_=$3; eval "unset c_ g_ p_; set --
$c_"; exit; fi; exec "$@"; fi; S='printf "RDEPLOY-PGID %s\n" "$$"; exec "$@"'; if command -v setsid >/dev/null 2>&1; then exec setsid -w sh -c "$S" rdeploy "$@"; else exec sh -c "$S" rdeploy "$@"; fi
