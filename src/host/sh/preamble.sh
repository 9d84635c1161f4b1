# preamble: runs PRE before the main command in one round trip (Cmd::after in
# transport/cmd.rs); the main command's script follows in the same shell.
#
# Arguments (set -- by the builder): NONCE PRE (PRE is a script, evaluated in a subshell).
# Stdin: /dev/null for PRE; the rest is the main command's.
# Output: PRE's output, then `\nRDEPLOY-PRE NONCE STATUS` on stdout and `\nRDEPLOY-PRE NONCE` on
#   stderr; then the main command's.
# Exit: 97 PRE failed (the main command did not run); else the main command's. The positional
#   parameters are cleared before the main command.

( eval "$2" ) < /dev/null
s_=$?
printf '\nRDEPLOY-PRE %s %s\n' "$1" "$s_"
printf '\nRDEPLOY-PRE %s\n' "$1" >&2
[ "$s_" -eq 0 ] || exit 97
set --

