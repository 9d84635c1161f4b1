# batch_run_fn: `run_ INDEX SCRIPT`, one sub-command of a batch (Cmd::batch, Cmd::then_reads
# in transport/cmd.rs), defined after batch_runner.sh or reads_head.sh.
#
# Arguments of run_: INDEX (0-based) and SCRIPT, evaluated in a subshell (a syntax error, `exit`,
#   `set` or `cd` in one cannot affect the others; the nonce n_ is unset in there).
# Stdin: /dev/null for SCRIPT.
# Output: SCRIPT's stdout and stderr as they come, then `\nRDEPLOY-BATCH NONCE INDEX STATUS` on
#   stdout and `\nRDEPLOY-BATCH NONCE INDEX` on stderr (the leading newline is the runner's:
#   an output without a trailing newline stays exact).
# Exit: printf's. `$$` in SCRIPT is the runner's pid.
# shellcheck disable=SC2154 # n_ is set by the runner's head.

run_() {
  ( unset n_; eval "$2" ) < /dev/null
  s_=$?
  printf '\nRDEPLOY-BATCH %s %s %s\n' "$n_" "$1" "$s_"
  printf '\nRDEPLOY-BATCH %s %s\n' "$n_" "$1" >&2
}
