//! `file`: the state of a path — a file's attributes, a directory (optionally its whole tree),
//! a symlink, a hard link, an absent path, a touched file.
//!
//! Owns Ansible's state rules and the one-round-trip check (lstat, stat of what a link points
//! to, realpath, and per state: the link source's existence, inodes for hard links, a listing
//! of the tree for `recurse`). Symlink swaps are atomic (`ln_sf_atomic`: temp link + rename).
//! `state: file|directory|touch` on a symlink act on what it points to (Ansible's default
//! `follow: yes`; `follow: no` acts on the link itself); `state: link|hard|absent` act on the
//! path itself. `access_time`/`modification_time` (`now`, `preserve`, or a time in their
//! `_format`, parsed here and read by the host's `date -d` in its own time zone, as Ansible's
//! `mktime`) are compared with `stat` in a second round trip and set with `touch -c`. Times
//! are not backed up, so rollback does not restore them (`not_reversible` says so). It must
//! not format shell lines and must not read the run mode.
//!
//! Deviations: `mode` is not applied to a symlink (Linux has no link modes; Ansible's follow
//! would chmod the target); a directory is never replaced by a link, even with `force`;
//! `mkdir -p` applies `mode`/`owner`/`group` to the last directory only; `touch` is always a
//! change and so reports `converges() == false` for that state.

use serde_json::Value;

use super::common::{
    AttrFix, WantAttrs, attr, failed, join, kind_word, mode_text, parent_of, realpath_cmd,
    run_batch, stat_of, take,
};
use crate::modules::runtime::{
    Ahead, Args, ArgsExt, BoxFut, Change, Drift, Module, ModuleCtx, ModuleError, Resource, Verdict,
};
use crate::transport::AnyTransport;
use crate::transport::cmd::{
    self, Cmd, PathKind, PathState, ln_sf_atomic, rm_rf, stat_attrs_cmd, stat_resolved_attrs_cmd,
};

/// The `file` module.
pub struct File;

/// What `apply` does, in order.
#[derive(Clone, Debug)]
enum Step {
    /// `mkdir -p`.
    Mkdir(String),
    /// `rm -rf`.
    Remove(String),
    /// Atomic symlink (target, link).
    Symlink(String, String),
    /// Atomic hard link (source, path).
    Hardlink(String, String),
    /// `touch` (creates a missing file, updates times); true: of a symlink itself (`-h`).
    Touch(String, bool),
    /// Sets access and modification times (`touch -c`); true: of a symlink itself (`-h`).
    Times {
        path: String,
        nofollow: bool,
        atime: Option<TimeSpec>,
        mtime: Option<TimeSpec>,
    },
    /// chown/chmod on one path.
    Fix(String, AttrFix),
    /// `chown -R -h` then `chmod -R` on a tree.
    FixTree {
        path: String,
        owner: Option<String>,
        group: Option<String>,
        mode: Option<String>,
    },
}

struct Plan {
    steps: Vec<Step>,
    result: Args,
}

/// A time `access_time`/`modification_time` asks for (`preserve` is `None`).
#[derive(Clone, Debug, PartialEq)]
enum TimeSpec {
    /// The time of the change.
    Now,
    /// This local time on the host, as `YYYY-MM-DD HH:MM:SS` (what `touch -d` and `date -d`
    /// read).
    At(String),
}

/// `access_time` or `modification_time` (`which`) with its format: Ansible's default
/// (`now` for `state: touch`, else `preserve`), `now`, or a time parsed with the format
/// (Python's `strptime` directives).
fn time_arg(args: &Args, which: &str, state: &str) -> Result<Option<TimeSpec>, ModuleError> {
    let default = if state == "touch" { "now" } else { "preserve" };
    let value = args.str_arg(which).unwrap_or_else(|| default.to_string());
    let format = args
        .str_arg(&format!("{which}_format"))
        .unwrap_or_else(|| "%Y%m%d%H%M.%S".to_string());
    match value.as_str() {
        "preserve" => Ok(None),
        "now" => Ok(Some(TimeSpec::Now)),
        v => chrono::NaiveDateTime::parse_from_str(v, &format)
            .map(|t| Some(TimeSpec::At(t.format("%Y-%m-%d %H:%M:%S").to_string())))
            .map_err(|_| {
                failed(format!(
                    "Error while obtaining timestamp for time {v} using format {format}: time data '{v}' does not match format '{format}'"
                ))
            }),
    }
}

/// `touch -c` of `path` setting the access (`-a`) or modification (`-m`) time to `spec`.
fn touch_time(path: &str, nofollow: bool, flag: &'static str, spec: &TimeSpec) -> Cmd {
    let c = if nofollow {
        Cmd::raw("touch -c -h")
    } else {
        Cmd::raw("touch -c")
    };
    let c = c.op(flag);
    match spec {
        TimeSpec::Now => c.op("--").arg(path),
        TimeSpec::At(t) => c.op("-d").arg(t.clone()).op("--").arg(path),
    }
}

/// Lists a tree (root included) as `type\tmode\tuid\tgid\towner\tgroup\tpath\0` (GNU find).
fn tree_listing(path: &str) -> Cmd {
    Cmd::raw("find -P")
        .arg(path)
        .op(r"-printf '%y\t%m\t%U\t%G\t%u\t%g\t%p\0'")
}

/// `stat -c %d:%i` of each path (device and inode, one line each; lstat).
fn inode_cmd(a: &str, b: &str) -> Cmd {
    Cmd::raw("stat -c '%d:%i' --").arg(a).arg(b)
}

/// Creates a hard link atomically: `ln` to a temporary name next to `path`, then rename.
fn hardlink_atomic(src: &str, path: &str) -> Cmd {
    let tmp = join(
        parent_of(path),
        &format!(".{}.rdeploy-hard", super::common::basename(path)),
    );
    Cmd::raw("set --")
        .arg(src)
        .arg(path)
        .arg(tmp)
        .op(r#"; rm -f -- "$3"; ln -- "$1" "$3" || exit 1; mv -f -T -- "$3" "$2" || { s_=$?; rm -f -- "$3"; exit "$s_"; }"#)
}

impl Module for File {
    fn ahead(&self) -> Ahead {
        Ahead::Reads
    }

    fn name(&self) -> &'static str {
        "file"
    }

    fn check<'a>(
        &'a self,
        tr: &'a mut AnyTransport,
        args: &'a Args,
        ctx: &'a ModuleCtx<'a>,
    ) -> BoxFut<'a, Result<Verdict, ModuleError>> {
        Box::pin(check(tr, args, ctx))
    }

    fn apply<'a>(
        &'a self,
        tr: &'a mut AnyTransport,
        _args: &'a Args,
        ctx: &'a ModuleCtx<'a>,
        drift: &'a Drift,
    ) -> BoxFut<'a, Result<Args, ModuleError>> {
        Box::pin(async move {
            let plan = drift
                .plan::<Plan>()
                .ok_or_else(|| ModuleError::Args("internal: foreign drift plan".into()))?;
            // Every step as one command line joined by `&&`: one round trip, and the first
            // failure stops the rest, as running them one by one would.
            let joined = plan
                .steps
                .iter()
                .filter_map(step_cmd)
                .reduce(|all, c| all.and(c));
            if let Some(c) = joined {
                ctx.run_ok(tr, c).await?;
            }
            Ok(plan.result.clone())
        })
    }

    fn resources(&self, args: &Args) -> Vec<Resource> {
        let state = args.str_arg("state");
        args.str_arg("path")
            .map(|p| {
                vec![match state.as_deref() {
                    Some("absent") => Resource::Tree(p),
                    // `state: file` never writes content: a file's mode and owner are enough.
                    Some("file") | None => Resource::Attrs(p),
                    _ => Resource::Path(p),
                }]
            })
            .unwrap_or_default()
    }

    /// A time set to `now` is always a change, and so is `touch` (whose times default to
    /// `now`) unless both times are fixed.
    fn converges(&self, args: &Args) -> bool {
        let touch = args.str_arg("state").as_deref() == Some("touch");
        ["access_time", "modification_time"]
            .iter()
            .all(|k| match args.str_arg(k) {
                Some(v) => v != "now",
                None => !touch,
            })
    }

    fn not_reversible(&self, given: &dyn Fn(&str) -> bool) -> Option<&'static str> {
        (given("access_time") || given("modification_time")).then_some(
            "access and modification times are not backed up: rollback leaves the times this run set",
        )
    }
}

/// The command for one step; `None` when the step has nothing to do.
fn step_cmd(step: &Step) -> Option<Cmd> {
    Some(match step {
        Step::Mkdir(p) => cmd::mkdir_p(p),
        Step::Remove(p) => rm_rf(p),
        Step::Symlink(t, l) => ln_sf_atomic(t, l),
        Step::Hardlink(s, p) => hardlink_atomic(s, p),
        Step::Touch(p, false) => Cmd::raw("touch --").arg(p.clone()),
        Step::Touch(p, true) => Cmd::raw("touch -h --").arg(p.clone()),
        Step::Times {
            path,
            nofollow,
            atime,
            mtime,
        } => {
            let a = atime.as_ref().map(|t| touch_time(path, *nofollow, "-a", t));
            let m = mtime.as_ref().map(|t| touch_time(path, *nofollow, "-m", t));
            return match (a, m) {
                (Some(a), Some(m)) => Some(a.and(m)),
                (a, m) => a.or(m),
            };
        }
        Step::Fix(p, fix) => return fix.cmd(p),
        Step::FixTree {
            path,
            owner,
            group,
            mode,
        } => {
            let chown = (owner.is_some() || group.is_some()).then(|| {
                let spec = match (owner, group) {
                    (Some(o), Some(g)) => format!("{o}:{g}"),
                    (Some(o), None) => o.clone(),
                    (None, Some(g)) => format!(":{g}"),
                    (None, None) => String::new(),
                };
                Cmd::raw("chown -R -h --").arg(spec).arg(path.clone())
            });
            let chmod = mode
                .as_ref()
                .map(|m| Cmd::raw("chmod -R --").arg(m.clone()).arg(path.clone()));
            return match (chown, chmod) {
                (Some(a), Some(b)) => Some(a.and(b)),
                (a, b) => a.or(b),
            };
        }
    })
}

/// A symbolic mode for `chmod -R` that means what `parse_mode` means: a clause without `who`
/// gets `a` (chmod would otherwise mask it with the umask).
fn chmod_spec(mode: &Value) -> Result<String, ModuleError> {
    match mode {
        Value::Number(_) => Ok(mode_text(crate::modules::runtime::parse_mode(
            mode, None, false,
        )?)),
        Value::String(s) if s.trim().chars().all(|c| c.is_digit(8)) => Ok(mode_text(
            crate::modules::runtime::parse_mode(mode, None, false)?,
        )),
        Value::String(s) => Ok(s
            .split(',')
            .map(|c| {
                if c.starts_with(['=', '+', '-']) {
                    format!("a{c}")
                } else {
                    c.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join(",")),
        other => Err(ModuleError::Args(format!(
            "mode must be octal or symbolic, found {other}"
        ))),
    }
}

async fn check(
    tr: &mut AnyTransport,
    args: &Args,
    ctx: &ModuleCtx<'_>,
) -> Result<Verdict, ModuleError> {
    let path = args.req_str("path")?;
    let path = if path.len() > 1 {
        path.trim_end_matches('/').to_string()
    } else {
        path
    };
    let recurse = args.bool_arg("recurse", false)?;
    let force = args.bool_arg("force", false)?;
    let follow_links = args.bool_arg("follow", true)?;
    let want = WantAttrs::from_args(args);
    let state_arg = args.str_arg("state");
    let src = args.str_arg("src");
    let src_on_host = src.as_ref().map(|s| {
        if s.starts_with('/') {
            s.clone()
        } else {
            join(parent_of(&path), s)
        }
    });

    // Attributes only (no hashing); where a link at `path` is followed (`follow`: states file,
    // touch, directory), its real path and the resolved stat, made only for a link.
    let follows = follow_links && !matches!(state_arg.as_deref(), Some("link" | "hard" | "absent"));
    let mut cmds = vec![stat_attrs_cmd(&path)];
    if follows {
        cmds.push(
            Cmd::raw("test -L")
                .arg(path.clone())
                .and(stat_resolved_attrs_cmd(&path)),
        );
        cmds.push(realpath_cmd(&path));
    }
    match state_arg.as_deref() {
        Some("link") | Some("hard") => {
            let s = src_on_host
                .clone()
                .ok_or_else(|| ModuleError::Args("src is required for state=link/hard".into()))?;
            cmds.push(Cmd::raw("test -e").arg(s.clone()));
            if state_arg.as_deref() == Some("hard") {
                cmds.push(inode_cmd(&s, &path));
            }
        }
        _ => {}
    }
    let listing = recurse && matches!(state_arg.as_deref(), None | Some("directory"));
    if listing {
        cmds.push(tree_listing(&path));
    }
    let mut outs = run_batch(tr, ctx, &cmds, 1 << 20).await?.into_iter();
    let cur = stat_of(&take(&mut outs)?, &path)?;
    let resolved = if follows {
        let resolved_out = take(&mut outs)?;
        let real_out = take(&mut outs)?;
        let real = real_out.stdout_lossy().trim_end_matches('\n').to_string();
        if matches!(cur.kind, PathKind::Link { .. }) && resolved_out.success() && !real.is_empty() {
            Some((real, stat_of(&resolved_out, &path)?))
        } else {
            None
        }
    } else {
        None
    };
    let state = match state_arg.as_deref() {
        Some(s) => s.to_string(),
        None => match cur.kind {
            PathKind::Directory => "directory".into(),
            PathKind::Absent if recurse => "directory".into(),
            _ => "file".into(),
        },
    };
    let (atime, mtime) = if state == "absent" {
        (None, None)
    } else {
        (
            time_arg(args, "access_time", &state)?,
            time_arg(args, "modification_time", &state)?,
        )
    };
    let plain_touch =
        state == "touch" && atime == Some(TimeSpec::Now) && mtime == Some(TimeSpec::Now);
    let mut result = Args::new();
    result.insert("path".into(), Value::from(path.clone()));
    result.insert("state".into(), Value::from(state.clone()));
    let mut changes = Vec::new();
    let mut steps = Vec::new();

    match state.as_str() {
        "absent" => {
            if cur.exists() {
                changes.push(attr(&path, "state", kind_word(&cur.kind), "absent"));
                steps.push(Step::Remove(path.clone()));
            }
        }
        "file" => {
            let (target, st) = follow(&path, &cur, resolved.as_ref());
            match st.kind {
                PathKind::Absent => {
                    return Err(failed(format!("file ({path}) is absent, cannot continue")));
                }
                PathKind::File => {}
                ref k if state_arg.is_some() => {
                    return Err(failed(format!(
                        "file ({path}) is {}, cannot continue",
                        kind_word(k)
                    )));
                }
                _ => {}
            }
            attrs_on(
                &want,
                &target,
                st,
                &path,
                &mut changes,
                &mut steps,
                &mut result,
            )?;
        }
        "touch" => {
            let (target, st) = follow(&path, &cur, resolved.as_ref());
            // Touched now (a directory only gets its times), unless fixed times were asked
            // for: then a missing file is created and the times are compared below.
            if plain_touch || !st.exists() {
                changes.push(attr(
                    &path,
                    "state",
                    kind_word(&st.kind),
                    if st.exists() { "touched" } else { "file" },
                ));
                let nofollow = !follow_links && matches!(st.kind, PathKind::Link { .. });
                steps.push(Step::Touch(target.clone(), nofollow));
            }
            if st.exists() {
                attrs_on(
                    &want,
                    &target,
                    st,
                    &path,
                    &mut changes,
                    &mut steps,
                    &mut result,
                )?;
            } else {
                let fix = AttrFix {
                    mode: want.mode_for(0o644, false)?,
                    owner: want.owner.clone(),
                    group: want.group.clone(),
                    changes: Vec::new(),
                };
                steps.push(Step::Fix(target, fix));
            }
        }
        "directory" => {
            let (target, st) = follow(&path, &cur, resolved.as_ref());
            match st.kind {
                PathKind::Absent => {
                    changes.push(attr(&path, "state", "absent", "directory"));
                    steps.push(Step::Mkdir(path.clone()));
                    let fix = AttrFix {
                        mode: want.mode_for(0o755, true)?,
                        owner: want.owner.clone(),
                        group: want.group.clone(),
                        changes: Vec::new(),
                    };
                    if !fix.is_empty() {
                        steps.push(Step::Fix(path.clone(), fix));
                    }
                }
                PathKind::Directory => {
                    if listing {
                        let out = take(&mut outs)?;
                        tree_drift(&want, &out, &target, &mut changes, &mut steps)?;
                    } else {
                        attrs_on(
                            &want,
                            &target,
                            st,
                            &path,
                            &mut changes,
                            &mut steps,
                            &mut result,
                        )?;
                    }
                }
                ref k => {
                    return Err(failed(format!(
                        "{path} already exists as a {}",
                        kind_word(k)
                    )));
                }
            }
        }
        "link" => {
            let src = src.unwrap_or_default();
            let src_exists = take(&mut outs)?.success();
            result.insert("dest".into(), Value::from(path.clone()));
            result.insert("src".into(), Value::from(src.clone()));
            match &cur.kind {
                PathKind::Link { target } if *target == src => {
                    let fix = WantAttrs {
                        mode: None,
                        ..want.clone()
                    }
                    .diff(&path, &cur)?;
                    changes.extend(fix.changes.iter().cloned());
                    if !fix.is_empty() {
                        steps.push(Step::Fix(path.clone(), fix));
                    }
                }
                PathKind::Directory => {
                    return Err(failed(format!(
                        "refusing to replace directory {path} with a symlink"
                    )));
                }
                PathKind::File | PathKind::Other if !force => {
                    return Err(failed(format!(
                        "refusing to convert from {} to symlink for {path}",
                        kind_word(&cur.kind)
                    )));
                }
                kind => {
                    if !src_exists && !force {
                        return Err(failed(format!(
                            "src file does not exist, use \"force=yes\" if you really want to create the link: {}",
                            src_on_host.unwrap_or_default()
                        )));
                    }
                    let before = match kind {
                        PathKind::Link { target } => target.clone(),
                        other => kind_word(other).to_string(),
                    };
                    changes.push(attr(&path, "target", before, src.clone()));
                    steps.push(Step::Symlink(src.clone(), path.clone()));
                    if want.owner.is_some() || want.group.is_some() {
                        steps.push(Step::Fix(
                            path.clone(),
                            AttrFix {
                                owner: want.owner.clone(),
                                group: want.group.clone(),
                                ..AttrFix::default()
                            },
                        ));
                    }
                }
            }
        }
        "hard" => {
            let src = src.unwrap_or_default();
            let src_on_host = src_on_host.unwrap_or_default();
            if !take(&mut outs)?.success() {
                return Err(failed(format!("src file does not exist: {src_on_host}")));
            }
            let inodes = take(&mut outs)?;
            let lines: Vec<String> = inodes.stdout_lossy().lines().map(str::to_string).collect();
            let same = inodes.success() && lines.len() == 2 && lines[0] == lines[1];
            result.insert("dest".into(), Value::from(path.clone()));
            result.insert("src".into(), Value::from(src.clone()));
            if same {
                attrs_on(
                    &want,
                    &path,
                    &cur,
                    &path,
                    &mut changes,
                    &mut steps,
                    &mut result,
                )?;
            } else {
                match &cur.kind {
                    PathKind::Absent => {}
                    PathKind::Directory => {
                        return Err(failed(format!(
                            "refusing to replace directory {path} with a hard link"
                        )));
                    }
                    k if !force => {
                        return Err(failed(format!(
                            "Cannot link, {} exists at destination {path}",
                            kind_word(k)
                        )));
                    }
                    _ => {}
                }
                changes.push(attr(&path, "state", kind_word(&cur.kind), "hard"));
                steps.push(Step::Hardlink(src_on_host, path.clone()));
                let fix = AttrFix {
                    mode: want
                        .mode
                        .as_ref()
                        .map(|m| crate::modules::runtime::parse_mode(m, None, false))
                        .transpose()?,
                    owner: want.owner.clone(),
                    group: want.group.clone(),
                    changes: Vec::new(),
                };
                if !fix.is_empty() {
                    steps.push(Step::Fix(path.clone(), fix));
                }
            }
        }
        other => {
            return Err(ModuleError::Args(format!("unknown state '{other}'")));
        }
    }
    if !plain_touch && (atime.is_some() || mtime.is_some()) {
        let (target, st) = follow(&path, &cur, resolved.as_ref());
        let nofollow = !follow_links && matches!(st.kind, PathKind::Link { .. });
        times_drift(
            tr,
            ctx,
            Times {
                shown: &path,
                target: &target,
                exists: st.exists(),
                nofollow,
                atime,
                mtime,
            },
            &mut changes,
            &mut steps,
        )
        .await?;
    }
    if changes.is_empty() {
        return Ok(Verdict::InSync { result });
    }
    Ok(Verdict::Drift(Drift::new(changes, Plan { steps, result })))
}

/// The times a task asks for, of one path.
struct Times<'a> {
    shown: &'a str,
    target: &'a str,
    exists: bool,
    nofollow: bool,
    atime: Option<TimeSpec>,
    mtime: Option<TimeSpec>,
}

/// Compares the path's access and modification times with what the task asks for (one more
/// round trip: `stat` and the host's `date -d` for each fixed time, in the host's time zone as
/// Ansible's `mktime`); `now` is always a change. Adds the `Times` step after the others (a
/// path they create gets its times then).
async fn times_drift(
    tr: &mut AnyTransport,
    ctx: &ModuleCtx<'_>,
    t: Times<'_>,
    changes: &mut Vec<Change>,
    steps: &mut Vec<Step>,
) -> Result<(), ModuleError> {
    let wanted = [("atime", &t.atime), ("mtime", &t.mtime)];
    let mut current = ["absent".to_string(), "absent".to_string()];
    let mut differs = [t.atime.is_some(), t.mtime.is_some()];
    if t.exists {
        let stat = if t.nofollow {
            Cmd::raw("stat -c '%.9X %.9Y' --")
        } else {
            Cmd::raw("stat -L -c '%.9X %.9Y' --")
        };
        let mut cmds = vec![stat.arg(t.target)];
        for (_, w) in wanted {
            if let Some(TimeSpec::At(at)) = w {
                cmds.push(Cmd::raw("date +%s -d").arg(at.clone()));
            }
        }
        let outs = match ctx.read(tr, &cmds, 4096).await? {
            Ok(o) => o,
            Err(e) => return Err(failed(e.to_string())),
        };
        let mut outs = outs.into_iter();
        let stat = take(&mut outs)?;
        let text = stat.stdout_lossy();
        let now: Vec<&str> = text.split_whitespace().collect();
        if !stat.success() || now.len() != 2 {
            return Err(failed(format!(
                "cannot read the times of {}: {}",
                t.target,
                stat.stderr_lossy().trim()
            )));
        }
        for (i, (_, w)) in wanted.iter().enumerate() {
            current[i] = now[i].to_string();
            differs[i] = match w {
                None => false,
                Some(TimeSpec::Now) => true,
                Some(TimeSpec::At(at)) => {
                    let out = take(&mut outs)?;
                    let epoch = out.stdout_lossy().trim().to_string();
                    if !out.success() || epoch.is_empty() {
                        return Err(failed(format!(
                            "the host cannot read the time {at}: {}",
                            out.stderr_lossy().trim()
                        )));
                    }
                    now[i].parse::<f64>().ok() != epoch.parse::<f64>().ok()
                }
            };
        }
    }
    if !differs.iter().any(|d| *d) {
        return Ok(());
    }
    let mut step_times = [None, None];
    for (i, (what, w)) in wanted.iter().enumerate() {
        if differs[i]
            && let Some(w) = w
        {
            let after = match w {
                TimeSpec::Now => "now".to_string(),
                TimeSpec::At(at) => at.clone(),
            };
            changes.push(attr(t.shown, what, current[i].clone(), after));
            step_times[i] = Some(w.clone());
        }
    }
    let [atime, mtime] = step_times;
    steps.push(Step::Times {
        path: t.target.to_string(),
        nofollow: t.nofollow,
        atime,
        mtime,
    });
    Ok(())
}

/// For a symlink, the real path and what it points to; otherwise the path itself.
fn follow<'s>(
    path: &str,
    cur: &'s PathState,
    resolved: Option<&'s (String, PathState)>,
) -> (String, &'s PathState) {
    match (&cur.kind, resolved) {
        (PathKind::Link { .. }, Some((real, st))) => (real.clone(), st),
        _ => (path.to_string(), cur),
    }
}

/// Attribute drift of one existing path; fills the result's `mode`/`owner`/`group`/`uid`/
/// `gid`/`size` with the values after apply.
fn attrs_on(
    want: &WantAttrs,
    target: &str,
    st: &PathState,
    shown: &str,
    changes: &mut Vec<Change>,
    steps: &mut Vec<Step>,
    result: &mut Args,
) -> Result<(), ModuleError> {
    let fix = want.diff(shown, st)?;
    result.insert(
        "mode".into(),
        Value::from(mode_text(fix.mode.unwrap_or(st.mode & 0o7777))),
    );
    result.insert(
        "owner".into(),
        Value::from(fix.owner.clone().unwrap_or_else(|| st.owner.clone())),
    );
    result.insert(
        "group".into(),
        Value::from(fix.group.clone().unwrap_or_else(|| st.group.clone())),
    );
    if fix.owner.is_none() {
        result.insert("uid".into(), Value::from(st.uid));
    }
    if fix.group.is_none() {
        result.insert("gid".into(), Value::from(st.gid));
    }
    result.insert("size".into(), Value::from(st.size));
    if !fix.is_empty() {
        changes.extend(fix.changes.iter().cloned());
        steps.push(Step::Fix(target.to_string(), fix));
    }
    Ok(())
}

/// Drift of a whole tree (`recurse: yes`) from a [`tree_listing`]; one `FixTree` step fixes it.
fn tree_drift(
    want: &WantAttrs,
    out: &crate::transport::Output,
    root: &str,
    changes: &mut Vec<Change>,
    steps: &mut Vec<Step>,
) -> Result<(), ModuleError> {
    if out.truncated.stdout > 0 {
        return Err(failed(format!(
            "{root}: tree too large to list for recurse"
        )));
    }
    let mut need_owner = false;
    let mut need_group = false;
    let mut need_mode = false;
    for rec in out.stdout.split(|b| *b == 0).filter(|r| !r.is_empty()) {
        let rec = String::from_utf8_lossy(rec);
        let f: Vec<&str> = rec.splitn(7, '\t').collect();
        let [ty, mode, uid, gid, owner, group, p] = f[..] else {
            return Err(failed(format!("unexpected find output {rec:?}")));
        };
        let bad = || failed(format!("unexpected find output {rec:?}"));
        let st = PathState {
            kind: match ty {
                "d" => PathKind::Directory,
                "f" => PathKind::File,
                "l" => PathKind::Link {
                    target: String::new(),
                },
                _ => PathKind::Other,
            },
            mode: u32::from_str_radix(mode, 8).map_err(|_| bad())?,
            uid: uid.parse().map_err(|_| bad())?,
            gid: gid.parse().map_err(|_| bad())?,
            owner: owner.to_string(),
            group: group.to_string(),
            size: 0,
            sha256: None,
        };
        let fix = want.diff(p, &st)?;
        need_owner |= fix.owner.is_some();
        need_group |= fix.group.is_some();
        need_mode |= fix.mode.is_some();
        changes.extend(fix.changes);
    }
    if need_owner || need_group || need_mode {
        steps.push(Step::FixTree {
            path: root.to_string(),
            owner: if need_owner || need_group {
                want.owner.clone()
            } else {
                None
            },
            group: if need_owner || need_group {
                want.group.clone()
            } else {
                None
            },
            mode: if need_mode {
                want.mode.as_ref().map(chmod_spec).transpose()?
            } else {
                None
            },
        });
    }
    Ok(())
}
