# user_make_home: creates a missing home as Ansible does (the `user` module,
# src/modules/system/user.rs), after `set -- HOME SKEL UID GID ;`: the skeleton copied (if it
# exists), owned by the user, mode HOME_MODE from /etc/login.defs (else 0755).
#
# Arguments: HOME SKEL UID GID
# Stdin: not read.
# Output: the tools' errors only.
# Exit: 0; the first failing tool's status (set -e).
set -e
if [ -d "$2" ]; then mkdir -p "$(dirname "$1")"; cp -R "$2" "$1"; else mkdir -p "$1"; fi
chown -R "$3:$4" "$1"
m_=$(sed -n 's/^HOME_MODE[[:space:]]*//p' /etc/login.defs 2>/dev/null | head -n 1)
chmod "${m_:-0755}" "$1"
