//! `getent`: runs the host's `getent` and returns what it prints as the fact
//! `getent_<database>`; never changes anything (always in sync).
//!
//! Owns the command (`getent DATABASE [KEY] [-s SERVICE]`), the shape of the fact (each line
//! split on `split`, `:` by default for passwd, shadow, group and gshadow, whitespace
//! otherwise; the first field is the key, the rest its list; a key seen twice holds a list of
//! lists) and Ansible's messages for getent's exit codes. The executor keeps the returned
//! `ansible_facts` as the host's facts ([`crate::exec::facts::store_module_facts`]); the
//! template check knows the fact's name before the run through [`Module::facts`]. It must not
//! format shell lines and must not change the host.

use serde_json::{Map, Value};

use super::common::{failed, result};
use crate::modules::runtime::{
    Args, BoxFut, Drift, HostView, Module, ModuleCtx, ModuleError, Resource, Verdict,
};
use crate::transport::{AnyTransport, Cmd};

/// The `getent` module.
pub struct Getent;

/// Databases whose fields are split on `:` unless `split` says otherwise.
const COLON: &[&str] = &["passwd", "shadow", "group", "gshadow"];

crate::module_args! {
    /// Runs `getent` against one of the host's databases (passwd, group, hosts, services...)
    /// and sets the fact `getent_<database>`: each key maps to the list of its other fields.
    /// Never changes anything, so it also runs under `--check`.
    #[module(
        name = "getent",
        backup = "Changes nothing on the host: nothing to back up.",
        returns = &[("ansible_facts.getent_<database>", "each key's fields, as a list (a list of lists for a key listed twice)"), ("msg", "with fail_key: false, why a key is null")],
        examples = "- getent:\n    database: passwd\n    key: deploy\n- debug:\n    msg: \"home: {{ getent_passwd.deploy[4] }}\""
    )]
    pub struct GetentArgs {
        /// The database (passwd, group, hosts, services, shadow...).
        #[arg(required)]
        database: String,
        /// Only this key; all entries when absent.
        key: Option<String>,
        /// Use this service instead of what nsswitch.conf names (`getent -s`).
        service: Option<String>,
        /// The field separator; `:` for passwd, shadow, group and gshadow, otherwise runs of
        /// whitespace.
        split: Option<String>,
        /// Fail when `key` is not in the database; false sets the key to null instead.
        #[arg(default = "yes")]
        fail_key: bool,
    }
}

/// The fact's value from getent's output, as Ansible builds it.
fn parse_entries(out: &str, split: Option<&str>) -> Map<String, Value> {
    let mut tree = Map::new();
    let mut seen: Map<String, Value> = Map::new();
    for line in out.lines() {
        let record: Vec<String> = match split {
            Some(sep) => line.split(sep).map(str::to_string).collect(),
            None => line.split_whitespace().map(str::to_string).collect(),
        };
        let Some((key, fields)) = record.split_first() else {
            continue;
        };
        let fields = Value::from(fields.to_vec());
        match (seen.get(key).and_then(Value::as_u64), tree.get_mut(key)) {
            (Some(n), Some(entry)) => {
                if n == 1 {
                    *entry = Value::Array(vec![entry.take()]);
                }
                if let Value::Array(list) = entry {
                    list.push(fields);
                }
                seen.insert(key.clone(), Value::from(n + 1));
            }
            _ => {
                tree.insert(key.clone(), fields);
                seen.insert(key.clone(), Value::from(1));
            }
        }
    }
    tree
}

/// `ansible_facts` holding `getent_<database>: tree`.
fn facts(database: &str, tree: Map<String, Value>) -> Args {
    let mut f = Map::new();
    f.insert(format!("getent_{database}"), Value::Object(tree));
    result([
        ("ansible_facts", Value::Object(f)),
        ("changed", Value::from(false)),
    ])
}

async fn getent(
    tr: &mut HostView<'_>,
    args: &Args,
    ctx: &ModuleCtx<'_>,
) -> Result<Verdict, ModuleError> {
    let GetentArgs {
        database,
        key,
        service,
        split,
        fail_key,
    } = GetentArgs::parse(args)?;
    let split = match split {
        Some(s) if s.is_empty() => {
            return Err(ModuleError::Args("split must not be empty".into()));
        }
        Some(s) => Some(s),
        None if COLON.contains(&database.as_str()) => Some(":".to_string()),
        None => None,
    };
    let mut cmd = Cmd::raw("getent").arg(database.clone());
    if let Some(k) = &key {
        cmd = cmd.arg(k.clone());
    }
    if let Some(s) = service {
        cmd = cmd.arg("-s").arg(s);
    }
    let out = ctx.query(tr, cmd).await?;
    let msg = match out.status {
        0 => {
            let tree = parse_entries(&out.stdout_lossy(), split.as_deref());
            return Ok(Verdict::InSync {
                result: facts(&database, tree),
            });
        }
        1 => "Missing arguments, or database unknown.",
        2 => {
            let msg = "One or more supplied key could not be found in the database.";
            if !fail_key {
                let mut tree = Map::new();
                tree.insert(key.unwrap_or_else(|| "null".into()), Value::Null);
                let mut r = facts(&database, tree);
                r.insert("msg".into(), Value::from(msg));
                return Ok(Verdict::InSync { result: r });
            }
            msg
        }
        3 => "Enumeration not supported on this database.",
        127 => "Failed to find required executable \"getent\" in paths",
        _ => "Unexpected failure!",
    };
    Err(failed(msg, Args::new()))
}

impl Module for Getent {
    fn name(&self) -> &'static str {
        "getent"
    }

    fn facts(&self) -> &'static [&'static str] {
        &["getent_<database>"]
    }

    fn check<'a>(
        &'a self,
        tr: &'a mut HostView<'_>,
        args: &'a Args,
        ctx: &'a ModuleCtx<'a>,
    ) -> BoxFut<'a, Result<Verdict, ModuleError>> {
        Box::pin(getent(tr, args, ctx))
    }

    /// Never called: `check` is always in sync.
    fn apply<'a>(
        &'a self,
        _tr: &'a mut AnyTransport,
        _args: &'a Args,
        _ctx: &'a ModuleCtx<'a>,
        _drift: &'a Drift,
    ) -> BoxFut<'a, Result<Args, ModuleError>> {
        Box::pin(async { Ok(Args::new()) })
    }

    /// Nothing on the host changes.
    fn resources(&self, _args: &Args) -> Vec<Resource> {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::system::testutil::*;
    use serde_json::json;

    #[test]
    fn entries_are_shaped_as_ansible_shapes_them() {
        let cases: &[(&str, Option<&str>, Value)] = &[
            (
                "root:x:0:0:root:/root:/bin/bash\n",
                Some(":"),
                json!({"root": ["x", "0", "0", "root", "/root", "/bin/bash"]}),
            ),
            (
                "127.0.0.1       localhost\n::1  localhost ip6-localhost\n",
                None,
                json!({"127.0.0.1": ["localhost"], "::1": ["localhost", "ip6-localhost"]}),
            ),
            (
                "a:1\na:2\na:3\nb:\n",
                Some(":"),
                json!({"a": [["1"], ["2"], ["3"]], "b": [""]}),
            ),
        ];
        for (out, split, want) in cases {
            assert_eq!(&Value::Object(parse_entries(out, *split)), want, "{out}");
        }
    }

    #[tokio::test]
    async fn exit_codes_give_ansibles_messages_and_fail_key_false_sets_null() {
        let (dir, bin, state) = fake_dirs();
        fake_tool(
            &bin,
            "getent",
            r#"echo "$@" >> "$FAKE/calls"
case "$2" in
  root) echo 'root:x:0:0:root:/root:/bin/sh' ;;
  "") [ "$1" = hosts ] && exit 3; exit 1 ;;
  *) exit 2 ;;
esac"#,
        );
        let c = ctx(dir.path(), None, fake_env(&bin, &state));
        let mut tr = transport();
        let cases: &[(Value, Result<Value, &str>)] = &[
            (
                json!({"database": "passwd", "key": "root"}),
                Ok(json!({"getent_passwd": {"root": ["x", "0", "0", "root", "/root", "/bin/sh"]}})),
            ),
            (
                json!({"database": "passwd", "key": "nobody-here"}),
                Err("One or more supplied key could not be found in the database."),
            ),
            (
                json!({"database": "passwd", "key": "nobody-here", "fail_key": false}),
                Ok(json!({"getent_passwd": {"nobody-here": null}})),
            ),
            (
                json!({"database": "bogus"}),
                Err("Missing arguments, or database unknown."),
            ),
            (
                json!({"database": "hosts"}),
                Err("Enumeration not supported on this database."),
            ),
            (
                json!({"database": "passwd", "key": "root", "service": "files", "split": "o"}),
                Ok(json!({"getent_passwd": {"r": ["", "t:x:0:0:r", "", "t:/r", "", "t:/bin/sh"]}})),
            ),
        ];
        for (a, want) in cases {
            match (
                check_apply(&Getent, &mut tr, &args(a.clone()), &c).await,
                want,
            ) {
                (Ran::InSync(r), Ok(f)) => assert_eq!(&r["ansible_facts"], f, "{a}"),
                (Ran::CheckFailed(m, _), Err(msg)) => assert_eq!(&m, msg, "{a}"),
                (got, want) => panic!("{a}: {got:?} / {want:?}"),
            }
        }
        let calls = std::fs::read_to_string(state.join("calls")).unwrap();
        assert!(calls.contains("passwd root -s files\n"), "{calls}");
        assert!(
            Getent
                .resources(&args(json!({"database": "passwd"})))
                .is_empty()
        );
    }
}
