# package_detect: which package manager the host has, for `package` with no package to query
# (src/modules/system/package.rs).
#
# Arguments: none. Stdin: not read.
# Output: `manager apt|dnf|pacman|zypper|pkgng|openbsd_pkg|none`.
# Exit: 0.

if command -v apt-get >/dev/null 2>&1 && command -v dpkg-query >/dev/null 2>&1; then printf 'manager apt\n'
elif command -v dnf >/dev/null 2>&1 && command -v rpm >/dev/null 2>&1; then printf 'manager dnf\n'
elif command -v pacman >/dev/null 2>&1; then printf 'manager pacman\n'
elif command -v zypper >/dev/null 2>&1; then printf 'manager zypper\n'
elif command -v pkg >/dev/null 2>&1 && ! command -v pkg_add >/dev/null 2>&1; then printf 'manager pkgng\n'
elif command -v pkg_add >/dev/null 2>&1 && command -v pkg_info >/dev/null 2>&1; then printf 'manager openbsd_pkg\n'
else printf 'manager none\n'; fi
