# fetch_remote_sum: what the `fetch` module would fetch (src/modules/system/fetch.rs), after
# `set -- PATH`; links followed.
#
# Arguments: PATH
# Stdin: not read.
# Output: `absent`, `directory`, `unreadable` or `file SHA256`.
# Exit: 0; 1 sha256sum failed.

if [ -d "$1" ]; then printf 'directory\n'
elif ! [ -e "$1" ]; then printf 'absent\n'
elif ! [ -r "$1" ]; then printf 'unreadable\n'
else h_=$(sha256sum < "$1") || exit 1; printf 'file %.64s\n' "$h_"; fi
