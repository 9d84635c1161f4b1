# ln_sf: points the symlink LINK at TARGET atomically (ln_sf_atomic in transport/cmd.rs), after
# `set -- TARGET LINK TMP ;`: a temporary link TMP in LINK's folder, renamed over LINK with
# `mv -f -T` (rename(2) swaps it in one step; -T replaces a link to a folder instead of moving
# into it). TMP is removed if the swap fails.
#
# Arguments: TARGET LINK TMP
# Stdin: not read.
# Output: the tools' errors only.
# Exit: 0; 1 ln failed; else mv's status.
# Needs: mv -T (GNU; BusyBox mv has it as well, BSD spells it -h).
ln -s -- "$1" "$3" || exit 1; mv -f -T -- "$3" "$2" || { s_=$?; rm -f -- "$3"; exit "$s_"; }
