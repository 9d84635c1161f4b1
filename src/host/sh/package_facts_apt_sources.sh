# package_facts_apt_sources: every package file apt knows and its `o=` (Origin) field (the
# `package_facts` module, src/modules/system/package_facts.rs).
#
# Arguments: none. Stdin: not read.
# Output: `FILE<TAB>ORIGIN` lines.
# Exit: 0 (no apt-cache: no lines).
command -v apt-cache >/dev/null 2>&1 || exit 0
LC_ALL=C apt-cache policy | awk '
/^Pinned packages:/ { exit }
/^ +-?[0-9]+ / { if (src != "") print src "\t" o; src = $0; sub(/^ +-?[0-9]+ /, "", src); o = ""; next }
/^ +release / { n = split($0, f, ","); for (i = 1; i <= n; i++) { x = f[i]; sub(/^ *release /, "", x); if (x ~ /^o=/) o = substr(x, 3) } }
END { if (src != "") print src "\t" o }'
