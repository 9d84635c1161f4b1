# rpm_key_import: `rpm --import` of the key on stdin, through a temporary file (the `rpm_key`
# module, src/modules/system/rpm_key.rs).
#
# Arguments: none.
# Stdin: the key.
# Output: rpm's.
# Exit: rpm's; 1 no temporary file.
t_=$(mktemp) || exit 1; cat > "$t_" && rpm --import -- "$t_"; rc_=$?; rm -f "$t_"; exit $rc_
