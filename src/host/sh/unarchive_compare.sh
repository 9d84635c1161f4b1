# unarchive_compare: after unarchive_prelude.sh, which members are missing from DEST (the
# `unarchive` module's check).
#
# Arguments: none; d_ and l_ as unarchive_prelude.sh set them.
# Stdin: not read.
# Output: `missing MEMBER` per member absent from DEST, then `listed N`.
# Exit: 0.
# shellcheck disable=SC2154 # d_ and l_ are set by unarchive_prelude.sh.

printf '%s\n' "$l_" | {
  n_=0
  while IFS= read -r e_; do
    e_=${e_%/}
    case $e_ in ''|.|./) continue ;; esac
    n_=$((n_ + 1))
    if ! [ -e "$d_/$e_" ] && ! [ -L "$d_/$e_" ]; then printf 'missing %s\n' "$e_"; fi
  done
  printf 'listed %s\n' "$n_"
}
