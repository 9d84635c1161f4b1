# hash_table: a batch's sha256 table (stat_tables in transport/cmd.rs), after
# `set -- PATH...`: one sha256sum process for the regular files among PATHs (a FIFO would
# block; the helpers hash nothing else either); stat.sh looks its path up in sh_t_ first.
#
# Arguments: PATH... (none holding a newline, tab or backslash).
# Stdin: not read.
# Output: none; sets sh_t_ to sha256sum's lines; clears the positional parameters.
# Exit: not used.
# shellcheck disable=SC2034 # sh_t_ is read by stat.sh.

for f_ do shift; if [ -f "$f_" ] && ! [ -L "$f_" ]; then set -- "$@" "$f_"; fi; done
if [ $# -gt 1 ]; then sh_t_=$(sha256sum -- "$@" 2>/dev/null); fi; set --
