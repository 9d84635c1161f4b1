# command_expand_exec: the `command` module's argv (src/modules/system/command.rs), after
# `set -- WORD... ;`: each word expanded as Ansible's command does on the host (Python's
# os.path.expanduser(os.path.expandvars(word))): $NAME and ${NAME} from the environment, left
# as written when unset (awk, reading the word from its environment: never evaluated); then a
# leading ~ ($HOME, else the user's passwd home) or ~USER (that user's home; unchanged when
# there is no such user). Then the words are run (exec).
#
# Arguments: the command's words.
# Stdin: the command's.
# Output: the command's.
# Exit: the command's; 127 awk failed.
n_=$#; for a_ do e_=$(RDEPLOY_WORD_="$a_" awk 'BEGIN { s = ENVIRON["RDEPLOY_WORD_"]; o = ""; while (match(s, /\$([A-Za-z0-9_]+|[{][^}]*[}])/)) { t = substr(s, RSTART, RLENGTH); v = substr(t, 2); if (substr(v, 1, 1) == "{") v = substr(v, 2, length(v) - 2); o = o substr(s, 1, RSTART - 1) ((v != "RDEPLOY_WORD_" && v in ENVIRON) ? ENVIRON[v] : t); s = substr(s, RSTART + RLENGTH) } printf "%sx", o s }') || exit 127; e_=${e_%x}; case $e_ in "~"*) r_=${e_#?}; u_=${r_%%/*}; t_=${r_#"$u_"}; if [ -z "$u_" ] && [ "${HOME+set}" = set ]; then h_=$HOME; f_=1; else [ -n "$u_" ] || u_=$(id -u); h_=$(getent passwd "$u_" | cut -d: -f6); f_=$(getent passwd "$u_" >/dev/null && echo 1); fi; if [ -n "$f_" ]; then while [ "${h_%/}" != "$h_" ]; do h_=${h_%/}; done; e_=$h_$t_; [ -n "$e_" ] || e_=/; fi ;; esac; set -- "$@" "$e_"; done; shift "$n_"; exec "$@"
