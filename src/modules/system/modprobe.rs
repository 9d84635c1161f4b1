//! `modprobe` (`community.general.modprobe`): loads or unloads a kernel module, and makes it
//! load at boot (`persistent`), as the collection's module does.
//!
//! Owns reading what the host has in one round trip (`/proc/modules`, the kernel's
//! `modules.builtin`, the files of `/etc/modules-load.d` and `/etc/modprobe.d`), deciding
//! ([`plan_modprobe`], pure, table-tested against the collection's rules: a module line
//! `NAME` with an optional comment, an `options NAME key=value` line per parameter) and
//! carrying it out: `modprobe` / `modprobe -r`, then the files through the repository modules'
//! whole-file edits (temporary file and rename). It must not format shell lines beyond its
//! reading program.

use serde_json::Value;

use super::common::{bin_path, failed, shlex_split};
use super::repofile::{self, FileEdit};
use crate::modules::files::common::WantAttrs;
use crate::modules::runtime::{
    Args, BoxFut, Change, Drift, HostView, Module, ModuleCtx, ModuleError, Resource, Verdict,
};
use crate::transport::{AnyTransport, Cmd, Output};

/// Where module names to load at boot are listed.
const MODULES_LOAD: &str = "/etc/modules-load.d";
/// Where module parameters are set.
const PARAMETERS: &str = "/etc/modprobe.d";

/// `modprobe`.
pub struct Modprobe;

crate::module_args! {
    /// Loads (`modprobe NAME PARAMS`) or unloads (`modprobe -r NAME`) a kernel module; with
    /// `persistent: present`, lists it in /etc/modules-load.d/NAME.conf and its parameters in
    /// /etc/modprobe.d/NAME.conf so it loads at boot (`absent` comments those lines out). A
    /// module built into the kernel counts as loaded. Unlike the collection's module, a file
    /// whose lines are commented out keeps its line breaks as they were (the collection's
    /// rewrite doubles them).
    #[module(
        name = "modprobe",
        backup = "With `persistent: present` or `absent`, /etc/modules-load.d and /etc/modprobe.d are backed up whole; rollback restores their files. Whether the module is loaded is not restored: rollback leaves a module loaded or unloaded as the run left it.",
        returns = &[("name", "the module"), ("params", "its parameters"), ("state", "the state asked for")],
        examples = "- modprobe:\n    name: br_netfilter\n    state: present\n    persistent: present\n  become: true"
    )]
    pub struct ModprobeArgs {
        /// The kernel module.
        #[arg(required)]
        name: String,
        /// `present` (loaded) or `absent` (unloaded).
        #[arg(default = "present", choices = &["absent", "present"])]
        state: String,
        /// Parameters given to `modprobe` when it loads the module (split as a shell would).
        #[arg(default = "")]
        params: String,
        /// `present`: loaded at boot with these parameters; `absent`: not loaded at boot;
        /// `disabled`: the boot files are left alone.
        #[arg(default = "disabled", choices = &["disabled", "present", "absent"])]
        persistent: String,
    }
}

/// What `check` read from the host.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Seen {
    /// `/proc/modules`.
    pub proc_modules: String,
    /// `modules.builtin` of the running kernel, `None` when it could not be read.
    pub builtin: Option<String>,
    /// The regular files of /etc/modules-load.d, with their text.
    pub load_files: Vec<(String, String)>,
    /// The regular files of /etc/modprobe.d, with their text.
    pub param_files: Vec<(String, String)>,
}

/// What [`plan_modprobe`] decided.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Decision {
    /// `Some(true)`: load; `Some(false)`: unload.
    pub load: Option<bool>,
    /// Files to write, in order (the last text for a path wins).
    pub files: Vec<(String, String)>,
}

/// The line `NAME` (spaces around, an optional `#`/`;` comment), as the collection's
/// `^ *NAME *(?:[#;].*)?\n?\Z`.
fn names_module(line: &str, name: &str) -> bool {
    let l = line.strip_suffix('\n').unwrap_or(line);
    let Some(rest) = l.trim_start_matches(' ').strip_prefix(name) else {
        return false;
    };
    let rest = rest.trim_start_matches(' ');
    rest.is_empty() || rest.starts_with('#') || rest.starts_with(';')
}

/// The parameter of a line `options NAME key=value` (one parameter, an optional comment), as
/// the collection's `^options NAME (\w+=\S+) *(?:[#;].*)?\n?\Z`.
fn param_of<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let l = line.strip_suffix('\n').unwrap_or(line);
    let rest = l
        .strip_prefix("options ")?
        .strip_prefix(name)?
        .strip_prefix(' ')?;
    let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
    let (param, tail) = rest.split_at(end);
    let (key, value) = param.split_once('=')?;
    if key.is_empty()
        || value.is_empty()
        || !key.chars().all(|c| c.is_alphanumeric() || c == '_')
        || tail.contains(['\n', '\r'])
    {
        return None;
    }
    let tail = tail.trim_start_matches(' ');
    (tail.is_empty() || tail.starts_with('#') || tail.starts_with(';')).then_some(param)
}

/// `text` with `#` before every line `hit` matches, line breaks kept.
fn comment_out(text: &str, hit: impl Fn(&str) -> bool) -> Option<String> {
    let mut out = String::with_capacity(text.len() + 8);
    let mut changed = false;
    for line in text.split_inclusive('\n') {
        if hit(line) {
            out.push('#');
            changed = true;
        }
        out.push_str(line);
    }
    changed.then_some(out)
}

/// Whether `name` is loaded: listed in /proc/modules (`-` read as `_`), else built in. `Err`
/// when it is not listed and the kernel's list of built-in modules could not be read (the
/// collection fails then too).
fn loaded(name: &str, seen: &Seen) -> Result<bool, String> {
    let prefix = format!("{} ", name.replace('-', "_"));
    if seen.proc_modules.lines().any(|l| l.starts_with(&prefix)) {
        return Ok(true);
    }
    let Some(builtin) = &seen.builtin else {
        return Err("cannot read the kernel's modules.builtin".into());
    };
    let file = format!("/{name}.ko");
    Ok(builtin.lines().any(|l| l.trim_end().ends_with(&file)))
}

/// What the collection's module does with `seen`, for `a`'s name, state, params and
/// persistence.
pub fn plan_modprobe(
    name: &str,
    state: &str,
    params: &str,
    persistent: &str,
    seen: &Seen,
) -> Result<Decision, String> {
    let mut d = Decision::default();
    let is_loaded = loaded(name, seen)?;
    if state == "present" && !is_loaded {
        d.load = Some(true);
    } else if state == "absent" && is_loaded {
        d.load = Some(false);
    }
    let listed = seen
        .load_files
        .iter()
        .any(|(_, t)| t.split_inclusive('\n').any(|l| names_module(l, name)));
    let permanent: std::collections::BTreeSet<&str> = seen
        .param_files
        .iter()
        .flat_map(|(_, t)| t.split_inclusive('\n').filter_map(|l| param_of(l, name)))
        .collect();
    let wanted: std::collections::BTreeSet<&str> = params.split_whitespace().collect();
    let params_set = wanted == permanent;
    let disable_params = |d: &mut Decision| {
        for (p, t) in &seen.param_files {
            if let Some(new) = comment_out(t, |l| param_of(l, name).is_some()) {
                d.files.push((p.clone(), new));
            }
        }
    };
    match persistent {
        "present" if !(listed && params_set) => {
            if !listed {
                d.files
                    .push((format!("{MODULES_LOAD}/{name}.conf"), format!("{name}\n")));
            }
            if !params_set {
                disable_params(&mut d);
                let lines: Vec<String> = params
                    .split_whitespace()
                    .map(|p| format!("options {name} {p}"))
                    .collect();
                d.files.push((
                    format!("{PARAMETERS}/{name}.conf"),
                    format!("{}\n", lines.join("\n")),
                ));
            }
        }
        "absent" if listed || !permanent.is_empty() => {
            if listed {
                for (p, t) in &seen.load_files {
                    if let Some(new) = comment_out(t, |l| names_module(l, name)) {
                        d.files.push((p.clone(), new));
                    }
                }
            }
            if !permanent.is_empty() {
                disable_params(&mut d);
            }
        }
        _ => {}
    }
    Ok(d)
}

/// The regular files of /etc/modules-load.d and /etc/modprobe.d (dot files too), each as its
/// path, NUL, its text, NUL.
fn listing() -> Cmd {
    Cmd::raw(
        r#"for d_ in /etc/modules-load.d /etc/modprobe.d; do for f_ in "$d_"/* "$d_"/.[!.]* "$d_"/..?*; do [ -f "$f_" ] || continue; printf '%s\0' "$f_"; cat -- "$f_"; printf '\0'; done; done"#,
    )
}

/// [`listing`]'s output as the two folders' files.
fn parse_listing(out: &[u8]) -> Seen {
    let mut seen = Seen::default();
    let mut parts = out.split(|b| *b == 0);
    while let (Some(path), Some(text)) = (parts.next(), parts.next()) {
        if path.is_empty() {
            break;
        }
        let path = String::from_utf8_lossy(path).into_owned();
        let text = String::from_utf8_lossy(text).into_owned();
        if path.starts_with(&format!("{MODULES_LOAD}/")) {
            seen.load_files.push((path, text));
        } else {
            seen.param_files.push((path, text));
        }
    }
    seen
}

/// The plan `apply` carries out.
struct Plan {
    /// `modprobe` (its path, arguments) to run first.
    run: Option<Cmd>,
    edits: Vec<FileEdit>,
}

fn result_of(a: &ModprobeArgs) -> Args {
    let mut r = Args::new();
    r.insert("name".into(), Value::from(a.name.clone()));
    r.insert("params".into(), Value::from(a.params.clone()));
    r.insert("state".into(), Value::from(a.state.clone()));
    r
}

fn fail_with(msg: String, out: &Output, a: &ModprobeArgs) -> ModuleError {
    let mut r = result_of(a);
    r.insert("rc".into(), Value::from(out.status));
    r.insert("stdout".into(), Value::from(out.stdout_lossy().to_string()));
    r.insert("stderr".into(), Value::from(out.stderr_lossy().to_string()));
    failed(msg, r)
}

async fn check_modprobe(
    tr: &mut HostView<'_>,
    args: &Args,
    ctx: &ModuleCtx<'_>,
) -> Result<Verdict, ModuleError> {
    let a = ModprobeArgs::parse(args)?;
    let params = shlex_split(&a.params)?;
    let modprobe = bin_path(tr, ctx, "modprobe").await?;
    let mut cmds = vec![
        Cmd::raw("cat /proc/modules"),
        Cmd::raw(r#"cat "/lib/modules/$(uname -r)/modules.builtin""#),
    ];
    if a.persistent != "disabled" {
        cmds.push(listing());
    }
    let outs = ctx.read(tr, &cmds, 16 << 20).await?.map_err(|e| {
        failed(
            format!("reading the kernel modules failed: {e}"),
            result_of(&a),
        )
    })?;
    let mut seen = outs
        .get(2)
        .map(|o| parse_listing(&o.stdout))
        .unwrap_or_default();
    seen.proc_modules = outs
        .first()
        .map(|o| o.stdout_lossy().into_owned())
        .unwrap_or_default();
    seen.builtin = outs
        .get(1)
        .filter(|o| o.status == 0)
        .map(|o| o.stdout_lossy().into_owned());
    let d = plan_modprobe(&a.name, &a.state, &a.params, &a.persistent, &seen)
        .map_err(|e| failed(e, result_of(&a)))?;
    let mut changes = Vec::new();
    let run = match d.load {
        Some(true) => {
            // What the collection runs under --check: modprobe's dry run, failing as it fails.
            let dry = Cmd::argv([modprobe.clone()])
                .arg("-n")
                .arg(&a.name)
                .args(params.clone());
            let out = ctx.query(tr, dry).await?;
            if out.status != 0 {
                return Err(fail_with(out.stderr_lossy().to_string(), &out, &a));
            }
            changes.push(Change::Attr {
                subject: format!("kernel module {}", a.name),
                what: "state".into(),
                before: "absent".into(),
                after: "present".into(),
            });
            Some(Cmd::argv([modprobe.clone()]).arg(&a.name).args(params))
        }
        Some(false) => {
            changes.push(Change::Attr {
                subject: format!("kernel module {}", a.name),
                what: "state".into(),
                before: "present".into(),
                after: "absent".into(),
            });
            Some(Cmd::argv([modprobe]).arg("-r").arg(&a.name))
        }
        None => None,
    };
    let mut edits = Vec::new();
    let mut files = d.files;
    // The last text for a path wins (a parameter file commented out, then rewritten).
    let mut i = 0;
    while i < files.len() {
        if files[i + 1..].iter().any(|(p, _)| *p == files[i].0) {
            files.remove(i);
        } else {
            i += 1;
        }
    }
    for (path, text) in files {
        let tf = repofile::read(tr, ctx, &path).await?;
        if let Some((c, e)) =
            repofile::plan_write(&path, &tf, text.into_bytes(), &WantAttrs::default())?
        {
            changes.extend(c);
            edits.push(e);
        }
    }
    if run.is_none() && edits.is_empty() {
        return Ok(Verdict::InSync {
            result: result_of(&a),
        });
    }
    Ok(Verdict::Drift(Drift::new(changes, Plan { run, edits })))
}

async fn apply_modprobe(
    tr: &mut AnyTransport,
    args: &Args,
    ctx: &ModuleCtx<'_>,
    drift: &Drift,
) -> Result<Args, ModuleError> {
    let a = ModprobeArgs::parse(args)?;
    let p = drift
        .plan::<Plan>()
        .ok_or_else(|| ModuleError::Args("modprobe: apply without a plan from check".into()))?;
    if let Some(run) = &p.run {
        let out = ctx.run(tr, run.clone()).await?;
        if out.status != 0 {
            return Err(fail_with(out.stderr_lossy().to_string(), &out, &a));
        }
    }
    for e in &p.edits {
        repofile::apply(tr, ctx, e).await?;
    }
    Ok(result_of(&a))
}

impl Module for Modprobe {
    fn name(&self) -> &'static str {
        "modprobe"
    }

    fn check<'a>(
        &'a self,
        tr: &'a mut HostView<'_>,
        args: &'a Args,
        ctx: &'a ModuleCtx<'a>,
    ) -> BoxFut<'a, Result<Verdict, ModuleError>> {
        Box::pin(check_modprobe(tr, args, ctx))
    }

    fn apply<'a>(
        &'a self,
        tr: &'a mut AnyTransport,
        args: &'a Args,
        ctx: &'a ModuleCtx<'a>,
        drift: &'a Drift,
    ) -> BoxFut<'a, Result<Args, ModuleError>> {
        Box::pin(apply_modprobe(tr, args, ctx, drift))
    }

    /// The boot files' folders, when they may change.
    fn resources(&self, args: &Args) -> Vec<Resource> {
        match ModprobeArgs::parse(args) {
            Ok(a) if a.persistent != "disabled" => vec![
                Resource::Tree(MODULES_LOAD.into()),
                Resource::Tree(PARAMETERS.into()),
            ],
            _ => Vec::new(),
        }
    }

    fn not_reversible(&self, _given: &dyn Fn(&str) -> bool) -> Option<&'static str> {
        Some(
            "rollback restores the boot files, not whether the module is loaded (modprobe or modprobe -r it by hand)",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(proc: &str, load: &[(&str, &str)], params: &[(&str, &str)]) -> Seen {
        let own = |v: &[(&str, &str)]| {
            v.iter()
                .map(|(p, t)| (p.to_string(), t.to_string()))
                .collect()
        };
        Seen {
            proc_modules: proc.into(),
            builtin: Some("kernel/fs/ext4/ext4.ko\n".into()),
            load_files: own(load),
            param_files: own(params),
        }
    }

    #[test]
    fn the_collections_rules_decide_loading_and_the_boot_files() {
        let proc = "br_netfilter 32768 0 - Live 0x0\noverlay 151552 0 - Live 0x0\n";
        // Loaded, listed: nothing to do.
        let s = seen(
            proc,
            &[(
                "/etc/modules-load.d/k8s.conf",
                "overlay\nbr_netfilter # k8s\n",
            )],
            &[],
        );
        assert_eq!(
            plan_modprobe("br_netfilter", "present", "", "present", &s).unwrap(),
            Decision::default()
        );
        // A dash in the name is an underscore in /proc/modules; ext4 is built in.
        assert_eq!(
            plan_modprobe("br-netfilter", "present", "", "disabled", &s)
                .unwrap()
                .load,
            None
        );
        assert_eq!(
            plan_modprobe("ext4", "present", "", "disabled", &s)
                .unwrap()
                .load,
            None
        );
        // Not loaded, not listed, with parameters.
        let d = plan_modprobe("dummy", "present", "numdummies=2", "present", &s).unwrap();
        assert_eq!(d.load, Some(true));
        assert_eq!(
            d.files,
            vec![
                (
                    "/etc/modules-load.d/dummy.conf".to_string(),
                    "dummy\n".to_string()
                ),
                (
                    "/etc/modprobe.d/dummy.conf".to_string(),
                    "options dummy numdummies=2\n".to_string()
                ),
            ]
        );
        // Other parameters set elsewhere are commented out, then the module's file written.
        let s = seen(
            proc,
            &[("/etc/modules-load.d/x.conf", "dummy\n")],
            &[(
                "/etc/modprobe.d/old.conf",
                "options dummy numdummies=1\noptions other a=1\n",
            )],
        );
        let d = plan_modprobe("dummy", "present", "numdummies=2", "present", &s).unwrap();
        assert_eq!(
            d.files,
            vec![
                (
                    "/etc/modprobe.d/old.conf".to_string(),
                    "#options dummy numdummies=1\noptions other a=1\n".to_string()
                ),
                (
                    "/etc/modprobe.d/dummy.conf".to_string(),
                    "options dummy numdummies=2\n".to_string()
                ),
            ]
        );
        // The same parameters in another file: set already.
        let s2 = seen(
            proc,
            &[("/etc/modules-load.d/x.conf", "dummy\n")],
            &[(
                "/etc/modprobe.d/old.conf",
                "options dummy numdummies=2 # two\n",
            )],
        );
        let d = plan_modprobe("dummy", "present", "numdummies=2", "present", &s2).unwrap();
        assert_eq!(d.files, Vec::<(String, String)>::new());
        // Absent: unloaded, its lines commented out.
        let d = plan_modprobe(
            "br_netfilter",
            "absent",
            "",
            "absent",
            &seen(
                proc,
                &[("/etc/modules-load.d/k8s.conf", "overlay\n  br_netfilter\n")],
                &[],
            ),
        )
        .unwrap();
        assert_eq!(d.load, Some(false));
        assert_eq!(
            d.files,
            vec![(
                "/etc/modules-load.d/k8s.conf".to_string(),
                "overlay\n#  br_netfilter\n".to_string()
            )]
        );
        // Listed with parameters, absent: both commented out.
        assert_eq!(
            plan_modprobe("dummy", "absent", "", "absent", &s2.clone()).unwrap(),
            Decision {
                load: None,
                files: vec![
                    (
                        "/etc/modules-load.d/x.conf".to_string(),
                        "#dummy\n".to_string()
                    ),
                    (
                        "/etc/modprobe.d/old.conf".to_string(),
                        "#options dummy numdummies=2 # two\n".to_string()
                    ),
                ]
            }
        );
        // Not listed and no built-in list to look in: the collection's failure.
        let mut s3 = s2.clone();
        s3.builtin = None;
        assert!(plan_modprobe("dummy", "present", "", "disabled", &s3).is_err());
    }

    #[test]
    fn lines_are_matched_as_the_collections_patterns_match_them() {
        assert!(names_module("dummy\n", "dummy"));
        assert!(names_module("  dummy  ; x", "dummy"));
        assert!(!names_module("dummyx", "dummy"));
        assert!(!names_module("#dummy", "dummy"));
        assert_eq!(param_of("options d a=1\n", "d"), Some("a=1"));
        assert_eq!(param_of("options d a=1   # c", "d"), Some("a=1"));
        assert_eq!(param_of("options d a=1 b=2", "d"), None);
        assert_eq!(param_of("options d a=", "d"), None);
        assert_eq!(param_of("options dx a=1", "d"), None);
        let listed = parse_listing(
            b"/etc/modules-load.d/a.conf\0a\n\0/etc/modprobe.d/b.conf\0options a x=1\n\0",
        );
        assert_eq!(listed.load_files.len(), 1);
        assert_eq!(listed.param_files[0].1, "options a x=1\n");
    }
}
