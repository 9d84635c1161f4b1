# ospkg_pacman_query: one package as pacman has it (the `pacman`/`package` modules on Arch,
# src/modules/system/ospkg.rs).
#
# Arguments (set -- by the builder): NAME [latest]
# Stdin: not read.
# Output: `installed VERSION` or `absent`, then with `latest` `upgradable yes|no`.
# Exit: 0.

if v_=$(LC_ALL=C pacman -Q "$1" 2>/dev/null); then printf 'installed %s\n' "${v_#* }"; else echo absent; fi
if [ "$2" = latest ]; then
  if LC_ALL=C pacman -Qu "$1" >/dev/null 2>&1; then echo 'upgradable yes'; else echo 'upgradable no'; fi
fi
