# realpath: prints PATH after following every symlink, as `readlink -f -- PATH` does
# (realpath_cmd in transport/cmd.rs).
#
# Arguments (set -- by the builder): PATH
# Stdin: not read.
# Output: the resolved path and a newline. A path that is not a symlink (existing, or missing in
#   an existing folder) is resolved with shell built-ins (`cd -P`, $PWD: no process); a link,
#   a dangling link on the way or a folder that cannot be entered goes to readlink -f.
# Exit: 0; 1 a missing folder on the way (no output), as readlink -f.
# Needs: readlink -f (GNU, BusyBox).

if ! [ -L "$1" ]; then
  if [ -d "$1" ]; then
    cd -P -- "$1" 2>/dev/null && { printf '%s\n' "$PWD"; exit 0; }
  else
    case $1 in */*) d_=${1%/*} ;; *) d_=. ;; esac
    case ${1##*/} in ''|.|..) ;; *)
      cd -P -- "${d_:-/}" 2>/dev/null && { printf '%s/%s\n' "${PWD%/}" "${1##*/}"; exit 0; }
      # A missing folder (not even a dangling link): readlink -f prints nothing and fails.
      [ -e "${d_:-/}" ] || [ -L "${d_:-/}" ] || exit 1 ;;
    esac
  fi
fi
exec readlink -f -- "$1"
