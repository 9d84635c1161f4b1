# host_lock: the host lock (host_lock_line in transport/cmd.rs). @DIR@ and @HOLDER@ are
# replaced by the builder with quoted words: the lock's folder ('' for the login user's
# default: /var/lib/rdeploy for root, ~/.local/state/rdeploy otherwise) and this run's holder
# line.
#
# Locks DIR/host.lock with `flock -n` on descriptor 9 of the shell itself (DIR is made only
# when the lock file cannot be opened: no `mkdir` process on later runs); a lock held under
# the run's own holder line (a session of a connection this run just closed) is waited for up
# to 10 s. Then writes HOLDER into it and waits for stdin to end: the
# lock lives as long as the connection (sshd closes the command's stdin when it dies).
# Arguments: none (see above).
# Stdin: read to its end, ignored.
# Output: `RDEPLOY-HOSTLOCK taken` when taken (HOST_LOCK_TAKEN); `RDEPLOY-HOSTLOCK held ` and
#   the holder's line when another run holds it (HOST_LOCK_HELD).
# Exit: 0 released; 75 held by another run; 71 no lock file here (the run goes on without);
#   127 no flock(1).
# shellcheck disable=SC2034 # l_ only drains stdin.
d_=@DIR@; if [ -z "$d_" ]; then if [ "$(id -u)" = 0 ]; then d_=/var/lib/rdeploy; else d_="$HOME/.local/state/rdeploy"; fi; fi; umask 077; command -v flock >/dev/null 2>&1 || exit 127; { command exec 9>>"$d_/host.lock"; } 2>/dev/null || { mkdir -p "$d_" && command exec 9>>"$d_/host.lock"; } 2>/dev/null || exit 71; if flock -n 9 || { [ "$(head -n 1 "$d_/host.lock")" = @HOLDER@ ] && flock -w 10 9; }; then printf '%s\n' @HOLDER@ > "$d_/host.lock"; echo 'RDEPLOY-HOSTLOCK taken'; while IFS= read -r l_; do :; done; exit 0; fi; printf 'RDEPLOY-HOSTLOCK held '; head -n 1 "$d_/host.lock"; exit 75
