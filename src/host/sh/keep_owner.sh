# keep_owner: gives PATH the owner and group UID:GID of a file it replaces where permitted
# (keep_owner in transport/cmd.rs; put.sh does the same with KEEP): both, else the group,
# else neither. Appended after `set -- PATH UID:GID ;`.
#
# Arguments: PATH UID:GID (empty: nothing to do)
# Stdin: not read.
# Output: `rdeploy-not-kept OWNER:GROUP` (the names PATH has) when it did not get both.
# Exit: 0, or stat's failure.
# Needs: stat -c (GNU, BusyBox).
[ -n "$2" ] || exit 0
chown -- "$2" "$1" 2>/dev/null || chown -- ":${2#*:}" "$1" 2>/dev/null || :
[ "$(stat -c %u:%g -- "$1")" = "$2" ] || printf 'rdeploy-not-kept %s\n' "$(stat -c %U:%G -- "$1")"
