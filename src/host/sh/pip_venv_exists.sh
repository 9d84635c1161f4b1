# pip_venv_exists: whether VENV/bin/activate exists (the `pip` module,
# src/modules/system/pip.rs), after `set -- VENV ;`.
#
# Arguments: VENV
# Stdin: not read.
# Output: `venv yes` or `venv no`.
# Exit: 0.
if [ -e "$1/bin/activate" ]; then echo 'venv yes'; else echo 'venv no'; fi
