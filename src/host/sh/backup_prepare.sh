# backup_prepare: creates the state folders and prunes old runs (prepare_cmd in
# src/backup/mod.rs), after `set -- STATE RUN KEEP ;`: keeps the newest KEEP runs (this one
# included), never one whose rollback is pending (runs/ID.pending). Run ids sort by start
# time, so the glob lists the runs oldest first; only mkdir (and rm for what goes) runs as a
# process.
#
# Arguments: STATE (the state folder) RUN (this run's id) KEEP
# Stdin: not read.
# Output: the tools' errors only.
# Exit: 0; 3 the folders cannot be made.
sd_=$1; run_=$2; keep_=$3
umask 077
mkdir -p -- "$sd_/runs" "$sd_/backups/$run_" || exit 3
chmod 700 -- "$sd_/runs" "$sd_/backups" "$sd_/backups/$run_" || exit 3
set -- "$sd_/backups"/*
n_=$#
for old_ in "$@"; do
  [ "$n_" -le "$keep_" ] && break
  n_=$((n_ - 1))
  id_=${old_##*/}
  [ "$id_" = "$run_" ] && continue
  [ -e "$sd_/runs/$id_.pending" ] && continue
  rm -rf -- "$old_" "$sd_/runs/$id_.json" "$sd_/runs/$id_.restored"
done
exit 0
