# command_script_run: runs the `script` module's copy of a controller script
# (src/modules/system/command.rs), after `set -- TMPDIR INTERPRETER... SCRIPT ARG... ;`, then
# removes its temporary folder, keeping the script's exit status.
#
# Arguments: TMPDIR, then the words to run.
# Stdin: the script's.
# Output: the script's.
# Exit: the script's.
t_=$1; shift; "$@"; s_=$?; rm -rf -- "$t_"; exit "$s_"
