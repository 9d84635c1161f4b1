# unarchive_extract: after unarchive_prelude.sh, unpacks the archive into DEST, then applies
# MODE and OWNER[:GROUP] to each member (links skipped for the mode).
#
# Arguments: none; the prelude's variables.
# Stdin: not read.
# Output: `extracted`.
# Exit: 0; 5 unzip/tar failed; 6 a chmod/chown failed.
# shellcheck disable=SC2154 # f_ a_ d_ m_ o_ l_ are set by unarchive_prelude.sh.

if [ "$f_" = zip ]; then unzip -o -q "$a_" -d "$d_" || exit 5
else tar -xf "$a_" -C "$d_" || exit 5; fi
if [ -n "$m_" ] || [ -n "$o_" ]; then
  printf '%s\n' "$l_" | while IFS= read -r e_; do
    e_=${e_%/}
    case $e_ in ''|.|./) continue ;; esac
    if [ -n "$m_" ] && ! [ -L "$d_/$e_" ]; then chmod -- "$m_" "$d_/$e_" || exit 6; fi
    if [ -n "$o_" ]; then chown -h -- "$o_" "$d_/$e_" || exit 6; fi
  done || exit 6
fi
printf 'extracted\n'
