# apt_cache_age: seconds since the apt lists were last updated (src/modules/system/package.rs,
# `cache_valid_time`).
#
# Arguments: none. Stdin: not read.
# Output: the age in seconds (a large number when unknown).
# Exit: 0.
# Needs: stat -c %Y, date +%s (GNU, BusyBox).

s_=$(stat -c %Y /var/lib/apt/periodic/update-success-stamp 2>/dev/null || stat -c %Y /var/lib/apt/lists 2>/dev/null || echo 0)
printf '%s\n' "$(( $(date +%s) - s_ ))"
