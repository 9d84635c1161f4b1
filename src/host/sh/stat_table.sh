# stat_table: a batch's stat table (stat_tables in transport/cmd.rs), after `set -- PATH...`:
# one `stat` process for every path of the batch's stat helpers that exists (on a fresh host
# nothing is there: no process at all), instead of one per helper; stat.sh looks its path up
# in st_t_ first. Tab-separated: an owner or group name may hold spaces (`domain users`).
#
# Arguments: PATH... (none holding a newline, tab or backslash).
# Stdin: not read.
# Output: none; sets st_t_ to `PATH<TAB>mode<TAB>uid<TAB>gid<TAB>owner<TAB>group<TAB>size` lines.
# Exit: not used (a failure leaves the table empty: the helpers then stat on their own).
# Needs: stat -c (GNU, BusyBox).
# shellcheck disable=SC2034 # st_t_ is read by stat.sh.

for f_ do shift; if [ -e "$f_" ] || [ -L "$f_" ]; then set -- "$@" "$f_"; fi; done
if [ $# -gt 1 ]; then st_t_=$(stat -c '%n	%a	%u	%g	%U	%G	%s' -- "$@" 2>/dev/null); fi
