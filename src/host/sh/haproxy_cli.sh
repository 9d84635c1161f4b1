# haproxy_cli: defines hap_ SOCKET COMMAND, which sends one command line to HAProxy's runtime
# API on its UNIX socket and prints the answer; prepended to the programs that talk to HAProxy
# (haproxy.sh, and backup.sh / backup_restore.sh for a load balancer's server state).
#
# Arguments: none (a fragment: it only defines the function).
# hap_ uses socat, else python3 (the host has no Python requirement: one of the two is enough).
# Stdin: not read.
# Output: none.
# Exit: hap_ returns the client's status; 5 when the host has neither socat nor python3.
hap_() {
  if command -v socat >/dev/null 2>&1; then
    printf '%s\n' "$2" | socat -t 10 -T 10 - "UNIX-CONNECT:$1"
  elif command -v python3 >/dev/null 2>&1; then
    python3 -c 'import socket,sys
s=socket.socket(socket.AF_UNIX); s.settimeout(10); s.connect(sys.argv[1])
s.sendall(sys.argv[2].encode()+b"\n")
while True:
    b=s.recv(65536)
    if not b: break
    sys.stdout.buffer.write(b)' "$1" "$2"
  else
    printf "rdeploy: reaching HAProxy's socket %s needs socat or python3 on the host\n" "$1" >&2
    return 5
  fi
}
