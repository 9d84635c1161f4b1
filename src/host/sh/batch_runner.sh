# batch_runner: the head of the fast batch runner (Cmd::batch in transport/cmd.rs); followed
# by batch_run_fn.sh, the batch's stat tables and shared functions, one `run_ INDEX SCRIPT`
# line per sub-command and `printf 'RDEPLOY-BATCH-END %s %s\n' "$n_" COUNT`.
#
# Arguments: none.
# Stdin: the nonce (32 hex digits) as the LAST line (a `su` password line may come first), so
#   it is never in a command line another user of the host could read. Sub-commands get
#   /dev/null.
# Output: `RDEPLOY-BATCH NONCE start` on stdout and on stderr, then per sub-command its own
#   output followed by `\nRDEPLOY-BATCH NONCE INDEX STATUS` (stdout) and
#   `\nRDEPLOY-BATCH NONCE INDEX` (stderr); `RDEPLOY-BATCH-END NONCE COUNT` ends the batch.
#   Nothing a sub-command prints can pass for a boundary without the nonce, which no
#   sub-command sees.
# Exit: 125 no nonce on stdin; else the last command's (the end marker's printf).
n_=; while IFS= read -r l_; do n_=$l_; done; l_=
[ "${#n_}" -eq 32 ] || { echo 'rdeploy: batch nonce missing on stdin' >&2; exit 125; }
printf 'RDEPLOY-BATCH %s start\n' "$n_"; printf 'RDEPLOY-BATCH %s start\n' "$n_" >&2
