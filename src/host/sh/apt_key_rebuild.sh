# apt_key_rebuild: prints the keyring KEYRING with one key added (from stdin) or the key DEL
# removed, exported binary or armored (the `apt_key` module, src/modules/system/apt_key.rs),
# after `set -- KEYRING ARMOR DEL ;`. Runs in a temporary GNUPGHOME; changes nothing else.
#
# Arguments: KEYRING, ARMOR (1: armored), DEL (a key id; empty: add the key on stdin)
# Stdin: the key to add.
# Output: the new keyring.
# Exit: 0; 1 no temporary folder or the key to remove is not there; else gpg's.
kr_=$1; armor_=$2; del_=$3
t_=$(mktemp -d) || exit 1; GNUPGHOME=$t_; export GNUPGHOME
{ [ ! -s "$kr_" ] || gpg --batch -q --import "$kr_"; } &&
if [ -n "$del_" ]; then
  fpr_=$(gpg --batch --with-colons --list-keys "$del_" | awk -F: '$1 == "fpr" { print $10; exit }') &&
  [ -n "$fpr_" ] && gpg --batch --yes -q --delete-keys "$fpr_"
else
  gpg --batch -q --import
fi &&
if [ "$armor_" = 1 ]; then gpg --batch --armor --export; else gpg --batch --export; fi
rc_=$?; rm -rf "$t_"; exit $rc_
