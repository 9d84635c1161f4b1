# facts_prologue: the start of every fact gathering (src/exec/facts/script.rs).
#
# Sends stderr to /dev/null (a missing tool's error is not a fact), defines `s NAME`, which
# opens a section (a line `@@NAME` after a newline), and sets t to `timeout SECONDS` when
# timeout(1) is there (RDEPLOY_FACTS_TIMEOUT, default 10) for the reads that may hang.
# Arguments: none. Stdin: not read. Output: none. Exit: 0.
# shellcheck disable=SC2034 # t is used by the groups (facts_hardware.sh).
exec 2>/dev/null; s() { printf '\n@@%s\n' "$1"; }
t=; command -v timeout >/dev/null && t="timeout ${RDEPLOY_FACTS_TIMEOUT:-10}"
