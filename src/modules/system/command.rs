//! The command-running modules: `command` (argv, no shell), `shell` (the playbook's text as a
//! shell script), `raw` (the text through `sh -c`, no guards) and `script` (a controller file
//! pushed to a private temporary directory on the host, run, removed).
//!
//! Owns their typed arguments and load-time checks (one command: free-form text, `cmd` or
//! `argv`), how each turns its arguments into one [`Cmd`], the `creates`/`removes` guards
//! (checked in `check`, one round trip) and Ansible's result keys (`cmd`, `rc`, `stdout`,
//! `stderr`, `*_lines`, `start`, `end`, `delta`; `msg` on failure). None of them converges:
//! `check` without a guard returns drift without running anything. A non-zero exit is
//! [`ModuleError::Failed`] carrying the full result so the executor can apply `failed_when` /
//! `ignore_errors`. Only `shell` and `raw` hand playbook text to a shell
//! ([`Cmd::user_script`]); `command` and `script` arguments are always quoted words.

use serde_json::Value;

use super::common::{
    Clock, FREE_FORM, Guards, command_result, failed, free_text, guard, shlex_split,
};
use crate::diag::Diagnostic;
use crate::modules::runtime::{
    Args, BoxFut, Change, Drift, HostView, Module, ModuleCtx, ModuleError, Resource, Unpredicted,
    Verdict, need_local_src,
};
use crate::modules::spec::ArgsRef;
use crate::transport::{AnyTransport, Cmd, FileAttrs, Transport};

/// `command`: runs argv without a shell (`$HOME`, `*`, `|` stay literal).
pub struct Command;
/// `shell`: runs the text with `/bin/sh` (or `executable`).
pub struct Shell;
/// `raw`: runs the text with `sh -c` (or `executable`), no guards, no options.
pub struct Raw;
/// `script`: pushes a controller script to the host and runs it with its arguments.
pub struct Script;

/// What rdeploy backs up for `command` and `shell` (their `backup` doc).
const COMMAND_BACKUP: &str = "Nothing: a command's effect is unknown. With `creates:` the named path is backed up (rollback removes what the command created); with `removes:` that path is backed up. Otherwise not reversible: add a `rollback:` task.";

/// The result keys of `command` and `shell`.
const COMMAND_RETURNS: &[(&str, &str)] = &[
    ("rc", "exit status"),
    ("stdout", "output"),
    ("stderr", "errors"),
    ("stdout_lines", "output as lines"),
    ("cmd", "the command run"),
    ("start", "start time"),
    ("end", "end time"),
    ("delta", "run time"),
];

crate::module_args! {
    /// Runs a command on the host without a shell: no pipes, redirects, globs or command
    /// substitution. As in Ansible, `$VAR`/`${VAR}` in each word is replaced by the command's
    /// environment variable (left as written when it is not set) and a leading `~`/`~USER` by
    /// that home directory, unless `expand_argument_vars: false`. Give it free-form (`command:
    /// ls -l`), as `cmd`, or as an `argv` list. Not reversible unless the task has
    /// `creates`/`removes` or a `rollback:`.
    #[module(
        name = "command",
        free_form = true,
        check_args = one_command,
        backup = COMMAND_BACKUP,
        returns = COMMAND_RETURNS,
        examples = "- command: /opt/app/bin/migrate --to latest\n  args:\n    creates: /opt/app/.migrated\n- command:\n    argv: [/usr/bin/env, printf, '%s\\n', 'a b']\n  register: out\n  changed_when: false"
    )]
    pub struct CommandArgs {
        /// The command line, split like a shell would split it.
        cmd: Option<String>,
        /// The command as a list of arguments (no splitting).
        argv: Vec<String>,
        /// Skip the command if this path exists.
        #[arg(kind = Path)]
        creates: Option<String>,
        /// Run the command only if this path exists.
        #[arg(kind = Path)]
        removes: Option<String>,
        /// Change into this directory first.
        #[arg(kind = Path)]
        chdir: Option<String>,
        /// Text written to the command's standard input.
        stdin: Option<String>,
        /// Append a newline to `stdin`.
        #[arg(default = "yes")]
        stdin_add_newline: bool,
        /// Strip empty lines from the ends of stdout/stderr.
        #[arg(default = "yes")]
        strip_empty_ends: bool,
        /// Replace `$VAR`, `${VAR}` and a leading `~`/`~USER` in each word on the host (what
        /// Python's `os.path.expandvars` and `expanduser` do), as Ansible's `command`.
        #[arg(default = "yes")]
        expand_argument_vars: bool,
    }
}

/// Expands each positional parameter as Ansible's `command` does on the host (Python's
/// `os.path.expanduser(os.path.expandvars(word))`): `$NAME`/`${NAME}` from the environment, left
/// as written when unset; then a leading `~` (`$HOME`, else the user's passwd home) or `~USER`
/// (that user's home; unchanged when there is no such user). Ends by running the words.
const EXPAND_AND_EXEC: &str = crate::host::COMMAND_EXPAND_EXEC;

crate::module_args! {
    /// Runs a command line through `/bin/sh` on the host (pipes, redirects, variables). Give it
    /// free-form or as `cmd`. Not reversible unless the task has `creates`/`removes` or a
    /// `rollback:`.
    #[module(
        name = "shell",
        free_form = true,
        check_args = free_form_or_cmd,
        backup = COMMAND_BACKUP,
        returns = COMMAND_RETURNS,
        examples = "- shell: set -o pipefail && ls /srv/app/releases | sort -V | tail -n 1\n  args:\n    executable: /bin/bash\n  register: latest\n  changed_when: false"
    )]
    pub struct ShellArgs {
        /// The command line.
        cmd: Option<String>,
        /// Skip the command if this path exists.
        #[arg(kind = Path)]
        creates: Option<String>,
        /// Run the command only if this path exists.
        #[arg(kind = Path)]
        removes: Option<String>,
        /// Change into this directory first.
        #[arg(kind = Path)]
        chdir: Option<String>,
        /// Text written to the command's standard input.
        stdin: Option<String>,
        /// Append a newline to `stdin`.
        #[arg(default = "yes")]
        stdin_add_newline: bool,
        /// Strip empty lines from the ends of stdout/stderr.
        #[arg(default = "yes")]
        strip_empty_ends: bool,
        /// Shell to use instead of `/bin/sh`.
        #[arg(kind = Path)]
        executable: Option<String>,
    }
}

crate::module_args! {
    /// Sends a command line through the connection with no processing at all (free-form). Use
    /// it only where `command`/`shell` cannot run.
    #[module(
        name = "raw",
        free_form = true,
        check_args = needs_free_form,
        backup = "Nothing: not reversible. Add a `rollback:` task.",
        returns = &[("rc", "exit status"), ("stdout", "output"), ("stderr", "errors")],
        examples = "- raw: test -e /usr/bin/python3 || (apt-get update && apt-get install -y python3)"
    )]
    pub struct RawArgs {
        /// Shell used to run the line.
        #[arg(kind = Path)]
        executable: Option<String>,
    }
}

crate::module_args! {
    /// Copies a script from the controller (role `files/` first) to the host and runs it;
    /// free-form `path args` or `cmd`.
    #[module(
        name = "script",
        free_form = true,
        check_args = free_form_or_cmd,
        backup = "Nothing: a script's effect is unknown. With `creates:`/`removes:` the named path is backed up; otherwise not reversible: add a `rollback:` task.",
        returns = &[("rc", "exit status"), ("stdout", "output"), ("stderr", "errors")],
        examples = "- script: scripts/prepare.sh --fast\n  args:\n    creates: /srv/app/.prepared"
    )]
    pub struct ScriptArgs {
        /// The script path and its arguments.
        cmd: Option<String>,
        /// Skip the script if this path exists on the host.
        #[arg(kind = Path)]
        creates: Option<String>,
        /// Run the script only if this path exists on the host.
        #[arg(kind = Path)]
        removes: Option<String>,
        /// Change into this directory on the host first.
        #[arg(kind = Path)]
        chdir: Option<String>,
        /// Interpreter to run the script with.
        #[arg(kind = Path)]
        executable: Option<String>,
    }
}

/// `command`: exactly one of free-form text, `cmd` and `argv`.
fn one_command(a: &ArgsRef<'_>) -> Vec<Diagnostic> {
    let n =
        usize::from(a.free_form.is_some()) + usize::from(a.has("cmd")) + usize::from(a.has("argv"));
    match n {
        0 => a.error("module 'command' needs a command: free-form text, 'cmd' or 'argv'".into()),
        1 => Vec::new(),
        _ => a.error("module 'command' takes only one of free-form text, 'cmd' and 'argv'".into()),
    }
}

/// `shell`, `script`: free-form text or `cmd`, one of them.
fn free_form_or_cmd(a: &ArgsRef<'_>) -> Vec<Diagnostic> {
    match (a.free_form.is_some(), a.has("cmd")) {
        (false, false) => a.error(format!(
            "module '{}' needs a command: free-form text or 'cmd'",
            a.module
        )),
        (true, true) => a.error(format!(
            "module '{}' takes free-form text or 'cmd', not both",
            a.module
        )),
        _ => Vec::new(),
    }
}

/// `raw`: free-form text is its only way to say what to run.
fn needs_free_form(a: &ArgsRef<'_>) -> Vec<Diagnostic> {
    if a.free_form.is_none() {
        a.error(format!("module '{}' needs free-form text", a.module))
    } else {
        Vec::new()
    }
}

/// What `check` decided to run, carried to `apply`.
struct Planned {
    cmd: Cmd,
    /// The `cmd` key of the result (argv list for `command`, text for `shell`/`raw`).
    shown: Value,
    strip: bool,
    /// `creates`/`removes` (none for `raw`).
    guards: Guards,
}

/// `stdin`, with the newline Ansible adds unless `stdin_add_newline: no`.
fn stdin_bytes(stdin: Option<String>, add_newline: bool) -> Option<Vec<u8>> {
    stdin.map(|text| {
        let mut bytes = text.into_bytes();
        if add_newline {
            bytes.push(b'\n');
        }
        bytes
    })
}

/// `chdir` and `stdin` applied to `cmd`.
fn with_common(mut cmd: Cmd, chdir: Option<&String>, stdin: Option<Vec<u8>>) -> Cmd {
    if let Some(d) = chdir {
        cmd = cmd.chdir(d.clone());
    }
    if let Some(s) = stdin {
        cmd = cmd.stdin(s);
    }
    cmd
}

fn plan_command(args: &Args) -> Result<Planned, ModuleError> {
    let a = CommandArgs::parse(args)?;
    let argv = if args.get("argv").is_some_and(|v| !v.is_null()) {
        a.argv
    } else {
        let text = free_text(a.cmd, args).ok_or_else(|| {
            ModuleError::Args(format!(
                "no command given: free-form text ('{FREE_FORM}'), 'cmd' or 'argv'"
            ))
        })?;
        shlex_split(&text)?
    };
    if argv.is_empty() {
        return Err(ModuleError::Args("no command given".into()));
    }
    // `exec` runs the program found in PATH, never a shell builtin or keyword of the same name.
    let expands = |w: &String| w.contains('$') || w.starts_with('~');
    let run = if a.expand_argument_vars && argv.iter().any(expands) {
        Cmd::raw("set --")
            .args(argv.clone())
            .op(";")
            .op(EXPAND_AND_EXEC)
    } else {
        Cmd::raw("exec").args(argv.clone())
    };
    let cmd = with_common(
        run,
        a.chdir.as_ref(),
        stdin_bytes(a.stdin, a.stdin_add_newline),
    );
    Ok(Planned {
        cmd,
        shown: Value::from(argv),
        strip: a.strip_empty_ends,
        guards: Guards {
            creates: a.creates,
            removes: a.removes,
            chdir: a.chdir,
        },
    })
}

/// The text through `executable -c`, or through `/bin/sh`.
fn shell_cmd(text: &str, executable: Option<String>) -> Cmd {
    match executable {
        Some(exe) => Cmd::argv([exe, "-c".to_string(), text.to_string()]),
        None => Cmd::user_script(text.to_string()),
    }
}

fn plan_shell(args: &Args) -> Result<Planned, ModuleError> {
    let a = ShellArgs::parse(args)?;
    let text = free_text(a.cmd, args).ok_or_else(|| {
        ModuleError::Args(format!(
            "no command given: free-form text ('{FREE_FORM}') or 'cmd'"
        ))
    })?;
    let cmd = with_common(
        shell_cmd(&text, a.executable),
        a.chdir.as_ref(),
        stdin_bytes(a.stdin, a.stdin_add_newline),
    );
    Ok(Planned {
        cmd,
        shown: Value::from(text),
        strip: a.strip_empty_ends,
        guards: Guards {
            creates: a.creates,
            removes: a.removes,
            chdir: a.chdir,
        },
    })
}

fn plan_raw(args: &Args) -> Result<Planned, ModuleError> {
    let a = RawArgs::parse(args)?;
    let text = free_text(None, args).ok_or_else(|| {
        ModuleError::Args(format!("no command given: free-form text ('{FREE_FORM}')"))
    })?;
    Ok(Planned {
        cmd: shell_cmd(&text, a.executable),
        shown: Value::from(text),
        strip: true,
        guards: Guards::default(),
    })
}

/// The drift of a command that will run: one `Run` change, nothing executed.
fn run_drift(p: Planned) -> Verdict {
    Verdict::Drift(Drift::new(
        vec![Change::Run {
            command: p.cmd.display(),
        }],
        p,
    ))
}

/// Runs a planned command: the full result, or `Failed` with it on a non-zero exit.
async fn run_planned(
    tr: &mut AnyTransport,
    ctx: &ModuleCtx<'_>,
    p: &Planned,
) -> Result<Args, ModuleError> {
    let clock = Clock::start();
    let out = ctx.run(tr, p.cmd.clone()).await?;
    let mut r = command_result(&out, p.strip);
    r.insert("cmd".into(), p.shown.clone());
    clock.finish(&mut r);
    if out.status != 0 {
        return Err(failed("non-zero return code", r));
    }
    Ok(r)
}

macro_rules! command_like {
    ($ty:ident, $name:literal, $plan:ident) => {
        impl Module for $ty {
            fn name(&self) -> &'static str {
                $name
            }

            fn check<'a>(
                &'a self,
                tr: &'a mut HostView<'_>,
                args: &'a Args,
                ctx: &'a ModuleCtx<'a>,
            ) -> BoxFut<'a, Result<Verdict, ModuleError>> {
                Box::pin(async move {
                    let p: Planned = $plan(args)?;
                    if let Some(skip) = guard(tr, &p.guards, ctx, &p.shown).await? {
                        return Ok(Verdict::InSync { result: skip });
                    }
                    Ok(run_drift(p))
                })
            }

            fn apply<'a>(
                &'a self,
                tr: &'a mut AnyTransport,
                args: &'a Args,
                ctx: &'a ModuleCtx<'a>,
                drift: &'a Drift,
            ) -> BoxFut<'a, Result<Args, ModuleError>> {
                Box::pin(async move {
                    match drift.plan::<Planned>() {
                        Some(p) => run_planned(tr, ctx, p).await,
                        None => run_planned(tr, ctx, &$plan(args)?).await,
                    }
                })
            }

            fn resources(&self, args: &Args) -> Vec<Resource> {
                $plan(args)
                    .map(|p| p.guards.resources())
                    .unwrap_or_default()
            }

            fn converges(&self, _args: &Args) -> bool {
                false
            }

            fn unpredicted(&self, _args: &Args, drift: &Drift) -> Unpredicted {
                match drift.plan::<Planned>() {
                    Some(p) if $name != "raw" => command_unpredicted(p),
                    _ => Unpredicted::skip(None),
                }
            }
        }
    };
}

/// Ansible's check-mode report of `command`/`shell`: the command would run, so it is skipped
/// (with empty output keys), or predicted `changed` when `creates`/`removes` decided it.
fn command_unpredicted(p: &Planned) -> Unpredicted {
    let mut u = Unpredicted::skip(Some(WOULD_RUN));
    u.skip = !p.guards.any();
    u.result.insert("cmd".into(), p.shown.clone());
    u.result.insert("rc".into(), Value::from(0));
    for k in ["stdout", "stderr"] {
        u.result.insert(k.into(), Value::from(""));
        u.result
            .insert(format!("{k}_lines"), Value::Array(Vec::new()));
    }
    for k in ["start", "end", "delta"] {
        u.result.insert(k.into(), Value::Null);
    }
    u
}

/// Ansible's message for a command that `--check` does not run.
const WOULD_RUN: &str = "Command would have run if not in check mode";

command_like!(Command, "command", plan_command);
command_like!(Shell, "shell", plan_shell);
command_like!(Raw, "raw", plan_raw);

/// What `script` runs: the controller file's base name, its interpreter and arguments.
struct ScriptPlan {
    file_name: String,
    executable: Option<String>,
    argv: Vec<String>,
    shown: Value,
    /// `creates`/`removes` and `chdir`.
    guards: Guards,
}

/// Removes the temporary directory after the script, keeping the script's exit status.
const SCRIPT_RUN: &str = crate::host::COMMAND_SCRIPT_RUN;

fn plan_script(args: &Args, ctx: &ModuleCtx<'_>) -> Result<ScriptPlan, ModuleError> {
    let a = ScriptArgs::parse(args)?;
    let text = free_text(a.cmd, args).ok_or_else(|| {
        ModuleError::Args(format!(
            "no script given: free-form text ('{FREE_FORM}') or 'cmd'"
        ))
    })?;
    let mut words = shlex_split(&text)?;
    if words.is_empty() {
        return Err(ModuleError::Args("no script given".into()));
    }
    let local = need_local_src(ctx)?;
    let file_name = local
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "script".into());
    Ok(ScriptPlan {
        shown: Value::from(text),
        file_name,
        executable: a.executable,
        argv: words.split_off(1),
        guards: Guards {
            creates: a.creates,
            removes: a.removes,
            chdir: a.chdir,
        },
    })
}

impl ScriptPlan {
    /// The command for the script at `path` inside temp dir `tmp` (removed afterwards).
    fn cmd(&self, tmp: &str, path: &str) -> Cmd {
        let mut words = Vec::with_capacity(self.argv.len() + 3);
        words.push(tmp.to_string());
        // With `executable`, the interpreter runs the script as its first argument.
        words.extend(self.executable.iter().cloned());
        words.push(path.to_string());
        words.extend(self.argv.iter().cloned());
        let mut cmd = Cmd::raw("set --").args(words).op(";").op(SCRIPT_RUN);
        if let Some(d) = &self.guards.chdir {
            cmd = cmd.chdir(d.clone());
        }
        cmd
    }
}

/// `script`'s guards, read without the controller file (`resources` has no context).
fn script_guards(args: &Args) -> Guards {
    ScriptArgs::parse(args)
        .map(|a| Guards {
            creates: a.creates,
            removes: a.removes,
            chdir: a.chdir,
        })
        .unwrap_or_default()
}

impl Module for Script {
    fn name(&self) -> &'static str {
        "script"
    }

    fn check<'a>(
        &'a self,
        tr: &'a mut HostView<'_>,
        args: &'a Args,
        ctx: &'a ModuleCtx<'a>,
    ) -> BoxFut<'a, Result<Verdict, ModuleError>> {
        Box::pin(async move {
            let p = plan_script(args, ctx)?;
            if let Some(skip) = guard(tr, &p.guards, ctx, &p.shown).await? {
                return Ok(Verdict::InSync { result: skip });
            }
            // What will run, as the user thinks of it: the pushed script and its arguments.
            let mut words: Vec<String> = p.executable.iter().cloned().collect();
            words.push(format!("$TMPDIR/{}", p.file_name));
            words.extend(p.argv.iter().cloned());
            Ok(Verdict::Drift(Drift::new(
                vec![Change::Run {
                    command: Cmd::argv(words).display(),
                }],
                p,
            )))
        })
    }

    fn apply<'a>(
        &'a self,
        tr: &'a mut AnyTransport,
        args: &'a Args,
        ctx: &'a ModuleCtx<'a>,
        drift: &'a Drift,
    ) -> BoxFut<'a, Result<Args, ModuleError>> {
        Box::pin(async move {
            let fresh;
            let p = match drift.plan::<ScriptPlan>() {
                Some(p) => p,
                None => {
                    fresh = plan_script(args, ctx)?;
                    &fresh
                }
            };
            let local = need_local_src(ctx)?;
            // A vault-encrypted script runs decrypted, as Ansible's `decrypt: true` default.
            let (data, _) = crate::modules::source::open(local).await?;
            run_script(tr, ctx, p, data.payload()).await
        })
    }

    fn resources(&self, args: &Args) -> Vec<Resource> {
        script_guards(args).resources()
    }

    fn converges(&self, _args: &Args) -> bool {
        false
    }

    fn unpredicted(&self, args: &Args, _drift: &Drift) -> Unpredicted {
        if script_guards(args).any() {
            Unpredicted {
                skip: false,
                result: Args::new(),
            }
        } else {
            Unpredicted::skip(Some("Check mode is not supported for this task."))
        }
    }
}

/// mktemp -d (as the connecting user, so `put` can write there), put the script, run it
/// (with `become`), remove the directory.
async fn run_script(
    tr: &mut AnyTransport,
    ctx: &ModuleCtx<'_>,
    p: &ScriptPlan,
    data: crate::transport::Payload<'_>,
) -> Result<Args, ModuleError> {
    // Another user (become) must be able to reach and run the script; nobody else needs to.
    let (dir_mode, file_mode) = if ctx.become_.is_some() {
        ("0711", 0o755)
    } else {
        ("0700", 0o700)
    };
    let mk = Cmd::raw("d_=$(mktemp -d \"${TMPDIR:-/tmp}/rdeploy-script.XXXXXXXXXX\") && chmod")
        .arg(dir_mode)
        .op("\"$d_\" && printf '%s\\n' \"$d_\"");
    let mut mk = mk;
    if let Some(t) = ctx.timeout {
        mk = mk.timeout(t);
    }
    let out = tr.exec(&mk).await.map_err(ModuleError::Transport)?;
    if out.status != 0 {
        return Err(failed(
            format!(
                "cannot create a temporary directory on the host: {}",
                out.stderr_lossy().trim()
            ),
            command_result(&out, true),
        ));
    }
    let tmp = out.stdout_lossy().trim_end_matches('\n').to_string();
    let path = format!("{tmp}/{}", p.file_name);
    let attrs = FileAttrs {
        mode: Some(file_mode),
        ..FileAttrs::default()
    };
    if let Err(e) = tr.put(data, &path, &attrs).await {
        let _ = tr.exec(&crate::transport::cmd::rm_rf(&tmp)).await;
        return Err(ModuleError::Transport(e));
    }
    let cmd = p.cmd(&tmp, &path);
    let clock = Clock::start();
    let mut ran = ctx.run(tr, cmd.clone()).await;
    // Written by the controller itself (the local connection), the script can be "busy" for a
    // moment: a process another thread started just then holds a copy of the descriptor it was
    // written through until its own exec. The script did not start; try again shortly.
    for _ in 0..5 {
        match &ran {
            Ok(o) if o.status == 126 && o.stderr_lossy().contains("Text file busy") => {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                ran = ctx.run(tr, cmd.clone()).await;
            }
            _ => break,
        }
    }
    // The script's own `rm` runs as the become user; make sure the directory goes either way.
    let _ = tr.exec(&crate::transport::cmd::rm_rf(&tmp)).await;
    let out = ran?;
    let mut r = command_result(&out, true);
    clock.finish(&mut r);
    if out.status != 0 {
        return Err(failed("non-zero return code", r));
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::system::testutil::*;
    use serde_json::json;
    use std::path::Path;

    fn out_str(r: &Args, k: &str) -> String {
        r.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    }

    #[tokio::test]
    async fn command_expands_only_variables_and_shell_runs_a_shell() {
        let dir = tempfile::tempdir().unwrap();
        let c = ctx(dir.path(), None, vec![("HOME".into(), "/home/x".into())]);
        let mut tr = transport();
        let a = args(json!({"_raw_params": "echo $HOME * '{{ x }}' $(id) `id`"}));
        // check runs nothing and says it would run.
        let Verdict::Drift(d) = Command
            .check(&mut HostView::of(&mut tr), &a, &c)
            .await
            .unwrap()
        else {
            panic!("expected drift");
        };
        assert!(recorded(&tr).is_empty());
        assert!(matches!(&d.changes[0], Change::Run { command } if command.contains("'$HOME'")));
        let r = Command.apply(&mut tr, &a, &c, &d).await.unwrap();
        assert_eq!(out_str(&r, "stdout"), "/home/x * {{ x }} $(id) `id`");
        assert_eq!(
            r["cmd"],
            json!(["echo", "$HOME", "*", "{{ x }}", "$(id)", "`id`"])
        );
        for k in [
            "rc",
            "stdout_lines",
            "stderr",
            "stderr_lines",
            "start",
            "end",
            "delta",
        ] {
            assert!(r.contains_key(k), "{k}");
        }
        assert!(!Command.converges(&a));

        let a = args(json!({"_raw_params": "echo $HOME; echo '{{ x }}'"}));
        let Ran::Applied(_, Ok(r)) = check_apply(&Shell, &mut tr, &a, &c).await else {
            panic!()
        };
        assert_eq!(r["stdout_lines"], json!(["/home/x", "{{ x }}"]));
        assert_eq!(r["cmd"], json!("echo $HOME; echo '{{ x }}'"));
    }

    /// What Python's `os.path.expanduser(os.path.expandvars(word))` gives, word by word, as
    /// Ansible's `command` runs it (checked with ansible-playbook 2.19 on this machine).
    #[tokio::test]
    async fn command_expands_vars_and_home_as_ansible_and_not_when_told() {
        let dir = tempfile::tempdir().unwrap();
        let env = vec![
            ("HOME".to_string(), "/home/x/".to_string()),
            ("A_B".to_string(), "v'1 $HOME".to_string()),
        ];
        let c = ctx(dir.path(), None, env);
        let mut tr = transport();
        let words = [
            "$A_B",
            "${A_B}x",
            "$NOT_SET_X/${NOT_SET_X}",
            "${}",
            "$",
            "~",
            "~/a/b",
            "~root/c",
            "~no-such-user-x/d",
            "a~/$A_B~",
            "line\n",
        ];
        let mut argv = vec!["printf".to_string(), "[%s]\\n".to_string()];
        argv.extend(words.iter().map(|w| w.to_string()));
        let root_home = std::fs::read_to_string("/etc/passwd")
            .unwrap()
            .lines()
            .find_map(|l| {
                l.strip_prefix("root:")
                    .map(|r| r.rsplit(':').nth(1).unwrap().to_string())
            })
            .unwrap();
        let a = args(json!({ "argv": argv }));
        let Ran::Applied(_, Ok(r)) = check_apply(&Command, &mut tr, &a, &c).await else {
            panic!()
        };
        let want = [
            "[v'1 $HOME]".to_string(),
            "[v'1 $HOMEx]".to_string(),
            "[$NOT_SET_X/${NOT_SET_X}]".to_string(),
            "[${}]".to_string(),
            "[$]".to_string(),
            "[/home/x]".to_string(),
            "[/home/x/a/b]".to_string(),
            format!("[{}/c]", root_home.trim_end_matches('/')),
            "[~no-such-user-x/d]".to_string(),
            "[a~/v'1 $HOME~]".to_string(),
            // A word's own newline is kept.
            "[line".to_string(),
            "]".to_string(),
        ];
        assert_eq!(r["stdout_lines"], json!(want), "{r:?}");
        let mut off = a.clone();
        off.insert("expand_argument_vars".into(), json!(false));
        let Ran::Applied(_, Ok(r)) = check_apply(&Command, &mut tr, &off, &c).await else {
            panic!()
        };
        let literal: Vec<String> = words
            .iter()
            .map(|w| format!("[{w}]"))
            .collect::<String>()
            .replace("][", "]\n[")
            .lines()
            .map(str::to_string)
            .collect();
        assert_eq!(r["stdout_lines"], json!(literal));
    }

    #[tokio::test]
    async fn command_output_is_data_not_evaluated() {
        let dir = tempfile::tempdir().unwrap();
        let c = ctx(dir.path(), None, vec![]);
        let mut tr = transport();
        let a = args(json!({"argv": ["printf", "%s\\n", "{{ x }} $(id) `id` ${HOME}"]}));
        let Ran::Applied(_, Ok(r)) = check_apply(&Command, &mut tr, &a, &c).await else {
            panic!()
        };
        let home = std::env::var("HOME").unwrap_or_default();
        assert_eq!(
            out_str(&r, "stdout"),
            format!("{{{{ x }}}} $(id) `id` {home}")
        );
        // A builtin's name runs the program, not the builtin (dash's echo would expand \n).
        let a = args(json!({"cmd": "echo 'a\\nb'"}));
        let Ran::Applied(_, Ok(r)) = check_apply(&Command, &mut tr, &a, &c).await else {
            panic!()
        };
        assert_eq!(out_str(&r, "stdout"), "a\\nb");
    }

    #[tokio::test]
    async fn non_zero_rc_fails_with_the_full_result() {
        let dir = tempfile::tempdir().unwrap();
        let c = ctx(dir.path(), None, vec![]);
        let mut tr = transport();
        let a = args(json!({"_raw_params": "echo out; echo err >&2; exit 3"}));
        let Verdict::Drift(d) = Shell
            .check(&mut HostView::of(&mut tr), &a, &c)
            .await
            .unwrap()
        else {
            panic!()
        };
        let Err(ModuleError::Failed { msg, result }) = Shell.apply(&mut tr, &a, &c, &d).await
        else {
            panic!()
        };
        assert_eq!(msg, "non-zero return code");
        assert_eq!(result["rc"], json!(3));
        assert_eq!(result["stdout"], json!("out"));
        assert_eq!(result["stderr"], json!("err"));
        assert_eq!(result["msg"], json!("non-zero return code"));
        assert!(result.contains_key("delta"));

        let a = args(json!({"argv": ["false"]}));
        let r = check_apply(&Command, &mut tr, &a, &c).await;
        assert!(
            matches!(r, Ran::Applied(_, Err(ref m)) if m.contains("\"rc\":1")),
            "{r:?}"
        );
    }

    #[tokio::test]
    async fn creates_and_removes_guard_both_modules() {
        let dir = tempfile::tempdir().unwrap();
        let c = ctx(dir.path(), None, vec![]);
        let marker = dir.path().join("made it");
        let m = marker.display().to_string();
        let glob = dir.path().join("made*").display().to_string();
        let cases = [
            (
                &Command as &dyn Module,
                args(json!({"argv": ["touch", m], "creates": glob})),
            ),
            (
                &Shell,
                args(
                    json!({"_raw_params": "touch 'made it'", "chdir": dir.path(), "creates": "made*"}),
                ),
            ),
        ];
        for (module, a) in cases {
            let _ = std::fs::remove_file(&marker);
            let mut tr = transport();
            let Ran::Applied(_, Ok(_)) = check_apply(module, &mut tr, &a, &c).await else {
                panic!("{}", module.name())
            };
            assert!(marker.exists());
            let Ran::InSync(r) = check_apply(module, &mut tr, &a, &c).await else {
                panic!()
            };
            assert_eq!(r["rc"], json!(0));
            assert_eq!(r["changed"], json!(false));
            let stdout = out_str(&r, "stdout");
            assert!(stdout.starts_with("skipped, since ") && stdout.ends_with(" exists"));
            assert_eq!(
                module.resources(&a),
                vec![Resource::Path(
                    a["creates"].as_str().unwrap_or_default().into()
                )]
            );
        }
        // removes: runs only while the path exists.
        let mut tr = transport();
        let a = args(json!({"argv": ["rm", m.clone()], "removes": m}));
        assert!(matches!(
            check_apply(&Command, &mut tr, &a, &c).await,
            Ran::Applied(_, Ok(_))
        ));
        let Ran::InSync(r) = check_apply(&Command, &mut tr, &a, &c).await else {
            panic!()
        };
        assert!(out_str(&r, "stdout").ends_with("does not exist"));
        // Both guards: one round trip (a batch).
        let mut tr = transport();
        let a = args(json!({"argv": ["true"], "creates": "/nonexistent/x", "removes": "/"}));
        assert!(
            check_only(&Command, &mut tr, &a, &c)
                .await
                .unwrap()
                .is_none()
        );
        assert_eq!(recorded(&tr).len(), 1);
        // A pattern is data: `$(...)` in it is never run.
        let a = args(json!({"argv": ["true"], "creates": "/tmp/$(touch /tmp/rdeploy-pwned)"}));
        check_only(&Command, &mut tr, &a, &c).await.unwrap();
        assert!(!Path::new("/tmp/rdeploy-pwned").exists());
    }

    #[tokio::test]
    async fn stdin_chdir_and_executable() {
        let dir = tempfile::tempdir().unwrap();
        let c = ctx(dir.path(), None, vec![]);
        let mut tr = transport();
        let a = args(json!({"argv": ["cat"], "stdin": "hello"}));
        let Ran::Applied(_, Ok(r)) = check_apply(&Command, &mut tr, &a, &c).await else {
            panic!()
        };
        assert_eq!(r["stdout"], json!("hello"));
        let a = args(json!({"argv": ["od", "-c"], "stdin": "x", "stdin_add_newline": false}));
        let Ran::Applied(_, Ok(r)) = check_apply(&Command, &mut tr, &a, &c).await else {
            panic!()
        };
        assert!(!out_str(&r, "stdout").contains("\\n"), "{r:?}");
        let a = args(json!({"_raw_params": "pwd", "chdir": dir.path()}));
        let Ran::Applied(_, Ok(r)) = check_apply(&Command, &mut tr, &a, &c).await else {
            panic!()
        };
        let want = std::fs::canonicalize(dir.path()).unwrap();
        assert_eq!(out_str(&r, "stdout"), want.display().to_string());
        let a =
            args(json!({"_raw_params": "echo ${BASH_VERSION:+bash}", "executable": "/bin/bash"}));
        let Ran::Applied(_, Ok(r)) = check_apply(&Shell, &mut tr, &a, &c).await else {
            panic!()
        };
        assert_eq!(r["stdout"], json!("bash"));
        let a = args(json!({"_raw_params": "echo a; echo b | tr b c"}));
        let Ran::Applied(ch, Ok(r)) = check_apply(&Raw, &mut tr, &a, &c).await else {
            panic!()
        };
        assert_eq!(r["stdout_lines"], json!(["a", "c"]));
        assert_eq!(ch.len(), 1);
        // strip_empty_ends: no
        let a = args(json!({"_raw_params": "printf 'x\\n\\n'", "strip_empty_ends": false}));
        let Ran::Applied(_, Ok(r)) = check_apply(&Shell, &mut tr, &a, &c).await else {
            panic!()
        };
        assert_eq!(r["stdout"], json!("x\n\n"));
    }

    #[tokio::test]
    async fn bad_command_lines_are_argument_errors() {
        let dir = tempfile::tempdir().unwrap();
        let c = ctx(dir.path(), None, vec![]);
        let mut tr = transport();
        for a in [
            json!({"_raw_params": "echo 'x"}),
            json!({}),
            json!({"argv": []}),
        ] {
            assert!(matches!(
                Command
                    .check(&mut HostView::of(&mut tr), &args(a), &c)
                    .await,
                Err(ModuleError::Args(_))
            ));
        }
    }

    /// `shell` reads `stdin_add_newline` and `strip_empty_ends` as `command` does (Ansible's
    /// shell is its command module with a shell); `raw` takes only its free-form text and
    /// `executable`, and an argument given at run time that no module field reads is refused.
    #[tokio::test]
    async fn each_module_reads_exactly_its_own_arguments() {
        let dir = tempfile::tempdir().unwrap();
        let c = ctx(dir.path(), None, vec![]);
        let mut tr = transport();
        let a = args(json!({"_raw_params": "od -c", "stdin": "x", "stdin_add_newline": "no"}));
        let Ran::Applied(_, Ok(r)) = check_apply(&Shell, &mut tr, &a, &c).await else {
            panic!()
        };
        assert!(!out_str(&r, "stdout").contains("\\n"), "{r:?}");
        let a = args(json!({"_raw_params": "od -c", "stdin": "x"}));
        let Ran::Applied(_, Ok(r)) = check_apply(&Shell, &mut tr, &a, &c).await else {
            panic!()
        };
        assert!(out_str(&r, "stdout").contains("\\n"), "{r:?}");
        for (module, a, word) in [
            (
                &Raw as &dyn Module,
                json!({"_raw_params": "true", "cmd": "true"}),
                "cmd",
            ),
            (&Raw, json!({"_raw_params": "true", "chdir": "/"}), "chdir"),
            (
                &Shell,
                json!({"_raw_params": "true", "argv": ["true"]}),
                "argv",
            ),
            (
                &Command,
                json!({"argv": ["true"], "executable": "/bin/sh"}),
                "executable",
            ),
        ] {
            let r = module.check(&mut HostView::of(&mut tr), &args(a), &c).await;
            let want = format!(
                "argument '{word}' of module '{}' is not supported by rdeploy",
                module.name()
            );
            assert!(
                matches!(&r, Err(ModuleError::Args(m)) if *m == want),
                "{}",
                module.name()
            );
        }
        // `raw` has no guards, so nothing to back up; the others back up what they guard on.
        assert!(
            Raw.resources(&args(json!({"_raw_params": "true"})))
                .is_empty()
        );
        assert_eq!(
            Script.resources(&args(json!({"_raw_params": "s.sh", "removes": "/x"}))),
            vec![Resource::Path("/x".into())]
        );
    }

    #[tokio::test]
    async fn script_is_pushed_run_with_args_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("hello.sh");
        std::fs::write(&src, "#!/bin/sh\necho \"$0|$1|$2\"; pwd; exit ${3:-0}\n").unwrap();
        let work = dir.path().join("work");
        std::fs::create_dir(&work).unwrap();
        let c = ctx(dir.path(), Some(&src), vec![]);
        let mut tr = transport();
        let a = args(json!({"_raw_params": "hello.sh 'a b' $HOME", "chdir": work}));
        let Ran::Applied(ch, Ok(r)) = check_apply(&Script, &mut tr, &a, &c).await else {
            panic!()
        };
        assert!(
            matches!(&ch[0], Change::Run { command } if command == "'$TMPDIR/hello.sh' 'a b' '$HOME'"),
            "{ch:?}"
        );
        let lines = r["stdout_lines"].as_array().cloned().unwrap_or_default();
        let first = lines[0].as_str().unwrap_or_default();
        let tmp = first.split('|').next().unwrap_or_default().to_string();
        assert!(tmp.contains("rdeploy-script."), "{first}");
        assert!(first.ends_with("|a b|$HOME"), "{first}");
        let want = std::fs::canonicalize(&work).unwrap();
        assert_eq!(lines[1], json!(want.display().to_string()));
        assert!(!Path::new(&tmp).exists(), "temp script left behind");
        // Failure keeps rc, and still cleans up.
        let a = args(json!({"_raw_params": "hello.sh x y 4"}));
        let r = check_apply(&Script, &mut tr, &a, &c).await;
        assert!(
            matches!(r, Ran::Applied(_, Err(ref m)) if m.contains("\"rc\":4")),
            "{r:?}"
        );
        // creates
        let a = args(json!({"_raw_params": "hello.sh", "creates": work}));
        assert!(matches!(
            check_apply(&Script, &mut tr, &a, &c).await,
            Ran::InSync(_)
        ));
        // executable
        let a = args(json!({"_raw_params": "hello.sh", "executable": "/bin/sh"}));
        assert!(matches!(
            check_apply(&Script, &mut tr, &a, &c).await,
            Ran::Applied(_, Ok(_))
        ));
    }
}
