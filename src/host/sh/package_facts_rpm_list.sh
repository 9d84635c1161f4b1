# package_facts_rpm_list: every package rpm knows (the `package_facts` module,
# src/modules/system/package_facts.rs).
#
# Arguments: none. Stdin: not read.
# Output: `NAME<TAB>VERSION<TAB>RELEASE<TAB>EPOCH<TAB>ARCH` lines.
# Exit: 127 no rpm; else rpm's.
command -v rpm >/dev/null 2>&1 || exit 127
rpm -qa --qf '%{NAME}\t%{VERSION}\t%{RELEASE}\t%{EPOCH}\t%{ARCH}\n'
