//! `mount`: a filesystem's line in fstab, and whether it is mounted.
//!
//! Owns ansible.posix's fstab rules, ported into the pure [`set_mount`] / [`unset_mount`]
//! (fields escaped `\040`/`\046`/`\134`; the line of the same mount point rewritten as
//! `src name fstype opts dump passno` only when a field differs; `boot: no` adds `noauto`), and
//! the live side: a mount point is mounted when `findmnt --mountpoint` finds it; `mounted`
//! creates it (`mkdir -p`) and mounts it with `mount [-T FSTAB] PATH` (or remounts it when its
//! fstab line changed), `unmounted` runs `umount`, `absent` removes the line, unmounts and
//! removes the empty mount point. It must not format shell lines and must not read the run
//! mode. Not supported: `ephemeral`, `absent_from_fstab`, `opts_no_log` (refused).

use serde_json::Value;

use super::common::failed;
use crate::modules::files::common::{EditPlan, edit_apply, edit_verdict, read_text_file};
use crate::modules::runtime::{
    Args, BoxFut, Change, Drift, HostView, Module, ModuleCtx, ModuleError, Resource, Verdict,
};
use crate::transport::{AnyTransport, Cmd};

/// The `mount` module.
pub struct Mount;

crate::module_args! {
    /// Ensures a filesystem's fstab line and whether it is mounted (`mounted`, `present`,
    /// `unmounted`, `absent`, `remounted`).
    #[module(
        name = "mount",
        backup = "The fstab file is backed up (rollback puts it back), and so is what was mounted at `path` (source, type and options from findmnt, nothing, or no mount point at all): rollback unmounts what the step mounted, mounts again what it unmounted (`mount -t TYPE -o OPTIONS SRC PATH`), and removes a mount point the step created while it is empty (rmdir, never a recursive removal). `backup: true` is accepted and does nothing more. `remounted` always changes and is not verified.",
        returns = &[("name", "the mount point"), ("src", "the source"), ("fstype", "the type"), ("opts", "the options"), ("dump", "dump"), ("passno", "passno"), ("fstab", "the fstab file"), ("boot", "yes or no")],
        examples = "- mount:\n    path: /srv/cache\n    src: tmpfs\n    fstype: tmpfs\n    opts: size=64m\n    state: mounted"
    )]
    pub struct MountArgs {
        /// The mount point.
        #[arg(required, kind = Path, aliases = &["name"])]
        path: String,
        /// The device, label or source (required with `mounted` and `present`).
        #[arg(kind = Path)]
        src: Option<String>,
        /// The filesystem type (required with `mounted` and `present`).
        fstype: Option<String>,
        /// Mount options (default `defaults`).
        opts: Option<String>,
        /// fstab's dump field.
        #[arg(default = "0")]
        dump: String,
        /// fstab's passno field.
        #[arg(default = "0")]
        passno: String,
        /// `mounted`, `present`, `unmounted`, `absent` or `remounted`.
        #[arg(required, choices = &["absent", "mounted", "present", "remounted", "unmounted"])]
        state: String,
        /// The fstab file (default `/etc/fstab`).
        fstab: Option<String>,
        /// Mount at boot (`no` adds `noauto`).
        #[arg(default = "yes")]
        boot: bool,
        /// Accepted; rdeploy's own backup keeps the old fstab.
        #[arg(default = "no")]
        backup: bool,
    }
}

/// An fstab entry's fields as Ansible writes them.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Fstab {
    /// The mount point.
    pub name: String,
    /// The source.
    pub src: String,
    /// The type.
    pub fstype: String,
    /// The options.
    pub opts: String,
    /// dump.
    pub dump: String,
    /// passno.
    pub passno: String,
}

/// `_escape_fstab`.
fn escape(v: &str) -> String {
    v.replace('\\', "\\134")
        .replace(' ', "\\040")
        .replace('&', "\\046")
}

/// Python's `readlines()`: each line keeps its `\n`.
fn readlines(text: &str) -> Vec<String> {
    text.split_inclusive('\n').map(str::to_string).collect()
}

/// `_set_mount_save_old`: the new fstab text and whether it changed.
pub fn set_mount(text: &str, e: &Fstab) -> (String, bool) {
    let esc = Fstab {
        name: escape(&e.name),
        src: escape(&e.src),
        fstype: escape(&e.fstype),
        opts: escape(&e.opts),
        dump: escape(&e.dump),
        passno: escape(&e.passno),
    };
    let fmt = |f: &Fstab| {
        format!(
            "{} {} {} {} {} {}\n",
            f.src, f.name, f.fstype, f.opts, f.dump, f.passno
        )
    };
    let mut out = Vec::new();
    let (mut exists, mut changed) = (false, false);
    for mut line in readlines(text) {
        if !line.ends_with('\n') {
            line.push('\n');
        }
        if line.trim().is_empty() || line.trim().starts_with('#') {
            out.push(line);
            continue;
        }
        let fields: Vec<&str> = line
            .split('#')
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .collect();
        if !(4..=6).contains(&fields.len()) {
            out.push(line);
            continue;
        }
        // A missing dump or passno is Python's int 0, never equal to the wanted text: such a
        // line is always rewritten with all six fields.
        let get = |i: usize| fields.get(i).map_or("\0".to_string(), |s| s.to_string());
        let mut ld = Fstab {
            src: get(0),
            name: get(1),
            fstype: get(2),
            opts: get(3),
            dump: get(4),
            passno: get(5),
        };
        let other_swap = ld.name == "none" && ld.fstype == "swap" && ld.src != e.src;
        if ld.name != esc.name || other_swap {
            out.push(line);
            continue;
        }
        exists = true;
        // Ansible's `changed` is not reset between lines: once set, later lines of the same
        // mount point are rewritten too.
        for (cur, want) in [
            (&mut ld.src, &esc.src),
            (&mut ld.fstype, &esc.fstype),
            (&mut ld.opts, &esc.opts),
            (&mut ld.dump, &esc.dump),
            (&mut ld.passno, &esc.passno),
        ] {
            if cur != want {
                *cur = want.clone();
                changed = true;
            }
        }
        if changed {
            out.push(fmt(&ld));
        } else {
            out.push(line);
        }
    }
    if !exists {
        out.push(fmt(&esc));
        changed = true;
    }
    (out.concat(), changed)
}

/// `unset_mount`: the fstab text without `name`'s six-field lines, and whether it changed.
pub fn unset_mount(text: &str, name: &str, src: Option<&str>) -> (String, bool) {
    let esc = escape(name);
    let mut out = Vec::new();
    let mut changed = false;
    for line in readlines(text) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if line.trim().is_empty() || line.trim().starts_with('#') || fields.len() != 6 {
            out.push(line);
            continue;
        }
        let other_swap =
            src.is_some_and(|s| fields[1] == "none" && fields[2] == "swap" && fields[0] != s);
        if fields[1] != esc || other_swap {
            out.push(line);
            continue;
        }
        changed = true;
    }
    (out.concat(), changed)
}

/// `-T FSTAB` unless it is `/etc/fstab`.
fn with_fstab(c: Cmd, fstab: &str) -> Cmd {
    if fstab == "/etc/fstab" {
        c
    } else {
        c.arg("-T").arg(fstab.to_string())
    }
}

/// What `apply` does, in order.
struct Plan {
    mkdir: Option<String>,
    file: Option<Drift>,
    live: Vec<Cmd>,
    rmdir: Option<String>,
    result: Args,
}

async fn check_mount(
    tr: &mut HostView<'_>,
    args: &Args,
    ctx: &ModuleCtx<'_>,
) -> Result<Verdict, ModuleError> {
    let a = MountArgs::parse(args)?;
    // Ansible's own backup copy is what rdeploy's backup already is.
    let _ = a.backup;
    let state = a.state.as_str();
    if matches!(state, "mounted" | "present") && (a.src.is_none() || a.fstype.is_none()) {
        let missing: Vec<&str> = [("src", a.src.is_none()), ("fstype", a.fstype.is_none())]
            .iter()
            .filter(|(_, m)| *m)
            .map(|(n, _)| *n)
            .collect();
        return Err(ModuleError::Args(format!(
            "state is {state} but all of the following are missing: {}",
            missing.join(", ")
        )));
    }
    let fstab = a.fstab.clone().unwrap_or_else(|| "/etc/fstab".into());
    let mut opts = a.opts.clone().unwrap_or_else(|| "defaults".into());
    if !a.boot && !opts.split(',').any(|o| o == "noauto") {
        opts.push_str(",noauto");
    }
    let entry = Fstab {
        name: a.path.clone(),
        src: a.src.clone().unwrap_or_default(),
        fstype: a.fstype.clone().unwrap_or_default(),
        opts: opts.clone(),
        dump: a.dump.clone(),
        passno: a.passno.clone(),
    };
    let mut result = Args::new();
    for (k, v) in [
        ("name", a.path.clone()),
        ("opts", opts.clone()),
        ("dump", a.dump.clone()),
        ("passno", a.passno.clone()),
        ("fstab", fstab.clone()),
        ("boot", if a.boot { "yes" } else { "no" }.to_string()),
    ] {
        result.insert(k.into(), Value::from(v));
    }
    if let Some(s) = &a.src {
        result.insert("src".into(), Value::from(s.clone()));
    }
    if let Some(f) = &a.fstype {
        result.insert("fstype".into(), Value::from(f.clone()));
    }
    // Is anything mounted there, and does the mount point exist?
    let probe = Cmd::raw("set --").arg(a.path.clone()).op(
        r#"; if ! [ -e "$1" ]; then echo absent; elif findmnt -rn --mountpoint "$1" >/dev/null 2>&1; then echo mounted; else echo unmounted; fi"#,
    );
    let out = ctx.query_ok(tr, probe).await?;
    let live = out.stdout_lossy().trim().to_string();
    let mounted = live == "mounted";
    let mut plan = Plan {
        mkdir: None,
        file: None,
        live: Vec::new(),
        rmdir: None,
        result: result.clone(),
    };
    let mut changes = Vec::new();
    let mut fstab_changed = false;
    if matches!(state, "present" | "mounted" | "absent") {
        let tf = read_text_file(tr, ctx, &fstab).await?;
        let text = tf
            .bytes
            .as_ref()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_default();
        let (new, changed) = if state == "absent" {
            unset_mount(&text, &a.path, a.src.as_deref())
        } else {
            set_mount(&text, &entry)
        };
        if changed {
            fstab_changed = true;
            if let Verdict::Drift(d) = edit_verdict(
                &fstab,
                &tf,
                Some(new.into_bytes()),
                &Args::new(),
                String::new(),
                Args::new(),
            )? {
                changes.extend(d.changes.iter().cloned());
                let p = d
                    .plan::<(EditPlan, Args)>()
                    .cloned()
                    .ok_or_else(|| ModuleError::Args("internal: mount plan".into()))?;
                plan.file = Some(Drift::new(Vec::new(), p));
            }
        }
    }
    let attr = |before: &str, after: &str| Change::Attr {
        subject: a.path.clone(),
        what: "mount".into(),
        before: before.into(),
        after: after.into(),
    };
    let umount = Cmd::raw("umount --").arg(a.path.clone());
    match state {
        "mounted" => {
            if live == "absent" {
                plan.mkdir = Some(a.path.clone());
            }
            if mounted {
                if fstab_changed {
                    plan.live.push(
                        // Ansible's remount: `-o remount`, else unmount and mount.
                        Cmd::raw("set --").arg(a.path.clone()).arg(fstab.clone()).op(
                            r#"; p_=$1; f_=$2; if [ "$f_" = /etc/fstab ]; then set -- "$p_"; else set -- -T "$f_" "$p_"; fi; mount -o remount "$@" || { umount -- "$p_" && mount "$@"; }"#,
                        ),
                    );
                    changes.push(attr("mounted", "remounted"));
                }
            } else {
                plan.live
                    .push(with_fstab(Cmd::raw("mount"), &fstab).arg(a.path.clone()));
                changes.push(attr(&live, "mounted"));
            }
        }
        "unmounted" if mounted => {
            plan.live.push(umount);
            changes.push(attr("mounted", "unmounted"));
        }
        "absent" if fstab_changed => {
            if mounted {
                plan.live.push(umount);
                changes.push(attr("mounted", "unmounted"));
            }
            if live != "absent" {
                plan.rmdir = Some(a.path.clone());
                changes.push(Change::Attr {
                    subject: a.path.clone(),
                    what: "state".into(),
                    before: "directory".into(),
                    after: "absent".into(),
                });
            }
        }
        "remounted" => {
            plan.live
                .push(with_fstab(Cmd::raw("mount -o remount"), &fstab).arg(a.path.clone()));
            changes.push(attr(&live, "remounted"));
        }
        _ => {}
    }
    if changes.is_empty() {
        return Ok(Verdict::InSync { result });
    }
    Ok(Verdict::Drift(Drift::new(changes, plan)))
}

async fn apply_mount(
    tr: &mut AnyTransport,
    ctx: &ModuleCtx<'_>,
    drift: &Drift,
) -> Result<Args, ModuleError> {
    let p = drift
        .plan::<Plan>()
        .ok_or_else(|| ModuleError::Args("mount: apply without a plan from check".into()))?;
    if let Some(dir) = &p.mkdir {
        ctx.run_ok(tr, Cmd::raw("mkdir -p --").arg(dir.clone()))
            .await?;
    }
    if let Some(d) = &p.file {
        edit_apply(tr, ctx, d, "backup_file").await?;
    }
    let name = p
        .result
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    for c in &p.live {
        let out = ctx.run(tr, c.clone()).await?;
        if out.status != 0 {
            let mut r = p.result.clone();
            r.insert("rc".into(), Value::from(out.status));
            return Err(failed(
                format!(
                    "Error mounting {name}: {}{}",
                    out.stdout_lossy(),
                    out.stderr_lossy()
                ),
                r,
            ));
        }
    }
    if let Some(dir) = &p.rmdir {
        let out = ctx.run(tr, Cmd::raw("rmdir --").arg(dir.clone())).await?;
        if out.status != 0 {
            return Err(failed(
                format!("Error rmdir {dir}: {}", out.stderr_lossy().trim()),
                p.result.clone(),
            ));
        }
    }
    Ok(p.result.clone())
}

impl Module for Mount {
    fn name(&self) -> &'static str {
        "mount"
    }

    fn check<'a>(
        &'a self,
        tr: &'a mut HostView<'_>,
        args: &'a Args,
        ctx: &'a ModuleCtx<'a>,
    ) -> BoxFut<'a, Result<Verdict, ModuleError>> {
        Box::pin(check_mount(tr, args, ctx))
    }

    fn apply<'a>(
        &'a self,
        tr: &'a mut AnyTransport,
        _args: &'a Args,
        ctx: &'a ModuleCtx<'a>,
        drift: &'a Drift,
    ) -> BoxFut<'a, Result<Args, ModuleError>> {
        Box::pin(apply_mount(tr, ctx, drift))
    }

    fn resources(&self, args: &Args) -> Vec<Resource> {
        let Ok(a) = MountArgs::parse(args) else {
            return Vec::new();
        };
        let fstab = a.fstab.unwrap_or_else(|| "/etc/fstab".into());
        match a.state.as_str() {
            "unmounted" | "remounted" => vec![Resource::Mount(a.path)],
            _ => vec![Resource::Path(fstab), Resource::Mount(a.path)],
        }
    }

    fn converges(&self, args: &Args) -> bool {
        args.get("state").and_then(Value::as_str) != Some("remounted")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, src: &str, opts: &str) -> Fstab {
        Fstab {
            name: name.into(),
            src: src.into(),
            fstype: "tmpfs".into(),
            opts: opts.into(),
            dump: "0".into(),
            passno: "0".into(),
        }
    }

    /// (fstab before, entry) → (fstab after, changed), as ansible.posix's set_mount writes it
    /// (each row checked against ansible.posix's mount.py with `state: present`).
    #[test]
    fn fstab_lines_are_written_as_ansible_writes_them() {
        let e = entry("/srv/cache", "tmpfs", "size=64m");
        let line = "tmpfs /srv/cache tmpfs size=64m 0 0\n";
        let table: &[(&str, &str, bool)] = &[
            ("", line, true),
            (
                "# fstab\nUUID=1 / ext4 defaults 0 1\n",
                "# fstab\nUUID=1 / ext4 defaults 0 1\ntmpfs /srv/cache tmpfs size=64m 0 0\n",
                true,
            ),
            (line, line, false),
            // Same fields, other spacing: left alone.
            (
                "tmpfs\t/srv/cache  tmpfs size=64m 0 0\n",
                "tmpfs\t/srv/cache  tmpfs size=64m 0 0\n",
                false,
            ),
            // Options changed: rewritten in place.
            (
                "a / ext4 defaults 0 1\ntmpfs /srv/cache tmpfs size=8m 0 0\nb /x ext4 defaults 0 2\n",
                "a / ext4 defaults 0 1\ntmpfs /srv/cache tmpfs size=64m 0 0\nb /x ext4 defaults 0 2\n",
                true,
            ),
            // Four fields: rewritten with six (Ansible's missing dump is an int 0, never "0").
            ("tmpfs /srv/cache tmpfs size=64m\n", line, true),
            // No newline at the end: added.
            (
                "UUID=1 / ext4 defaults 0 1",
                "UUID=1 / ext4 defaults 0 1\ntmpfs /srv/cache tmpfs size=64m 0 0\n",
                true,
            ),
        ];
        for (before, after, changed) in table {
            assert_eq!(
                set_mount(before, &e),
                (after.to_string(), *changed),
                "{before:?}"
            );
        }
        let spaced = entry("/srv/my cache", "tmpfs", "defaults");
        assert_eq!(
            set_mount("", &spaced).0,
            "tmpfs /srv/my\\040cache tmpfs defaults 0 0\n"
        );
    }

    #[test]
    fn fstab_lines_are_removed_as_ansible_removes_them() {
        let text = "# x\nUUID=1 / ext4 defaults 0 1\ntmpfs /srv/cache tmpfs size=64m 0 0\n";
        assert_eq!(
            unset_mount(text, "/srv/cache", None),
            ("# x\nUUID=1 / ext4 defaults 0 1\n".to_string(), true)
        );
        assert_eq!(
            unset_mount(text, "/srv/other", None),
            (text.to_string(), false)
        );
        // Only six-field lines are removed (as Ansible).
        let four = "tmpfs /srv/cache tmpfs size=64m\n";
        assert_eq!(
            unset_mount(four, "/srv/cache", None),
            (four.to_string(), false)
        );
    }

    #[test]
    fn resources_are_the_fstab_and_the_mount_point() {
        let mut a = Args::new();
        a.insert("path".into(), Value::from("/srv/cache"));
        a.insert("state".into(), Value::from("mounted"));
        assert_eq!(
            Mount.resources(&a),
            vec![
                Resource::Path("/etc/fstab".into()),
                Resource::Mount("/srv/cache".into())
            ]
        );
        a.insert("state".into(), Value::from("remounted"));
        assert!(!Mount.converges(&a));
    }
}
