# backup_prune_parents: after an `absent` entry is restored (src/backup/mod.rs), after
# `set -- PATH N ;`: removes the N folders above PATH that the step may have created, deepest
# first, stopping at the first that is not empty (rmdir removes nothing else).
#
# Arguments: PATH N
# Stdin: not read.
# Output: none.
# Exit: always 0.
q_=$1; n_=$2
up_() {
  while [ "${q_%/}" != "$q_" ] && [ "$q_" != / ]; do q_=${q_%/}; done
  case $q_ in */*) q_=${q_%/*} ;; *) q_=. ;; esac
  while [ "${q_%/}" != "$q_" ]; do q_=${q_%/}; done
  [ -n "$q_" ] || q_=/
}
while [ "$n_" -gt 0 ]; do
  up_
  rmdir -- "$q_" 2>/dev/null || break
  n_=$((n_ - 1))
done
exit 0
