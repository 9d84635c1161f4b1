//! `slurp`: returns a file of the host, base64-encoded, as `content`; never changes anything
//! (always in sync).
//!
//! Owns the look at `src` (one command: missing, directory, unreadable or a file; links are
//! followed, as Ansible's `open` does) with Ansible's messages, and reading its bytes: through
//! [`Transport::get`], or through `cat` under `become` (then bounded by the transport's output
//! limit). `no_log` is the executor's business. It must not format shell lines and must not
//! change the host.

use base64::Engine;
use serde_json::Value;

use crate::modules::runtime::{
    Args, BoxFut, Drift, HostView, Module, ModuleCtx, ModuleError, Resource, Verdict,
};
use crate::modules::system::common::{failed, result};
use crate::transport::cmd::read_file_cmd;
use crate::transport::{AnyTransport, Cmd};

/// The `slurp` module.
pub struct Slurp;

/// The largest file slurped (it is held in memory, then base64 in the result).
pub const SLURP_MAX_BYTES: u64 = 256 << 20;

/// Prints `absent`, `directory`, `unreadable` or `file` for `$1` (links followed).
const KIND: &str = r#"; if [ -d "$1" ]; then printf directory
elif ! [ -e "$1" ]; then printf absent
elif ! [ -r "$1" ]; then printf unreadable
else printf file; fi"#;

crate::module_args! {
    /// Reads a file of the host and returns it base64-encoded (`content`); register the result
    /// and decode it with `b64decode`. Never changes anything, so it also runs under `--check`.
    #[module(
        name = "slurp",
        backup = "Changes nothing on the host: nothing to back up.",
        returns = &[("content", "the file's bytes, base64-encoded"), ("encoding", "base64"), ("source", "the path read")],
        examples = "- slurp:\n    src: /etc/app/token\n  register: token\n  no_log: true\n- debug:\n    msg: \"{{ token.content | b64decode | length }} bytes\""
    )]
    pub struct SlurpArgs {
        /// The file to read (a link is followed).
        #[arg(required, kind = Path, aliases = &["path"])]
        src: String,
    }
}

/// Ansible's message for what the look at `src` printed.
fn refusal(kind: &str, src: &str) -> String {
    match kind {
        "absent" => format!("File not found: {src}"),
        "directory" => format!("Source is a directory and must be a file: {src}"),
        "unreadable" => format!("File is not readable: {src}"),
        _ => format!("Unable to slurp file: {src}"),
    }
}

async fn slurp(
    tr: &mut HostView<'_>,
    args: &Args,
    ctx: &ModuleCtx<'_>,
) -> Result<Verdict, ModuleError> {
    let SlurpArgs { src } = SlurpArgs::parse(args)?;
    let out = ctx
        .query_ok(tr, Cmd::raw("set --").arg(src.clone()).op(KIND))
        .await?;
    let kind = out.stdout_lossy();
    if kind.trim() != "file" {
        return Err(failed(refusal(kind.trim(), &src), Args::new()));
    }
    let data = if ctx.become_.is_some() {
        let out = ctx.query_ok(tr, read_file_cmd(&src)).await?;
        if out.truncated.stdout > 0 {
            return Err(failed(
                format!(
                    "{src} is too large to slurp with become ({} bytes dropped by the output limit)",
                    out.truncated.stdout
                ),
                Args::new(),
            ));
        }
        out.stdout
    } else {
        tr.get(&src, SLURP_MAX_BYTES)
            .await
            .map_err(ModuleError::Transport)?
    };
    let content = base64::engine::general_purpose::STANDARD.encode(&data);
    Ok(Verdict::InSync {
        result: result([
            ("content", Value::from(content)),
            ("encoding", Value::from("base64")),
            ("source", Value::from(src)),
            ("changed", Value::from(false)),
        ]),
    })
}

impl Module for Slurp {
    fn name(&self) -> &'static str {
        "slurp"
    }

    fn check<'a>(
        &'a self,
        tr: &'a mut HostView<'_>,
        args: &'a Args,
        ctx: &'a ModuleCtx<'a>,
    ) -> BoxFut<'a, Result<Verdict, ModuleError>> {
        Box::pin(slurp(tr, args, ctx))
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

    #[tokio::test]
    async fn slurps_a_file_and_refuses_what_is_not_one_as_ansible_does() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("secret");
        std::fs::write(&f, b"hunter2\n\x00\xff").unwrap();
        let c = ctx(dir.path(), None, vec![]);
        let mut tr = transport();
        let cases: &[(Value, Result<&str, String>)] = &[
            (json!({"src": f}), Ok("aHVudGVyMgoA/w==")),
            (
                json!({"src": dir.path().join("nope")}),
                Err(format!(
                    "File not found: {}",
                    dir.path().join("nope").display()
                )),
            ),
            (
                json!({"src": dir.path()}),
                Err(format!(
                    "Source is a directory and must be a file: {}",
                    dir.path().display()
                )),
            ),
        ];
        for (a, want) in cases {
            let got = check_apply(&Slurp, &mut tr, &args(a.clone()), &c).await;
            match (got, want) {
                (Ran::InSync(r), Ok(content)) => {
                    assert_eq!(r["content"], json!(content));
                    assert_eq!(r["encoding"], json!("base64"));
                    assert_eq!(r["source"], json!(f.display().to_string()));
                }
                (Ran::CheckFailed(m, _), Err(msg)) => assert_eq!(&m, msg),
                (got, want) => panic!("{a}: {got:?} / {want:?}"),
            }
        }
        assert!(Slurp.resources(&args(json!({"src": f}))).is_empty());
    }
}
