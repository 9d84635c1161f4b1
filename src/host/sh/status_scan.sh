# status_scan: what `rdeploy status --from-hosts` reads on a host (src/cli/status.rs): every
# run manifest in the state folders given, with its rollback marker and its first line (which
# carries the run's stamp: who, from where, which release).
#
# Arguments: the state folders to look in; `@home` stands for ~/.local/state/rdeploy.
# Stdin: not read.
# Output: per manifest, `@@run MARK RUN DIR` (MARK `pending`, `restored` or `-`), then the
#   manifest's first line. Folders that do not exist or cannot be read print nothing.
# Exit: 0.
for d_ in "$@"; do
  [ "$d_" = @home ] && d_="${HOME:-/nonexistent}/.local/state/rdeploy"
  [ -d "$d_/runs" ] || continue
  for f_ in "$d_"/runs/*.json; do
    { [ -f "$f_" ] && [ -r "$f_" ]; } || continue
    id_=${f_##*/}; id_=${id_%.json}
    m_=-
    if [ -e "$d_/runs/$id_.pending" ]; then m_=pending
    elif [ -e "$d_/runs/$id_.restored" ]; then m_=restored; fi
    l_=
    IFS= read -r l_ < "$f_" || :
    printf '@@run %s %s %s\n%s\n' "$m_" "$id_" "$d_" "$l_"
  done
done
exit 0
