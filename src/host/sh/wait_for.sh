# wait_for: the `wait_for` module's loop (src/modules/system/wait_for.rs), run on the host.
#
# Arguments (set -- by the builder): $1 KIND (port, path, sleep), $2 up (until present/open)
#   or down, $3 HOST, $4 PORT, $5 PATH, $6 REGEX (grep -E, for a path), $7 TIMEOUT, $8 DELAY,
#   $9 SLEEP between checks, ${10} the connect timeout (seconds).
# A port is probed with nc, else bash's /dev/tcp (under timeout when there), else python3.
# Stdin: not read.
# Output: `elapsed N` (seconds).
# Exit: 0 the condition holds; 1 timed out; 2 no port probe tool.
# shellcheck disable=SC2016 # the /dev/tcp script is for the inner bash, given $1 $2 as arguments.

k_=$1 w_=$2 h_=$3 p_=$4 f_=$5 r_=$6 to_=$7 dl_=$8 sl_=$9 ct_=${10}
probe_() {
  if command -v nc >/dev/null 2>&1; then
    nc -z -w "$ct_" "$h_" "$p_" >/dev/null 2>&1
  elif command -v bash >/dev/null 2>&1; then
    if command -v timeout >/dev/null 2>&1; then
      timeout "$ct_" bash -c 'exec 3<>"/dev/tcp/$1/$2"' rdeploy-probe "$h_" "$p_" >/dev/null 2>&1
    else
      bash -c 'exec 3<>"/dev/tcp/$1/$2"' rdeploy-probe "$h_" "$p_" >/dev/null 2>&1
    fi
  elif command -v python3 >/dev/null 2>&1; then
    python3 -c 'import socket,sys; socket.create_connection((sys.argv[1], int(sys.argv[2])), float(sys.argv[3])).close()' "$h_" "$p_" "$ct_" >/dev/null 2>&1
  else
    printf 'rdeploy: wait_for needs nc, bash or python3 on the host to probe a port\n' >&2
    exit 2
  fi
}
holds_() {
  case $k_ in
    port) if probe_; then [ "$w_" = up ]; else [ "$w_" = down ]; fi ;;
    path)
      if [ "$w_" = down ]; then ! [ -e "$f_" ]
      elif [ -n "$r_" ]; then [ -r "$f_" ] && grep -Eq -e "$r_" -- "$f_"
      else [ -e "$f_" ]; fi ;;
    *) false ;;
  esac
}
st_=$(date +%s)
[ "$dl_" -gt 0 ] && sleep "$dl_"
if [ "$k_" = sleep ]; then sleep "$to_"; printf 'elapsed %s\n' "$(( $(date +%s) - st_ ))"; exit 0; fi
while :; do
  if holds_; then printf 'elapsed %s\n' "$(( $(date +%s) - st_ ))"; exit 0; fi
  el_=$(( $(date +%s) - st_ ))
  if [ "$el_" -ge "$to_" ]; then printf 'elapsed %s\n' "$el_"; exit 1; fi
  sleep "$sl_"
done
