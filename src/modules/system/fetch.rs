//! `fetch`: copies a file from the host to the controller.
//!
//! Owns where the copy goes (`dest/<inventory_hostname>/<src path>`, or `dest` itself with
//! `flat`; a relative `dest` is under the context's `controller_dir`), comparing the remote and
//! local sha256 (one round trip; symlinks at `src` are followed) and writing the local file
//! atomically (temporary file in the same directory, fsync, rename). The bytes come through
//! [`Transport::get`], or through `cat` with `become` (then bounded by the transport's output
//! limit). It changes nothing on the host, so it has no resources to back up. It must not
//! format shell lines.

use std::path::{Path, PathBuf};

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::common::{failed, result};
use crate::modules::runtime::{
    Args, BoxFut, Change, Drift, HostView, Module, ModuleCtx, ModuleError, Resource, Verdict,
};
use crate::transport::cmd::read_file_cmd;
use crate::transport::{AnyTransport, Cmd, Transport};

/// `fetch`.
pub struct Fetch;

/// The largest file fetched (it is held in memory).
pub const FETCH_MAX_BYTES: u64 = 1 << 30;

/// Follows links. Prints `absent`, `directory`, `unreadable` or `file SHA256`.
const REMOTE_SUM: &str = crate::host::FETCH_REMOTE_SUM;

/// What `check` found.
struct Plan {
    src: String,
    dest: PathBuf,
    remote_sum: String,
}

/// The local path for `src` from `host`.
fn local_dest(ctx: &ModuleCtx<'_>, host: &str, src: &str, dest: &str, flat: bool) -> PathBuf {
    let base = if Path::new(dest).is_absolute() {
        PathBuf::from(dest)
    } else {
        ctx.controller_dir.join(dest)
    };
    if flat {
        if dest.ends_with('/') {
            let name = Path::new(src).file_name().map(|n| n.to_os_string());
            return base.join(name.unwrap_or_default());
        }
        return base;
    }
    // `src` below the host's directory, never above it (`..` components are dropped).
    let mut p = base.join(host);
    for comp in Path::new(src).components() {
        if let std::path::Component::Normal(c) = comp {
            p.push(c);
        }
    }
    p
}

/// The sha256 of the controller's copy, read in chunks (it may be large); `None` when absent.
async fn local_sum(path: &Path) -> Option<String> {
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let mut file = std::fs::File::open(path).ok()?;
        crate::transport::sha256_reader(&mut file).ok()
    })
    .await
    .ok()
    .flatten()
}

crate::module_args! {
    /// Copies a file from the host to the controller, by default under `dest/HOSTNAME/PATH`.
    #[module(
        name = "fetch",
        backup = "Changes nothing on the host; the controller's copy is written atomically and is not part of a rollback.",
        returns = &[("dest", "the controller-side path"), ("checksum", "SHA-1 of the file"), ("remote_checksum", "its checksum on the host"), ("md5sum", "not computed")],
        examples = "- fetch:\n    src: /var/log/app/app.log\n    dest: logs/"
    )]
    pub struct FetchArgs {
        /// The file on the host.
        #[arg(required, kind = Path)]
        src: String,
        /// Directory (or, with `flat`, file) on the controller.
        #[arg(required, kind = Path)]
        dest: String,
        /// Store as `dest` itself instead of under the host name.
        #[arg(default = "no")]
        flat: bool,
        /// Fail when `src` does not exist.
        #[arg(default = "yes")]
        fail_on_missing: bool,
        /// Accepted and ignored, as Ansible's `fetch` ignores it: the controller's copy gets
        /// the controller's default mode.
        mode: Value,
    }
}

async fn check_fetch(
    tr: &mut HostView<'_>,
    args: &Args,
    ctx: &ModuleCtx<'_>,
) -> Result<Verdict, ModuleError> {
    let FetchArgs {
        src,
        dest: dest_arg,
        flat,
        fail_on_missing,
        mode: _ignored_as_ansible_does,
    } = FetchArgs::parse(args)?;
    let dest = local_dest(ctx, tr.name(), &src, &dest_arg, flat);
    let out = ctx
        .query_ok(tr, Cmd::raw("set --").arg(src.clone()).op(REMOTE_SUM))
        .await?;
    let text = out.stdout_lossy();
    let line = text.lines().next().unwrap_or_default();
    let mut r = result([
        ("file", Value::from(src.clone())),
        ("dest", Value::from(dest.display().to_string())),
    ]);
    let remote_sum = match line.split_once(' ') {
        Some(("file", sum)) => sum.to_string(),
        _ => {
            let msg = match line {
                "absent" => "the remote file does not exist",
                "directory" => "remote file is a directory, fetch cannot work on directories",
                "unreadable" => "file is not readable",
                _ => "cannot read the remote file's checksum",
            };
            if line == "absent" && !fail_on_missing {
                r.insert(
                    "msg".into(),
                    Value::from(format!("{msg}, not transferring, ignored")),
                );
                r.insert("changed".into(), Value::from(false));
                return Ok(Verdict::InSync { result: r });
            }
            return Err(failed(format!("{msg}: {src}"), r));
        }
    };
    r.insert("remote_checksum".into(), Value::from(remote_sum.clone()));
    let before = local_sum(&dest).await;
    if before.as_deref() == Some(remote_sum.as_str()) {
        r.insert("checksum".into(), Value::from(remote_sum));
        r.insert("changed".into(), Value::from(false));
        return Ok(Verdict::InSync { result: r });
    }
    let change = Change::Attr {
        subject: dest.display().to_string(),
        what: "sha256".into(),
        before: before.unwrap_or_else(|| "absent".into()),
        after: remote_sum.clone(),
    };
    Ok(Verdict::Drift(Drift::new(
        vec![change],
        Plan {
            src,
            dest,
            remote_sum,
        },
    )))
}

/// Writes `data` to `dest` through a temporary file in the same directory.
async fn write_atomic(dest: &Path, data: &[u8]) -> std::io::Result<()> {
    use tokio::io::AsyncWriteExt;
    let dir = dest.parent().unwrap_or(Path::new("."));
    tokio::fs::create_dir_all(dir).await?;
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.rdeploy-fetch.{}", std::process::id()));
    let written = async {
        let mut f = tokio::fs::File::create(&tmp).await?;
        f.write_all(data).await?;
        f.sync_all().await?;
        drop(f);
        tokio::fs::rename(&tmp, dest).await
    }
    .await;
    if written.is_err() {
        let _ = tokio::fs::remove_file(&tmp).await;
    }
    written
}

async fn apply_fetch(
    tr: &mut AnyTransport,
    ctx: &ModuleCtx<'_>,
    drift: &Drift,
) -> Result<Args, ModuleError> {
    let p = drift
        .plan::<Plan>()
        .ok_or_else(|| ModuleError::Args("fetch: apply without a plan from check".into()))?;
    let data = if ctx.become_.is_some() {
        let out = ctx.run_ok(tr, read_file_cmd(&p.src)).await?;
        if out.truncated.stdout > 0 {
            return Err(failed(
                format!(
                    "{} is too large to fetch with become ({} bytes dropped by the output limit)",
                    p.src, out.truncated.stdout
                ),
                Args::new(),
            ));
        }
        out.stdout
    } else {
        tr.get(&p.src, FETCH_MAX_BYTES)
            .await
            .map_err(ModuleError::Transport)?
    };
    let sum = hex::encode(Sha256::digest(&data));
    let mut r = result([
        ("file", Value::from(p.src.clone())),
        ("dest", Value::from(p.dest.display().to_string())),
        ("checksum", Value::from(sum.clone())),
        ("remote_checksum", Value::from(p.remote_sum.clone())),
    ]);
    if sum != p.remote_sum {
        return Err(failed(
            "checksum mismatch: the remote file changed while it was fetched",
            r,
        ));
    }
    write_atomic(&p.dest, &data)
        .await
        .map_err(|e| ModuleError::Failed {
            msg: format!("cannot write {}: {e}", p.dest.display()),
            result: Args::new(),
        })?;
    r.insert("size".into(), Value::from(data.len()));
    Ok(r)
}

impl Module for Fetch {
    fn name(&self) -> &'static str {
        "fetch"
    }

    fn check_mode_skip(&self, _args: &Args, _ctx: &ModuleCtx<'_>) -> Option<&'static str> {
        Some("check mode not (yet) supported for this module")
    }

    fn check<'a>(
        &'a self,
        tr: &'a mut HostView<'_>,
        args: &'a Args,
        ctx: &'a ModuleCtx<'a>,
    ) -> BoxFut<'a, Result<Verdict, ModuleError>> {
        Box::pin(check_fetch(tr, args, ctx))
    }

    fn apply<'a>(
        &'a self,
        tr: &'a mut AnyTransport,
        _args: &'a Args,
        ctx: &'a ModuleCtx<'a>,
        drift: &'a Drift,
    ) -> BoxFut<'a, Result<Args, ModuleError>> {
        Box::pin(apply_fetch(tr, ctx, drift))
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
    async fn mode_is_accepted_and_ignored_as_ansible_does() {
        let dir = tempfile::tempdir().unwrap();
        let remote = dir.path().join("remote/hostname");
        std::fs::create_dir_all(remote.parent().unwrap()).unwrap();
        std::fs::write(&remote, "h\n").unwrap();
        let ctrl = dir.path().join("ctrl");
        let c = ctx(&ctrl, None, vec![]);
        let mut tr = transport();
        let a = args(json!({"src": remote, "dest": "out/", "flat": true, "mode": "0600"}));
        let Ran::Applied(_, Ok(r)) = check_apply(&Fetch, &mut tr, &a, &c).await else {
            panic!()
        };
        let got = std::path::PathBuf::from(r["dest"].as_str().unwrap());
        assert_eq!(std::fs::read_to_string(&got).unwrap(), "h\n");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&got).unwrap().permissions().mode() & 0o777;
        assert_ne!(mode, 0o600, "mode is not applied, as in Ansible");
    }

    #[tokio::test]
    async fn fetch_under_host_dir_then_in_sync_then_changed() {
        let dir = tempfile::tempdir().unwrap();
        let remote = dir.path().join("remote/etc/app.conf");
        std::fs::create_dir_all(remote.parent().unwrap()).unwrap();
        std::fs::write(&remote, "v1 {{ x }} $(id)\n").unwrap();
        let ctrl = dir.path().join("ctrl");
        let c = ctx(&ctrl, None, vec![]);
        let mut tr = transport();
        let a = args(json!({"src": remote, "dest": "out"}));
        let Ran::Applied(ch, Ok(r)) = check_apply(&Fetch, &mut tr, &a, &c).await else {
            panic!()
        };
        assert_eq!(ch.len(), 1);
        let want = ctrl
            .join("out/testhost")
            .join(remote.strip_prefix("/").unwrap());
        assert_eq!(r["dest"], json!(want.display().to_string()));
        assert_eq!(
            std::fs::read_to_string(&want).unwrap(),
            "v1 {{ x }} $(id)\n"
        );
        assert_eq!(
            recorded(&tr).len(),
            1,
            "check is one round trip; get is not an exec"
        );
        assert!(matches!(
            check_apply(&Fetch, &mut tr, &a, &c).await,
            Ran::InSync(_)
        ));
        std::fs::write(&remote, "v2\n").unwrap();
        assert!(matches!(
            check_apply(&Fetch, &mut tr, &a, &c).await,
            Ran::Applied(_, Ok(_))
        ));
        assert_eq!(std::fs::read_to_string(&want).unwrap(), "v2\n");
        // flat, into a directory.
        let flat = dir.path().join("flat/");
        let a = args(json!({"src": remote, "dest": format!("{}/", flat.display()), "flat": true}));
        assert!(matches!(
            check_apply(&Fetch, &mut tr, &a, &c).await,
            Ran::Applied(_, Ok(_))
        ));
        assert!(flat.join("app.conf").exists());
        assert!(Fetch.resources(&a).is_empty());
    }

    #[tokio::test]
    async fn missing_and_directory_sources() {
        let dir = tempfile::tempdir().unwrap();
        let c = ctx(dir.path(), None, vec![]);
        let mut tr = transport();
        let a = args(json!({"src": "/nonexistent/x", "dest": "out"}));
        assert!(
            matches!(check_apply(&Fetch, &mut tr, &a, &c).await, Ran::CheckFailed(m, _) if m.contains("does not exist"))
        );
        let a = args(json!({"src": "/nonexistent/x", "dest": "out", "fail_on_missing": false}));
        assert!(matches!(
            check_apply(&Fetch, &mut tr, &a, &c).await,
            Ran::InSync(_)
        ));
        let a = args(json!({"src": dir.path(), "dest": "out"}));
        assert!(
            matches!(check_apply(&Fetch, &mut tr, &a, &c).await, Ran::CheckFailed(m, _) if m.contains("directory"))
        );
        // `..` in src cannot climb out of dest/host.
        let p = local_dest(&c, "h", "/../../etc/passwd", "/d", false);
        assert_eq!(p, PathBuf::from("/d/h/etc/passwd"));
    }
}
