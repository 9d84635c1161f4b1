# get_url_fetch_sums: fetches a checksum file to stdout (the `get_url` module's
# `checksum: ALGO:URL`, src/modules/system/get_url.rs).
#
# Arguments (set -- by the builder): $1 `yes` to skip TLS verification, $2 TIMEOUT, $3 how
#   many header lines follow the URL, $4 `yes` when credentials are in the config.
# Stdin: as get_url_download.sh's.
# Output: the file.
# Exit: curl's or wget's; 125 no URL on stdin; 127 no curl/wget (or wget with credentials).

k_=$1 t_=$2 nh_=$3 cr_=$4
shift 4
IFS= read -r u_ || exit 125
while [ "$nh_" -gt 0 ]; do IFS= read -r h_ || exit 125; set -- "$@" "--header=$h_"; nh_=$((nh_ - 1)); done
if command -v curl >/dev/null 2>&1; then
  if [ "$k_" = yes ]; then set -- -k; else set --; fi
  exec curl -fsSL --max-time "$t_" "$@" -K -
elif command -v wget >/dev/null 2>&1; then
  if [ "$cr_" = yes ]; then
    printf 'rdeploy: get_url with url_username needs curl on the host\n' >&2; exit 127
  fi
  if [ "$k_" = yes ]; then set -- "$@" --no-check-certificate; fi
  exec wget -q -T "$t_" -O - "$@" -- "$u_" </dev/null
else
  printf 'rdeploy: get_url needs curl or wget on the host\n' >&2; exit 127
fi
