# backup_preparable: whether `mkdir -p DIR` would succeed, for --check (preparable in
# src/backup/mod.rs), after `set -- DIR ;`: the first existing folder on the way must be a
# writable, searchable directory. Read-only.
#
# Arguments: DIR
# Stdin: not read.
# Output: why not, on stderr.
# Exit: 0 it would; 1 it would not.
# shellcheck disable=SC2015 # either test failing is the error case: that is the intent.
d_=$1
while [ ! -e "$d_" ] && [ ! -L "$d_" ]; do d_=$(dirname -- "$d_"); done
[ -d "$d_" ] || { echo "$d_ is not a directory" >&2; exit 1; }
[ -w "$d_" ] && [ -x "$d_" ] || { echo "$d_ is not writable by $(id -un)" >&2; exit 1; }
