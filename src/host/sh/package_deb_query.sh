# package_deb_query: reads a .deb on the host (the `apt` module's `deb:`,
# src/modules/system/package.rs), after `set -- FILE`.
#
# Arguments: FILE
# Stdin: not read.
# Output: `missing` when FILE is not there; else `deb NAME VERSION`, then `installed VERSION`
#   or `absent` for that package.
# Exit: 0; 1 dpkg-deb cannot read FILE.

[ -f "$1" ] || { printf 'missing\n'; exit 0; }
n_=$(dpkg-deb -f "$1" Package) && v_=$(dpkg-deb -f "$1" Version) || exit 1
printf 'deb %s %s\n' "$n_" "$v_"
o_=$(dpkg-query -W -f='${Status}|${Version}\n' "$n_" 2>/dev/null | head -n 1)
case $o_ in
  *" ok installed|"*) printf 'installed %s\n' "${o_#*|}" ;;
  *) printf 'absent\n' ;;
esac
