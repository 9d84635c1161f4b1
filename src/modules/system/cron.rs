//! `cron`: a named job (`#Ansible: NAME` then the job line) or an environment variable in a
//! user's crontab or in a file under `/etc/cron.d`.
//!
//! Owns ansible-core's crontab rules, ported into the pure [`edit_cron`] (find the job by its
//! marker, else by its exact line, adopting it; replace, add or remove it; env declarations
//! `NAME="VALUE"` on top, or after/before another one; a missing last newline is a change; a
//! `cron_file` left empty is removed). A `cron_file` is read and written like any edited file;
//! a user crontab is read with `crontab -l` and installed with `crontab -` (with `-u USER`
//! when USER is not the user running it, as Ansible does). It must not format shell lines and
//! must not read the run mode.

use serde_json::Value;

use super::common::failed;
use crate::modules::files::common::{EditPlan, TextFile, edit_apply, edit_verdict, read_text_file};
use crate::modules::runtime::{
    Args, BoxFut, Change, Drift, HostView, Module, ModuleCtx, ModuleError, Resource, Verdict,
};
use crate::transport::{AnyTransport, Cmd, Payload};

/// The `cron` module.
pub struct Cron;

crate::module_args! {
    /// Ensures a named cron job (or a crontab environment variable) is present or absent, in a
    /// user's crontab or in a file under `/etc/cron.d`.
    #[module(
        name = "cron",
        backup = "With `cron_file`, the file is backed up and rollback puts it back (or removes it if the step created it). For a user crontab (`user` given), the crontab's spool file (`/var/spool/cron/crontabs/USER` on Debian, `/var/spool/cron/USER` on RHEL) is backed up and restored in place; without `user` the crontab's owner is only known on the host, so rollback cannot restore it (`rdeploy plan` says so). `backup: true` is accepted and does nothing more.",
        returns = &[("jobs", "names of the managed jobs now in the crontab"), ("envs", "names of its environment variables"), ("cron_file", "the cron_file given")],
        examples = "- cron:\n    name: rotate app logs\n    minute: \"0\"\n    hour: \"3\"\n    user: app\n    job: /srv/app/bin/rotate-logs"
    )]
    pub struct CronArgs {
        /// The job's name (its `#Ansible: NAME` marker), or the variable's with `env`.
        #[arg(required)]
        name: String,
        /// Whose crontab (default: the user running the task).
        user: Option<String>,
        /// The command, or the variable's value with `env`.
        #[arg(aliases = &["value"])]
        job: Option<String>,
        /// A file under `/etc/cron.d` (relative) or an absolute path, instead of a crontab.
        #[arg(kind = Path)]
        cron_file: Option<String>,
        /// `present` or `absent`.
        #[arg(default = "present", choices = &["absent", "present"])]
        state: String,
        /// Accepted; rdeploy's own backup keeps the old crontab.
        #[arg(default = "no")]
        backup: bool,
        /// Minute (`0-59`, `*`, `*/5`...).
        #[arg(default = "*")]
        minute: String,
        /// Hour.
        #[arg(default = "*")]
        hour: String,
        /// Day of the month.
        #[arg(default = "*", aliases = &["dom"])]
        day: String,
        /// Month.
        #[arg(default = "*")]
        month: String,
        /// Day of the week.
        #[arg(default = "*", aliases = &["dow"])]
        weekday: String,
        /// `@reboot`, `@daily`... instead of the five fields.
        #[arg(choices = &["annually", "daily", "hourly", "monthly", "reboot", "weekly", "yearly"])]
        special_time: Option<String>,
        /// Write the job commented out.
        #[arg(default = "no")]
        disabled: bool,
        /// Manage an environment variable `NAME="job"` instead of a job.
        #[arg(default = "no")]
        env: bool,
        /// With `env`: insert after this variable's declaration.
        insertafter: Option<String>,
        /// With `env`: insert before this variable's declaration.
        insertbefore: Option<String>,
    }
}

const MARK: &str = "#Ansible: ";

/// What to change, after argument checks: [`edit_cron`]'s input.
#[derive(Clone, Debug, Default)]
pub struct CronEdit {
    /// `name`.
    pub name: String,
    /// `job` (required with `present`).
    pub job: Option<String>,
    /// `state: present`.
    pub present: bool,
    /// `env`.
    pub env: bool,
    /// `insertafter` / `insertbefore`.
    pub insertafter: Option<String>,
    /// `insertbefore`.
    pub insertbefore: Option<String>,
    /// The time fields, `special_time` and `disabled`, and the user written in a cron file.
    pub minute: String,
    /// `hour`.
    pub hour: String,
    /// `day`.
    pub day: String,
    /// `month`.
    pub month: String,
    /// `weekday`.
    pub weekday: String,
    /// `special_time`.
    pub special: Option<String>,
    /// `disabled`.
    pub disabled: bool,
    /// The user column of a cron file (`Some` only with `cron_file`).
    pub file_user: Option<String>,
    /// Editing a cron file (an emptied one is removed).
    pub is_file: bool,
}

/// What [`edit_cron`] decided.
#[derive(Clone, Debug, PartialEq)]
pub struct CronOutcome {
    /// Ansible reports a change.
    pub changed: bool,
    /// The new text, or `None` when a `cron_file` is to be removed.
    pub text: Option<String>,
    /// `jobs`.
    pub jobs: Vec<String>,
    /// `envs`.
    pub envs: Vec<String>,
}

/// The crontab's lines as Ansible keeps them: a `crontab -l` listing loses the first three
/// lines' "DO NOT EDIT" headers.
fn lines_of(existing: &str, listing: bool) -> Vec<String> {
    let mut out = Vec::new();
    for (count, l) in existing.lines().enumerate() {
        let l = l.strip_suffix('\r').unwrap_or(l);
        let header = l.starts_with("# DO NOT EDIT THIS FILE - edit the master and reinstall.")
            || (l.starts_with("# (/tmp/") && l.contains("installed on") && l.ends_with(')'))
            || (l.starts_with("# (") && l.contains("version") && l.ends_with(')'));
        if !listing || count > 2 || !header {
            out.push(l.to_string());
        }
    }
    out
}

fn cron_job(e: &CronEdit, job: &str) -> String {
    let job = job.trim_matches(['\r', '\n']);
    let p = if e.disabled { "#" } else { "" };
    let user = e
        .file_user
        .as_deref()
        .map(|u| format!(" {u}"))
        .unwrap_or_default();
    match &e.special {
        Some(s) => format!("{p}@{s}{user} {job}"),
        None => format!(
            "{p}{} {} {} {} {}{user} {job}",
            e.minute, e.hour, e.day, e.month, e.weekday
        ),
    }
}

/// `find_job`: `[marker, line]`, or with `adopted` the exact job line found without its marker
/// (the marker inserted).
fn find_job(lines: &mut Vec<String>, name: &str, job: Option<&str>) -> Option<(String, bool)> {
    let mut comment: Option<String> = None;
    for l in lines.iter() {
        if let Some(c) = &comment {
            if c == name {
                return Some((l.clone(), false));
            }
            comment = None;
        } else if l.starts_with(MARK) {
            comment = Some(l.replace(MARK, ""));
        }
    }
    let job = job?;
    let i = lines.iter().position(|l| l == job)?;
    // Python's lines[i - 1] is the last line when i is 0.
    let prev = if i == 0 { lines.len() - 1 } else { i - 1 };
    if !lines[prev].starts_with(MARK) {
        lines.insert(i, format!("{MARK}{name}"));
        return Some((job.to_string(), true));
    }
    if !name.is_empty() && lines[prev] == format!("{MARK}None") {
        lines[prev] = format!("{MARK}{name}");
        return Some((job.to_string(), true));
    }
    None
}

/// `_update_job`: the line after each `#Ansible: NAME` replaced by `job` (`None`: both removed).
fn update_job(lines: &mut Vec<String>, name: &str, job: Option<&str>) {
    let marker = format!("{MARK}{name}");
    let mut out = Vec::new();
    let mut comment: Option<String> = None;
    for l in lines.drain(..) {
        if let Some(c) = comment.take() {
            if let Some(j) = job {
                out.push(c);
                out.push(j.to_string());
            }
        } else if l == marker {
            comment = Some(l);
        } else {
            out.push(l);
        }
    }
    *lines = out;
}

fn is_env_of(line: &str, name: &str) -> bool {
    line.strip_prefix(name).is_some_and(|r| r.starts_with('='))
}

/// Renders lines as Ansible writes them.
fn render(lines: &[String]) -> String {
    let text = lines.join("\n");
    if text.is_empty() {
        return text;
    }
    format!("{}\n", text.trim_end_matches(['\r', '\n']))
}

/// Edits the crontab text `existing` (`listing`: it came from `crontab -l`) as ansible-core's
/// `cron` module does.
pub fn edit_cron(existing: &str, listing: bool, e: &CronEdit) -> Result<CronOutcome, String> {
    let mut lines = lines_of(existing, listing);
    let mut changed = false;
    if e.env {
        if e.name.contains(' ') {
            return Err("Invalid name for environment variable".into());
        }
        let decl = format!("{}=\"{}\"", e.name, e.job.as_deref().unwrap_or("None"));
        let old = lines.iter().position(|l| is_env_of(l, &e.name));
        if e.present {
            match old {
                None => {
                    let other = e.insertafter.as_deref().or(e.insertbefore.as_deref());
                    let at = match other {
                        None => 0,
                        Some(o) => match lines.iter().position(|l| is_env_of(l, o)) {
                            Some(i) if e.insertafter.is_some() => i + 1,
                            Some(i) => i,
                            None => return Err(format!("Variable named '{o}' not found.")),
                        },
                    };
                    lines.insert(at, decl);
                    changed = true;
                }
                Some(i) if lines[i] != decl => {
                    for l in lines.iter_mut().filter(|l| is_env_of(l, &e.name)) {
                        *l = decl.clone();
                    }
                    changed = true;
                }
                Some(_) => {}
            }
        } else if old.is_some() {
            lines.retain(|l| !is_env_of(l, &e.name));
            changed = true;
        }
    } else if e.present {
        let job = cron_job(e, e.job.as_deref().unwrap_or_default());
        match find_job(&mut lines, &e.name, Some(&job)) {
            None => {
                lines.push(format!("{MARK}{}", e.name));
                lines.push(job);
                changed = true;
            }
            Some((old, adopted)) => {
                if old != job || adopted {
                    update_job(&mut lines, &e.name, Some(&job));
                    changed = true;
                }
            }
        }
    } else if find_job(&mut lines, &e.name, None).is_some() {
        update_job(&mut lines, &e.name, None);
        changed = true;
        if e.is_file && lines.iter().all(|l| l.trim().is_empty()) {
            return Ok(CronOutcome {
                changed: true,
                text: None,
                jobs: Vec::new(),
                envs: Vec::new(),
            });
        }
    }
    if !changed && !existing.is_empty() && !existing.ends_with(['\r', '\n']) {
        changed = true;
    }
    let jobs = lines
        .iter()
        .filter(|l| l.starts_with(MARK))
        .map(|l| l.replace(MARK, ""))
        .collect();
    let envs = lines
        .iter()
        .filter_map(|l| {
            let (k, _) = l.split_once('=')?;
            (!k.is_empty() && !k.chars().any(char::is_whitespace)).then(|| k.to_string())
        })
        .collect();
    Ok(CronOutcome {
        changed,
        text: Some(render(&lines)),
        jobs,
        envs,
    })
}

/// The cron file's path: relative names are under `/etc/cron.d`.
fn cron_file_path(f: &str) -> String {
    if f.starts_with('/') {
        f.to_string()
    } else {
        format!("/etc/cron.d/{f}")
    }
}

/// The argument checks of ansible-core's `main()`, then the [`CronEdit`].
fn edit_of(a: &CronArgs) -> Result<CronEdit, ModuleError> {
    let bad = |m: &str| Err(ModuleError::Args(m.to_string()));
    if a.cron_file.as_deref() == Some("/etc/crontab") {
        return bad("Will not manage /etc/crontab via cron_file, see documentation.");
    }
    if a.insertafter.is_some() && a.insertbefore.is_some() {
        return bad("parameters are mutually exclusive: insertafter|insertbefore");
    }
    let fields = [&a.minute, &a.hour, &a.day, &a.month, &a.weekday];
    if a.special_time.is_some() && fields.iter().any(|f| f.as_str() != "*") {
        return bad("You cannot combine special_time with any of the time or day/date parameters.");
    }
    let present = a.state == "present";
    if present {
        if a.cron_file.is_some() && a.user.is_none() {
            return bad("To use cron_file=... parameter you must specify user=... as well");
        }
        if a.job.is_none() {
            return bad("You must specify 'job' to install a new cron job or variable");
        }
        if (a.insertafter.is_some() || a.insertbefore.is_some()) && !a.env {
            return bad("Insertafter and insertbefore parameters are valid only with env=yes");
        }
    }
    Ok(CronEdit {
        name: a.name.clone(),
        job: a.job.clone(),
        present,
        env: a.env,
        insertafter: a.insertafter.clone(),
        insertbefore: a.insertbefore.clone(),
        minute: a.minute.clone(),
        hour: a.hour.clone(),
        day: a.day.clone(),
        month: a.month.clone(),
        weekday: a.weekday.clone(),
        special: a.special_time.clone(),
        disabled: a.disabled,
        file_user: a.cron_file.as_ref().and(a.user.clone()),
        is_file: a.cron_file.is_some(),
    })
}

/// What `apply` does.
enum Plan {
    /// Write the cron file (an [`EditPlan`] of the files modules).
    File,
    /// Remove the cron file.
    Remove(String),
    /// Install this crontab for `user` (`None`: the running user).
    Install(Option<String>, String),
}

/// `crontab -l`, with `-u USER` unless USER is the running user. Exit 1 is "no crontab".
fn read_crontab_cmd(user: Option<&str>) -> Cmd {
    match user {
        None => Cmd::raw("crontab -l"),
        Some(u) => Cmd::raw("set --").arg(u).op(
            r#"; if [ "$(id -un)" = "$1" ]; then exec crontab -l; else exec crontab -u "$1" -l; fi"#,
        ),
    }
}

/// `crontab -` (the new crontab on stdin), with `-u USER` as [`read_crontab_cmd`].
fn install_crontab_cmd(user: Option<&str>) -> Cmd {
    match user {
        None => Cmd::raw("crontab -"),
        Some(u) => Cmd::raw("set --").arg(u).op(
            r#"; if [ "$(id -un)" = "$1" ]; then exec crontab -; else exec crontab -u "$1" -; fi"#,
        ),
    }
}

fn result_of(o: &CronOutcome, cron_file: &Option<String>) -> Args {
    let mut r = Args::new();
    r.insert("jobs".into(), Value::from(o.jobs.clone()));
    r.insert("envs".into(), Value::from(o.envs.clone()));
    if let Some(f) = cron_file {
        r.insert("cron_file".into(), Value::from(f.clone()));
    }
    r
}

async fn check_cron(
    tr: &mut HostView<'_>,
    args: &Args,
    ctx: &ModuleCtx<'_>,
) -> Result<Verdict, ModuleError> {
    let a = CronArgs::parse(args)?;
    let edit = edit_of(&a)?;
    // Ansible's own backup copy is what rdeploy's backup already is.
    let _ = a.backup;
    if let Some(f) = &a.cron_file {
        let path = cron_file_path(f);
        let tf: TextFile = read_text_file(tr, ctx, &path).await?;
        let existing = match &tf.bytes {
            Some(b) => String::from_utf8(b.clone())
                .map_err(|_| failed(format!("{path}: not UTF-8 text"), Args::new()))?,
            None => String::new(),
        };
        let o = edit_cron(&existing, false, &edit).map_err(|m| failed(m, Args::new()))?;
        let mut result = result_of(&o, &a.cron_file);
        match (&o.text, o.changed) {
            (None, _) => {
                if !tf.state.exists() {
                    result.insert("state".into(), Value::from(a.state.clone()));
                    return Ok(Verdict::InSync { result });
                }
                let change = Change::Attr {
                    subject: path.clone(),
                    what: "state".into(),
                    before: "file".into(),
                    after: "absent".into(),
                };
                result.insert("state".into(), Value::from(a.state.clone()));
                Ok(Verdict::Drift(Drift::new(
                    vec![change],
                    (Plan::Remove(path), result, None::<Drift>),
                )))
            }
            (Some(_), false) => Ok(Verdict::InSync { result }),
            (Some(text), true) => {
                let v = edit_verdict(
                    &path,
                    &tf,
                    Some(text.clone().into_bytes()),
                    &Args::new(),
                    String::new(),
                    result,
                )?;
                Ok(match v {
                    Verdict::InSync { mut result } => {
                        result.remove("msg");
                        Verdict::InSync { result }
                    }
                    Verdict::Drift(d) => {
                        let changes = d.changes.clone();
                        let (plan, mut result) = d
                            .plan::<(EditPlan, Args)>()
                            .cloned()
                            .ok_or_else(|| ModuleError::Args("internal: cron plan".into()))?;
                        result.remove("msg");
                        let inner = Drift::new(Vec::new(), (plan, result.clone()));
                        Verdict::Drift(Drift::new(changes, (Plan::File, result, Some(inner))))
                    }
                })
            }
        }
    } else {
        let user = a.user.as_deref();
        let out = ctx.query(tr, read_crontab_cmd(user)).await?;
        if out.status != 0 && out.status != 1 {
            return Err(failed(
                format!("Unable to read crontab: {}", out.stderr_lossy().trim()),
                Args::new(),
            ));
        }
        let existing = if out.status == 0 {
            out.stdout_lossy().to_string()
        } else {
            String::new()
        };
        let o = edit_cron(&existing, true, &edit).map_err(|m| failed(m, Args::new()))?;
        let result = result_of(&o, &None);
        let text = o.text.clone().unwrap_or_default();
        if !o.changed {
            return Ok(Verdict::InSync { result });
        }
        let subject = match user {
            Some(u) => format!("crontab for user \"{u}\""),
            None => "crontab".into(),
        };
        let change = Change::Content {
            path: subject,
            before: Some(existing),
            after: text.clone(),
        };
        Ok(Verdict::Drift(Drift::new(
            vec![change],
            (Plan::Install(a.user.clone(), text), result, None::<Drift>),
        )))
    }
}

async fn apply_cron(
    tr: &mut AnyTransport,
    ctx: &ModuleCtx<'_>,
    drift: &Drift,
) -> Result<Args, ModuleError> {
    let (plan, result, inner) = drift
        .plan::<(Plan, Args, Option<Drift>)>()
        .ok_or_else(|| ModuleError::Args("cron: apply without a plan from check".into()))?;
    match (plan, inner) {
        (Plan::Remove(path), _) => {
            ctx.run_ok(tr, Cmd::raw("rm -f --").arg(path.clone()))
                .await?;
            Ok(result.clone())
        }
        (Plan::File, Some(inner)) => {
            let mut r = edit_apply(tr, ctx, inner, "backup_file").await?;
            r.remove("msg");
            Ok(r)
        }
        (Plan::Install(user, text), _) => {
            let out = ctx
                .run_input(
                    tr,
                    install_crontab_cmd(user.as_deref()),
                    Payload::Bytes(text.as_bytes()),
                )
                .await?;
            if out.status != 0 {
                let mut r = Args::new();
                r.insert("rc".into(), Value::from(out.status));
                r.insert("stderr".into(), Value::from(out.stderr_lossy().to_string()));
                return Err(failed(
                    format!(
                        "Failed to install new cronfile: {}",
                        out.stderr_lossy().trim()
                    ),
                    r,
                ));
            }
            Ok(result.clone())
        }
        _ => Err(ModuleError::Args("cron: foreign plan".into())),
    }
}

impl Module for Cron {
    fn name(&self) -> &'static str {
        "cron"
    }

    fn check<'a>(
        &'a self,
        tr: &'a mut HostView<'_>,
        args: &'a Args,
        ctx: &'a ModuleCtx<'a>,
    ) -> BoxFut<'a, Result<Verdict, ModuleError>> {
        Box::pin(check_cron(tr, args, ctx))
    }

    fn apply<'a>(
        &'a self,
        tr: &'a mut AnyTransport,
        _args: &'a Args,
        ctx: &'a ModuleCtx<'a>,
        drift: &'a Drift,
    ) -> BoxFut<'a, Result<Args, ModuleError>> {
        Box::pin(apply_cron(tr, ctx, drift))
    }

    fn resources(&self, args: &Args) -> Vec<Resource> {
        let Ok(a) = CronArgs::parse(args) else {
            return Vec::new();
        };
        match (&a.cron_file, &a.user) {
            (Some(f), _) => vec![Resource::Path(cron_file_path(f))],
            // The spool file of each cron family; the one that does not exist stays absent.
            (None, Some(u)) => vec![
                Resource::Path(format!("/var/spool/cron/crontabs/{u}")),
                Resource::Path(format!("/var/spool/cron/{u}")),
            ],
            (None, None) => Vec::new(),
        }
    }

    fn not_reversible(&self, given: &dyn Fn(&str) -> bool) -> Option<&'static str> {
        (!given("cron_file") && !given("user")).then_some(
            "a crontab without `user` belongs to whoever runs the task on the host: give `user` so its spool file is backed up",
        )
    }
}

#[cfg(test)]
#[path = "cron_tests.rs"]
mod tests;
