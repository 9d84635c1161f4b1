# reads_mid: right after the main command of Cmd::then_reads (transport/cmd.rs): its status
# line on both streams, then the batch framing for the reads (see batch_runner.sh).
#
# Arguments: none; n_ is the nonce read by reads_head.sh.
# Stdin: not read.
# Output: `\nRDEPLOY-POST NONCE STATUS` on stdout, `\nRDEPLOY-POST NONCE` on stderr, then
#   `RDEPLOY-BATCH NONCE start` on both.
# Exit: sets m_ to the main command's status, which the command exits with.
# shellcheck disable=SC2154 # n_ is set by reads_head.sh.

m_=$?
printf '\nRDEPLOY-POST %s %s\n' "$n_" "$m_"; printf '\nRDEPLOY-POST %s\n' "$n_" >&2
printf 'RDEPLOY-BATCH %s start\n' "$n_"; printf 'RDEPLOY-BATCH %s start\n' "$n_" >&2
