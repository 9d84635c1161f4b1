# stdin_bootstrap: the fixed command sent in place of a session line that holds a secret
# (stdin_bootstrap in transport/cmd.rs): the real line comes on stdin, so the secret is never
# in a process's arguments on the host (ps). It first becomes `sh` (exec: same process, still
# the group's leader), so the line's fast path applies whatever the login shell is.
#
# Arguments: none.
# Stdin: a line count N, then N lines: the line, evaluated in this shell; then the command's
#   own input, untouched (read takes one line at a time, never more).
# Output: the line's.
# Exit: 125 stdin ended before the line did; else the line's.
exec sh -c 'IFS= read -r n_ || exit 125; s_=; i_=0; while [ "$i_" -lt "$n_" ]; do l_=; IFS= read -r l_ || [ -n "$l_" ] || exit 125; if [ "$i_" -eq 0 ]; then s_=$l_; else s_="$s_
$l_"; fi; i_=$((i_ + 1)); done; unset n_ i_ l_; eval "$s_"'
