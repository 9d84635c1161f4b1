# backup_pending: marks (1) or unmarks (0) a run whose rollback did not finish, or (2) unmarks
# it and records that its rollback restored everything (src/backup/mod.rs), after
# `set -- STATE RUN 0|1|2 ;`.
#
# Arguments: STATE RUN 0|1|2
# Stdin: not read.
# Output: the tools' errors only.
# Exit: 0, or mkdir's/rm's failure.
f_="$1/runs/$2.pending"
if [ "$3" = 1 ]; then mkdir -p -- "$1/runs" && : > "$f_"; else rm -f -- "$f_"; fi || exit
if [ "$3" = 2 ]; then : > "$1/runs/$2.restored"; fi
