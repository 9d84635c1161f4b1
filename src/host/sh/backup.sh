# backup: backs up the paths (and services, packages, sysctls, mounts) a step is about to change
# (src/backup/mod.rs), after `set -- STATE RUN STEP STARTED [INDEX PATH DEEP PREFIX]... ;`.
#
# Arguments: STATE RUN STEP STARTED, then one group per entry:
#   INDEX   the entry's number in the step
#   PATH    the path (or the service, package, sysctl name, mount point, or a load
#           balancer's server as BACKEND/SERVER@SOCKET, BACKEND `*` for every backend)
#   DEEP    1 (a folder with its content), 0, attr (mode and owner only), svc, pkg, sysctl,
#           mount, haproxy (needs haproxy_cli.sh's hap_ defined before)
#   PREFIX  the controller's JSON for the fixed fields, without the closing brace
#   STARTED is the run's start (unix seconds): rdeploy's temporary files
#   (.NAME.rdeploy-tmp.*, .NAME.rdeploy-validate.*, .NAME.rdeploy-ln.*) older than it in a
#   path's folder are removed (left by a killed transfer; the host lock keeps other runs out);
#   empty: none is.
# First, every path's folders are looked at: a symlink among them owned by neither root nor
# the user the backup runs as is refused, naming it (the CVE-2024-9902 class). Then each entry's
# data is copied into STATE/backups/RUN/STEP/INDEX (made only when there is data to keep) and
# its manifest line appended to STATE/runs/RUN.json (one printf, one write). For an absent path
# the missing folders above it are counted (`parents`). Only mkdir, cp, readlink, sha256sum and
# stat run as processes, and only for what exists.
# Stdin: not read.
# Output: each manifest line as appended.
# Exit: 0; 6 refused (nothing backed up or changed; stderr says why); 3 any other failure.
# shellcheck disable=SC2059 # f_ is our own printf format, chosen per kind.
# shellcheck disable=SC2209 # k_=link, k_=file are words, not commands.
sd_=$1; run_=$2; step_=$3; t0_=$4; shift 4
up_() {
  while [ "${q_%/}" != "$q_" ] && [ "$q_" != / ]; do q_=${q_%/}; done
  case $q_ in */*) q_=${q_%/*} ;; *) q_=. ;; esac
  while [ "${q_%/}" != "$q_" ]; do q_=${q_%/}; done
  [ -n "$q_" ] || q_=/
}
umask 077
man_="$sd_/runs/$run_.json"
me_=
chk_() {
  case $1 in */) q_="${1}x" ;; *) q_=$1 ;; esac
  while up_; [ "$q_" != / ] && [ "$q_" != . ]; do
    [ -L "$q_" ] || continue
    o_=$(stat -c %u -- "$q_") || exit 3
    [ "$o_" = 0 ] && continue
    if [ -z "$me_" ]; then me_=$(id -u) || exit 3; fi
    [ "$o_" = "$me_" ] && continue
    printf 'refusing to write %s: parent %s is a symlink owned by uid %s (neither root nor the user the task runs as)\n' "$1" "$q_" "$o_" >&2
    exit 6
  done
}
j_=0; pp_=
for a_ in "$@"; do
  j_=$((j_ + 1))
  case $((j_ % 4)) in
  2) pp_=$a_ ;;
  3) case $a_ in svc|pkg|sysctl|haproxy) ;; *) chk_ "$pp_" ;; esac ;;
  esac
done
c_=
clean_() {
  [ -n "$t0_" ] || return 0
  q_=$1; up_
  [ "$q_" = "$c_" ] && return 0
  c_=$q_
  for f_ in "$q_"/.*.rdeploy-tmp.* "$q_"/.*.rdeploy-validate.* "$q_"/.*.rdeploy-ln.*; do
    if [ -L "$f_" ] || [ -f "$f_" ]; then
      y_=$(stat -c %Y -- "$f_") && [ "$y_" -lt "$t0_" ] && rm -f -- "$f_"
    fi
  done
  return 0
}
while [ $# -ge 4 ]; do
  i_=$1; p_=$2; deep_=$3; pre_=$4; shift 4
  if [ "$deep_" = svc ]; then
    if command -v systemctl >/dev/null 2>&1; then
      a_=$(systemctl is-active -- "$p_" 2>/dev/null); e_=$(systemctl is-enabled -- "$p_" 2>/dev/null)
    elif service "$p_" status >/dev/null 2>&1; then a_=active; e_=unknown
    else a_=inactive; e_=unknown; fi
    case $a_ in ''|*[!a-z-]*) a_=unknown ;; esac
    case $e_ in ''|*[!a-z-]*) e_=unknown ;; esac
    f_='%s,"kind":"service","state":"%s %s"}\n'
    printf "$f_" "$pre_" "$a_" "$e_" >> "$man_" || exit 3
    printf "$f_" "$pre_" "$a_" "$e_"
    continue
  fi
  if [ "$deep_" = pkg ]; then
    v_=
    if command -v dpkg-query >/dev/null 2>&1; then
      v_=$(dpkg-query -W -f='${Status} ${Version}' "$p_" 2>/dev/null)
      case $v_ in "install ok installed "*) v_=${v_#install ok installed } ;; *) v_= ;; esac
    elif command -v rpm >/dev/null 2>&1; then
      v_=$(rpm -q --qf '%{VERSION}-%{RELEASE}' "$p_" 2>/dev/null) || v_=
    fi
    case $v_ in *[!A-Za-z0-9.+~:_-]*) echo "unexpected version of $p_: $v_" >&2; exit 3 ;; esac
    f_='%s,"kind":"package","state":"%s"}\n'
    printf "$f_" "$pre_" "$v_" >> "$man_" || exit 3
    printf "$f_" "$pre_" "$v_"
    continue
  fi
  if [ "$deep_" = sysctl ]; then
    # The live value, whitespace made single spaces; empty: no such parameter.
    v_=
    f_=/proc/sys/$(printf '%s' "$p_" | tr . /)
    if [ -f "$f_" ]; then v_=$(tr -s ' \t' '  ' < "$f_") || exit 3; fi
    case $v_ in *[!A-Za-z0-9\ ._:/+-]*) echo "unexpected value of $p_: $v_" >&2; exit 3 ;; esac
    f_='%s,"kind":"sysctl","state":"%s"}\n'
    printf "$f_" "$pre_" "$v_" >> "$man_" || exit 3
    printf "$f_" "$pre_" "$v_"
    continue
  fi
  if [ "$deep_" = haproxy ]; then
    # `BACKEND/SERVER:ADMIN:WEIGHT` for each backend holding the server (HAProxy's `show
    # servers state`: admin state bits and user weight); empty: no such server.
    be_=${p_%%/*}; r_=${p_#*/}; sv_=${r_%%@*}; sk_=${r_#*@}
    x_=$(hap_ "$sk_" "show servers state") || exit 3
    v_=$(printf '%s\n' "$x_" | while read -r _ b_ _ s_ _ _ ad_ w_ _; do
      [ "$s_" = "$sv_" ] || continue
      [ "$be_" = '*' ] || [ "$b_" = "$be_" ] || continue
      printf '%s/%s:%s:%s ' "$b_" "$s_" "$ad_" "$w_"
    done)
    v_=${v_% }
    case $v_ in *[!A-Za-z0-9\ ._:/-]*) echo "unexpected state of $p_: $v_" >&2; exit 3 ;; esac
    f_='%s,"kind":"haproxy","state":"%s"}\n'
    printf "$f_" "$pre_" "$v_" >> "$man_" || exit 3
    printf "$f_" "$pre_" "$v_"
    continue
  fi
  if [ "$deep_" = mount ]; then
    # `SOURCE FSTYPE OPTIONS` mounted there (findmnt's raw form); empty: nothing; `absent`:
    # no mount point.
    if ! [ -e "$p_" ] && ! [ -L "$p_" ]; then v_=absent
    else v_=$(findmnt -rn -o SOURCE,FSTYPE,OPTIONS --mountpoint "$p_" 2>/dev/null | tail -n 1); fi
    case $v_ in *[!A-Za-z0-9\ ._:/,=+@-]*) echo "unexpected mount at $p_: $v_" >&2; exit 3 ;; esac
    f_='%s,"kind":"mount","state":"%s"}\n'
    printf "$f_" "$pre_" "$v_" >> "$man_" || exit 3
    printf "$f_" "$pre_" "$v_"
    continue
  fi
  clean_ "$p_"
  d_="$sd_/backups/$run_/$step_/$i_"
  if [ -e "$d_" ] || [ -L "$d_" ]; then rm -rf -- "$d_" || exit 3; fi
  h_=
  if [ -L "$p_" ]; then k_=link; mkdir -p -- "$d_" && readlink -- "$p_" > "$d_/target" || exit 3
  elif [ -f "$p_" ] && [ "$deep_" = attr ]; then k_=attrs
  elif [ -f "$p_" ]; then k_=file; mkdir -p -- "$d_" && cp -p -- "$p_" "$d_/data" && chmod 600 -- "$d_/data" || exit 3
    h_=$(sha256sum < "$d_/data") || exit 3; h_=${h_%% *}
  elif [ -d "$p_" ]; then k_=directory
    if [ "$deep_" = 1 ]; then mkdir -p -- "$d_" && cp -a -- "$p_" "$d_/data" && chmod 700 -- "$d_/data" || exit 3; fi
  elif [ -e "$p_" ]; then k_=other
  else k_=absent; fi
  n_=0
  if [ "$k_" = absent ]; then m_=; u_=null; g_=null
    q_=$p_
    while up_; [ ! -e "$q_" ] && [ ! -L "$q_" ] && [ "$n_" -lt 4096 ]; do n_=$((n_ + 1)); done
  else s_=$(stat -c '%a %u %g' -- "$p_") || exit 3
    m_=${s_%% *}; s_=${s_#* }; u_=${s_%% *}; g_=${s_#* }; fi
  if [ "$deep_" = 1 ]; then x_=true; else x_=false; fi
  f_='%s,"kind":"%s","mode":"%s","uid":%s,"gid":%s,"sha256":"%s","deep":%s,"parents":%s}\n'
  printf "$f_" "$pre_" "$k_" "$m_" "$u_" "$g_" "$h_" "$x_" "$n_" >> "$man_" || exit 3
  printf "$f_" "$pre_" "$k_" "$m_" "$u_" "$g_" "$h_" "$x_" "$n_"
done
# A step run with become, in a state folder the login user owns: the manifest and the run's
# backup folder stay the folder owner's, so its rollback and later steps without become can
# read and add to them (the copies inside stay root's, 0600).
if [ "$(id -u)" = 0 ]; then
  o_=$(stat -c %u:%g -- "$sd_") || exit 3
  if [ "$o_" != 0:0 ]; then
    if [ -e "$man_" ]; then chown -- "$o_" "$man_" || exit 3; fi
    if [ -d "$sd_/backups/$run_" ]; then chown -- "$o_" "$sd_/backups/$run_" || exit 3; fi
  fi
fi
exit 0
