# ospkg_zypper_query: one package as rpm and zypper have it (the `zypper`/`package` modules on
# SUSE, src/modules/system/ospkg.rs).
#
# Arguments (set -- by the builder): NAME [latest]
# Stdin: not read.
# Output: `installed VERSION` or `absent`, then with `latest` `upgradable yes|no`.
# Exit: 0.

if v_=$(rpm -q --qf '%{VERSION}-%{RELEASE}\n' "$1" 2>/dev/null); then printf 'installed %s\n' "$(printf '%s\n' "$v_" | head -n 1)"; else echo absent; fi
if [ "$2" = latest ]; then
  if LC_ALL=C zypper --quiet --non-interactive list-updates 2>/dev/null | awk -F'|' -v p_="$1" '{ n_ = $3; gsub(/ /, "", n_); if (n_ == p_) f_ = 1 } END { exit !f_ }'
  then echo 'upgradable yes'; else echo 'upgradable no'; fi
fi
