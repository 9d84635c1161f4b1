//! `debconf`: pre-seeds one answer in a Debian package's debconf database
//! (`debconf-set-selections`), or only reports its current answers, as Ansible's `debconf`
//! module does.
//!
//! Owns reading the package's answers (`debconf-show`, and `debconf-get-selections` for a
//! password, which `debconf-show` does not print), comparing them as the module does
//! ([`differs`], pure, table-tested) and the one write, whose value travels on stdin (a
//! password never reaches a command line). It must not format shell lines.

use serde_json::Value;

use super::common::{bin_path, failed, python_str};
use crate::modules::runtime::{
    Args, BoxFut, Change, Drift, HostView, Module, ModuleCtx, ModuleError, Resource, Verdict,
};
use crate::transport::{AnyTransport, Cmd};

/// The debconf database's files (the answers; the passwords).
const DB_FILES: [&str; 2] = [
    "/var/cache/debconf/config.dat",
    "/var/cache/debconf/passwords.dat",
];

/// `debconf`.
pub struct Debconf;

crate::module_args! {
    /// Sets a package's debconf answer (`question`, `vtype`, `value`, all three together) with
    /// `debconf-set-selections`, when `debconf-show` shows another (a password is read with
    /// `debconf-get-selections`, from debconf-utils); without `question`, returns the
    /// package's current answers. It does not reconfigure the package. Unlike Ansible, a
    /// password's value is masked in the diff (Ansible shows it unless the task has
    /// `no_log`).
    #[module(
        name = "debconf",
        backup = "Backs up the debconf database (/var/cache/debconf/config.dat and passwords.dat); rollback puts those files back.",
        returns = &[("current", "the answer set, or every answer when only reading"), ("previous", "the answer before"), ("msg", "what debconf-set-selections printed")],
        examples = "- debconf:\n    name: tzdata\n    question: tzdata/Areas\n    vtype: select\n    value: Europe"
    )]
    pub struct DebconfArgs {
        /// The package.
        #[arg(required, aliases = &["pkg"])]
        name: String,
        /// The debconf question (`tzdata/Areas`).
        #[arg(aliases = &["selection", "setting"])]
        question: Option<String>,
        /// The value's type.
        #[arg(choices = &["boolean", "error", "multiselect", "note", "password", "seen", "select", "string", "text", "title"])]
        vtype: Option<String>,
        /// The answer (a list for `multiselect`).
        #[arg(aliases = &["answer"])]
        value: Value,
        /// Do not mark the question as seen (`debconf-set-selections -u`).
        #[arg(default = "no")]
        unseen: bool,
    }
}

/// `debconf-show`'s output as question → answer (the `*` of a seen question dropped).
pub fn parse_show(out: &str) -> Vec<(String, String)> {
    out.lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| {
            (
                k.trim_matches(|c: char| c == '*' || c.is_whitespace())
                    .to_string(),
                v.trim().to_string(),
            )
        })
        .collect()
}

/// The password answer of `question` in `debconf-get-selections`' output, as the module
/// finds it: the first line of the package (empty when it has no value field).
pub fn password_of(out: &str, pkg: &str, question: &str, vtype: &str) -> String {
    for line in out.split('\n') {
        if !line.starts_with(pkg) {
            continue;
        }
        let f: Vec<&str> = line.split('\t').collect();
        if f.len() <= 3 {
            return String::new();
        }
        if f[1] == question && f[2] == vtype {
            return f[3].to_string();
        }
    }
    String::new()
}

/// The value as the module compares it: a boolean's text lowercased (Python's `True` is
/// `true`), a `multiselect` list sorted; `Err` for a value that is neither text nor such
/// (the module's `' '.join` fails on it).
fn wanted(vtype: &str, value: &Value) -> Result<Wanted, String> {
    Ok(match (vtype, value) {
        ("boolean", v) => Wanted::Text(python_str(v).to_lowercase()),
        ("multiselect", Value::Array(items)) => {
            let mut words = items
                .iter()
                .map(|i| match i {
                    Value::String(s) => Ok(s.clone()),
                    other => Err(format!(
                        "Invalid value provided for 'multiselect': {}",
                        python_str(other)
                    )),
                })
                .collect::<Result<Vec<String>, String>>()?;
            words.sort();
            Wanted::List(words)
        }
        (_, Value::String(s)) => Wanted::Text(s.clone()),
        (_, other) => {
            return Err(format!(
                "sequence item 3: expected str instance, {} found",
                match other {
                    Value::Bool(_) => "bool",
                    Value::Number(n) if n.is_f64() => "float",
                    Value::Number(_) => "int",
                    Value::Array(_) => "list",
                    Value::Object(_) => "dict",
                    _ => "NoneType",
                }
            ));
        }
    })
}

/// A wanted answer.
#[derive(Clone, Debug, PartialEq)]
enum Wanted {
    Text(String),
    List(Vec<String>),
}

impl Wanted {
    /// As `debconf-set-selections` takes it.
    fn text(&self) -> String {
        match self {
            Wanted::Text(t) => t.clone(),
            Wanted::List(l) => l.join(", "),
        }
    }
}

/// Whether `existing` (`None`: the question is not there) differs from `want`, as the module
/// compares them.
fn differs(vtype: &str, existing: Option<&str>, want: &Wanted) -> bool {
    let Some(existing) = existing else {
        return true;
    };
    match want {
        Wanted::List(l) => {
            let mut have: Vec<String> = existing.split(',').map(|i| i.trim().to_string()).collect();
            have.sort();
            have != *l
        }
        Wanted::Text(t) if vtype == "boolean" => existing.to_lowercase() != *t,
        Wanted::Text(t) => existing != t,
    }
}

/// What `apply` writes: the line for `debconf-set-selections`, and the answers for the result.
struct Plan {
    /// Or why the module's write fails.
    line: Result<String, String>,
    current: Args,
    previous: Args,
}

fn mask(vtype: &str, v: &str) -> String {
    if vtype == "password" {
        "********".into()
    } else {
        v.to_string()
    }
}

async fn check_debconf(
    tr: &mut HostView<'_>,
    args: &Args,
    ctx: &ModuleCtx<'_>,
) -> Result<Verdict, ModuleError> {
    let a = DebconfArgs::parse(args)?;
    let show = bin_path(tr, ctx, "debconf-show").await?;
    let out = ctx.query(tr, Cmd::argv([show]).arg(&a.name)).await?;
    if out.status != 0 {
        return Err(failed(out.stderr_lossy().to_string(), Args::new()));
    }
    let prev = parse_show(&out.stdout_lossy());
    let as_args = |pairs: &[(String, String)]| -> Args {
        pairs
            .iter()
            .map(|(k, v)| (k.clone(), Value::from(v.clone())))
            .collect()
    };
    let (question, vtype) = match (&a.question, &a.vtype, a.value.is_null()) {
        (None, None, true) => {
            let mut r = Args::new();
            r.insert("msg".into(), Value::from(""));
            r.insert("current".into(), Value::Object(as_args(&prev)));
            return Ok(Verdict::InSync { result: r });
        }
        (Some(q), Some(t), false) => (q.clone(), t.clone()),
        _ => {
            return Err(ModuleError::Args(
                "parameters are required together: question, vtype, value".into(),
            ));
        }
    };
    // A value that is neither text nor a `multiselect` list never equals an answer: the
    // module reports a change, and only its write fails (`--check` writes nothing: changed).
    let want = match wanted(&vtype, &a.value) {
        Err(e) if a.value.is_array() => return Err(failed(e, Args::new())),
        w => w,
    };
    let text = want
        .as_ref()
        .map_or_else(|_| python_str(&a.value), Wanted::text);
    let shown = prev
        .iter()
        .find(|(k, _)| *k == question)
        .map(|(_, v)| v.clone());
    let existing = match (&shown, vtype.as_str()) {
        (Some(_), "password") => {
            let get = bin_path(tr, ctx, "debconf-get-selections").await?;
            let out = ctx.query(tr, Cmd::argv([get])).await?;
            if out.status != 0 {
                return Err(failed(
                    format!(
                        "Failed to get the value '{question}' from '{}': {}",
                        a.name,
                        out.stderr_lossy()
                    ),
                    Args::new(),
                ));
            }
            Some(password_of(&out.stdout_lossy(), &a.name, &question, &vtype))
        }
        (s, _) => s.clone(),
    };
    if want
        .as_ref()
        .is_ok_and(|w| !differs(&vtype, existing.as_deref(), w))
    {
        let mut r = Args::new();
        r.insert("msg".into(), Value::from(""));
        r.insert("current".into(), Value::Object(as_args(&prev)));
        return Ok(Verdict::InSync { result: r });
    }
    let before = shown.clone().unwrap_or_default();
    let mut previous = Args::new();
    previous.insert(question.clone(), Value::from(before.clone()));
    let mut current = Args::new();
    current.insert(
        question.clone(),
        match &a.value {
            Value::Array(_) => a.value.clone(),
            _ => Value::from(text.clone()),
        },
    );
    let changes = vec![Change::Attr {
        subject: format!("debconf {}", a.name),
        what: question.clone(),
        before: mask(&vtype, &before),
        after: mask(&vtype, &text),
    }];
    // As the module's run_command(data=...) sends it: one line.
    let line = want.map(|w| format!("{} {question} {vtype} {}\n", a.name, w.text()));
    Ok(Verdict::Drift(Drift::new(
        changes,
        Plan {
            line,
            current,
            previous,
        },
    )))
}

async fn apply_debconf(
    tr: &mut AnyTransport,
    args: &Args,
    ctx: &ModuleCtx<'_>,
    drift: &Drift,
) -> Result<Args, ModuleError> {
    let a = DebconfArgs::parse(args)?;
    let p = drift
        .plan::<Plan>()
        .ok_or_else(|| ModuleError::Args("debconf: apply without a plan from check".into()))?;
    let mut set = Cmd::raw("debconf-set-selections");
    if a.unseen {
        set = set.arg("-u");
    }
    let line = p.line.clone().map_err(|e| failed(e, Args::new()))?;
    let out = ctx.run(tr, set.stdin(line.into_bytes())).await?;
    if out.status != 0 {
        return Err(failed(out.stderr_lossy().to_string(), Args::new()));
    }
    let mut r = Args::new();
    r.insert("msg".into(), Value::from(out.stdout_lossy().to_string()));
    r.insert("current".into(), Value::Object(p.current.clone()));
    r.insert("previous".into(), Value::Object(p.previous.clone()));
    Ok(r)
}

impl Module for Debconf {
    fn name(&self) -> &'static str {
        "debconf"
    }

    fn check<'a>(
        &'a self,
        tr: &'a mut HostView<'_>,
        args: &'a Args,
        ctx: &'a ModuleCtx<'a>,
    ) -> BoxFut<'a, Result<Verdict, ModuleError>> {
        Box::pin(check_debconf(tr, args, ctx))
    }

    fn apply<'a>(
        &'a self,
        tr: &'a mut AnyTransport,
        args: &'a Args,
        ctx: &'a ModuleCtx<'a>,
        drift: &'a Drift,
    ) -> BoxFut<'a, Result<Args, ModuleError>> {
        Box::pin(apply_debconf(tr, args, ctx, drift))
    }

    /// The debconf database, when an answer may be written.
    fn resources(&self, args: &Args) -> Vec<Resource> {
        if args.get("question").is_some_and(|q| !q.is_null()) {
            DB_FILES
                .iter()
                .map(|p| Resource::Path((*p).into()))
                .collect()
        } else {
            Vec::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn answers_are_compared_as_the_module_compares_them() {
        let shown = parse_show(
            "* tzdata/Areas: Europe\n  locales/locales_to_be_generated: fr_FR.UTF-8 UTF-8, en_US.UTF-8 UTF-8\n  x/flag: True\n",
        );
        assert_eq!(shown[0], ("tzdata/Areas".into(), "Europe".into()));
        let get = |q: &str| shown.iter().find(|(k, _)| k == q).map(|(_, v)| v.as_str());
        let t = |v: Value, vt: &str| wanted(vt, &v).unwrap();
        assert!(!differs(
            "select",
            get("tzdata/Areas"),
            &t(json!("Europe"), "select")
        ));
        assert!(differs(
            "select",
            get("tzdata/Areas"),
            &t(json!("Asia"), "select")
        ));
        assert!(differs("select", None, &t(json!("Asia"), "select")));
        // A boolean compares lowercased, whatever YAML made of it.
        assert!(!differs(
            "boolean",
            get("x/flag"),
            &t(json!(true), "boolean")
        ));
        assert!(!differs(
            "boolean",
            get("x/flag"),
            &t(json!("TRUE"), "boolean")
        ));
        // A multiselect list compares sorted; as text, exactly.
        let l = t(
            json!(["en_US.UTF-8 UTF-8", "fr_FR.UTF-8 UTF-8"]),
            "multiselect",
        );
        assert!(!differs(
            "multiselect",
            get("locales/locales_to_be_generated"),
            &l
        ));
        assert_eq!(l.text(), "en_US.UTF-8 UTF-8, fr_FR.UTF-8 UTF-8");
        assert!(differs(
            "multiselect",
            get("locales/locales_to_be_generated"),
            &t(json!("en_US.UTF-8 UTF-8, fr_FR.UTF-8 UTF-8"), "multiselect")
        ));
        // A number for a select: the module's join fails on it.
        assert!(
            wanted("select", &json!(1))
                .unwrap_err()
                .contains("int found")
        );
        assert_eq!(
            password_of(
                "pkg\tpkg/pw\tpassword\tsecret\nother\to\tstring\tx\n",
                "pkg",
                "pkg/pw",
                "password"
            ),
            "secret"
        );
        assert_eq!(
            password_of("pkg\tpkg/pw\tpassword\n", "pkg", "pkg/pw", "password"),
            ""
        );
    }
}
