# apt_key_show_keyring: lists the keys of KEYRING (the `apt_key` module,
# src/modules/system/apt_key.rs), after `set -- KEYRING ;`; nothing when it does not exist or
# is empty (removing the last key leaves an empty keyring, as `apt-key del` does).
#
# Arguments: KEYRING
# Stdin: not read.
# Output: gpg's --with-colons listing.
# Exit: 0; 1 no temporary folder; else gpg's.
[ -s "$1" ] || exit 0
t_=$(mktemp -d) || exit 1; GNUPGHOME=$t_; export GNUPGHOME
gpg --batch --with-colons --show-keys "$1"; rc_=$?; rm -rf "$t_"; exit $rc_
