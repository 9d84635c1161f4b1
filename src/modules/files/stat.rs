//! `stat`: reports a path's facts under `stat:`; never changes anything (always in sync).
//!
//! Owns the one-round-trip batch (lstat or, with `follow`, stat of what a link points to;
//! times, inode and file type; access for the connecting user; the checksum in the asked
//! algorithm — sha256 comes with the stat helper, the others from coreutils' `md5sum`/`sha1sum`/
//! `sha224sum`/`sha384sum`/`sha512sum` in the same batch) and the shape of Ansible's result. It
//! must not format shell lines and must not change the host.
//!
//! Deviations: no `mimetype`/`charset` (`get_mime`) and no `attributes` (`lsattr`); `readable`/
//! `writeable`/`executable` are for the user the command runs as (become applies).

use serde_json::{Map, Value};

use super::common::{failed, mode_text, realpath_cmd, run_batch, stat_of, take};
use crate::modules::runtime::{
    Ahead, Args, BoxFut, Drift, HostView, Module, ModuleCtx, ModuleError, Resource, Verdict,
};
use crate::transport::AnyTransport;
use crate::transport::cmd::{
    Cmd, PathKind, stat_attrs_cmd, stat_cmd, stat_resolved_attrs_cmd, stat_resolved_cmd,
};

/// The `stat` module.
pub struct Stat;

crate::module_args! {
    /// Reports whether a path exists and its type, mode, owner, size and checksum; register the
    /// result.
    #[module(
        name = "stat",
        backup = "Changes nothing on the host: nothing to back up.",
        returns = &[("stat", "exists, path, mode, uid, gid, pw_name, gr_name, size, isdir, isreg, islnk, lnk_source, mtime, checksum...")],
        examples = "- stat:\n    path: /srv/app/current\n  register: current\n- debug:\n    msg: \"current release: {{ current.stat.lnk_source }}\"\n  when: current.stat.islnk | default(false)"
    )]
    pub struct StatArgs {
        /// The path to inspect.
        #[arg(required, kind = Path, aliases = &["dest", "name"])]
        path: String,
        /// Algorithm of the reported checksum.
        #[arg(
            aliases = &["checksum", "checksum_algo"],
            default = "sha1",
            choices = &["md5", "sha1", "sha224", "sha256", "sha384", "sha512"]
        )]
        checksum_algorithm: String,
        /// Compute the checksum of a regular file.
        #[arg(default = "yes")]
        get_checksum: bool,
        /// Follow a symlink at `path`.
        #[arg(default = "no")]
        follow: bool,
    }
}

/// Prints `atime mtime ctime inode dev nlink type words`; for a path that is not there (the
/// built-in `test` says so) nothing, exit 1, without starting `stat`.
fn times_cmd(path: &str, follow: bool) -> Cmd {
    let c = Cmd::raw("set --").arg(path);
    if follow {
        c.op(r#"; [ -e "$1" ] || exit 1; exec stat -L -c '%X %Y %Z %i %d %h %F' -- "$1""#)
    } else {
        c.op(r#"; [ -e "$1" ] || [ -L "$1" ] || exit 1; exec stat -c '%X %Y %Z %i %d %h %F' -- "$1""#)
    }
}

/// Prints three words `true`/`false`: readable, writeable, executable.
fn access_cmd(path: &str) -> Cmd {
    Cmd::raw("set --").arg(path).op(
        r#"; r_=false w_=false x_=false; [ -r "$1" ] && r_=true; [ -w "$1" ] && w_=true; [ -x "$1" ] && x_=true; printf '%s %s %s' "$r_" "$w_" "$x_""#,
    )
}

/// Prints the checksum of a regular file with the program `prog` (from a fixed list), nothing
/// for anything else; a symlink is hashed only when `follow`.
fn checksum_cmd(path: &str, prog: &'static str, follow: bool) -> Cmd {
    let c = Cmd::raw("set --").arg(path).arg(prog);
    if follow {
        c.op(r#"; if [ -f "$1" ]; then h_=$("$2" < "$1") && printf '%s' "${h_%% *}"; fi"#)
    } else {
        c.op(r#"; if [ -f "$1" ] && ! [ -L "$1" ]; then h_=$("$2" < "$1") && printf '%s' "${h_%% *}"; fi"#)
    }
}

fn checksum_program(algo: &str) -> Result<Option<&'static str>, ModuleError> {
    Ok(match algo {
        "sha256" => None,
        "md5" => Some("md5sum"),
        "sha1" => Some("sha1sum"),
        "sha224" => Some("sha224sum"),
        "sha384" => Some("sha384sum"),
        "sha512" => Some("sha512sum"),
        other => {
            return Err(ModuleError::Args(format!(
                "unsupported checksum_algorithm '{other}'"
            )));
        }
    })
}

impl Module for Stat {
    fn ahead(&self) -> Ahead {
        Ahead::ReadsOnly
    }

    fn name(&self) -> &'static str {
        "stat"
    }

    fn check<'a>(
        &'a self,
        tr: &'a mut HostView<'_>,
        args: &'a Args,
        ctx: &'a ModuleCtx<'a>,
    ) -> BoxFut<'a, Result<Verdict, ModuleError>> {
        Box::pin(async move {
            let StatArgs {
                path,
                checksum_algorithm,
                get_checksum,
                follow,
            } = StatArgs::parse(args)?;
            let prog = checksum_program(&checksum_algorithm)?;
            // The stat helper hashes with sha256 itself; other checksums (or none) need no hash.
            let sha256_here = get_checksum && prog.is_none();
            let mut cmds = vec![
                match (follow, sha256_here) {
                    (true, true) => stat_resolved_cmd(&path),
                    (true, false) => stat_resolved_attrs_cmd(&path),
                    (false, true) => stat_cmd(&path),
                    (false, false) => stat_attrs_cmd(&path),
                },
                times_cmd(&path, follow),
                access_cmd(&path),
                realpath_cmd(&path),
            ];
            if let (true, Some(p)) = (get_checksum, prog) {
                cmds.push(checksum_cmd(&path, p, follow));
            }
            let mut outs = run_batch(tr, ctx, &cmds, 64 * 1024).await?.into_iter();
            let st = stat_of(&take(&mut outs)?, &path)?;
            let times = take(&mut outs)?;
            let access = take(&mut outs)?;
            let real = take(&mut outs)?;
            let sum = if get_checksum && prog.is_some() {
                Some(take(&mut outs)?)
            } else {
                None
            };
            let mut s = Map::new();
            s.insert("exists".into(), Value::from(st.exists()));
            if st.exists() {
                fill(&mut s, &path, &st, &times, &access, &real)?;
                if get_checksum && st.kind == PathKind::File {
                    let value = match &sum {
                        Some(o) => Some(o.stdout_lossy().trim().to_string()),
                        None => st.sha256.clone(),
                    };
                    if let Some(v) = value.filter(|v| !v.is_empty()) {
                        s.insert("checksum".into(), Value::from(v));
                    }
                }
            }
            let mut result = Args::new();
            result.insert("stat".into(), Value::Object(s));
            Ok(Verdict::InSync { result })
        })
    }

    fn apply<'a>(
        &'a self,
        _tr: &'a mut AnyTransport,
        _args: &'a Args,
        _ctx: &'a ModuleCtx<'a>,
        _drift: &'a Drift,
    ) -> BoxFut<'a, Result<Args, ModuleError>> {
        Box::pin(async { Err(ModuleError::Args("stat never changes anything".into())) })
    }

    fn resources(&self, _args: &Args) -> Vec<Resource> {
        Vec::new()
    }
}

fn fill(
    s: &mut Map<String, Value>,
    path: &str,
    st: &crate::transport::cmd::PathState,
    times: &crate::transport::Output,
    access: &crate::transport::Output,
    real: &crate::transport::Output,
) -> Result<(), ModuleError> {
    let m = st.mode;
    let times_text = times.stdout_lossy();
    let t: Vec<&str> = times_text.trim_end().splitn(7, ' ').collect();
    let [atime, mtime, ctime, inode, dev, nlink, ftype] = t[..] else {
        return Err(failed(format!(
            "{path}: unexpected stat output {:?}",
            times_text.trim_end()
        )));
    };
    let num = |v: &str| v.parse::<u64>().map(Value::from).unwrap_or(Value::Null);
    let acc_text = access.stdout_lossy();
    let acc: Vec<bool> = acc_text.split(' ').map(|w| w == "true").collect();
    let flag = |i: usize| acc.get(i).copied().unwrap_or(false);
    let entries: Vec<(&str, Value)> = vec![
        ("path", Value::from(path)),
        ("mode", Value::from(mode_text(m & 0o7777))),
        ("isdir", Value::from(st.kind == PathKind::Directory)),
        ("isreg", Value::from(st.kind == PathKind::File)),
        (
            "islnk",
            Value::from(matches!(st.kind, PathKind::Link { .. })),
        ),
        ("ischr", Value::from(ftype == "character special file")),
        ("isblk", Value::from(ftype == "block special file")),
        ("isfifo", Value::from(ftype == "fifo")),
        ("issock", Value::from(ftype == "socket")),
        ("uid", Value::from(st.uid)),
        ("gid", Value::from(st.gid)),
        ("pw_name", Value::from(st.owner.clone())),
        ("gr_name", Value::from(st.group.clone())),
        ("size", Value::from(st.size)),
        ("atime", num(atime)),
        ("mtime", num(mtime)),
        ("ctime", num(ctime)),
        ("inode", num(inode)),
        ("dev", num(dev)),
        ("nlink", num(nlink)),
        ("rusr", Value::from(m & 0o400 != 0)),
        ("wusr", Value::from(m & 0o200 != 0)),
        ("xusr", Value::from(m & 0o100 != 0)),
        ("rgrp", Value::from(m & 0o040 != 0)),
        ("wgrp", Value::from(m & 0o020 != 0)),
        ("xgrp", Value::from(m & 0o010 != 0)),
        ("roth", Value::from(m & 0o004 != 0)),
        ("woth", Value::from(m & 0o002 != 0)),
        ("xoth", Value::from(m & 0o001 != 0)),
        ("isuid", Value::from(m & 0o4000 != 0)),
        ("isgid", Value::from(m & 0o2000 != 0)),
        ("readable", Value::from(flag(0))),
        ("writeable", Value::from(flag(1))),
        ("executable", Value::from(flag(2))),
    ];
    for (k, v) in entries {
        s.insert(k.into(), v);
    }
    if let PathKind::Link { target } = &st.kind {
        s.insert("lnk_target".into(), Value::from(target.clone()));
        if real.success() {
            let r = real.stdout_lossy().trim_end_matches('\n').to_string();
            s.insert("lnk_source".into(), Value::from(r));
        }
    }
    Ok(())
}
