# ospkg_pkgng_query: one package as FreeBSD's pkg has it (the `pkgng`/`package` modules,
# src/modules/system/ospkg.rs).
#
# Arguments (set -- by the builder): NAME [latest]
# Stdin: not read.
# Output: `installed VERSION` or `absent`, then with `latest` `upgradable yes|no`.
# Exit: 0.

v_=$(pkg query %v "$1" 2>/dev/null)
if [ -n "$v_" ]; then printf 'installed %s\n' "$v_"; else echo absent; fi
if [ "$2" = latest ]; then
  pkg upgrade -n "$1" >/dev/null 2>&1
  if [ $? -eq 1 ]; then echo 'upgradable yes'; else echo 'upgradable no'; fi
fi
