# glob_exists: `test -e` with a glob pattern (Ansible's creates/removes use glob.glob;
# glob_exists in src/modules/system/common.rs), after `set -- PATTERN ;`. The pattern is
# expanded by pathname expansion only (IFS= turns off word splitting; parameter expansion
# results are never re-parsed, so `$(...)` in it stays text). No match leaves the pattern as
# is, which then exists only if a file has that literal name: Python's glob.glob semantics.
#
# Arguments: PATTERN
# Stdin: not read.
# Output: none.
# Exit: 0 something matches (even a dangling link); 1 nothing does.
IFS=; for p_ in $1; do if [ -e "$p_" ] || [ -L "$p_" ]; then exit 0; fi; done; exit 1
