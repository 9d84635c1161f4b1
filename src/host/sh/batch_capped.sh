# batch_capped: the capped batch runner (Batch::capped in transport/cmd.rs), the fallback when
# a batch's whole output is too big for the transport. Followed by one `run_ INDEX SCRIPT`
# line per sub-command and `printf 'RDEPLOY-BATCH-END %s %s\n' "$n_" COUNT`.
#
# Arguments (set -- by the builder): NONCE KEEP
# Stdin: not read; each SCRIPT runs as `sh -c SCRIPT` with stdin from /dev/null, its stdout and
#   stderr going to files in a private temporary directory (removed on exit).
# Output: per sub-command a header `RDEPLOY-BATCH NONCE INDEX STATUS OUT_LEN OUT_DROPPED ERR_LEN
#   ERR_DROPPED`, then exactly OUT_LEN bytes of stdout and ERR_LEN bytes of stderr: the parser
#   walks the lengths, so no output can pass for a header. A stream longer than 2*KEEP keeps
#   its first and last KEEP bytes and reports the rest dropped.
# Exit: 125 the runner itself failed (mktemp, disk full); 129/130/143 killed.
# Needs: head -c, tail -c, mktemp -d (not POSIX; GNU and BusyBox have them).

n_=$1 c_=$2
d_=$(mktemp -d "${TMPDIR:-/tmp}/rdeploy-batch.XXXXXXXXXX") || exit 125
trap 'rm -rf -- "$d_"' EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM
cap_() {
  if [ ! -s "$1" ]; then k_=0 x_=0; return; fi
  z_=$(wc -c < "$1") || exit 125
  z_=$((z_))
  if [ "$z_" -gt "$((2 * c_))" ]; then
    { head -c "$c_" -- "$1" && tail -c "$c_" -- "$1"; } > "$1.k" || exit 125
    mv -f -- "$1.k" "$1" || exit 125
    k_=$((2 * c_)) x_=$((z_ - 2 * c_))
  else
    k_=$z_ x_=0
  fi
}
run_() {
  sh -c "$2" < /dev/null > "$d_/o" 2> "$d_/e"
  s_=$?
  cap_ "$d_/o"
  ok_=$k_ ox_=$x_
  cap_ "$d_/e"
  printf 'RDEPLOY-BATCH %s %s %s %s %s %s %s\n' "$n_" "$1" "$s_" "$ok_" "$ox_" "$k_" "$x_"
  if [ "$ok_" -gt 0 ] || [ "$k_" -gt 0 ]; then cat -- "$d_/o" "$d_/e" || exit 125; fi
}
