# reads_head: the head of a command followed by reads in the same round trip
# (Cmd::then_reads in transport/cmd.rs); followed by batch_run_fn.sh, the main command in a
# subshell, reads_mid.sh, the reads as in a batch and `exit "$m_"`.
#
# Arguments: none.
# Stdin: the nonce (32 hex digits) as the FIRST line, then the main command's own input (read
#   takes one line and leaves the rest untouched).
# Output: nothing of its own.
# Exit: 125 no nonce on stdin; the whole command exits with the main command's status.
n_=; IFS= read -r n_
[ "${#n_}" -eq 32 ] || { echo 'rdeploy: reads nonce missing on stdin' >&2; exit 125; }
