# policy_rc_d_off: puts the previous /usr/sbin/policy-rc.d back, or removes ours, right after
# the apt-get commands (src/modules/system/package.rs), keeping their exit status.
#
# Arguments: none; pr_ and ps_ as policy_rc_d_on.sh set them.
# Stdin: not read.
# Output: none.
# Exit: the apt-get commands' status.
# shellcheck disable=SC2154 # pr_ and ps_ are set by policy_rc_d_on.sh.
r_=$?
if [ -n "$ps_" ]; then mv -f "$ps_/policy-rc.d" "$pr_" && rmdir "$ps_"; else rm -f "$pr_"; fi
exit $r_
