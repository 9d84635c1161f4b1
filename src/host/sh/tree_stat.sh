# tree_stat: the state of each path of a tree under ROOT (the `copy` module's check of a
# folder, src/modules/files/copy.rs), after `set -- ROOT`.
#
# Arguments: ROOT
# Stdin: relative paths under ROOT, one per line.
# Output: per existing path `KIND<TAB>MODE<TAB>UID<TAB>GID<TAB>OWNER<TAB>GROUP<TAB>SHA256<TAB>PATH`
#   (lstat: KIND link, directory, file or other; SHA256 `-` unless a regular file); missing
#   paths print nothing.
# Exit: 0; 4 ROOT exists but is not a directory; 3 a path cannot be examined.
# Needs: stat -c, sha256sum (GNU, BusyBox).
# shellcheck disable=SC2209 # k_=link, k_=file are words, not commands.

if ! [ -d "$1" ]; then
  if [ -e "$1" ] || [ -L "$1" ]; then printf 'rdeploy: %s is not a directory\n' "$1" >&2; exit 4; fi
  exit 0
fi
cd -- "$1" || exit 3
while IFS= read -r p_; do
  if [ -L "$p_" ]; then k_=link
  elif [ -d "$p_" ]; then k_=directory
  elif [ -f "$p_" ]; then k_=file
  elif [ -e "$p_" ]; then k_=other
  else continue; fi
  a_=$(stat -c '%a	%u	%g	%U	%G' -- "$p_") || exit 3
  h_=-
  if [ "$k_" = file ]; then h_=$(sha256sum < "$p_") || exit 3; h_=${h_%% *}; fi
  printf '%s\t%s\t%s\t%s\n' "$k_" "$a_" "$h_" "$p_"
done
