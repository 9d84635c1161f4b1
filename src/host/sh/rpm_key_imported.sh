# rpm_key_imported: the keys rpm has imported, as gpg reads their descriptions (the `rpm_key`
# module, src/modules/system/rpm_key.rs).
#
# Arguments: none. Stdin: not read.
# Output: gpg's --with-colons listing; nothing when no key is imported.
# Exit: 0; 127 no rpm (with Ansible's message); 1 no temporary folder; else gpg's.
command -v rpm >/dev/null 2>&1 || { echo 'Failed to find required executable "rpm"' >&2; exit 127; }
rpm -q gpg-pubkey >/dev/null 2>&1 || exit 0
t_=$(mktemp -d) || exit 1; GNUPGHOME=$t_; export GNUPGHOME
rpm -q gpg-pubkey --qf '%{description}' | gpg --no-tty --batch --with-colons --fixed-list-mode -
rc_=$?; rm -rf "$t_"; exit $rc_
