# ospkg_openbsd_query: one package as OpenBSD's pkg_info/pkg_add have it (the `openbsd_pkg`/
# `package` modules, src/modules/system/ospkg.rs).
#
# Arguments (set -- by the builder): NAME [latest]
# Stdin: not read.
# Output: `installed VERSION` or `absent`, then with `latest` `upgradable yes|no`.
# Exit: 0.

v_=$(pkg_info -Iq "inst:$1" 2>/dev/null | head -n 1)
if [ -n "$v_" ]; then printf 'installed %s\n' "$v_"; else echo absent; fi
if [ "$2" = latest ]; then
  if pkg_add -u -n "$1" 2>&1 | grep -q -e '->'; then echo 'upgradable yes'; else echo 'upgradable no'; fi
fi
