//! `user`: manages a local account with `useradd`/`usermod`/`userdel`/`chage`, as Ansible's
//! `user` module on Linux.
//!
//! Owns reading the account (`getent passwd`/`shadow`/`group`, whether the home exists) in one
//! round trip, planning exactly the commands Ansible would run with the same flags
//! ([`plan_user`], pure, table-tested), and the result keys. The password hash reaches the host
//! on `chpasswd -e`'s stdin, never on a command line, and is never shown (changes and results
//! say `NOT_LOGGING_PASSWORD`). It must not format shell lines.

use serde_json::Value;

use super::accounts::{GroupEnt, Passwd, Shadow, account_files, find_group, parse_groups};
use super::accounts::{parse_passwd, parse_shadow};
use super::common::{civil_from_days, failed, plain_name};
use crate::modules::runtime::{
    Args, BoxFut, Change, Drift, HostView, Module, ModuleCtx, ModuleError, Resource, Verdict,
    output_result,
};
use crate::transport::{AnyTransport, Cmd};

/// `user`.
pub struct User;

/// What Ansible prints instead of a password.
const MASKED: &str = "NOT_LOGGING_PASSWORD";

crate::module_args! {
    /// Manages a local user account (useradd/usermod/userdel, chpasswd for the hash, chage for
    /// password ageing), as Ansible's `user` on Linux. The password hash is sent on stdin, never
    /// on a command line. As Ansible's, `--check` reports an account it would create even when
    /// its `group` or `groups` do not exist yet (an earlier task may create them); a real run
    /// then fails with "Group X does not exist" before running anything.
    #[module(
        name = "user",
        backup = "Backs up /etc/passwd, /etc/shadow, /etc/group, /etc/gshadow, /etc/subuid and /etc/subgid, and the home directory (`home`, else /home/NAME) when the step may create, move or remove it; rollback restores /etc/passwd, /etc/shadow, /etc/group and /etc/gshadow as they were before the step (changes made by others in between are undone too), removes a home the step created and puts back one it removed.",
        returns = &[("name", "the user"), ("state", "present or absent"), ("uid", "its uid"), ("group", "its primary gid"), ("groups", "the groups asked for, comma-separated"), ("comment", "GECOS"), ("home", "home directory"), ("shell", "login shell"), ("system", "on creation"), ("create_home", "on creation"), ("append", "on modification"), ("move_home", "on modification"), ("force", "on removal"), ("remove", "on removal"), ("password", "NOT_LOGGING_PASSWORD when a password was given")],
        examples = "- user:\n    name: deploy\n    shell: /bin/bash\n    groups: [adm, www-data]\n    append: true\n  become: true"
    )]
    pub struct UserArgs {
        /// The login name.
        #[arg(required, aliases = &["user"])]
        name: String,
        /// Whether the account should exist.
        #[arg(default = "present", choices = &["absent", "present"])]
        state: String,
        /// The user id.
        uid: Option<i64>,
        /// Allow a uid that is not unique (`-o`, with `uid`).
        #[arg(default = "no")]
        non_unique: bool,
        /// The primary group (name or gid); it must exist.
        group: Option<String>,
        /// Supplementary groups (a list or a comma-separated string); an empty list removes all
        /// of them unless `append`.
        #[arg(kind = List)]
        groups: Value,
        /// Add `groups` to the user's groups instead of replacing them.
        #[arg(default = "no")]
        append: bool,
        /// The GECOS field.
        comment: Option<String>,
        /// The home directory.
        #[arg(kind = Path)]
        home: Option<String>,
        /// The login shell.
        #[arg(kind = Path)]
        shell: Option<String>,
        /// The password as a crypt(3) hash (never a clear text); never shown.
        password: Option<String>,
        /// `always` updates the hash when it differs, `on_create` only sets it on creation.
        #[arg(default = "always", choices = &["always", "on_create"])]
        update_password: String,
        /// Lock (`true`) or unlock (`false`) the password.
        password_lock: Option<bool>,
        /// Create the home directory when the account is created or its home is missing.
        #[arg(default = "yes", aliases = &["createhome"])]
        create_home: bool,
        /// Skeleton directory for a created home (`useradd -k`).
        #[arg(kind = Path)]
        skeleton: Option<String>,
        /// Create a system account (`useradd -r`); only on creation.
        #[arg(default = "no")]
        system: bool,
        /// With `state: absent`: also remove the home and mail spool (`userdel -r`).
        #[arg(default = "no")]
        remove: bool,
        /// With `state: absent`: `userdel -f`.
        #[arg(default = "no")]
        force: bool,
        /// Move the home's contents when `home` changes (`usermod -m`).
        #[arg(default = "no")]
        move_home: bool,
        /// Account expiry in seconds since the epoch (a float); negative clears it.
        expires: Option<String>,
        /// Minimum days between password changes (`chage -m`).
        password_expire_min: Option<i64>,
        /// Maximum days a password is valid (`chage -M`).
        password_expire_max: Option<i64>,
        /// Days of warning before the password expires (`chage -W`).
        password_expire_warn: Option<i64>,
    }
}

/// What `check` read about the account.
#[derive(Clone, Debug, Default)]
pub struct HostState {
    /// The `passwd` entry, if the user exists.
    pub user: Option<Passwd>,
    /// The `shadow` entry, when it could be read (as root).
    pub shadow: Option<Shadow>,
    /// Every group.
    pub groups: Vec<GroupEnt>,
    /// Whether the home (`home`, else the current one) exists.
    pub home_exists: bool,
}

/// The commands `apply` runs, in order.
#[derive(Debug)]
pub struct Plan {
    cmds: Vec<Cmd>,
    kind: Kind,
    /// A group a new account names that does not exist: as Ansible's, check mode reports the
    /// account's creation (an earlier task may create the group), and a real run fails with
    /// "Group X does not exist" before running anything.
    missing_group: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Create,
    Modify,
    Remove,
}

/// `groups` as Ansible reads it: `None` when not given, else the names (a string is split on
/// commas).
fn groups_arg(v: &Value) -> Option<Vec<String>> {
    let items: Vec<String> = match v {
        Value::Null => return None,
        Value::Array(a) => a
            .iter()
            .map(|x| match x {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect(),
        Value::String(s) => s.split(',').map(str::to_string).collect(),
        other => vec![other.to_string()],
    };
    Some(
        items
            .iter()
            .flat_map(|s| s.split(','))
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect(),
    )
}

/// `expires` in seconds since the epoch.
fn expires_arg(a: &UserArgs) -> Result<Option<f64>, ModuleError> {
    a.expires
        .as_deref()
        .map(|s| {
            s.trim().parse::<f64>().map_err(|_| {
                ModuleError::Args(format!(
                    "argument 'expires' expects seconds since the epoch (a number), found '{s}'"
                ))
            })
        })
        .transpose()
}

/// `YYYY-MM-DD` of a day count since the epoch.
fn date_of_day(day: i64) -> String {
    let (y, m, d) = civil_from_days(day);
    format!("{y:04}-{m:02}-{d:02}")
}

fn need_group<'a>(h: &'a HostState, g: &str) -> Result<&'a GroupEnt, ModuleError> {
    find_group(&h.groups, g).ok_or_else(|| failed(format!("Group {g} does not exist"), Args::new()))
}

fn attr(subject: &str, what: &str, before: impl Into<String>, after: impl Into<String>) -> Change {
    Change::Attr {
        subject: subject.to_string(),
        what: what.to_string(),
        before: before.into(),
        after: after.into(),
    }
}

/// The default home of a new account (useradd's `HOME=/home`).
fn default_home(name: &str) -> String {
    format!("/home/{name}")
}

/// The commands (and the changes shown) that bring the account to `a`, or `None` when it
/// already matches.
pub fn plan_user(a: &UserArgs, h: &HostState) -> Result<Option<(Plan, Vec<Change>)>, ModuleError> {
    let n = a.name.as_str();
    let mut changes = Vec::new();
    let mut cmds = Vec::new();
    let expires = expires_arg(a)?;
    let groups = groups_arg(&a.groups);
    if a.state == "absent" {
        if h.user.is_none() {
            return Ok(None);
        }
        let mut c = Cmd::raw("userdel");
        if a.force {
            c = c.op("-f");
        }
        if a.remove {
            c = c.op("-r");
        }
        changes.push(attr(n, "state", "present", "absent"));
        cmds.push(c.op("--").arg(n));
        return Ok(Some((
            Plan {
                cmds,
                kind: Kind::Remove,
                missing_group: None,
            },
            changes,
        )));
    }
    let hash_with_lock = |p: &str| {
        if a.password_lock == Some(true) {
            format!("!{}", p.trim_start_matches('!'))
        } else {
            p.to_string()
        }
    };
    let Some(cur) = &h.user else {
        let mut c = Cmd::raw("useradd");
        if let Some(uid) = a.uid {
            c = c.op("-u").arg(uid.to_string());
            if a.non_unique {
                c = c.op("-o");
            }
        }
        let mut missing_group = None;
        let mut note_missing = |g: &str| {
            if find_group(&h.groups, g).is_none() && missing_group.is_none() {
                missing_group = Some(g.to_string());
            }
        };
        if let Some(g) = &a.group {
            note_missing(g);
            c = c.op("-g").arg(g.clone());
        } else if h.groups.iter().any(|e| e.name == n) {
            // A group named like the user exists: no user group (USERGROUPS_ENAB would fail).
            c = c.op("-N");
        }
        if let Some(gs) = groups.as_ref().filter(|g| !g.is_empty()) {
            for g in gs {
                note_missing(g);
            }
            let mut uniq: Vec<&str> = Vec::new();
            for g in gs {
                if !uniq.contains(&g.as_str()) {
                    uniq.push(g);
                }
            }
            c = c.op("-G").arg(uniq.join(","));
        }
        if let Some(v) = &a.comment {
            c = c.op("-c").arg(v.clone());
        }
        if let Some(v) = &a.home {
            c = c.op("-d").arg(v.clone());
        }
        if let Some(v) = &a.shell {
            c = c.op("-s").arg(v.clone());
        }
        if let Some(e) = expires {
            c = c.op("-e");
            c = if e < 0.0 {
                c.arg("")
            } else {
                c.arg(date_of_day((e / 86400.0).floor() as i64))
            };
        }
        if a.create_home {
            c = c.op("-m");
            if let Some(k) = &a.skeleton {
                c = c.op("-k").arg(k.clone());
            }
        } else {
            c = c.op("-M");
        }
        if a.system {
            c = c.op("-r");
        }
        cmds.push(c.op("--").arg(n));
        changes.push(attr(n, "state", "absent", "present"));
        if let Some(p) = &a.password {
            cmds.push(chpasswd(n, &hash_with_lock(p)));
            changes.push(attr(n, "password", "", MASKED));
        }
        let chage = chage_cmd(a, None);
        if let Some(c) = chage {
            cmds.push(c);
        }
        return Ok(Some((
            Plan {
                cmds,
                kind: Kind::Create,
                missing_group,
            },
            changes,
        )));
    };
    let mut c = Cmd::raw("usermod");
    let mut flags = 0;
    if let Some(uid) = a.uid.filter(|u| *u != cur.uid) {
        c = c.op("-u").arg(uid.to_string());
        if a.non_unique {
            c = c.op("-o");
        }
        changes.push(attr(n, "uid", cur.uid.to_string(), uid.to_string()));
        flags += 1;
    }
    if let Some(g) = &a.group {
        let ge = need_group(h, g)?;
        if ge.gid != cur.gid {
            c = c.op("-g").arg(ge.gid.to_string());
            changes.push(attr(n, "group", cur.gid.to_string(), ge.gid.to_string()));
            flags += 1;
        }
    }
    if let Some(gs) = &groups {
        let current: Vec<&str> = h
            .groups
            .iter()
            .filter(|g| g.members.iter().any(|m| m == n))
            .map(|g| g.name.as_str())
            .collect();
        let mut wanted: Vec<&str> = Vec::new();
        for g in gs {
            let name = need_group(h, g)?.name.as_str();
            if !wanted.contains(&name) {
                wanted.push(name);
            }
        }
        let differ = current.iter().any(|g| !wanted.contains(g))
            || wanted.iter().any(|g| !current.contains(g));
        let need = if wanted.is_empty() {
            !current.is_empty() && !a.append
        } else if a.append {
            wanted.iter().any(|g| !current.contains(g))
        } else {
            differ
        };
        if need {
            if a.append {
                c = c.op("-a");
            }
            c = c.op("-G").arg(wanted.join(","));
            let after = if a.append {
                let mut all = current.clone();
                all.extend(wanted.iter().filter(|g| !current.contains(g)));
                all
            } else {
                wanted.clone()
            };
            changes.push(attr(n, "groups", current.join(","), after.join(",")));
            flags += 1;
        }
    }
    if let Some(v) = a.comment.as_ref().filter(|v| **v != cur.comment) {
        c = c.op("-c").arg(v.clone());
        changes.push(attr(n, "comment", cur.comment.clone(), v.clone()));
        flags += 1;
    }
    if let Some(v) = a.home.as_ref().filter(|v| **v != cur.home) {
        c = c.op("-d").arg(v.clone());
        if a.move_home {
            c = c.op("-m");
        }
        changes.push(attr(n, "home", cur.home.clone(), v.clone()));
        flags += 1;
    }
    if let Some(v) = a.shell.as_ref().filter(|v| **v != cur.shell) {
        c = c.op("-s").arg(v.clone());
        changes.push(attr(n, "shell", cur.shell.clone(), v.clone()));
        flags += 1;
    }
    if let Some(e) = expires {
        let current = h.shadow.as_ref().and_then(|s| s.expire).unwrap_or(-1);
        let shown = |d: i64| {
            if d < 0 {
                "never".to_string()
            } else {
                date_of_day(d)
            }
        };
        if e < 0.0 {
            if current >= 0 {
                c = c.op("-e").arg("");
                changes.push(attr(n, "expires", shown(current), "never"));
                flags += 1;
            }
        } else {
            let day = (e / 86400.0).floor() as i64;
            if current < 0 || current != day {
                c = c.op("-e").arg(date_of_day(day));
                changes.push(attr(n, "expires", shown(current), date_of_day(day)));
                flags += 1;
            }
        }
    }
    let hash = h.shadow.as_ref().map_or("", |s| s.hash.as_str());
    let new_hash = a.password.as_ref().filter(|p| {
        a.update_password == "always" && hash.trim_start_matches('!') != p.trim_start_matches('!')
    });
    let locked = hash.starts_with('!');
    match (new_hash, a.password_lock) {
        (Some(_), _) => {}
        (None, Some(true)) if !locked => {
            c = c.op("-L");
            changes.push(attr(n, "password_lock", "false", "true"));
            flags += 1;
        }
        (None, Some(false)) if locked => {
            c = c.op("-U");
            changes.push(attr(n, "password_lock", "true", "false"));
            flags += 1;
        }
        _ => {}
    }
    if flags > 0 {
        cmds.push(c.op("--").arg(n));
    }
    if let Some(p) = new_hash {
        cmds.push(chpasswd(n, &hash_with_lock(p)));
        changes.push(attr(n, "password", MASKED, MASKED));
    }
    if a.create_home
        && !h.home_exists
        && a.home
            .as_ref()
            .is_none_or(|v| *v == cur.home || !a.move_home)
    {
        let home = a.home.clone().unwrap_or_else(|| cur.home.clone());
        cmds.push(
            Cmd::raw("set --")
                .arg(home.clone())
                .arg(a.skeleton.clone().unwrap_or_else(|| "/etc/skel".into()))
                .arg(a.uid.unwrap_or(cur.uid).to_string())
                .arg(cur.gid.to_string())
                .op(";")
                .op(MAKE_HOME),
        );
        changes.push(attr(&home, "state", "absent", "directory"));
    }
    if let Some(ch) = chage_cmd(a, h.shadow.as_ref()) {
        changes.push(Change::Run {
            command: ch.display(),
        });
        cmds.push(ch);
    }
    if cmds.is_empty() {
        return Ok(None);
    }
    Ok(Some((
        Plan {
            cmds,
            kind: Kind::Modify,
            missing_group: None,
        },
        changes,
    )))
}

/// Creates a missing home as Ansible does: the skeleton copied (if it exists), owned by the
/// user, mode `HOME_MODE` from login.defs (else 0755). `$1` home, `$2` skeleton, `$3` uid,
/// `$4` gid.
const MAKE_HOME: &str = crate::host::USER_MAKE_HOME;

/// `chpasswd -e` with `NAME:HASH` on stdin.
fn chpasswd(name: &str, hash: &str) -> Cmd {
    Cmd::raw("chpasswd -e").stdin(format!("{name}:{hash}\n").into_bytes())
}

/// `chage` for the ageing fields that differ from `shadow` (all given ones when unknown).
fn chage_cmd(a: &UserArgs, shadow: Option<&Shadow>) -> Option<Cmd> {
    let mut c = Cmd::raw("chage");
    let mut any = false;
    let fields = [
        ("-m", a.password_expire_min, shadow.and_then(|s| s.min)),
        ("-M", a.password_expire_max, shadow.and_then(|s| s.max)),
        ("-W", a.password_expire_warn, shadow.and_then(|s| s.warn)),
    ];
    for (flag, want, have) in fields {
        if let Some(w) = want
            && (shadow.is_none() || have != Some(w))
        {
            c = match flag {
                "-m" => c.op("-m"),
                "-M" => c.op("-M"),
                _ => c.op("-W"),
            }
            .arg(w.to_string());
            any = true;
        }
    }
    any.then(|| c.op("--").arg(a.name.clone()))
}

/// Whether `$2` (else the home in `$1`'s passwd entry) exists.
const HOME_EXISTS: &str = crate::host::USER_HOME_EXISTS;

async fn read_state(
    tr: &mut HostView<'_>,
    ctx: &ModuleCtx<'_>,
    name: &str,
    home: Option<&str>,
) -> Result<HostState, ModuleError> {
    let cmds = [
        Cmd::raw("getent passwd --").arg(name),
        Cmd::raw("getent shadow --").arg(name),
        Cmd::raw("getent group"),
        Cmd::raw("set --")
            .arg(name)
            .arg(home.unwrap_or_default())
            .op(";")
            .op(HOME_EXISTS),
    ];
    let outs = ctx
        .read(tr, &cmds, 1 << 20)
        .await?
        .map_err(|e| failed(format!("reading the accounts failed: {e}"), Args::new()))?;
    let [pw, sh, gr, hm] = <[_; 4]>::try_from(outs)
        .map_err(|_| failed("reading the accounts returned too few outputs", Args::new()))?;
    if gr.status != 0 {
        return Err(failed(
            format!(
                "`getent group` exited {}: {}",
                gr.status,
                gr.stderr_lossy().trim()
            ),
            output_result(&gr),
        ));
    }
    Ok(HostState {
        user: (pw.status == 0)
            .then(|| parse_passwd(pw.stdout_lossy().lines().next().unwrap_or_default()))
            .flatten(),
        shadow: (sh.status == 0)
            .then(|| parse_shadow(sh.stdout_lossy().lines().next().unwrap_or_default()))
            .flatten(),
        groups: parse_groups(&gr.stdout_lossy()),
        home_exists: hm.stdout_lossy().trim() == "yes",
    })
}

/// The result keys Ansible returns for `a` on a host in state `h` (after any change).
fn result_of(a: &UserArgs, h: &HostState, kind: Option<Kind>) -> Args {
    let mut r = Args::new();
    r.insert("name".into(), Value::from(a.name.clone()));
    r.insert("state".into(), Value::from(a.state.clone()));
    match kind {
        Some(Kind::Remove) => {
            r.insert("force".into(), Value::from(a.force));
            r.insert("remove".into(), Value::from(a.remove));
        }
        Some(Kind::Create) => {
            r.insert("system".into(), Value::from(a.system));
            r.insert("create_home".into(), Value::from(a.create_home));
        }
        _ if a.state == "present" => {
            r.insert("append".into(), Value::from(a.append));
            r.insert("move_home".into(), Value::from(a.move_home));
        }
        _ => {}
    }
    if a.state == "present" {
        if a.password.is_some() {
            r.insert("password".into(), Value::from(MASKED));
        }
        if let Some(u) = &h.user {
            r.insert("uid".into(), Value::from(u.uid));
            r.insert("group".into(), Value::from(u.gid));
            r.insert("comment".into(), Value::from(u.comment.clone()));
            r.insert("home".into(), Value::from(u.home.clone()));
            r.insert("shell".into(), Value::from(u.shell.clone()));
        }
        if let Some(gs) = groups_arg(&a.groups) {
            r.insert("groups".into(), Value::from(gs.join(",")));
        }
    }
    r
}

async fn check_user(
    tr: &mut HostView<'_>,
    args: &Args,
    ctx: &ModuleCtx<'_>,
) -> Result<Verdict, ModuleError> {
    let a = UserArgs::parse(args)?;
    plain_name("user", &a.name)?;
    let h = read_state(tr, ctx, &a.name, a.home.as_deref()).await?;
    match plan_user(&a, &h)? {
        None => Ok(Verdict::InSync {
            result: result_of(&a, &h, None),
        }),
        Some((plan, changes)) => Ok(Verdict::Drift(Drift::new(changes, plan))),
    }
}

async fn apply_user(
    tr: &mut AnyTransport,
    args: &Args,
    ctx: &ModuleCtx<'_>,
    drift: &Drift,
) -> Result<Args, ModuleError> {
    let a = UserArgs::parse(args)?;
    let plan = drift
        .plan::<Plan>()
        .ok_or_else(|| ModuleError::Args("user: apply without a plan from check".into()))?;
    if let Some(g) = &plan.missing_group {
        return Err(failed(format!("Group {g} does not exist"), Args::new()));
    }
    let mut stdout = String::new();
    let mut stderr = String::new();
    for c in &plan.cmds {
        let shown = c.display();
        let out = ctx.run(tr, c.clone()).await?;
        stdout.push_str(&out.stdout_lossy());
        stderr.push_str(&out.stderr_lossy());
        if out.status != 0 {
            let mut r = Args::new();
            r.insert("name".into(), Value::from(a.name.clone()));
            r.insert("rc".into(), Value::from(out.status));
            let err = out.stderr_lossy().trim().to_string();
            let msg = if err.is_empty() {
                format!("`{shown}` exited {}", out.status)
            } else {
                err
            };
            return Err(failed(msg, r));
        }
    }
    let h = read_state(&mut HostView::of(tr), ctx, &a.name, a.home.as_deref()).await?;
    let mut r = result_of(&a, &h, Some(plan.kind));
    if !stdout.is_empty() {
        r.insert("stdout".into(), Value::from(stdout));
    }
    if !stderr.is_empty() {
        r.insert("stderr".into(), Value::from(stderr));
    }
    Ok(r)
}

impl Module for User {
    fn name(&self) -> &'static str {
        "user"
    }

    fn check<'a>(
        &'a self,
        tr: &'a mut HostView<'_>,
        args: &'a Args,
        ctx: &'a ModuleCtx<'a>,
    ) -> BoxFut<'a, Result<Verdict, ModuleError>> {
        Box::pin(check_user(tr, args, ctx))
    }

    fn apply<'a>(
        &'a self,
        tr: &'a mut AnyTransport,
        args: &'a Args,
        ctx: &'a ModuleCtx<'a>,
        drift: &'a Drift,
    ) -> BoxFut<'a, Result<Args, ModuleError>> {
        Box::pin(apply_user(tr, args, ctx, drift))
    }

    /// The account files, and the home when the step may create it (a `Path`: rollback
    /// removes a home that was absent), or remove or move it with its contents (a `Tree`).
    fn resources(&self, args: &Args) -> Vec<Resource> {
        let mut out = account_files();
        let Ok(a) = UserArgs::parse(args) else {
            return out;
        };
        let home = a.home.clone().unwrap_or_else(|| default_home(&a.name));
        if a.state == "absent" {
            if a.remove {
                out.push(Resource::Tree(home));
            }
        } else if a.move_home {
            out.push(Resource::Tree(home));
        } else if a.create_home {
            out.push(Resource::Path(home));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn host(user: Option<&str>, shadow: Option<&str>, groups: &str, home: bool) -> HostState {
        HostState {
            user: user.and_then(parse_passwd),
            shadow: shadow.and_then(parse_shadow),
            groups: parse_groups(groups),
            home_exists: home,
        }
    }

    const GROUPS: &str = "root:x:0:\nadm:x:4:alice\nusers:x:100:\nalice:x:1001:\nstaff:x:50:\n";
    const ALICE: &str = "alice:x:1001:1001:Alice:/home/alice:/bin/sh";
    const SHADOW: &str = "alice:$6$old:19000:0:99999:7:::";

    /// The commands planned for `args` on `h` (`None` in sync), or the error.
    fn planned(args: serde_json::Value, h: &HostState) -> Result<Option<Vec<String>>, String> {
        let a = UserArgs::parse(args.as_object().unwrap()).map_err(|e| e.to_string())?;
        plan_user(&a, h)
            .map(|p| p.map(|(p, _)| p.cmds.iter().map(Cmd::display).collect()))
            .map_err(|e| e.to_string())
    }

    /// (what, arguments, host, the commands planned or the error).
    type Case<'a> = (
        &'a str,
        serde_json::Value,
        &'a HostState,
        Result<Option<Vec<&'a str>>, &'a str>,
    );

    #[test]
    fn commands_for_each_host_state() {
        let absent = host(None, None, GROUPS, false);
        let present = host(Some(ALICE), Some(SHADOW), GROUPS, true);
        let cases: Vec<Case> = vec![
            (
                "create, user group exists: -N",
                json!({"name": "alice"}),
                &absent,
                Ok(Some(vec!["useradd -N -m -- 'alice'"])),
            ),
            (
                "create with everything",
                json!({"name": "bob", "uid": 2000, "group": "users", "groups": "adm,staff", "comment": "Bob B", "shell": "/bin/bash", "home": "/srv/bob", "system": true, "create_home": false}),
                &absent,
                Ok(Some(vec![
                    "useradd -u '2000' -g 'users' -G 'adm,staff' -c 'Bob B' -d '/srv/bob' -s '/bin/bash' -M -r -- 'bob'",
                ])),
            ),
            (
                "create, missing group: planned (check mode reports it), refused by apply",
                json!({"name": "bob", "group": "nope"}),
                &absent,
                Ok(Some(vec!["useradd -g 'nope' -m -- 'bob'"])),
            ),
            (
                "create with a password: stdin, masked",
                json!({"name": "bob", "password": "$6$x"}),
                &absent,
                Ok(Some(vec!["useradd -m -- 'bob'", "chpasswd -e"])),
            ),
            (
                "in sync",
                json!({"name": "alice", "shell": "/bin/sh", "uid": 1001, "groups": ["adm"], "password": "$6$old"}),
                &present,
                Ok(None),
            ),
            (
                "uid and shell",
                json!({"name": "alice", "shell": "/bin/bash", "uid": 1500}),
                &present,
                Ok(Some(vec!["usermod -u '1500' -s '/bin/bash' -- 'alice'"])),
            ),
            (
                "groups replaced",
                json!({"name": "alice", "groups": ["staff"]}),
                &present,
                Ok(Some(vec!["usermod -G 'staff' -- 'alice'"])),
            ),
            (
                "groups appended",
                json!({"name": "alice", "groups": ["staff"], "append": true}),
                &present,
                Ok(Some(vec!["usermod -a -G 'staff' -- 'alice'"])),
            ),
            (
                "appending a group it has",
                json!({"name": "alice", "groups": ["adm"], "append": true}),
                &present,
                Ok(None),
            ),
            (
                "empty groups remove all",
                json!({"name": "alice", "groups": []}),
                &present,
                Ok(Some(vec!["usermod -G '' -- 'alice'"])),
            ),
            (
                "lock",
                json!({"name": "alice", "password_lock": true}),
                &present,
                Ok(Some(vec!["usermod -L -- 'alice'"])),
            ),
            (
                "new password, on_create",
                json!({"name": "alice", "password": "$6$new", "update_password": "on_create"}),
                &present,
                Ok(None),
            ),
            (
                "new password",
                json!({"name": "alice", "password": "$6$new"}),
                &present,
                Ok(Some(vec!["chpasswd -e"])),
            ),
            (
                "expires",
                json!({"name": "alice", "expires": 1735689600}),
                &present,
                Ok(Some(vec!["usermod -e '2025-01-01' -- 'alice'"])),
            ),
            (
                "ageing",
                json!({"name": "alice", "password_expire_max": 99999, "password_expire_min": 1}),
                &present,
                Ok(Some(vec!["chage -m '1' -- 'alice'"])),
            ),
            (
                "remove",
                json!({"name": "alice", "state": "absent", "remove": true, "force": true}),
                &present,
                Ok(Some(vec!["userdel -f -r -- 'alice'"])),
            ),
            (
                "remove, absent",
                json!({"name": "alice", "state": "absent"}),
                &absent,
                Ok(None),
            ),
        ];
        for (what, args, h, want) in cases {
            let want = want
                .map(|o| o.map(|v| v.iter().map(|s| s.to_string()).collect::<Vec<_>>()))
                .map_err(str::to_string);
            let got = planned(args, h);
            match (&got, &want) {
                (Err(g), Err(w)) => assert!(g.contains(w.as_str()), "{what}: {g}"),
                _ => assert_eq!(got, want, "{what}"),
            }
        }
        // The missing group (of `group` or `groups`) is what apply refuses with, Ansible's words.
        for args in [
            json!({"name": "bob", "group": "nope"}),
            json!({"name": "bob", "groups": ["adm", "nope"]}),
        ] {
            let a = UserArgs::parse(args.as_object().unwrap()).unwrap();
            let (plan, _) = plan_user(&a, &absent).unwrap().unwrap();
            assert_eq!(plan.missing_group.as_deref(), Some("nope"), "{args}");
        }
        // An existing account's missing group is refused at once, in check mode too.
        let a = UserArgs::parse(
            json!({"name": "alice", "group": "nope"})
                .as_object()
                .unwrap(),
        )
        .unwrap();
        assert!(
            plan_user(&a, &present)
                .unwrap_err()
                .to_string()
                .contains("Group nope does not exist")
        );
        // A missing home is created for an existing user.
        let no_home = host(Some(ALICE), Some(SHADOW), GROUPS, false);
        let cmds = planned(json!({"name": "alice"}), &no_home)
            .unwrap()
            .unwrap();
        assert!(
            cmds[0].starts_with("set -- '/home/alice' '/etc/skel' '1001' '1001'"),
            "{cmds:?}"
        );
    }

    #[test]
    fn the_password_is_never_shown() {
        let absent = host(None, None, GROUPS, false);
        let a = UserArgs::parse(
            json!({"name": "bob", "password": "$6$secret"})
                .as_object()
                .unwrap(),
        )
        .unwrap();
        let (plan, changes) = plan_user(&a, &absent).unwrap().unwrap();
        let shown = format!(
            "{changes:?} {:?}",
            plan.cmds.iter().map(Cmd::display).collect::<Vec<_>>()
        );
        assert!(!shown.contains("secret"), "{shown}");
        assert_eq!(plan.cmds[1].stdin_bytes().unwrap(), b"bob:$6$secret\n");
        let r = result_of(&a, &absent, Some(Kind::Create));
        assert_eq!(r["password"], json!(MASKED));
    }

    #[test]
    fn resources_cover_the_account_files_and_the_home() {
        let r = User.resources(json!({"name": "bob"}).as_object().unwrap());
        assert!(r.contains(&Resource::Path("/etc/shadow".into())));
        assert!(r.contains(&Resource::Path("/home/bob".into())));
        let r = User.resources(
            json!({"name": "bob", "state": "absent", "remove": true})
                .as_object()
                .unwrap(),
        );
        assert!(r.contains(&Resource::Tree("/home/bob".into())));
    }
}
