# apt_key_gpg: runs `gpg --batch ARGS` in a fresh temporary GNUPGHOME, removed after, so nothing
# of the user's own keyrings is read or changed (the `apt_key` module,
# src/modules/system/apt_key.rs), after `set -- ARG... ;`.
#
# Arguments: gpg's.
# Stdin: gpg's.
# Output: gpg's.
# Exit: gpg's; 1 no temporary folder.
t_=$(mktemp -d) || exit 1; GNUPGHOME=$t_; export GNUPGHOME
gpg --batch "$@"; rc_=$?; rm -rf "$t_"; exit $rc_
