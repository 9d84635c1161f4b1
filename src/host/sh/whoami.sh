# whoami: the uid and home folder of the user commands run as (whoami in src/backup/mod.rs).
#
# Arguments: none. Stdin: not read.
# Output: the uid, then the home folder (from the user database, else $HOME), one per line.
# Exit: printf's.
id -u; h_=$(getent passwd "$(id -u)" 2>/dev/null | cut -d: -f6); printf '%s\n' "${h_:-$HOME}"
