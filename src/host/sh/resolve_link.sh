# resolve_link: in front of stat.sh for stat_resolved_cmd (transport/cmd.rs), after
# `set -- PATH ;`: when PATH is a symlink, replaces it by the path it finally points to
# (readlink -f: every component but the last must exist).
#
# Arguments: PATH
# Stdin: not read.
# Output: an error line on stderr when the link cannot be resolved.
# Exit: 3 the link cannot be resolved; otherwise it goes on (with the resolved path as $1).
if [ -L "$1" ]; then r_=$(readlink -f -- "$1") || { printf 'rdeploy: cannot resolve %s\n' "$1" >&2; exit 3; }; set -- "$r_"; fi
