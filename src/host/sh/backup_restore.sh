# backup_restore: restores one backup entry (rollback, src/backup/mod.rs), after
# `set -- PATH KIND MODE UID GID DIR SHA256 DEEP STATE ;`. Only what differs from the backup is
# written: a path the step never changed is restored by doing nothing.
#
# Arguments: PATH; KIND (absent, attrs, file, link, directory, service, package, sysctl,
#   mount, haproxy, or another: a special file); MODE UID GID as recorded; DIR the entry's
#   backup folder; SHA256 of a file's data; DEEP true for a folder kept with its content; STATE
#   the recorded state of a service (`ACTIVE ENABLED`), package (version, empty: absent),
#   sysctl, mount (`SOURCE FSTYPE OPTIONS`, empty or `absent`) or load balancer server
#   (`BACKEND/SERVER:ADMIN:WEIGHT`..., PATH being BACKEND/SERVER@SOCKET; haproxy_cli.sh's hap_
#   is defined before).
# Stdin: not read.
# Output: the tools' errors only.
# Exit: 0; 3 a step failed; 4 the restored file's checksum is wrong; 5 the kind cannot be
#   restored.
# shellcheck disable=SC2086 # set -- $st_ splits the recorded mount on purpose.
# shellcheck disable=SC2015 # `own_ && mod_ || exit 3`: either failing is a failure, as meant.
p_=$1; k_=$2; m_=$3; u_=$4; g_=$5; d_=$6; h_=$7; deep_=$8; st_=$9
t_="$p_.rdeploy-restore.$$"
own_() { [ "$(stat -c '%u:%g' -- "$1")" = "$u_:$g_" ] || chown -h -- "$u_:$g_" "$1"; }
mod_() { [ "$(stat -c '%a' -- "$1")" = "$m_" ] || chmod -- "$m_" "$1"; }
case $k_ in
absent) if [ -e "$p_" ] || [ -L "$p_" ]; then rm -rf -- "$p_" || exit 3; fi ;;
attrs)
  if [ -L "$p_" ] || ! [ -f "$p_" ]; then
    echo "$p_ is no longer a regular file: only its mode and owner were kept" >&2; exit 3
  fi
  own_ "$p_" && mod_ "$p_" || exit 3 ;;
file)
  if [ -f "$p_" ] && [ ! -L "$p_" ]; then
    x_=$(sha256sum < "$p_") || exit 3
    if [ "${x_%% *}" = "$h_" ]; then own_ "$p_" && mod_ "$p_" || exit 3; exit 0; fi
  fi
  cp -p -- "$d_/data" "$t_" && own_ "$t_" && chmod -- "$m_" "$t_" || { rm -f -- "$t_"; exit 3; }
  if [ -d "$p_" ] && [ ! -L "$p_" ]; then rm -rf -- "$p_" || exit 3; fi
  mv -f -T -- "$t_" "$p_" || { rm -f -- "$t_"; exit 3; }
  x_=$(sha256sum < "$p_") || exit 3
  [ "${x_%% *}" = "$h_" ] || { echo "checksum of $p_ differs after restore" >&2; exit 4; } ;;
link)
  if [ -L "$p_" ] && [ "$(readlink -- "$p_")" = "$(cat -- "$d_/target")" ]; then
    own_ "$p_" || exit 3; exit 0
  fi
  ln -s -- "$(cat -- "$d_/target")" "$t_" && own_ "$t_" || { rm -f -- "$t_"; exit 3; }
  if [ -d "$p_" ] && [ ! -L "$p_" ]; then rm -rf -- "$p_" || exit 3; fi
  mv -f -T -- "$t_" "$p_" || { rm -f -- "$t_"; exit 3; } ;;
directory)
  if [ "$deep_" = true ]; then
    cp -a -- "$d_/data" "$t_" || { rm -rf -- "$t_"; exit 3; }
    if [ -e "$p_" ] || [ -L "$p_" ]; then mv -f -T -- "$p_" "$p_.rdeploy-old.$$" || exit 3; fi
    mv -T -- "$t_" "$p_" || exit 3
    rm -rf -- "$p_.rdeploy-old.$$"
  else
    if [ -L "$p_" ] || { [ -e "$p_" ] && [ ! -d "$p_" ]; }; then rm -f -- "$p_" || exit 3; fi
    [ -d "$p_" ] || mkdir -p -- "$p_" || exit 3
  fi
  own_ "$p_" && mod_ "$p_" || exit 3 ;;
service)
  a_=${st_%% *}; e_=${st_#* }
  if command -v systemctl >/dev/null 2>&1; then
    case $a_ in active) systemctl start -- "$p_" || exit 3 ;; inactive|failed) systemctl stop -- "$p_" || exit 3 ;; esac
    case $e_ in enabled) systemctl enable -- "$p_" || exit 3 ;; disabled) systemctl disable -- "$p_" || exit 3 ;; esac
  else
    case $a_ in active) service "$p_" start || exit 3 ;; inactive|failed) service "$p_" stop || exit 3 ;; esac
  fi ;;
package)
  if command -v apt-get >/dev/null 2>&1; then
    if [ -z "$st_" ]; then DEBIAN_FRONTEND=noninteractive apt-get remove -y -q "$p_" || exit 3
    else DEBIAN_FRONTEND=noninteractive apt-get install -y -q --allow-downgrades "$p_=$st_" || exit 3; fi
  elif command -v dnf >/dev/null 2>&1; then
    if [ -z "$st_" ]; then dnf remove -y "$p_" || exit 3; else dnf install -y "$p_-$st_" || exit 3; fi
  else echo "no apt-get or dnf to put $p_ back" >&2; exit 5; fi ;;
sysctl)
  # Written in place (a /proc/sys file cannot be replaced by a copy), only when it differs.
  f_=/proc/sys/$(printf '%s' "$p_" | tr . /)
  if [ -n "$st_" ] && [ -f "$f_" ] && [ "$(tr -s ' \t' '  ' < "$f_")" != "$st_" ]; then
    printf '%s\n' "$st_" > "$f_" || exit 3
  fi ;;
mount)
  # Unmounted when something else (or nothing) was there; mounted again as recorded; a mount
  # point the step created is removed only while empty (rmdir).
  cur_=
  if [ -d "$p_" ]; then cur_=$(findmnt -rn -o SOURCE,FSTYPE,OPTIONS --mountpoint "$p_" 2>/dev/null | tail -n 1); fi
  if [ "$cur_" != "$st_" ]; then
    if [ -n "$cur_" ]; then umount -- "$p_" || exit 3; fi
    case $st_ in
    ''|absent) ;;
    *) set -- $st_; mkdir -p -- "$p_" && mount -t "$2" -o "$3" -- "$1" "$p_" || exit 3 ;;
    esac
  fi
  if [ "$st_" = absent ] && [ -d "$p_" ] && ! [ -L "$p_" ]; then rmdir -- "$p_" || exit 3; fi ;;
haproxy)
  # Each server put back in its forced state (maintenance, drain or ready: HAProxy's admin
  # bits 0x01 and 0x08) and weight, through the runtime API, only where it differs now.
  sk_=${p_#*@}
  want_() { if [ $(($1 & 1)) -ne 0 ]; then echo maint; elif [ $(($1 & 8)) -ne 0 ]; then echo drain; else echo ready; fi; }
  x_=$(hap_ "$sk_" "show servers state") || exit 3
  for e_ in $st_; do
    n_=${e_%%:*}; r_=${e_#*:}; ad_=${r_%%:*}; w_=${r_#*:}
    cur_=$(printf '%s\n' "$x_" | while read -r _ b_ _ s_ _ _ a_ u_ _; do
      [ "$b_/$s_" = "$n_" ] && printf '%s:%s' "$a_" "$u_"
    done)
    [ -n "$cur_" ] || continue
    if [ "$(want_ "${cur_%%:*}")" != "$(want_ "$ad_")" ]; then
      o_=$(hap_ "$sk_" "set server $n_ state $(want_ "$ad_")") || exit 3
      [ -z "$(printf '%s' "$o_" | tr -d '\n')" ] || { printf '%s: %s\n' "$n_" "$o_" >&2; exit 3; }
    fi
    if [ "${cur_#*:}" != "$w_" ]; then
      o_=$(hap_ "$sk_" "set weight $n_ $w_") || exit 3
      [ -z "$(printf '%s' "$o_" | tr -d '\n')" ] || { printf '%s: %s\n' "$n_" "$o_" >&2; exit 3; }
    fi
  done ;;
*) echo "$p_ was a special file: it cannot be restored" >&2; exit 5 ;;
esac
exit 0
