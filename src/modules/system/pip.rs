//! `pip`: Python packages installed, absent or at the latest version, in a virtualenv or for a
//! Python.
//!
//! Owns choosing the pip to run (the virtualenv's `bin/pip3`/`bin/pip`, `executable`, else the
//! host's Python with `-m pip`), creating a missing virtualenv, reading what is installed
//! (`pip list --format=json`, one round trip with the virtualenv test and, for
//! `state: latest`, `pip install -U --dry-run --report -`), matching installed versions
//! against PEP 440 specifiers, and the one `pip install`/`pip uninstall` that makes the
//! change. Every value reaches the host as a quoted argument; `extra_args` is split as
//! Ansible splits it (shlex). It must not format shell lines.

use std::cmp::Ordering;

use serde_json::Value;

use super::common::{command_result, failed, result, shlex_split};
use crate::modules::runtime::{
    Args, BoxFut, Change, Drift, HostView, Module, ModuleCtx, ModuleError, Resource, Unpredicted,
    Verdict,
};
use crate::transport::{AnyTransport, Cmd};

/// `pip`.
pub struct Pip;

crate::module_args! {
    /// Installs, upgrades or removes Python packages with pip, optionally in a virtualenv
    /// that is created when missing (`virtualenv_command`, e.g. `python3 -m venv`).
    /// rdeploy reads `pip list` and compares PEP 440 specifiers itself (no index is asked
    /// for `present`/`absent`), and asks pip (`--dry-run`) what `latest` would upgrade; a
    /// `requirements` file, an editable, URL or path install and `forcereinstall` are run as
    /// Ansible runs them and report `changed` as Ansible does (a requirements or VCS install:
    /// when `pip list` differs after it). Commands run in `chdir`, else `/tmp` (as Ansible).
    #[module(
        name = "pip",
        backup = "With `virtualenv`, the whole virtualenv directory is copied before the change (or recorded as absent) and rollback puts it back (or removes a virtualenv the run created). Without `virtualenv` the change is not reversible: rdeploy does not copy a Python installation's site-packages, and reinstalling an earlier version needs the package index.",
        returns = &[("cmd", "the pip command run"), ("name", "the packages given"), ("version", "the version given"), ("state", "the state asked"), ("requirements", "the requirements file given"), ("virtualenv", "the virtualenv path"), ("stdout", "pip's output"), ("stderr", "pip's errors")],
        examples = "- pip:\n    name: [requests>=2.31, flask]\n    virtualenv: /srv/app/venv\n    virtualenv_command: python3 -m venv"
    )]
    pub struct PipArgs {
        /// Packages to install or remove, each may carry a version specifier (`flask>=2.0`),
        /// or a URL/path.
        name: Vec<String>,
        /// The version of the one package in `name` (`1.2.3` means `==1.2.3`).
        version: Option<String>,
        /// A requirements file on the host (relative to `chdir`).
        requirements: Option<String>,
        /// A virtualenv directory to install into, created when it has no `bin/activate`.
        #[arg(kind = Path)]
        virtualenv: Option<String>,
        /// Create the virtualenv with `--system-site-packages`.
        #[arg(default = "no")]
        virtualenv_site_packages: bool,
        /// The command that creates the virtualenv (`virtualenv`, `python3 -m venv`).
        #[arg(kind = Path, default = "virtualenv")]
        virtualenv_command: String,
        /// The Python a `virtualenv` (not `venv`) command creates the virtualenv for (`-p`).
        virtualenv_python: Option<String>,
        /// `present`, `absent`, `latest` or `forcereinstall`.
        #[arg(default = "present", choices = &["absent", "forcereinstall", "latest", "present"])]
        state: String,
        /// More arguments for pip, split as a shell would (`--no-index --find-links /srv/wheels`).
        extra_args: Option<String>,
        /// Install in editable mode (`-e`).
        #[arg(default = "no")]
        editable: bool,
        /// The directory pip runs in (default `/tmp`); a relative `virtualenv` is below it.
        #[arg(kind = Path)]
        chdir: Option<String>,
        /// The pip to run (`pip3.11`, a path); not with `virtualenv`.
        #[arg(kind = Path)]
        executable: Option<String>,
        /// The umask pip runs with, octal (`0022`).
        umask: Option<String>,
        /// Let pip change an externally managed Python (PEP 668; `PIP_BREAK_SYSTEM_PACKAGES=1`).
        #[arg(default = "no")]
        break_system_packages: bool,
    }
}

/// Runs pip: `$1` the virtualenv (or empty), `$2` the executable (or empty), `$3` the Python
/// for `-m pip`, then pip's arguments. A virtualenv's `bin` goes first on `PATH`.
const PIP: &str = crate::host::PIP;

/// Prints `venv yes` when `$1/bin/activate` exists, else `venv no`.
const VENV_EXISTS: &str = crate::host::PIP_VENV_EXISTS;

/// The arguments after they were read and checked together.
#[derive(Debug)]
struct Want {
    /// Requirement strings as pip gets them (names recovered, `version` folded in).
    packages: Vec<String>,
    state: String,
    requirements: Option<String>,
    venv: Option<String>,
    executable: Option<String>,
    extra: Vec<String>,
    chdir: String,
    umask: Option<String>,
    break_system: bool,
    /// The virtualenv's creation command, when `virtualenv` is given.
    create: Vec<String>,
    /// The `name` and `version` arguments as given (result keys).
    names_given: Vec<String>,
    version: Option<String>,
}

fn want(a: PipArgs, python: &str) -> Result<Want, ModuleError> {
    if a.name.is_empty() && a.requirements.is_none() {
        return Err(ModuleError::Args(
            "one of the following is required: name, requirements".into(),
        ));
    }
    if !a.name.is_empty() && a.requirements.is_some() {
        return Err(ModuleError::Args(
            "parameters are mutually exclusive: name|requirements".into(),
        ));
    }
    if a.virtualenv.is_some() && a.executable.is_some() {
        return Err(ModuleError::Args(
            "parameters are mutually exclusive: executable|virtualenv".into(),
        ));
    }
    if a.state == "latest" && a.version.is_some() {
        return Err(ModuleError::Args(
            "version is incompatible with state=latest".into(),
        ));
    }
    let umask = match &a.umask {
        Some(u) if !u.is_empty() && u.chars().all(|c| c.is_digit(8)) && u.len() <= 4 => {
            Some(u.clone())
        }
        Some(_) => return Err(ModuleError::Args("umask must be an octal integer".into())),
        None => None,
    };
    let mut packages = if a.name.is_empty() {
        Vec::new()
    } else {
        recover_package_names(&a.name)
    };
    for p in &packages {
        if p.trim().is_empty() || p.starts_with('-') || p.contains(['\n', '\0']) {
            return Err(ModuleError::Args(format!("invalid package name '{p}'")));
        }
    }
    if let Some(v) = &a.version {
        if packages.len() > 1 {
            return Err(ModuleError::Args("'version' argument is ambiguous when installing multiple package distributions. Please specify version restrictions next to each package in 'name' argument.".into()));
        }
        if let Some(first) = packages.first_mut() {
            if parse_req(first).is_some_and(|r| !r.specs.is_empty()) {
                return Err(ModuleError::Args("The 'version' argument conflicts with any version specifier provided along with a package name. Please keep the version specifier, but remove the 'version' argument.".into()));
            }
            let v = v.trim_start();
            let sep = if v.starts_with(|c: char| c.is_ascii_digit()) {
                "=="
            } else {
                " "
            };
            *first = format!("{first}{sep}{v}");
        }
    }
    let mut extra = match &a.extra_args {
        Some(e) => shlex_split(e)?,
        None => Vec::new(),
    };
    if a.editable && !extra.iter().any(|w| w == "-e") {
        extra.push("-e".into());
    }
    let chdir = a.chdir.clone().unwrap_or_else(|| "/tmp".into());
    let venv = a.virtualenv.as_ref().map(|v| match &a.chdir {
        Some(c) if !v.starts_with('/') => format!("{}/{v}", c.trim_end_matches('/')),
        _ => v.clone(),
    });
    let mut create = Vec::new();
    if let Some(env) = &venv {
        create = shlex_split(&a.virtualenv_command)?;
        if create.is_empty() {
            return Err(ModuleError::Args("virtualenv_command is empty".into()));
        }
        if a.virtualenv_site_packages {
            create.push("--system-site-packages".into());
        }
        let is_venv = create[0] == "pyvenv"
            || create.windows(2).any(|w| w[0] == "-m" && w[1] == "venv")
            || create.iter().any(|w| w == "-mvenv");
        if !is_venv {
            create.push(format!(
                "-p{}",
                a.virtualenv_python.as_deref().unwrap_or(python)
            ));
        } else if a.virtualenv_python.is_some() {
            return Err(ModuleError::Args("virtualenv_python should not be used when using the venv module or pyvenv as virtualenv_command".into()));
        }
        create.push(env.clone());
    }
    Ok(Want {
        packages,
        state: a.state,
        requirements: a.requirements,
        venv,
        executable: a.executable,
        extra,
        chdir,
        umask,
        break_system: a.break_system_packages,
        create,
        names_given: a.name,
        version: a.version,
    })
}

/// Ansible's `_recover_package_name`: every item split on commas, then the parts that are
/// version specifiers (or inside `[...]` extras) joined back to the name before them
/// (`['django>1.11.1', '<1.11.3']` → `['django>1.11.1,<1.11.3']`).
fn recover_package_names(names: &[String]) -> Vec<String> {
    let parts: Vec<&str> = names.iter().flat_map(|n| n.split(',')).collect();
    let mut out: Vec<String> = Vec::new();
    let mut cur: Vec<&str> = Vec::new();
    let mut in_brackets = false;
    for p in parts {
        let is_name = !["<=", ">=", "==", "!=", "~=", "<", ">"]
            .iter()
            .any(|op| p.trim_start().starts_with(op));
        if is_name && !in_brackets && !cur.is_empty() {
            out.push(cur.join(","));
            cur.clear();
        }
        if p.contains('[') {
            in_brackets = true;
        }
        if in_brackets && p.contains(']') {
            in_brackets = false;
        }
        cur.push(p);
    }
    out.push(cur.join(","));
    out
}

/// A plain requirement: a project name (PEP 503 canonical), extras dropped, specifiers.
#[derive(Debug, PartialEq)]
struct Req {
    name: String,
    specs: Vec<(String, String)>,
}

/// PEP 503: runs of `-_.` become `-`, lower case.
fn canonical(name: &str) -> String {
    let mut out = String::new();
    let mut sep = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            sep = true;
        } else {
            if sep && !out.is_empty() {
                out.push('-');
            }
            sep = false;
            out.push(c.to_ascii_lowercase());
        }
    }
    out
}

/// `name[extras] SPEC, SPEC` as a plain requirement; `None` for URLs, paths, VCS links and
/// environment markers (pip decides those).
fn parse_req(text: &str) -> Option<Req> {
    let t = text.trim();
    let end = t
        .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
        .unwrap_or(t.len());
    let name = &t[..end];
    if name.is_empty() || name.starts_with(['.', '-']) || name.ends_with(".whl") {
        return None;
    }
    let mut rest = t[end..].trim_start();
    if let Some(r) = rest.strip_prefix('[') {
        let close = r.find(']')?;
        rest = r[close + 1..].trim_start();
    }
    let mut specs = Vec::new();
    if !rest.is_empty() {
        for s in rest.split(',') {
            let s = s.trim();
            let op_len = ["===", "==", "!=", "<=", ">=", "~=", "<", ">"]
                .iter()
                .find(|op| s.starts_with(*op))?
                .len();
            let v = s[op_len..].trim();
            if v.is_empty() || v.contains([' ', ';', '@', '/']) {
                return None;
            }
            specs.push((s[..op_len].to_string(), v.to_string()));
        }
    }
    Some(Req {
        name: canonical(name),
        specs,
    })
}

/// A PEP 440 version, enough to order and compare releases.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Ver {
    epoch: u64,
    release: Vec<u64>,
    /// `(0 a | 1 b | 2 rc, n)`.
    pre: Option<(u8, u64)>,
    post: Option<u64>,
    dev: Option<u64>,
}

fn parse_ver(text: &str) -> Option<Ver> {
    let mut s = text.trim().to_ascii_lowercase();
    if let Some(x) = s.strip_prefix('v') {
        s = x.to_string();
    }
    if let Some(i) = s.find('+') {
        s.truncate(i);
    }
    let (epoch, rest) = match s.split_once('!') {
        Some((e, r)) => (e.parse().ok()?, r.to_string()),
        None => (0, s),
    };
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(rest.len());
    let release: Vec<u64> = rest[..end]
        .trim_end_matches('.')
        .split('.')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    let mut tail = rest[end..].trim_start_matches(['.', '-', '_']);
    let (mut pre, mut post, mut dev) = (None, None, None);
    let num = |t: &str| -> (u64, usize) {
        let t2 = t.trim_start_matches(['.', '-', '_']);
        let skip = t.len() - t2.len();
        let n = t2.find(|c: char| !c.is_ascii_digit()).unwrap_or(t2.len());
        (t2[..n].parse().unwrap_or(0), skip + n)
    };
    while !tail.is_empty() {
        let kinds: [(&str, u8); 8] = [
            ("alpha", 0),
            ("beta", 1),
            ("preview", 2),
            ("pre", 2),
            ("rc", 2),
            ("a", 0),
            ("b", 1),
            ("c", 2),
        ];
        if let Some((w, k)) = kinds.iter().find(|(w, _)| tail.starts_with(w)) {
            let (n, used) = num(&tail[w.len()..]);
            pre = Some((*k, n));
            tail = &tail[w.len() + used..];
        } else if let Some(w) = ["post", "rev", "r"].iter().find(|w| tail.starts_with(*w)) {
            let (n, used) = num(&tail[w.len()..]);
            post = Some(n);
            tail = &tail[w.len() + used..];
        } else if let Some(r) = tail.strip_prefix("dev") {
            let (n, used) = num(r);
            dev = Some(n);
            tail = &r[used..];
        } else {
            return None;
        }
        tail = tail.trim_start_matches(['.', '-', '_']);
    }
    Some(Ver {
        epoch,
        release,
        pre,
        post,
        dev,
    })
}

fn cmp_ver(a: &Ver, b: &Ver) -> Ordering {
    let rel = |v: &Ver| {
        let mut r = v.release.clone();
        while r.last() == Some(&0) {
            r.pop();
        }
        r
    };
    // A dev release with neither pre nor post sorts before the version's pre-releases.
    let pre_key = |v: &Ver| match (v.pre, v.post, v.dev) {
        (None, None, Some(_)) => (0u8, 0u8, 0u64),
        (Some((k, n)), _, _) => (1, k, n),
        (None, _, _) => (2, 0, 0),
    };
    let post_key = |v: &Ver| v.post.map_or((0u8, 0u64), |n| (1, n));
    let dev_key = |v: &Ver| v.dev.map_or((1u8, 0u64), |n| (0, n));
    a.epoch
        .cmp(&b.epoch)
        .then_with(|| rel(a).cmp(&rel(b)))
        .then_with(|| pre_key(a).cmp(&pre_key(b)))
        .then_with(|| post_key(a).cmp(&post_key(b)))
        .then_with(|| dev_key(a).cmp(&dev_key(b)))
}

/// Whether `version` satisfies one specifier (pre-releases allowed, as Ansible asks).
fn satisfies(version: &str, op: &str, want: &str) -> bool {
    if op == "===" {
        return version == want;
    }
    let Some(have) = parse_ver(version) else {
        return false;
    };
    if let Some(prefix) = want.strip_suffix(".*") {
        let Some(p) = parse_ver(prefix) else {
            return false;
        };
        let hit = have.epoch == p.epoch
            && have.release.len() >= p.release.len()
            && have.release[..p.release.len()] == p.release[..];
        return match op {
            "==" => hit,
            "!=" => !hit,
            _ => false,
        };
    }
    let Some(w) = parse_ver(want) else {
        return false;
    };
    let o = cmp_ver(&have, &w);
    match op {
        "==" => o == Ordering::Equal,
        "!=" => o != Ordering::Equal,
        ">=" => o != Ordering::Less,
        "<=" => o != Ordering::Greater,
        ">" => o == Ordering::Greater,
        "<" => o == Ordering::Less,
        "~=" => {
            let n = w.release.len().saturating_sub(1).max(1);
            o != Ordering::Less
                && have.epoch == w.epoch
                && have.release.len() >= n
                && have.release[..n] == w.release[..n]
        }
        _ => false,
    }
}

/// `pip list --format=json` as (canonical name, version) pairs.
fn parse_list(text: &str) -> Result<Vec<(String, String)>, String> {
    let start = text.find('[').ok_or("no JSON list in pip's output")?;
    let v: Value = serde_json::from_str(text[start..].trim())
        .map_err(|e| format!("pip list is not JSON: {e}"))?;
    let items = v.as_array().ok_or("pip list is not a JSON list")?;
    Ok(items
        .iter()
        .filter_map(|i| {
            Some((
                canonical(i.get("name")?.as_str()?),
                i.get("version")?.as_str()?.to_string(),
            ))
        })
        .collect())
}

/// The `install` entries of a `pip install --dry-run --report -` report: (name, version).
fn parse_report(text: &str) -> Result<Vec<(String, String)>, String> {
    let start = text.find('{').ok_or("no JSON report in pip's output")?;
    let v: Value = serde_json::from_str(text[start..].trim())
        .map_err(|e| format!("pip's report is not JSON: {e}"))?;
    let items = v
        .get("install")
        .and_then(Value::as_array)
        .ok_or("pip's report has no install list")?;
    Ok(items
        .iter()
        .filter_map(|i| {
            let m = i.get("metadata")?;
            Some((
                canonical(m.get("name")?.as_str()?),
                m.get("version")?.as_str()?.to_string(),
            ))
        })
        .collect())
}

/// Whether rdeploy can tell from `pip list` (and a dry run for `latest`) that the task holds:
/// plain names with present/latest/absent. Others are run as Ansible runs them.
fn converging(w: &Want) -> bool {
    w.state != "forcereinstall"
        && w.requirements.is_none()
        && !w.extra.iter().any(|e| e == "-e" || e == "--editable")
        && w.packages.iter().all(|p| parse_req(p).is_some())
}

/// The host's Python for `-m pip`.
fn python(ctx: &ModuleCtx<'_>) -> String {
    ctx.python.unwrap_or("python3").to_string()
}

/// `pip ARGS` through [`PIP`], in `chdir`.
fn pip_cmd(w: &Want, py: &str, args: &[String]) -> Cmd {
    let mut c = Cmd::raw("set --")
        .arg(w.venv.clone().unwrap_or_default())
        .arg(w.executable.clone().unwrap_or_default())
        .arg(py)
        .args(args.iter().cloned())
        .op(PIP)
        .chdir(w.chdir.clone())
        .env("LC_ALL", "C")
        .env("PIP_DISABLE_PIP_VERSION_CHECK", "1");
    if w.break_system {
        c = c.env("PIP_BREAK_SYSTEM_PACKAGES", "1");
    }
    c
}

/// The pip command as Ansible's `cmd` shows it (`[/srv/venv/bin/pip3, install, flask]`).
fn argv(w: &Want, py: &str, args: &[String]) -> Vec<String> {
    let pip: Vec<String> = match (&w.venv, &w.executable) {
        (Some(v), _) => vec![format!("{}/bin/pip3", v.trim_end_matches('/'))],
        (None, Some(x)) => vec![x.clone()],
        (None, None) => vec![py.to_string(), "-m".into(), "pip".into()],
    };
    pip.into_iter().chain(args.iter().cloned()).collect()
}

/// [`argv`] as one line, for the report.
fn shown(w: &Want, py: &str, args: &[String]) -> String {
    Cmd::argv(argv(w, py, args)).display()
}

fn list_args() -> Vec<String> {
    vec!["list".into(), "--format=json".into()]
}

/// The `pip install`/`uninstall` arguments for the task (Ansible's `cmd`).
fn change_args(w: &Want) -> Vec<String> {
    let mut a: Vec<String> = match w.state.as_str() {
        "absent" => vec!["uninstall".into(), "-y".into()],
        "latest" => vec!["install".into(), "-U".into()],
        "forcereinstall" => vec!["install".into(), "-U".into(), "--force-reinstall".into()],
        _ => vec!["install".into()],
    };
    a.extend(w.extra.iter().cloned());
    match &w.requirements {
        Some(r) => a.extend(["-r".to_string(), r.clone()]),
        None => a.extend(w.packages.iter().cloned()),
    }
    a
}

/// What `apply` does.
struct Plan {
    want: Want,
    create_venv: bool,
    /// `pip list` before, for the requirements/VCS comparison.
    before: Option<Vec<(String, String)>>,
}

async fn check_pip(
    tr: &mut HostView<'_>,
    args: &Args,
    ctx: &ModuleCtx<'_>,
) -> Result<Verdict, ModuleError> {
    let py = python(ctx);
    let w = want(PipArgs::parse(args)?, &py)?;
    let mut cmds = Vec::new();
    if let Some(env) = &w.venv {
        cmds.push(Cmd::raw("set --").arg(env.clone()).op(";").op(VENV_EXISTS));
    }
    cmds.push(pip_cmd(&w, &py, &list_args()));
    let latest = w.state == "latest" && converging(&w);
    if latest {
        let mut a: Vec<String> = ["install", "-U", "--dry-run", "--quiet", "--report", "-"]
            .map(String::from)
            .to_vec();
        a.extend(w.extra.iter().cloned());
        a.extend(w.packages.iter().cloned());
        cmds.push(pip_cmd(&w, &py, &a));
    }
    let batch = Cmd::batch(&cmds).map_err(|e| ModuleError::Args(e.to_string()))?;
    let outs = ctx.query_batch(tr, &batch).await?.map_err(|e| {
        failed(
            format!("cannot read the installed packages: {e}"),
            Args::new(),
        )
    })?;
    let mut outs = outs.into_iter();
    let venv_missing = match &w.venv {
        Some(_) => outs
            .next()
            .is_some_and(|o| o.stdout_lossy().trim() == "venv no"),
        None => false,
    };
    let mut r = result_keys(&w);
    if venv_missing {
        // Ansible creates a missing virtualenv whatever the state, then runs pip in it.
        let mut changes = vec![Change::Run {
            command: Cmd::argv(w.create.clone()).display(),
        }];
        if w.state != "absent" {
            changes.extend(w.packages.iter().map(|p| Change::Attr {
                subject: p.clone(),
                what: "version".into(),
                before: "absent".into(),
                after: w.state.clone(),
            }));
            if w.requirements.is_some() {
                changes.push(Change::Run {
                    command: shown(&w, &py, &change_args(&w)),
                });
            }
        }
        return Ok(Verdict::Drift(Drift::new(
            changes,
            Plan {
                want: w,
                create_venv: true,
                before: None,
            },
        )));
    }
    let list_out = outs
        .next()
        .ok_or_else(|| failed("pip list gave no output", Args::new()))?;
    if list_out.status != 0 {
        let mut res = command_result(&list_out, true);
        res.insert("cmd".into(), Value::from(argv(&w, &py, &list_args())));
        return Err(failed(
            format!(
                "cannot list the installed packages: {}",
                list_out.stderr_lossy().trim()
            ),
            res,
        ));
    }
    let installed = parse_list(&list_out.stdout_lossy())
        .map_err(|e| failed(format!("cannot read pip list: {e}"), Args::new()))?;
    let have = |name: &str| {
        installed
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    if !converging(&w) {
        // Run as Ansible runs it; the change is what pip reports.
        let command = shown(&w, &py, &change_args(&w));
        return Ok(Verdict::Drift(Drift::new(
            vec![Change::Run { command }],
            Plan {
                want: w,
                create_venv: false,
                before: Some(installed),
            },
        )));
    }
    let mut changes = Vec::new();
    let upgrades = if latest {
        let o = outs
            .next()
            .ok_or_else(|| failed("pip's dry run gave no output", Args::new()))?;
        if o.status != 0 {
            let mut res = command_result(&o, true);
            res.insert("cmd".into(), Value::from("pip install -U --dry-run"));
            return Err(failed(
                format!(
                    "pip cannot tell what state=latest would install: {}",
                    o.stderr_lossy().trim()
                ),
                res,
            ));
        }
        parse_report(&o.stdout_lossy())
            .map_err(|e| failed(format!("cannot read pip's dry run: {e}"), Args::new()))?
    } else {
        Vec::new()
    };
    for p in &w.packages {
        let Some(req) = parse_req(p) else { continue };
        let current = have(&req.name);
        let before = current.clone().unwrap_or_else(|| "absent".into());
        let after = match (w.state.as_str(), &current) {
            ("absent", Some(_)) => Some("absent".to_string()),
            ("absent", None) => None,
            ("latest", _) => upgrades
                .iter()
                .find(|(n, _)| *n == req.name)
                .map(|(_, v)| v.clone()),
            (_, None) => Some(spec_text(&req)),
            (_, Some(v)) => {
                (!req.specs.iter().all(|(op, s)| satisfies(v, op, s))).then(|| spec_text(&req))
            }
        };
        if let Some(after) = after {
            changes.push(Change::Attr {
                subject: req.name.clone(),
                what: "version".into(),
                before,
                after,
            });
        }
    }
    if changes.is_empty() {
        r.insert("cmd".into(), Value::from(argv(&w, &py, &list_args())));
        r.insert("changed".into(), Value::from(false));
        return Ok(Verdict::InSync { result: r });
    }
    Ok(Verdict::Drift(Drift::new(
        changes,
        Plan {
            want: w,
            create_venv: false,
            before: None,
        },
    )))
}

/// `>=1.0,<2` or `present` for a requirement without specifiers.
fn spec_text(r: &Req) -> String {
    if r.specs.is_empty() {
        return "present".into();
    }
    r.specs
        .iter()
        .map(|(o, v)| format!("{o}{v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Ansible's result keys that echo the task.
fn result_keys(w: &Want) -> Args {
    let opt = |v: &Option<String>| v.clone().map(Value::from).unwrap_or(Value::Null);
    result([
        ("name", Value::from(w.names_given.clone())),
        ("version", opt(&w.version)),
        ("state", Value::from(w.state.clone())),
        ("requirements", opt(&w.requirements)),
        ("virtualenv", opt(&w.venv)),
    ])
}

async fn apply_pip(
    tr: &mut AnyTransport,
    ctx: &ModuleCtx<'_>,
    drift: &Drift,
) -> Result<Args, ModuleError> {
    let p = drift
        .plan::<Plan>()
        .ok_or_else(|| ModuleError::Args("pip: apply without a plan from check".into()))?;
    let w = &p.want;
    let py = python(ctx);
    let mut r = result_keys(w);
    let mut out_text = String::new();
    let mut err_text = String::new();
    let umask = |c: Cmd| match &w.umask {
        Some(u) => Cmd::raw("umask").arg(u.clone()).and(c),
        None => c,
    };
    if p.create_venv {
        let create = umask(Cmd::argv(w.create.clone()).chdir(w.chdir.clone()));
        let shown = Cmd::argv(w.create.clone()).display();
        let out = ctx.run(tr, create).await?;
        out_text.push_str(&out.stdout_lossy());
        err_text.push_str(&out.stderr_lossy());
        if out.status != 0 {
            let mut res = command_result(&out, true);
            res.insert("cmd".into(), Value::from(shown));
            return Err(failed(
                format!("stdout: {out_text}\n:stderr: {err_text}"),
                res,
            ));
        }
    }
    let args = change_args(w);
    let cmd = pip_cmd(w, &py, &args);
    r.insert("cmd".into(), Value::from(argv(w, &py, &args)));
    let out = ctx.run(tr, umask(cmd)).await?;
    let so = out.stdout_lossy().into_owned();
    let se = out.stderr_lossy().into_owned();
    out_text.push_str(&so);
    err_text.push_str(&se);
    let not_installed =
        w.state == "absent" && (so.contains("not installed") || se.contains("not installed"));
    if out.status != 0 && !(out.status == 1 && not_installed) {
        r.insert("rc".into(), Value::from(out.status));
        let msg = format!("stdout: {out_text}\n:stderr: {err_text}");
        insert_output(&mut r, out_text, err_text);
        return Err(failed(msg, r));
    }
    let changed = if w.state == "absent" {
        so.contains("Successfully uninstalled")
    } else if let Some(before) = &p.before
        && (w.requirements.is_some() || w.packages.iter().any(|x| is_vcs(x)))
    {
        let after = ctx.run(tr, pip_cmd(w, &py, &list_args())).await?;
        parse_list(&after.stdout_lossy()).ok().as_ref() != Some(before)
    } else {
        so.contains("Successfully installed")
    };
    r.insert("changed".into(), Value::from(changed || p.create_venv));
    insert_output(&mut r, out_text, err_text);
    Ok(r)
}

/// `stdout`/`stderr` and their `_lines`, as Ansible returns them.
fn insert_output(r: &mut Args, out: String, err: String) {
    let lines = |s: &str| Value::from(s.lines().map(str::to_string).collect::<Vec<_>>());
    r.insert("stdout_lines".into(), lines(&out));
    r.insert("stderr_lines".into(), lines(&err));
    r.insert("stdout".into(), Value::from(out));
    r.insert("stderr".into(), Value::from(err));
}

fn is_vcs(p: &str) -> bool {
    ["svn+", "git+", "hg+", "bzr+"]
        .iter()
        .any(|v| p.starts_with(v))
}

impl Module for Pip {
    fn name(&self) -> &'static str {
        "pip"
    }

    fn check<'a>(
        &'a self,
        tr: &'a mut HostView<'_>,
        args: &'a Args,
        ctx: &'a ModuleCtx<'a>,
    ) -> BoxFut<'a, Result<Verdict, ModuleError>> {
        Box::pin(check_pip(tr, args, ctx))
    }

    fn apply<'a>(
        &'a self,
        tr: &'a mut AnyTransport,
        _args: &'a Args,
        ctx: &'a ModuleCtx<'a>,
        drift: &'a Drift,
    ) -> BoxFut<'a, Result<Args, ModuleError>> {
        Box::pin(apply_pip(tr, ctx, drift))
    }

    fn resources(&self, args: &Args) -> Vec<Resource> {
        match PipArgs::parse(args).and_then(|a| want(a, "python3")) {
            Ok(Want { venv: Some(v), .. }) => vec![Resource::Tree(v)],
            _ => Vec::new(),
        }
    }

    fn not_reversible(&self, given: &dyn Fn(&str) -> bool) -> Option<&'static str> {
        (!given("virtualenv")).then_some(
            "pip without 'virtualenv' changes a Python installation's site-packages, which rdeploy does not back up (give 'virtualenv' to have the whole virtualenv backed up and restored)",
        )
    }

    /// A requirements file, an editable, URL or path install and `forcereinstall` report their
    /// own outcome (pip decides), as under Ansible.
    fn converges(&self, args: &Args) -> bool {
        PipArgs::parse(args)
            .and_then(|a| want(a, "python3"))
            .map_or(true, |w| converging(&w))
    }

    fn unpredicted(&self, _args: &Args, _drift: &Drift) -> Unpredicted {
        Unpredicted {
            skip: false,
            result: Args::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::system::testutil::*;
    use serde_json::json;

    fn w(v: Value) -> Result<Want, ModuleError> {
        want(PipArgs::parse(&args(v))?, "python3")
    }

    #[test]
    fn names_are_recovered_as_ansible_does() {
        let n = |v: &[&str]| {
            recover_package_names(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        };
        assert_eq!(
            n(&[
                "django>1.11.1",
                "<1.11.3",
                "ipaddress",
                "simpleproject>1.1.0",
                "<2.0.0"
            ]),
            [
                "django>1.11.1,<1.11.3",
                "ipaddress",
                "simpleproject>1.1.0,<2.0.0"
            ]
        );
        assert_eq!(
            n(&["django>1.11.1,<1.11.3,ipaddress"]),
            ["django>1.11.1,<1.11.3", "ipaddress"]
        );
        assert_eq!(
            n(&["requests[security,socks]>=2"]),
            ["requests[security,socks]>=2"]
        );
    }

    #[test]
    fn requirements_and_versions() {
        let r = |t: &str| parse_req(t);
        assert_eq!(
            r("Flask_Login[x]>=1.0, <2"),
            Some(Req {
                name: "flask-login".into(),
                specs: vec![(">=".into(), "1.0".into()), ("<".into(), "2".into())]
            })
        );
        assert!(r("git+https://x/y.git").is_none());
        assert!(r("./src").is_none());
        assert!(r("/srv/wheels/a-1.0-py3-none-any.whl").is_none());
        assert!(r("pkg ; python_version < '3'").is_none());
        assert!(r("pkg @ https://x/p.tar.gz").is_none());
        let table = [
            ("1.0", "==", "1.0.0", true),
            ("1.0.1", "==", "1.0.*", true),
            ("1.1", "==", "1.0.*", false),
            ("1.1", "!=", "1.0.*", true),
            ("2.0rc1", "<", "2.0", true),
            ("2.0.dev1", "<", "2.0a1", true),
            ("2.0.post1", ">", "2.0", true),
            ("1.4.5", "~=", "1.4.2", true),
            ("1.5", "~=", "1.4.2", false),
            ("1.9", "~=", "1.4", true),
            ("2.0", "~=", "1.4", false),
            ("1!1.0", ">", "2.0", true),
            ("1.0+local", "==", "1.0", true),
            ("0.9", ">=", "1.0", false),
            ("abc", "===", "abc", true),
        ];
        for (have, op, want, ok) in table {
            assert_eq!(satisfies(have, op, want), ok, "{have} {op} {want}");
        }
    }

    #[test]
    fn arguments_checked_together_as_ansible() {
        let e = |v: Value| w(v).unwrap_err().to_string();
        assert_eq!(
            e(json!({})),
            "one of the following is required: name, requirements"
        );
        assert!(e(json!({"name": "a", "requirements": "r.txt"})).contains("mutually exclusive"));
        assert!(
            e(json!({"name": "a", "virtualenv": "/v", "executable": "pip3"}))
                .contains("executable|virtualenv")
        );
        assert_eq!(
            e(json!({"name": "a", "version": "1", "state": "latest"})),
            "version is incompatible with state=latest"
        );
        assert!(e(json!({"name": ["a", "b"], "version": "1"})).contains("ambiguous"));
        assert!(e(json!({"name": "a>1", "version": "1"})).contains("conflicts"));
        assert_eq!(
            e(json!({"name": "a", "umask": "0x22"})),
            "umask must be an octal integer"
        );
        assert!(e(json!({"name": "-r"})).contains("invalid package name"));
        assert!(e(json!({"name": "a", "virtualenv": "/v", "virtualenv_command": "python3 -m venv", "virtualenv_python": "python3.11"})).contains("virtualenv_python"));
        assert_eq!(
            e(json!({"name": "a", "umask": "022", "nope": 1})),
            "argument 'nope' of module 'pip' is not supported by rdeploy"
        );
    }

    #[test]
    fn commands_for_each_state() {
        let a = |v: Value| change_args(&w(v).unwrap()).join(" ");
        assert_eq!(
            a(json!({"name": "flask", "version": "2.0"})),
            "install flask==2.0"
        );
        assert_eq!(
            a(json!({"name": "flask", "version": ">=2.0"})),
            "install flask >=2.0"
        );
        assert_eq!(
            a(
                json!({"name": ["a", "b"], "state": "latest", "extra_args": "--no-index --find-links '/srv/w h'"})
            ),
            "install -U --no-index --find-links /srv/w h a b"
        );
        assert_eq!(a(json!({"name": "a", "state": "absent"})), "uninstall -y a");
        assert_eq!(
            a(json!({"name": "a", "state": "forcereinstall"})),
            "install -U --force-reinstall a"
        );
        assert_eq!(
            a(json!({"name": "./src", "editable": true})),
            "install -e ./src"
        );
        assert_eq!(a(json!({"requirements": "req.txt"})), "install -r req.txt");
        let v = w(json!({"name": "a", "virtualenv": "venv", "chdir": "/srv/app"})).unwrap();
        assert_eq!(v.venv.as_deref(), Some("/srv/app/venv"));
        assert_eq!(v.create, ["virtualenv", "-ppython3", "/srv/app/venv"]);
        let v = w(json!({"name": "a", "virtualenv": "/v", "virtualenv_command": "/usr/bin/python3 -m venv", "virtualenv_site_packages": true})).unwrap();
        assert_eq!(
            v.create,
            [
                "/usr/bin/python3",
                "-m",
                "venv",
                "--system-site-packages",
                "/v"
            ]
        );
        assert_eq!(v.chdir, "/tmp");
        assert!(converging(
            &w(json!({"name": ["a>=1", "b"], "state": "latest"})).unwrap()
        ));
        for v in [
            json!({"name": "a", "state": "forcereinstall"}),
            json!({"requirements": "r.txt"}),
            json!({"name": "git+https://x/y.git"}),
            json!({"name": "a", "editable": true}),
        ] {
            assert!(!converging(&w(v.clone()).unwrap()), "{v}");
            assert!(!Pip.converges(&args(v)));
        }
        assert_eq!(
            Pip.resources(&args(
                json!({"name": "a", "virtualenv": "v", "chdir": "/srv"})
            )),
            vec![Resource::Tree("/srv/v".into())]
        );
        assert!(Pip.resources(&args(json!({"name": "a"}))).is_empty());
        assert!(Pip.not_reversible(&|n| n == "name").is_some());
        assert!(Pip.not_reversible(&|n| n == "virtualenv").is_none());
    }

    /// A fake pip: `$FAKE/pkgs/NAME` holds an installed version, `$FAKE/index/NAME` the
    /// newest version the index has; every call is logged to `$FAKE/log`.
    const FAKE_PIP: &str = r#"
echo "pip $*" >> "$FAKE/log"
case $1 in
list) printf '['; s_=; for f in "$FAKE"/pkgs/*; do [ -e "$f" ] || continue; printf '%s{"name": "%s", "version": "%s"}' "$s_" "${f##*/}" "$(cat "$f")"; s_=', '; done; printf ']\n' ;;
install)
  dry=; for a in "$@"; do [ "$a" = --dry-run ] && dry=1; done
  if [ -n "$dry" ]; then printf '{"install": ['; s_=
    for a in "$@"; do case $a in -*|install) ;; *) n=${a%%[<>=]*}
      if [ -e "$FAKE/index/$n" ] && [ "$(cat "$FAKE/index/$n")" != "$(cat "$FAKE/pkgs/$n" 2>/dev/null)" ]; then printf '%s{"metadata": {"name": "%s", "version": "%s"}}' "$s_" "$n" "$(cat "$FAKE/index/$n")"; s_=', '; fi ;; esac; done
    printf ']}\n'; exit 0; fi
  for a in "$@"; do case $a in -*|install) ;; *) n=${a%%[<>=]*}; v=${a#"$n"}; case $v in ==*) v=${v#==} ;; *) v= ;; esac
    if [ -z "$v" ] && [ -e "$FAKE/pkgs/$n" ] && [ "$1" != -U ] && [ "$2" != -U ]; then continue; fi
    [ -n "$v" ] || v=$(cat "$FAKE/index/$n" 2>/dev/null || echo 1.0)
    echo "$v" > "$FAKE/pkgs/$n"; echo "Successfully installed $n-$v" ;; esac; done ;;
uninstall) for a in "$@"; do case $a in -*|uninstall) ;; *) n=$(echo "$a" | tr A-Z a-z)
  if rm "$FAKE/pkgs/$n" 2>/dev/null; then echo "Successfully uninstalled $n"; else echo "WARNING: Skipping $n as it is not installed."; fi ;; esac; done ;;
esac"#;

    #[tokio::test]
    async fn fake_pip_present_latest_absent() {
        let (dir, bin, st) = fake_dirs();
        fake_tool(&bin, "fakepip", FAKE_PIP);
        std::fs::create_dir_all(st.join("pkgs")).unwrap();
        std::fs::create_dir_all(st.join("index")).unwrap();
        std::fs::write(st.join("pkgs/flask"), "1.0\n").unwrap();
        std::fs::write(st.join("index/flask"), "2.0\n").unwrap();
        let c = ctx(dir.path(), None, fake_env(&bin, &st));
        let mut tr = transport();
        let exe = bin.join("fakepip").display().to_string();

        // flask 1.0 satisfies flask<2; requests is missing.
        let a = args(json!({"name": ["flask<2", "requests"], "executable": exe}));
        let Ran::Applied(changes, Ok(r)) = check_apply(&Pip, &mut tr, &a, &c).await else {
            panic!()
        };
        assert_eq!(
            changes,
            vec![Change::Attr {
                subject: "requests".into(),
                what: "version".into(),
                before: "absent".into(),
                after: "present".into()
            }]
        );
        assert_eq!(r["changed"], json!(true));
        assert_eq!(r["cmd"], json!([exe, "install", "flask<2", "requests"]));
        assert!(matches!(
            check_apply(&Pip, &mut tr, &a, &c).await,
            Ran::InSync(_)
        ));

        // latest: the dry run says flask 2.0 would be installed.
        let a = args(json!({"name": "flask", "state": "latest", "executable": exe}));
        let Ran::Applied(changes, Ok(_)) = check_apply(&Pip, &mut tr, &a, &c).await else {
            panic!()
        };
        assert!(
            matches!(&changes[0], Change::Attr { before, after, .. } if before == "1.0" && after == "2.0"),
            "{changes:?}"
        );
        assert_eq!(
            std::fs::read_to_string(st.join("pkgs/flask"))
                .unwrap()
                .trim(),
            "2.0"
        );
        assert!(matches!(
            check_apply(&Pip, &mut tr, &a, &c).await,
            Ran::InSync(_)
        ));

        // A pinned version that differs is a change.
        let a = args(json!({"name": "flask", "version": "1.5", "executable": exe}));
        assert!(matches!(
            check_apply(&Pip, &mut tr, &a, &c).await,
            Ran::Applied(_, Ok(_))
        ));
        assert_eq!(
            std::fs::read_to_string(st.join("pkgs/flask"))
                .unwrap()
                .trim(),
            "1.5"
        );

        // absent
        let a = args(json!({"name": ["Flask", "nothere"], "state": "absent", "executable": exe}));
        let Ran::Applied(changes, Ok(r)) = check_apply(&Pip, &mut tr, &a, &c).await else {
            panic!()
        };
        assert_eq!(changes.len(), 1, "{changes:?}");
        assert_eq!(r["changed"], json!(true));
        assert!(!st.join("pkgs/flask").exists());
        assert!(matches!(
            check_apply(&Pip, &mut tr, &a, &c).await,
            Ran::InSync(_)
        ));

        // forcereinstall always runs.
        let a = args(json!({"name": "requests", "state": "forcereinstall", "executable": exe}));
        assert!(matches!(
            check_apply(&Pip, &mut tr, &a, &c).await,
            Ran::Applied(_, Ok(_))
        ));
        let log = std::fs::read_to_string(st.join("log")).unwrap();
        assert!(
            log.contains("pip install -U --force-reinstall requests"),
            "{log}"
        );
    }
}
