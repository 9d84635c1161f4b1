# put: write stdin to DEST atomically (put_file_cmd, put_file_keeping_cmd in transport/cmd.rs).
#
# Arguments (set -- by the builder): DEST TMP SHA256 MODE CHOWN UMASK KEEP
#   DEST    absolute path to replace (a symlink there is replaced, not followed)
#   TMP     a new temporary name next to DEST (created exclusively: `set -C`)
#   SHA256  the expected sha256 of stdin, lowercase hex
#   MODE    octal mode, or empty: the mode of the regular file at DEST, else 0644
#   CHOWN   OWNER:GROUP, OWNER or :GROUP for chown, or empty
#   UMASK   a umask that gives the final mode at creation (then no chmod process), or empty
#   KEEP    non-empty: CHOWN are the replaced file's ids, set where permitted, never a failure
# Stdin: the file's bytes. Written and fsynced by one `dd conv=fsync` (GNU, BusyBox); a dd that
#   refuses those operands exits before reading anything, then `cat` writes and `sync FILE`
#   flushes. A chown/chmod afterwards is flushed with `sync FILE` too.
# Output: with KEEP, `rdeploy-not-kept OWNER:GROUP` (names) when the new file did not get both.
# Exit: 0 done; 3 the written sha256 differs; 129/130/143 killed (HUP/INT/TERM); other: the
#   failing tool's. The temporary file is removed on any failure.
# Needs: sha256sum, stat -c, mv -T (GNU coreutils; BusyBox has all three).

T=$2
fail() { rm -f -- "$T"; exit "${1:-1}"; }
trap 'fail 143' TERM; trap 'fail 129' HUP; trap 'fail 130' INT
u_=$6
if [ -z "$u_" ] && [ -z "$4" ] && [ -z "$5" ] && ! { [ -f "$1" ] && ! [ -L "$1" ]; }; then u_=022; fi
if [ -n "$u_" ]; then umask "$u_"; else umask 077; fi
( set -C; exec 3>"$T"
  dd bs=65536 conv=fsync status=none >&3 && exit 0
  ! [ -s "$T" ] && cat >&3 && { sync -- "$T" 2>/dev/null || :; } ) || fail
got=$(sha256sum < "$T") || fail
got=${got%% *}
[ "$got" = "$3" ] || { echo "sha256 of $1 differs after writing (got $got)" >&2; fail 3; }
if [ -z "$u_" ]; then
  m=$4
  if [ -z "$m" ]; then
    if [ -f "$1" ] && [ ! -L "$1" ]; then m=$(stat -c %a -- "$1") || m=644; else m=644; fi
  fi
  if [ -n "$7" ]; then
    chown -- "$5" "$T" 2>/dev/null || chown -- ":${5#*:}" "$T" 2>/dev/null || :
    [ "$(stat -c %u:%g -- "$T")" = "$5" ] || printf 'rdeploy-not-kept %s\n' "$(stat -c %U:%G -- "$T")"
  elif [ -n "$5" ]; then chown -- "$5" "$T" || fail; fi
  chmod -- "$m" "$T" || fail
  sync -- "$T" 2>/dev/null || :
fi
mv -f -T -- "$T" "$1" || fail
