//! Helpers shared by the system modules: free-form text, shlex splitting, `creates`/`removes`
//! guards, Ansible-style command results and timestamps, typed argument access.
//!
//! Owns nothing a module could not own itself; it exists so that the command-like modules agree
//! on result keys and guard semantics. It must not format shell lines: the few host-side scripts
//! here are `'static` syntax handed to [`Cmd::raw`]/[`Cmd::op`], every value goes through
//! [`Cmd::arg`].

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::modules::runtime::{Args, ArgsExt, HostView, ModuleCtx, ModuleError};
use crate::transport::{Cmd, Output};

/// The `Args` key that carries a task's free-form text (`command: ls -l`, `shell: |`): the
/// executor stores [`crate::playbook::model::Action::free_form`] under this name (Ansible's own
/// name for it). `cmd` is accepted as well.
pub const FREE_FORM: &str = "_raw_params";

/// The free-form text of a command-like task: its `cmd` argument, else [`FREE_FORM`].
pub fn free_text(cmd: Option<String>, args: &Args) -> Option<String> {
    cmd.or_else(|| args.str_arg(FREE_FORM))
        .filter(|s| !s.trim().is_empty())
}

/// Splits `text` into words the way Python's `shlex.split` does in POSIX mode (what Ansible's
/// `command` uses): whitespace separates words, `'...'` is literal, `"..."` lets `\` escape only
/// `"` and `\`, and a `\` outside quotes escapes any character. No expansion of any kind.
pub fn shlex_split(text: &str) -> Result<Vec<String>, ModuleError> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = text.chars().peekable();
    let unclosed = || ModuleError::Args("no closing quotation in the command line".into());
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' | '\r' | '\n' => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(x) => cur.push(x),
                        None => return Err(unclosed()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.peek() {
                            Some(&n) if n == '"' || n == '\\' => {
                                cur.push(n);
                                chars.next();
                            }
                            _ => cur.push('\\'),
                        },
                        Some(x) => cur.push(x),
                        None => return Err(unclosed()),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some(x) => cur.push(x),
                    None => {
                        return Err(ModuleError::Args(
                            "no escaped character after '\\' in the command line".into(),
                        ));
                    }
                }
            }
            other => {
                in_word = true;
                cur.push(other);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

/// A non-negative integer argument (a YAML number or a string of digits).
pub fn int_arg(args: &Args, name: &str, default: u64) -> Result<u64, ModuleError> {
    let bad = |v: &Value| {
        ModuleError::Args(format!(
            "argument '{name}' expects a non-negative integer, found {v}"
        ))
    };
    match args.get(name) {
        None | Some(Value::Null) => Ok(default),
        Some(v @ Value::Number(n)) => n.as_u64().ok_or_else(|| bad(v)),
        Some(v @ Value::String(s)) => s.trim().parse().map_err(|_| bad(v)),
        Some(v) => Err(bad(v)),
    }
}

/// A string argument restricted to `choices`, with a default.
pub fn choice_arg(
    args: &Args,
    name: &str,
    choices: &[&'static str],
    default: &'static str,
) -> Result<&'static str, ModuleError> {
    match args.str_arg(name) {
        None => Ok(default),
        Some(v) => choices.iter().copied().find(|c| *c == v).ok_or_else(|| {
            ModuleError::Args(format!(
                "argument '{name}' must be one of {}, found '{v}'",
                choices.join(", ")
            ))
        }),
    }
}

/// Refuses a name that a tool would read as an option (`-rf`), or that is empty.
pub fn plain_name(what: &str, name: &str) -> Result<(), ModuleError> {
    if name.is_empty() || name.starts_with('-') || name.contains(['\n', '\0']) {
        return Err(ModuleError::Args(format!("invalid {what} name '{name}'")));
    }
    Ok(())
}

/// Wall-clock times of a command, recorded as Ansible's `start`/`end`/`delta`.
pub struct Clock {
    start: SystemTime,
    started: Instant,
}

impl Clock {
    /// Starts timing now.
    pub fn start() -> Clock {
        Clock {
            start: SystemTime::now(),
            started: Instant::now(),
        }
    }

    /// Seconds since [`Clock::start`].
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Inserts `start`, `end` and `delta` into `result`.
    pub fn finish(&self, result: &mut Args) {
        let delta = self.started.elapsed();
        result.insert("start".into(), Value::from(fmt_time(self.start)));
        result.insert("end".into(), Value::from(fmt_time(self.start + delta)));
        result.insert("delta".into(), Value::from(fmt_delta(delta)));
    }
}

/// `YYYY-MM-DD HH:MM:SS.ffffff`, in UTC (Ansible prints the host's local time).
pub fn fmt_time(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let days = i64::try_from(secs / 86_400).unwrap_or_default();
    let sod = secs % 86_400;
    let (y, m, day) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{day:02} {:02}:{:02}:{:02}.{:06}",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60,
        d.subsec_micros()
    )
}

/// `H:MM:SS.ffffff`, like Python's `timedelta` string.
pub fn fmt_delta(d: Duration) -> String {
    let s = d.as_secs();
    format!(
        "{}:{:02}:{:02}.{:06}",
        s / 3600,
        s % 3600 / 60,
        s % 60,
        d.subsec_micros()
    )
}

/// (year, month, day) → days since 1970-01-01, proleptic Gregorian (H. Hinnant's algorithm):
/// the inverse of [`civil_from_days`].
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
/// Also the run journal's dates.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (
        year,
        u32::try_from(month).unwrap_or(1),
        u32::try_from(day).unwrap_or(1),
    )
}

/// `rc`, `stdout`, `stderr`, `stdout_lines`, `stderr_lines` of `out`; with `strip`, trailing
/// `\r`/`\n` are removed from both streams (Ansible's `strip_empty_ends`). When the transport
/// dropped bytes from the middle of a stream, `stdout_truncated`/`stderr_truncated` say how many.
pub fn command_result(out: &Output, strip: bool) -> Args {
    let mut stdout = out.stdout_lossy().into_owned();
    let mut stderr = out.stderr_lossy().into_owned();
    if strip {
        stdout.truncate(stdout.trim_end_matches(['\r', '\n']).len());
        stderr.truncate(stderr.trim_end_matches(['\r', '\n']).len());
    }
    let mut r = Args::new();
    r.insert("rc".into(), Value::from(out.status));
    r.insert("stdout_lines".into(), lines(&stdout));
    r.insert("stderr_lines".into(), lines(&stderr));
    r.insert("stdout".into(), Value::from(stdout));
    r.insert("stderr".into(), Value::from(stderr));
    if out.truncated.stdout > 0 {
        r.insert("stdout_truncated".into(), Value::from(out.truncated.stdout));
    }
    if out.truncated.stderr > 0 {
        r.insert("stderr_truncated".into(), Value::from(out.truncated.stderr));
    }
    r
}

fn lines(s: &str) -> Value {
    Value::from(s.lines().map(str::to_string).collect::<Vec<_>>())
}

/// Exits 0 when the glob `$1` matches something (even a dangling link): the pattern is expanded
/// by the shell's pathname expansion only (`IFS=` turns off word splitting; parameter expansion
/// results are never re-parsed, so `$(...)` in it stays text). No match leaves the pattern as
/// is, which then exists only if a file has that literal name — Python's `glob.glob` semantics.
const GLOB_EXISTS: &str = crate::host::GLOB_EXISTS;

/// `test -e` with glob patterns (Ansible's `creates`/`removes` use `glob.glob`).
pub fn glob_exists(pattern: &str) -> Cmd {
    Cmd::raw("set --").arg(pattern).op(";").op(GLOB_EXISTS)
}

/// The `creates`/`removes` guards of a command-like task and the `chdir` their relative
/// patterns are looked up in.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Guards {
    /// Skip the command when this glob matches.
    pub creates: Option<String>,
    /// Run the command only when this glob matches.
    pub removes: Option<String>,
    /// The directory the command runs in.
    pub chdir: Option<String>,
}

impl Guards {
    /// Whether `creates` or `removes` is given (then `check` predicts whether it runs).
    pub fn any(&self) -> bool {
        self.creates.is_some() || self.removes.is_some()
    }

    /// The guarded paths, which the executor backs up before the command runs.
    pub fn resources(&self) -> Vec<crate::modules::runtime::Resource> {
        self.creates
            .iter()
            .chain(self.removes.iter())
            .cloned()
            .map(crate::modules::runtime::Resource::Path)
            .collect()
    }
}

/// Checks `creates`/`removes` on the host in one round trip (none without them). Returns the
/// skip result (`rc 0`, `stdout "skipped, since X exists"`, `changed false`, `msg`) when the
/// command must not run. Relative patterns are looked up in `chdir` when given, as Ansible does.
pub async fn guard(
    tr: &mut HostView<'_>,
    g: &Guards,
    ctx: &ModuleCtx<'_>,
    shown: &Value,
) -> Result<Option<Args>, ModuleError> {
    let Guards {
        creates,
        removes,
        chdir,
    } = g;
    let mut tests = Vec::new();
    for p in creates.iter().chain(removes.iter()) {
        let mut c = glob_exists(p);
        if let Some(d) = chdir {
            c = c.chdir(d.clone());
        }
        tests.push(c);
    }
    let found: Vec<bool> = match tests.len() {
        0 => return Ok(None),
        1 => {
            let c = tests.remove(0);
            vec![ctx.query(tr, c).await?.status == 0]
        }
        _ => {
            let batch = Cmd::batch(&tests).map_err(|e| ModuleError::Args(e.to_string()))?;
            let parts = ctx
                .query_batch(tr, &batch)
                .await?
                .map_err(|e| ModuleError::Failed {
                    msg: e.to_string(),
                    result: Args::new(),
                })?;
            parts.iter().map(|o| o.status == 0).collect()
        }
    };
    let mut i = 0;
    if let Some(c) = creates {
        if found.get(i).copied().unwrap_or(false) {
            return Ok(Some(skipped(
                shown,
                format!("skipped, since {c} exists"),
                format!("Did not run command since '{c}' exists"),
            )));
        }
        i += 1;
    }
    if let Some(r) = removes
        && !found.get(i).copied().unwrap_or(true)
    {
        return Ok(Some(skipped(
            shown,
            format!("skipped, since {r} does not exist"),
            format!("Did not run command since '{r}' does not exist"),
        )));
    }
    Ok(None)
}

fn skipped(shown: &Value, stdout: String, msg: String) -> Args {
    let mut r = Args::new();
    r.insert("cmd".into(), shown.clone());
    r.insert("rc".into(), Value::from(0));
    r.insert("stdout_lines".into(), lines(&stdout));
    r.insert("stdout".into(), Value::from(stdout));
    r.insert("stderr".into(), Value::from(""));
    r.insert("stderr_lines".into(), Value::Array(Vec::new()));
    r.insert("changed".into(), Value::from(false));
    r.insert("msg".into(), Value::from(msg));
    r
}

/// A result map from `(key, value)` pairs.
pub fn result<const N: usize>(pairs: [(&str, Value); N]) -> Args {
    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

/// A [`ModuleError::Failed`] with `msg` also in the result.
pub fn failed(msg: impl Into<String>, mut result: Args) -> ModuleError {
    let msg = msg.into();
    result.insert("msg".into(), Value::from(msg.clone()));
    ModuleError::Failed { msg, result }
}

/// A command that could not be built (NUL byte, bad variable name): an argument problem.
pub fn cmd_error(e: crate::transport::CmdError) -> ModuleError {
    ModuleError::Args(e.to_string())
}

/// Python's `str()` of a value, as Ansible turns a non-string given to a `str` argument into
/// text: a string stays as it is, `True`/`False`/`None`, and lists and mappings in Python's
/// `repr` (`{'a': 1, 'b': ['x']}`).
pub fn python_str(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => python_repr(other),
    }
}

/// Python's `repr()` of a JSON value (mappings keep their order).
fn python_repr(v: &Value) -> String {
    match v {
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => repr_str(s),
        Value::Array(items) => {
            let inner: Vec<String> = items.iter().map(python_repr).collect();
            format!("[{}]", inner.join(", "))
        }
        Value::Object(m) => {
            let inner: Vec<String> = m
                .iter()
                .map(|(k, v)| format!("{}: {}", repr_str(k), python_repr(v)))
                .collect();
            format!("{{{}}}", inner.join(", "))
        }
    }
}

/// Python's `repr()` of a string: single quotes unless the text has `'` and no `"`.
fn repr_str(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// Finds `tool` on the host as Ansible's `get_bin_path(tool, required=True)` does: `PATH`, then
/// `/sbin`, `/usr/sbin` and `/usr/local/sbin`; prints its path, or Ansible's message and exits
/// 127.
const BIN_PATH: &str = crate::host::BIN_PATH;

/// The absolute path of `tool` on the host (Ansible's `get_bin_path(tool, required=True)`),
/// or Ansible's failure `Failed to find required executable "TOOL" in paths: ...`.
pub async fn bin_path(
    tr: &mut HostView<'_>,
    ctx: &ModuleCtx<'_>,
    tool: &'static str,
) -> Result<String, ModuleError> {
    let out = ctx
        .query(tr, Cmd::raw("set --").arg(tool).op(";").op(BIN_PATH))
        .await?;
    let path = out.stdout_lossy().trim().to_string();
    if out.status != 0 || !path.starts_with('/') {
        let err = out.stderr_lossy().trim().to_string();
        let msg = if err.is_empty() {
            format!("Failed to find required executable \"{tool}\"")
        } else {
            err
        };
        return Err(failed(msg, Args::new()));
    }
    Ok(path)
}

/// `impl Module for $ty`: a read-only facts module named `$name` that sets the facts `$facts`.
/// Its `check` is the async fn `$check(tr, args, ctx)`, always `InSync`; `apply` is never
/// called and nothing on the host changes, so it backs up nothing.
#[macro_export]
macro_rules! read_only_facts_module {
    ($ty:ty, $name:literal, $facts:expr, $check:path) => {
        impl $crate::modules::runtime::Module for $ty {
            fn name(&self) -> &'static str {
                $name
            }

            fn facts(&self) -> &'static [&'static str] {
                $facts
            }

            fn check<'a>(
                &'a self,
                tr: &'a mut $crate::modules::runtime::HostView<'_>,
                args: &'a $crate::modules::runtime::Args,
                ctx: &'a $crate::modules::runtime::ModuleCtx<'a>,
            ) -> $crate::modules::runtime::BoxFut<
                'a,
                Result<$crate::modules::runtime::Verdict, $crate::modules::runtime::ModuleError>,
            > {
                Box::pin($check(tr, args, ctx))
            }

            /// Never called: `check` is always in sync.
            fn apply<'a>(
                &'a self,
                _tr: &'a mut $crate::transport::AnyTransport,
                _args: &'a $crate::modules::runtime::Args,
                _ctx: &'a $crate::modules::runtime::ModuleCtx<'a>,
                _drift: &'a $crate::modules::runtime::Drift,
            ) -> $crate::modules::runtime::BoxFut<
                'a,
                Result<$crate::modules::runtime::Args, $crate::modules::runtime::ModuleError>,
            > {
                Box::pin(async { Ok($crate::modules::runtime::Args::new()) })
            }

            /// Nothing on the host changes.
            fn resources(
                &self,
                _args: &$crate::modules::runtime::Args,
            ) -> Vec<$crate::modules::runtime::Resource> {
                Vec::new()
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_str_matches_ansible_for_a_mapping_given_as_text() {
        let v = serde_json::json!({"a": 1, "b": ["x", "it's"], "c": true, "d": null, "e": 1.5});
        assert_eq!(
            python_str(&v),
            r#"{'a': 1, 'b': ['x', "it's"], 'c': True, 'd': None, 'e': 1.5}"#
        );
        assert_eq!(python_str(&serde_json::json!("plain")), "plain");
        assert_eq!(python_str(&serde_json::json!([1, "a\nb"])), r"[1, 'a\nb']");
    }

    #[test]
    fn shlex_like_python() {
        let t: &[(&str, &[&str])] = &[
            ("ls -l  /tmp", &["ls", "-l", "/tmp"]),
            ("echo 'a b' \"c d\"", &["echo", "a b", "c d"]),
            (
                r#"echo "a\"b" 'x\y' a\ b"#,
                &["echo", "a\"b", "x\\y", "a b"],
            ),
            (r#"echo "\$HOME" \$HOME"#, &["echo", "\\$HOME", "$HOME"]),
            ("echo ''", &["echo", ""]),
            ("a'b'c", &["abc"]),
            ("  ", &[]),
        ];
        for (input, want) in t {
            assert_eq!(shlex_split(input).unwrap(), *want, "{input}");
        }
        assert!(shlex_split("echo 'oops").is_err());
        assert!(shlex_split("echo \"oops").is_err());
        assert!(shlex_split("echo \\").is_err());
    }

    #[test]
    fn times_format_like_python() {
        let t = UNIX_EPOCH + Duration::from_micros(1_700_000_000_123_456);
        assert_eq!(fmt_time(t), "2023-11-14 22:13:20.123456");
        assert_eq!(fmt_time(UNIX_EPOCH), "1970-01-01 00:00:00.000000");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(&fmt_time(leap)[..10], "2000-02-29");
        assert_eq!(
            fmt_delta(Duration::from_micros(3_723_000_007)),
            "1:02:03.000007"
        );
    }

    #[test]
    fn int_and_choice_args() {
        let a: Args = serde_json::json!({"n": 5, "s": "7", "bad": "x", "st": "up"})
            .as_object()
            .cloned()
            .unwrap_or_default();
        assert_eq!(int_arg(&a, "n", 0).unwrap(), 5);
        assert_eq!(int_arg(&a, "s", 0).unwrap(), 7);
        assert_eq!(int_arg(&a, "missing", 9).unwrap(), 9);
        assert!(int_arg(&a, "bad", 0).is_err());
        assert!(choice_arg(&a, "st", &["a", "b"], "a").is_err());
        assert_eq!(choice_arg(&a, "x", &["a", "b"], "b").unwrap(), "b");
        assert!(plain_name("package", "-rf").is_err());
    }

    #[tokio::test]
    async fn a_missing_tool_fails_with_ansibles_message_and_sbin_is_searched() {
        use crate::modules::system::testutil::{ctx, transport};
        let dir = tempfile::tempdir().unwrap();
        let env = |p: &str| vec![("PATH".to_string(), p.to_string())];
        let mut tr = transport();
        let c = ctx(dir.path(), None, env("/nonexistent"));
        let e = bin_path(&mut HostView::of(&mut tr), &c, "rdeploy-no-such-tool")
            .await
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "Failed to find required executable \"rdeploy-no-such-tool\" in paths: /nonexistent:/sbin:/usr/sbin:/usr/local/sbin"
        );
        let c = ctx(dir.path(), None, env("/usr/sbin:/bin"));
        assert_eq!(
            bin_path(&mut HostView::of(&mut tr), &c, "sh")
                .await
                .unwrap(),
            "/bin/sh"
        );
    }
}
