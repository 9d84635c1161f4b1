# rpm_key_gpg: runs `gpg --no-tty --batch ARGS` in a fresh temporary GNUPGHOME, removed after
# (the `rpm_key` module, src/modules/system/rpm_key.rs), after `set -- ARG... ;`.
#
# Arguments: gpg's.
# Stdin: gpg's.
# Output: gpg's.
# Exit: gpg's; 1 no temporary folder.
t_=$(mktemp -d) || exit 1; GNUPGHOME=$t_; export GNUPGHOME
gpg --no-tty --batch "$@"; rc_=$?; rm -rf "$t_"; exit $rc_
