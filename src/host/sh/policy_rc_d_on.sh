# policy_rc_d_on: puts /usr/sbin/policy-rc.d exiting with CODE in place, keeping an existing one
# aside (Ansible's `policy_rc_d`, src/modules/system/package.rs). Runs before the apt-get
# commands, in the same shell; policy_rc_d_off.sh follows them.
#
# Arguments (set -- by the builder): CODE
# Stdin: not read.
# Output: none.
# Exit: 1 when the existing file cannot be moved aside; sets pr_ (the path) and ps_ (where the
#   old one was put, or empty) for policy_rc_d_off.sh.

pr_=/usr/sbin/policy-rc.d ps_=
if [ -e "$pr_" ] || [ -L "$pr_" ]; then ps_=$(mktemp -d) && mv -f "$pr_" "$ps_/" || exit 1; fi
printf '#!/bin/sh\nexit %s\n' "$1" > "$pr_" && chmod 0755 "$pr_"
