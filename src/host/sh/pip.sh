# pip: runs pip (the `pip` module, src/modules/system/pip.rs), after
# `set -- VENV EXECUTABLE PYTHON ARG...`: the virtualenv's pip3/pip (its bin first on PATH),
# else EXECUTABLE, else `PYTHON -m pip`.
#
# Arguments: VENV (or empty), EXECUTABLE (or empty), PYTHON, then pip's arguments.
# Stdin: not read.
# Output: pip's.
# Exit: pip's; 2 no pip in VENV (Ansible's message).

e_=$1 x_=$2 y_=$3; shift 3
if [ -n "$e_" ]; then
  if [ -x "$e_/bin/pip3" ]; then p_=$e_/bin/pip3; elif [ -x "$e_/bin/pip" ]; then p_=$e_/bin/pip
  else printf 'Unable to find pip in the virtualenv, %s, under any of these names: pip3, pip. Make sure pip is present in the virtualenv.\n' "$e_" >&2; exit 2; fi
  PATH="$e_/bin:$PATH"; export PATH
  "$p_" "$@"
elif [ -n "$x_" ]; then "$x_" "$@"
else "$y_" -m pip "$@"; fi
