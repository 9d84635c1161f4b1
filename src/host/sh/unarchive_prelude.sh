# unarchive_prelude: the start of the `unarchive` module's check and extraction
# (src/modules/system/unarchive.rs); unarchive_compare.sh or unarchive_extract.sh follows.
#
# Arguments (set -- by the builder): $1 DEST, $2 zip or tar, $3 the archive's path on the host
#   (empty: read it from stdin, or download $4, into a private temporary folder), $4 a URL the
#   host downloads (remote_src), $5 `yes` to skip TLS verification, $6 MODE and $7
#   OWNER[:GROUP] for unarchive_extract.sh.
# Stdin: the archive when neither $3 nor $4 is given.
# Output: `nodest` (and exit 0) when DEST is not a folder. Sets l_ to the members (one per
#   line) and defines list_.
# Exit: 4 the archive cannot be downloaded or listed; 125 no temporary file; 127 neither curl
#   nor wget for a URL.
# shellcheck disable=SC2034 # m_, o_ and l_ are for unarchive_compare.sh and unarchive_extract.sh.

d_=$1 f_=$2 a_=$3 u_=$4 k_=$5 m_=${6-} o_=${7-}
if ! [ -d "$d_" ]; then printf 'nodest\n'; exit 0; fi
if [ -z "$a_" ]; then
  t_=$(mktemp -d "${TMPDIR:-/tmp}/rdeploy-unarchive.XXXXXXXXXX") || exit 125
  trap 'rm -rf -- "$t_"' EXIT
  a_=$t_/archive
  if [ -z "$u_" ]; then
    cat > "$a_" || exit 125
  elif command -v curl >/dev/null 2>&1; then
    if [ "$k_" = yes ]; then set -- -k; else set --; fi
    curl -fsSL -o "$a_" "$@" -- "$u_" || { printf 'rdeploy: cannot download %s\n' "$u_" >&2; exit 4; }
  elif command -v wget >/dev/null 2>&1; then
    if [ "$k_" = yes ]; then set -- --no-check-certificate; else set --; fi
    wget -q -O "$a_" "$@" -- "$u_" || { printf 'rdeploy: cannot download %s\n' "$u_" >&2; exit 4; }
  else
    printf 'rdeploy: unarchive of a URL needs curl or wget on the host\n' >&2; exit 127
  fi
fi
list_() { if [ "$f_" = zip ]; then unzip -Z1 "$a_"; else tar -tf "$a_"; fi; }
l_=$(list_) || { printf 'rdeploy: cannot list the archive %s\n' "$3" >&2; exit 4; }

