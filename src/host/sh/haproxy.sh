# haproxy: the `haproxy` module's conversation with HAProxy's runtime API
# (src/modules/system/haproxy.rs), after haproxy_cli.sh and `set -- SOCKET COMMAND... ;`.
#
# Arguments: SOCKET, then each command line to send (one connection per command, as the
#   runtime API closes it after answering).
# Stdin: not read.
# Output: each command's answer followed by a line `@@rdeploy-haproxy@@`.
# Exit: 0; the client's status when a command could not be sent (stderr says why).

sk_=$1; shift
for c_ in "$@"; do
  hap_ "$sk_" "$c_" || exit
  printf '\n@@rdeploy-haproxy@@\n'
done
exit 0
