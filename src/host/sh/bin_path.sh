# bin_path: finds TOOL as Ansible's get_bin_path(tool, required=True) does (bin_path in
# src/modules/system/common.rs), after `set -- TOOL ;`: PATH, then /sbin, /usr/sbin and
# /usr/local/sbin.
#
# Arguments: TOOL
# Stdin: not read.
# Output: TOOL's path; else Ansible's message `Failed to find required executable "TOOL" in
#   paths: ...` on stderr.
# Exit: 0 found; 127 not found.
p_=$PATH; for d_ in /sbin /usr/sbin /usr/local/sbin; do case ":$p_:" in *":$d_:"*) ;; *) p_=$p_:$d_ ;; esac; done
PATH=$p_; export PATH; command -v "$1" 2>/dev/null || { printf 'Failed to find required executable "%s" in paths: %s\n' "$1" "$p_" >&2; exit 127; }
