# package_query: one package as the host has it (the `package`/`apt`/`dnf` modules' check,
# src/modules/system/package.rs).
#
# Arguments (set -- by the builder): MANAGER NAME LATEST RELEASE [DNF_OPTION...]
#   MANAGER  auto, apt or dnf
#   NAME     the package
#   LATEST   `latest` to also ask whether an upgrade is available
#   RELEASE  apt's target release (-t), or empty
#   DNF_OPTION...  dnf's options for check-update
# Stdin: not read.
# Output: `manager M` (apt, dnf; pacman, zypper, pkgng, openbsd_pkg or none when detected and
#   not apt/dnf, then nothing more; missing-apt, missing-dnf when the named one is not there),
#   then `installed VERSION` or `absent` (apt: then `config-files` when only its configuration
#   files remain), then with LATEST `upgradable yes|no`.
# Exit: 0.

m_=$1 p_=$2 l_=$3 r_=$4
shift 4
if [ "$m_" = auto ]; then
  if command -v apt-get >/dev/null 2>&1 && command -v dpkg-query >/dev/null 2>&1; then m_=apt
  elif command -v dnf >/dev/null 2>&1 && command -v rpm >/dev/null 2>&1; then m_=dnf
  elif command -v pacman >/dev/null 2>&1; then printf 'manager pacman\n'; exit 0
  elif command -v zypper >/dev/null 2>&1; then printf 'manager zypper\n'; exit 0
  elif command -v pkg >/dev/null 2>&1 && ! command -v pkg_add >/dev/null 2>&1; then printf 'manager pkgng\n'; exit 0
  elif command -v pkg_add >/dev/null 2>&1 && command -v pkg_info >/dev/null 2>&1; then printf 'manager openbsd_pkg\n'; exit 0
  else printf 'manager none\n'; exit 0; fi
elif [ "$m_" = dnf ] && ! { command -v dnf >/dev/null 2>&1 && command -v rpm >/dev/null 2>&1; }; then
  printf 'manager missing-dnf\n'; exit 0
elif [ "$m_" = apt ] && ! { command -v apt-get >/dev/null 2>&1 && command -v dpkg-query >/dev/null 2>&1; }; then
  printf 'manager missing-apt\n'; exit 0
fi
printf 'manager %s\n' "$m_"
v_=
if [ "$m_" = apt ]; then
  o_=$(dpkg-query -W -f='${Status}|${Version}\n' "$p_" 2>/dev/null | head -n 1)
  case $o_ in
    *" ok installed|"*) v_=${o_#*|}; printf 'installed %s\n' "$v_" ;;
    *" ok config-files|"*) printf 'absent\nconfig-files\n' ;;
    *) printf 'absent\n' ;;
  esac
  if [ "$l_" = latest ]; then
    c_=$(LC_ALL=C apt-cache ${r_:+-t "$r_"} policy "$p_" 2>/dev/null | sed -n 's/^ *Candidate: *//p' | head -n 1)
    if [ -n "$c_" ] && [ "$c_" != "(none)" ] && [ "$c_" != "$v_" ]; then printf 'upgradable yes\n'; else printf 'upgradable no\n'; fi
  fi
else
  if v_=$(rpm -q --qf '%{VERSION}-%{RELEASE}\n' "$p_" 2>/dev/null); then
    printf 'installed %s\n' "$(printf '%s\n' "$v_" | head -n 1)"
  else
    printf 'absent\n'
  fi
  if [ "$l_" = latest ]; then
    dnf -q check-update "$@" "$p_" >/dev/null 2>&1
    if [ $? -eq 100 ]; then printf 'upgradable yes\n'; else printf 'upgradable no\n'; fi
  fi
fi
