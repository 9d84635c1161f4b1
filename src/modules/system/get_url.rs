//! `get_url`: the HOST downloads a URL to a file (so the controller needs no route to it).
//!
//! Owns deciding whether a download is needed (one round trip: stat of `dest` and of
//! `dest/<url file name>` for a directory `dest`, plus the checksum tool when the algorithm is
//! not sha256), and the download itself in one round trip: `curl -fsSL` (else `wget -q`) into a
//! temporary file next to the destination, checksum verified, mode/owner set, then `mv` over
//! the destination, the temporary file removed on any failure. Without `checksum`, an existing
//! file is in sync unless `force`; with `force` every run downloads (reported as a change). A
//! file whose content is right but whose mode/owner/group differ is fixed without downloading.
//! It must not format shell lines: URL, paths and headers are quoted arguments.

use serde_json::Value;

use super::common::{failed, int_arg, result};
use crate::modules::runtime::{
    Args, ArgsExt, BoxFut, Change, Drift, Module, ModuleCtx, ModuleError, Resource, Verdict,
    parse_mode,
};
use crate::transport::cmd::{PathKind, PathState, chmod, chown, parse_stat, stat_cmd};
use crate::transport::{AnyTransport, Cmd};

/// `get_url`.
pub struct GetUrl;

/// Downloads. `$1` URL, `$2` dest, `$3` timeout, `$4` checksum tool (empty: none), `$5`
/// expected hex, `$6` `yes` to skip TLS verification, `$7` mode, `$8` owner[:group]; the rest
/// are `Name: value` headers. Prints `sha256 HEX`.
const DOWNLOAD: &str = r#"
u_=$1 d_=$2 t_=$3 ht_=$4 hx_=$5 k_=$6 m_=$7 o_=$8
shift 8
tmp_=$(mktemp "$(dirname -- "$d_")/.rdeploy-get_url.XXXXXXXXXX") || exit 1
trap 'rm -f -- "$tmp_"' EXIT
n_=$#
if command -v curl >/dev/null 2>&1; then
  while [ "$n_" -gt 0 ]; do set -- "$@" -H "$1"; shift; n_=$((n_ - 1)); done
  if [ "$k_" = yes ]; then set -- "$@" -k; fi
  curl -fsSL --max-time "$t_" -o "$tmp_" "$@" "$u_" || exit $?
elif command -v wget >/dev/null 2>&1; then
  while [ "$n_" -gt 0 ]; do set -- "$@" "--header=$1"; shift; n_=$((n_ - 1)); done
  if [ "$k_" = yes ]; then set -- "$@" --no-check-certificate; fi
  wget -q -T "$t_" -O "$tmp_" "$@" "$u_" || exit $?
else
  printf 'rdeploy: get_url needs curl or wget on the host\n' >&2; exit 127
fi
if [ -n "$ht_" ]; then
  h_=$("$ht_" < "$tmp_") || exit 1
  h_=${h_%% *}
  if [ "$h_" != "$hx_" ]; then
    printf 'rdeploy: checksum mismatch: expected %s, got %s\n' "$hx_" "$h_" >&2; exit 65
  fi
fi
if [ -n "$m_" ]; then chmod -- "$m_" "$tmp_" || exit 1
elif [ -e "$d_" ]; then chmod --reference="$d_" -- "$tmp_" || exit 1
else chmod -- "$(printf '%o' $((0666 & ~$(umask))))" "$tmp_" || exit 1; fi
if [ -n "$o_" ]; then chown -- "$o_" "$tmp_" || exit 1; fi
h_=$(sha256sum < "$tmp_") && printf 'sha256 %.64s\n' "$h_"
mv -f -- "$tmp_" "$d_" || exit 1
trap - EXIT"#;

/// The checksum tools we know, by Ansible's algorithm names.
fn hash_tool(algo: &str) -> Option<&'static str> {
    Some(match algo {
        "sha256" => "sha256sum",
        "sha1" => "sha1sum",
        "md5" => "md5sum",
        "sha224" => "sha224sum",
        "sha384" => "sha384sum",
        "sha512" => "sha512sum",
        _ => return None,
    })
}

/// `ALGO:HEX` → (tool, algo, lowercase hex).
fn parse_checksum(s: &str) -> Result<(&'static str, String, String), ModuleError> {
    let (algo, hex) = s
        .split_once(':')
        .ok_or_else(|| ModuleError::Args(format!("checksum '{s}' is not ALGORITHM:HEX")))?;
    let algo = algo.trim().to_ascii_lowercase();
    let tool = hash_tool(&algo)
        .ok_or_else(|| ModuleError::Args(format!("unsupported checksum algorithm '{algo}'")))?;
    let hex = hex.trim().to_ascii_lowercase();
    if hex.is_empty() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ModuleError::Args(format!(
            "checksum '{s}' has no hex digest"
        )));
    }
    Ok((tool, algo, hex))
}

/// The last path segment of the URL (without query or fragment), for a directory `dest`.
fn url_file_name(url: &str) -> Option<String> {
    let no_scheme = url.split_once("://").map_or(url, |(_, r)| r);
    let path = no_scheme.split(['?', '#']).next()?;
    let (_, path) = path.split_once('/')?;
    path.rsplit('/')
        .next()
        .filter(|n| !n.is_empty() && *n != "." && *n != "..")
        .map(str::to_string)
}

struct Want {
    url: String,
    dest: String,
    checksum: Option<(&'static str, String, String)>,
    mode: Option<Value>,
    owner: Option<String>,
    group: Option<String>,
    force: bool,
}

fn want(args: &Args) -> Result<Want, ModuleError> {
    let url = args.req_str("url")?;
    let scheme = url.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
    if !matches!(scheme.as_deref(), Some("http" | "https" | "ftp")) {
        return Err(ModuleError::Args(format!(
            "url '{url}' must start with http://, https:// or ftp://"
        )));
    }
    Ok(Want {
        url,
        dest: args.req_str("dest")?,
        checksum: args
            .str_arg("checksum")
            .filter(|s| !s.is_empty())
            .map(|s| parse_checksum(&s))
            .transpose()?,
        mode: args.get("mode").filter(|v| !v.is_null()).cloned(),
        owner: args.str_arg("owner"),
        group: args.str_arg("group"),
        force: args.bool_arg("force", false)?,
    })
}

/// What `apply` does.
enum Plan {
    Download { dest: String },
    Attrs { dest: String, cmds: Vec<Cmd> },
}

fn attr_fixes(
    w: &Want,
    dest: &str,
    st: &PathState,
) -> Result<(Vec<Change>, Vec<Cmd>), ModuleError> {
    let mut changes = Vec::new();
    let mut cmds = Vec::new();
    let attr = |what: &str, before: String, after: String| Change::Attr {
        subject: dest.to_string(),
        what: what.into(),
        before,
        after,
    };
    if let Some(m) = &w.mode {
        let want = parse_mode(m, Some(st.mode), false)?;
        if want != st.mode & 0o7777 {
            changes.push(attr(
                "mode",
                format!("{:04o}", st.mode),
                format!("{want:04o}"),
            ));
            cmds.push(chmod(dest, want));
        }
    }
    let owner = w.owner.as_deref().filter(|o| !st.owner_is(o));
    let group = w.group.as_deref().filter(|g| !st.group_is(g));
    if let Some(o) = owner {
        changes.push(attr("owner", st.owner.clone(), o.to_string()));
    }
    if let Some(g) = group {
        changes.push(attr("group", st.group.clone(), g.to_string()));
    }
    if owner.is_some() || group.is_some() {
        cmds.push(chown(dest, owner, group));
    }
    Ok((changes, cmds))
}

async fn check_get_url(
    tr: &mut AnyTransport,
    args: &Args,
    ctx: &ModuleCtx<'_>,
) -> Result<Verdict, ModuleError> {
    let w = want(args)?;
    let joined = url_file_name(&w.url).map(|n| format!("{}/{n}", w.dest.trim_end_matches('/')));
    let mut cmds = vec![stat_cmd(&w.dest)];
    cmds.extend(joined.iter().map(|j| stat_cmd(j)));
    let other_algo = w.checksum.as_ref().filter(|(_, a, _)| a != "sha256");
    if let Some((tool, _, _)) = other_algo {
        for p in std::iter::once(&w.dest).chain(joined.iter()) {
            cmds.push(Cmd::raw(tool).op("<").arg(p.clone()).op("2>/dev/null"));
        }
    }
    let batch = Cmd::batch(&cmds).map_err(|e| ModuleError::Args(e.to_string()))?;
    let outs = ctx
        .run_batch(tr, &batch)
        .await?
        .map_err(|e| failed(format!("cannot look at {}: {e}", w.dest), Args::new()))?;
    let stat = |i: usize| -> Result<PathState, ModuleError> {
        let o = outs.get(i).cloned().unwrap_or_default();
        parse_stat(&o).map_err(|e| failed(format!("cannot stat: {e}"), Args::new()))
    };
    let st_dest = stat(0)?;
    let (dest, st, idx) = if st_dest.kind == PathKind::Directory {
        let Some(j) = joined else {
            return Err(ModuleError::Args(format!(
                "dest {} is a directory and the URL names no file",
                w.dest
            )));
        };
        (j, stat(1)?, 1)
    } else {
        (w.dest.clone(), st_dest, 0)
    };
    let current = match other_algo {
        Some(_) => outs.get(cmds.len() / 2 + idx).and_then(|o| {
            let t = o.stdout_lossy();
            (o.status == 0).then(|| t.split_whitespace().next().unwrap_or_default().to_string())
        }),
        None => st.sha256.clone(),
    };
    let content_ok = st.kind == PathKind::File
        && match &w.checksum {
            Some((_, _, want)) => current.as_deref() == Some(want.as_str()),
            None => !w.force,
        };
    let mut r = result([
        ("url", Value::from(w.url.clone())),
        ("dest", Value::from(dest.clone())),
    ]);
    if content_ok {
        let (changes, fixes) = attr_fixes(&w, &dest, &st)?;
        if let Some(s) = &st.sha256 {
            r.insert("checksum_dest".into(), Value::from(s.clone()));
        }
        if changes.is_empty() {
            r.insert("msg".into(), Value::from("file already exists and matches"));
            return Ok(Verdict::InSync { result: r });
        }
        return Ok(Verdict::Drift(Drift::new(
            changes,
            Plan::Attrs { dest, cmds: fixes },
        )));
    }
    let change = Change::Attr {
        subject: dest.clone(),
        what: "content".into(),
        before: match (&st.kind, &current) {
            (PathKind::Absent, _) => "absent".into(),
            (_, Some(s)) => s.clone(),
            _ => "present".into(),
        },
        after: format!("downloaded from {}", w.url),
    };
    Ok(Verdict::Drift(Drift::new(
        vec![change],
        Plan::Download { dest },
    )))
}

async fn apply_get_url(
    tr: &mut AnyTransport,
    args: &Args,
    ctx: &ModuleCtx<'_>,
    drift: &Drift,
) -> Result<Args, ModuleError> {
    let w = want(args)?;
    let plan = drift
        .plan::<Plan>()
        .ok_or_else(|| ModuleError::Args("get_url: apply without a plan from check".into()))?;
    let clock = std::time::Instant::now();
    let dest = match plan {
        Plan::Attrs { dest, cmds } => {
            let cmd = cmds
                .iter()
                .cloned()
                .reduce(Cmd::and)
                .unwrap_or(Cmd::raw(":"));
            ctx.run_ok(tr, cmd).await?;
            return Ok(result([
                ("url", Value::from(w.url)),
                ("dest", Value::from(dest.clone())),
                ("msg", Value::from("file attributes changed")),
            ]));
        }
        Plan::Download { dest } => dest.clone(),
    };
    let mode = match &w.mode {
        None => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(v) => format!("{:04o}", parse_mode(v, None, false)?),
    };
    let owner = match (&w.owner, &w.group) {
        (None, None) => String::new(),
        (Some(o), None) => o.clone(),
        (None, Some(g)) => format!(":{g}"),
        (Some(o), Some(g)) => format!("{o}:{g}"),
    };
    let (tool, hex) = match &w.checksum {
        Some((t, _, h)) => (t.to_string(), h.clone()),
        None => (String::new(), String::new()),
    };
    let insecure = !args.bool_arg("validate_certs", true)?;
    let headers: Vec<String> = match args.get("headers") {
        Some(Value::Object(m)) => m
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => format!("{k}: {s}"),
                other => format!("{k}: {other}"),
            })
            .collect(),
        _ => Vec::new(),
    };
    let cmd = Cmd::raw("set --")
        .arg(w.url.clone())
        .arg(dest.clone())
        .arg(int_arg(args, "timeout", 10)?.to_string())
        .arg(tool)
        .arg(hex)
        .arg(if insecure { "yes" } else { "no" })
        .arg(mode)
        .arg(owner)
        .args(headers)
        .op(DOWNLOAD);
    let out = ctx.run(tr, cmd).await?;
    let mut r = result([
        ("url", Value::from(w.url.clone())),
        ("dest", Value::from(dest.clone())),
        ("elapsed", Value::from(clock.elapsed().as_secs())),
    ]);
    if out.status != 0 {
        let err = out.stderr_lossy().trim().to_string();
        r.insert("rc".into(), Value::from(out.status));
        r.insert("stderr".into(), Value::from(err.clone()));
        let msg = if out.status == 65 {
            err.trim_start_matches("rdeploy: ").to_string()
        } else {
            format!("Request failed (rc {}): {err}", out.status)
        };
        return Err(failed(msg, r));
    }
    let text = out.stdout_lossy();
    if let Some(sum) = text.lines().find_map(|l| l.strip_prefix("sha256 ")) {
        r.insert("checksum_dest".into(), Value::from(sum.to_string()));
    }
    r.insert("msg".into(), Value::from("OK"));
    Ok(r)
}

impl Module for GetUrl {
    fn name(&self) -> &'static str {
        "get_url"
    }

    fn check<'a>(
        &'a self,
        tr: &'a mut AnyTransport,
        args: &'a Args,
        ctx: &'a ModuleCtx<'a>,
    ) -> BoxFut<'a, Result<Verdict, ModuleError>> {
        Box::pin(check_get_url(tr, args, ctx))
    }

    fn apply<'a>(
        &'a self,
        tr: &'a mut AnyTransport,
        args: &'a Args,
        ctx: &'a ModuleCtx<'a>,
        drift: &'a Drift,
    ) -> BoxFut<'a, Result<Args, ModuleError>> {
        Box::pin(apply_get_url(tr, args, ctx, drift))
    }

    /// `dest` (a directory `dest` is only known at check time: the file inside it is not
    /// listed).
    fn resources(&self, args: &Args) -> Vec<Resource> {
        args.str_arg("dest")
            .map(Resource::Path)
            .into_iter()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::system::testutil::*;
    use serde_json::json;
    use sha2::{Digest, Sha256};
    use std::io::{Read, Write};

    /// Serves `body` with `status` to every connection on 127.0.0.1, counting requests.
    fn serve(
        status: &'static str,
        body: &'static [u8],
    ) -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let h = hits.clone();
        std::thread::spawn(move || {
            for conn in l.incoming() {
                let Ok(mut s) = conn else { continue };
                let mut buf = [0u8; 4096];
                let mut req = Vec::new();
                while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => req.extend_from_slice(&buf[..n]),
                    }
                }
                h.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let head = format!(
                    "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = s.write_all(head.as_bytes());
                let _ = s.write_all(body);
            }
        });
        (port, hits)
    }

    fn no_proxy() -> Vec<(String, String)> {
        ["no_proxy", "NO_PROXY"]
            .iter()
            .map(|k| (k.to_string(), "127.0.0.1".to_string()))
            .collect()
    }

    const BODY: &[u8] = b"hello {{ x }} $(id)\n";

    #[tokio::test]
    async fn downloads_once_verifies_and_is_idempotent() {
        let (port, hits) = serve("200 OK", BODY);
        let dir = tempfile::tempdir().unwrap();
        let c = ctx(dir.path(), None, no_proxy());
        let mut tr = transport();
        let dest = dir.path().join("app.tar");
        let sum = hex::encode(Sha256::digest(BODY));
        let url = format!("http://127.0.0.1:{port}/files/app.tar?x=1");
        let a = args(
            json!({"url": url, "dest": dest, "checksum": format!("sha256:{sum}"), "mode": "0640"}),
        );
        let Ran::Applied(_, Ok(r)) = check_apply(&GetUrl, &mut tr, &a, &c).await else {
            panic!()
        };
        assert_eq!(r["checksum_dest"], json!(sum));
        assert_eq!(std::fs::read(&dest).unwrap(), BODY);
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&dest).unwrap().permissions().mode() & 0o7777,
            0o640
        );
        assert_eq!(recorded(&tr).len(), 2);
        assert!(matches!(
            check_apply(&GetUrl, &mut tr, &a, &c).await,
            Ran::InSync(_)
        ));
        assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 1);
        // Mode drift only: fixed without downloading.
        let a2 = args(json!({"url": url, "dest": dest, "mode": "0600"}));
        let Ran::Applied(ch, Ok(_)) = check_apply(&GetUrl, &mut tr, &a2, &c).await else {
            panic!()
        };
        assert!(matches!(&ch[0], Change::Attr { what, .. } if what == "mode"));
        assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 1);
        // A directory dest gets the URL's file name; sha1 checksums work too.
        let sha1 = hex::encode(sha1::Sha1::digest(BODY));
        let a = args(json!({"url": url, "dest": dir.path(), "checksum": format!("sha1:{sha1}")}));
        assert!(matches!(
            check_apply(&GetUrl, &mut tr, &a, &c).await,
            Ran::InSync(_)
        ));
        // force always downloads.
        let a = args(json!({"url": url, "dest": dest, "force": true}));
        assert!(matches!(
            check_apply(&GetUrl, &mut tr, &a, &c).await,
            Ran::Applied(_, Ok(_))
        ));
        assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn bad_checksum_and_http_errors_leave_nothing_behind() {
        let (port, _) = serve("200 OK", BODY);
        let (port404, _) = serve("404 Not Found", b"nope");
        let dir = tempfile::tempdir().unwrap();
        let c = ctx(dir.path(), None, no_proxy());
        let mut tr = transport();
        let dest = dir.path().join("f");
        let a = args(
            json!({"url": format!("http://127.0.0.1:{port}/f"), "dest": dest,
            "checksum": format!("sha256:{}", "0".repeat(64))}),
        );
        let r = check_apply(&GetUrl, &mut tr, &a, &c).await;
        assert!(
            matches!(r, Ran::Applied(_, Err(ref m)) if m.contains("checksum mismatch")),
            "{r:?}"
        );
        let a = args(json!({"url": format!("http://127.0.0.1:{port404}/f"), "dest": dest}));
        let r = check_apply(&GetUrl, &mut tr, &a, &c).await;
        assert!(
            matches!(r, Ran::Applied(_, Err(ref m)) if m.contains("Request failed")),
            "{r:?}"
        );
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert!(left.is_empty(), "{left:?}");
        for bad in [
            json!({"url": "file:///etc/passwd", "dest": "/x"}),
            json!({"url": "http://h/x", "dest": "/x", "checksum": "crc:1"}),
        ] {
            assert!(matches!(
                GetUrl.check(&mut tr, &args(bad), &c).await,
                Err(ModuleError::Args(_))
            ));
        }
        assert_eq!(
            url_file_name("https://h/a/b.tgz?x=/y#z").as_deref(),
            Some("b.tgz")
        );
        assert_eq!(url_file_name("https://h/"), None);
    }
}
