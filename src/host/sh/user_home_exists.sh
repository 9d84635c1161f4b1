# user_home_exists: whether HOME (else the home in NAME's passwd entry) exists (the `user`
# module, src/modules/system/user.rs), after `set -- NAME HOME ;`.
#
# Arguments: NAME HOME (empty: from passwd)
# Stdin: not read.
# Output: `yes` or `no`.
# Exit: 0.
h_=$2
[ -n "$h_" ] || h_=$(getent passwd "$1" | cut -d: -f6)
if [ -n "$h_" ] && [ -e "$h_" ]; then echo yes; else echo no; fi
