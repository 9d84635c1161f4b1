# package_facts_apt_policy: each installed package's first package file for its installed
# version (the `package_facts` module, src/modules/system/package_facts.rs).
#
# Arguments: none. Stdin: not read.
# Output: `NAME<TAB>FILE` lines.
# Exit: 0 (no apt-cache: no lines); else awk's.
command -v apt-cache >/dev/null 2>&1 || exit 0
dpkg-query -W -f='${db:Status-Abbrev} ${binary:Package}\n' | awk '$1 !~ /^.[nc]/ { print $2 }' |
LC_ALL=C xargs -r apt-cache policy | awk '
/^[^ ]/ { name = $0; sub(/:$/, "", name); want = 0; next }
/^ \*\*\* / { want = 1; next }
want == 1 { sub(/^ +-?[0-9]+ /, ""); print name "\t" $0; want = 0 }'
