# package_facts_apt_list: every package dpkg knows (the `package_facts` module,
# src/modules/system/package_facts.rs).
#
# Arguments: none. Stdin: not read.
# Output: `STATUS<TAB>NAME<TAB>ARCH<TAB>VERSION<TAB>SECTION` lines (STATUS: dpkg's abbreviation).
# Exit: 127 no dpkg-query; else dpkg-query's.
command -v dpkg-query >/dev/null 2>&1 || exit 127
dpkg-query -W -f='${db:Status-Abbrev}\t${Package}\t${Architecture}\t${Version}\t${Section}\n'
