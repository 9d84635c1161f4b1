# get_url_download: downloads a URL to DEST (the `get_url` module, src/modules/system/get_url.rs)
# with curl, else wget, into a temporary file next to DEST, checked, then renamed over it.
#
# Arguments (set -- by the builder), nine:
#   $1 DEST  $2 TIMEOUT (seconds)  $3 the checksum tool (sha256sum...; empty: none)
#   $4 the expected hex  $5 `yes` to skip TLS verification  $6 MODE  $7 OWNER[:GROUP]
#   $8 how many header lines follow the URL on stdin  $9 `yes` when credentials are in the
#   config (then wget, which would take the password in its command line, is refused)
# Stdin: the URL (one line), the headers (one line each), then curl's config (url, header,
#   user...), read by `curl -K -`.
# Output: `status CODE` (curl), `sha256 HEX`, `size BYTES`, then `same` when DEST already had
#   that content (then it is kept, with MODE and OWNER applied).
# Exit: 0; 65 checksum mismatch; 125 no URL on stdin; 127 no curl/wget (or wget with
#   credentials); else curl's or wget's, or 1.

d_=$1 t_=$2 ht_=$3 hx_=$4 k_=$5 m_=$6 o_=$7 nh_=$8 cr_=$9
shift 9
IFS= read -r u_ || { printf 'rdeploy: get_url: no URL on stdin\n' >&2; exit 125; }
while [ "$nh_" -gt 0 ]; do IFS= read -r h_ || exit 125; set -- "$@" "--header=$h_"; nh_=$((nh_ - 1)); done
tmp_=$(mktemp "$(dirname -- "$d_")/.rdeploy-get_url.XXXXXXXXXX") || exit 1
trap 'rm -f -- "$tmp_"' EXIT
if command -v curl >/dev/null 2>&1; then
  if [ "$k_" = yes ]; then set -- -k; else set --; fi
  curl -fsSL --max-time "$t_" -o "$tmp_" -w 'status %{http_code}\n' "$@" -K - || exit $?
elif command -v wget >/dev/null 2>&1; then
  if [ "$cr_" = yes ]; then
    printf 'rdeploy: get_url with url_username needs curl on the host (wget would take the password in its command line)\n' >&2; exit 127
  fi
  if [ "$k_" = yes ]; then set -- "$@" --no-check-certificate; fi
  wget -q -T "$t_" -O "$tmp_" "$@" -- "$u_" </dev/null || exit $?
else
  printf 'rdeploy: get_url needs curl or wget on the host\n' >&2; exit 127
fi
if [ -n "$ht_" ]; then
  h_=$("$ht_" < "$tmp_") || exit 1
  h_=${h_%% *}
  if [ "$h_" != "$hx_" ]; then
    printf 'rdeploy: checksum mismatch: expected %s, got %s\n' "$hx_" "$h_" >&2; exit 65
  fi
fi
h_=$(sha256sum < "$tmp_") && printf 'sha256 %.64s\n' "$h_" || exit 1
printf 'size %s\n' "$(wc -c < "$tmp_")"
if [ -f "$d_" ] && ! [ -L "$d_" ] && [ "$(sha256sum < "$d_")" = "$h_" ]; then
  if [ -n "$m_" ]; then chmod -- "$m_" "$d_" || exit 1; fi
  if [ -n "$o_" ]; then chown -- "$o_" "$d_" || exit 1; fi
  printf 'same\n'; exit 0
fi
if [ -n "$m_" ]; then chmod -- "$m_" "$tmp_" || exit 1
elif [ -e "$d_" ]; then chmod --reference="$d_" -- "$tmp_" || exit 1
else chmod -- "$(printf '%o' $((0666 & ~$(umask))))" "$tmp_" || exit 1; fi
if [ -n "$o_" ]; then chown -- "$o_" "$tmp_" || exit 1; fi
mv -f -- "$tmp_" "$d_" || exit 1
trap - EXIT
