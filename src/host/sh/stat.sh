# stat: a path's state as `key value` lines (stat_cmd and friends in transport/cmd.rs, parsed by
# parse_stat). Runs in the command's own shell, or as the function st_f_ shared by a batch.
#
# Arguments: PATH [UNLESS_SHA MAX]
#   PATH        the path (lstat: a symlink is reported as a link, not followed)
#   UNLESS_SHA  with MAX: for a regular file whose sha256 is not this (`-`: any), a line
#               `content` then its first MAX bytes follow the fields
# Variables: w_ non-empty to hash regular files; st_t_ and sh_t_ the batch's stat and sha256sum
#   tables (`PATH<TAB>mode<TAB>uid<TAB>gid<TAB>owner<TAB>group<TAB>size` and sha256sum lines),
#   looked up before a process of its own is started.
# Stdin: not read.
# Output: `kind` (absent, file, directory, link, other); unless absent `mode` (octal, with the
#   special bits), `uid`, `gid`, `owner`, `group`, `size`; `sha256` for readable regular files;
#   for links `target` LAST, raw up to the final newline (a target may hold newlines).
# Exit: 0; 3 the path cannot be examined (a parent that exists but cannot be searched is an
#   error, not "absent"; the parent is found with shell built-ins, no process).
# Needs: GNU or BusyBox `stat -c`, sha256sum, head -c, readlink. BSD/macOS stat needs
#   `-f '%Lp %u %g %Su %Sg %z'` instead and `shasum -a 256` in place of sha256sum.
# shellcheck disable=SC2086 # $f_ is split on tabs on purpose (set -f is on).
# shellcheck disable=SC2209 # k_=link, k_=file are words, not commands.
# shellcheck disable=SC1007 # `f_= h_=` are empty assignments on purpose.

p_=$1; c_=${2-}; m_=${3-}
if [ -L "$p_" ]; then k_=link
elif [ -d "$p_" ]; then k_=directory
elif [ -f "$p_" ]; then k_=file
elif [ -e "$p_" ]; then k_=other
else
  q_=$p_
  while case $q_ in */) [ "$q_" != / ] ;; *) false ;; esac; do q_=${q_%/}; done
  case $q_ in */*) q_=${q_%/*}; q_=${q_:-/} ;; *) q_=. ;; esac
  if [ -e "$q_" ] && ! [ -x "$q_" ]; then
    printf 'rdeploy: cannot search directory %s\n' "$q_" >&2
    exit 3
  fi
  printf 'kind absent\n'
  exit 0
fi
printf 'kind %s\n' "$k_"
f_= h_= r_=${st_t_-}
while [ -n "$r_" ]; do
  l_=${r_%%
*}; r_=${r_#"$l_"}; r_=${r_#?}
  case $l_ in "$p_	"*) f_=${l_#"$p_	"}; break ;; esac
done
if [ -n "$f_" ]; then
  o_=$IFS; IFS='	'; set -f; set -- $f_; set +f; IFS=$o_
  printf 'mode %s\nuid %s\ngid %s\nowner %s\ngroup %s\nsize %s\n' "$1" "$2" "$3" "$4" "$5" "$6"
else
  stat -c 'mode %a
uid %u
gid %g
owner %U
group %G
size %s' -- "$p_" || exit 3
fi
if [ "$k_" = file ] && [ -n "$w_" ]; then
  r_=${sh_t_-}
  while [ -n "$r_" ]; do
    l_=${r_%%
*}; r_=${r_#"$l_"}; r_=${r_#?}
    case $l_ in ????????????????????????????????????????????????????????????????"  $p_") h_=$l_; break ;; esac
  done
  [ -n "$h_" ] || h_=$(sha256sum < "$p_")
  [ -n "$h_" ] && printf 'sha256 %.64s\n' "$h_"
  if [ -n "$c_" ] && [ -n "$h_" ] && [ "${h_%% *}" != "$c_" ]; then
    printf 'content\n'; head -c "$m_" -- "$p_" || :
  fi
fi
if [ "$k_" = link ]; then
  printf 'target '
  readlink -- "$p_" || exit 3
fi
exit 0
