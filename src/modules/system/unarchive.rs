//! `unarchive`: unpacks a tar (any compression GNU tar detects) or zip archive into an existing
//! directory on the host.
//!
//! Owns the check (one round trip: `dest` must be a directory; `creates` short-cuts; else the
//! archive's member list — `tar -tf` / `unzip -Z1` on the host — is compared with `dest`, and
//! "every member exists" counts as in sync; Ansible also compares sizes, modes and mtimes) and
//! the unpack (one round trip). A controller archive (`local_src`) is streamed on the command's
//! stdin into a private temporary file on the host (in check as well, to list it there; under
//! `--check` a tar archive is not looked at, as in Ansible), so it
//! works the same with `become`; `remote_src` (or Ansible's deprecated `copy: no`) reads the
//! host's file in place. `mode`, `owner` and `group` are applied to every unpacked member. It
//! must not format shell lines.

use serde_json::Value;

use super::common::{failed, result};
use crate::modules::runtime::{
    Args, BoxFut, Change, Drift, HostView, Module, ModuleCtx, ModuleError, Resource, Verdict,
    parse_mode,
};
use crate::modules::source::Content;
use crate::transport::{AnyTransport, Cmd};

/// `unarchive`.
pub struct Unarchive;

crate::module_args! {
    /// Unpacks a tar or zip archive (from the controller, or the host with `remote_src`) into a
    /// directory on the host. Ansible's older `copy: no` is read as `remote_src: yes`.
    /// With `remote_src`, `src` may be a URL the host downloads. Difference from Ansible: the
    /// archive is in sync when every member exists under `dest` (Ansible also compares sizes,
    /// modes and times).
    #[module(
        name = "unarchive",
        backup = "The whole `dest` tree is copied before the archive is unpacked into it; rollback puts the tree back as it was.",
        returns = &[("dest", "where it was unpacked"), ("src", "the archive"), ("handler", "the unpacker used")],
        examples = "- unarchive:\n    src: app-2.1.tar.gz\n    dest: /srv/app/releases/2.1\n    creates: /srv/app/releases/2.1/bin\n- unarchive:\n    src: /var/cache/app/app-2.1.tar.gz\n    dest: /srv/app/releases/2.1\n    remote_src: true"
    )]
    pub struct UnarchiveArgs {
        /// The archive: a controller file, or with `remote_src` a file on the host or a URL the
        /// host downloads (curl or wget).
        #[arg(required, kind = Path)]
        src: String,
        /// Existing directory to unpack into.
        #[arg(required, kind = Path)]
        dest: String,
        /// Skip when this path exists on the host.
        #[arg(kind = Path)]
        creates: Option<String>,
        /// `src` is already on the host.
        #[arg(default = "no")]
        remote_src: bool,
        /// Ansible's deprecated spelling of the opposite of `remote_src` (`copy: no` is
        /// `remote_src: yes`); not together with `remote_src`. A literal value is read as
        /// `remote_src` when the playbook is loaded.
        copy: Option<bool>,
        /// Permissions of the unpacked entries.
        mode: Value,
        /// Owner of the unpacked entries.
        owner: Option<String>,
        /// Group of the unpacked entries.
        group: Option<String>,
        /// With `remote_src` and a URL `src`: verify its TLS certificate.
        #[arg(default = "yes")]
        validate_certs: bool,
    }
}

/// Ansible's message for `copy` with `remote_src` given together (written in the playbook, the
/// loader refuses them already).
const COPY_AND_REMOTE_SRC: &str = "parameters are mutually exclusive: ('copy', 'remote_src')";

impl UnarchiveArgs {
    /// Whether `src` is on the host: `remote_src`, or `copy: no`.
    fn remote(&self) -> Result<bool, ModuleError> {
        match self.copy {
            Some(_) if self.remote_src => Err(ModuleError::Args(COPY_AND_REMOTE_SRC.into())),
            Some(copy) => Ok(!copy),
            None => Ok(self.remote_src),
        }
    }
}

/// Shared prelude. `$1` dest, `$2` `zip`/`tar`, `$3` archive path on the host (empty: read the
/// archive from stdin, or download `$4`, into a private temporary file), `$4` a URL the host
/// downloads (`remote_src`), `$5` `yes` to skip TLS verification, `$6` mode and `$7`
/// owner[:group] for [`EXTRACT`]. Defines `list_` (members, one per line).
const PRELUDE: &str = crate::host::UNARCHIVE_PRELUDE;

/// Prints `missing MEMBER` for each member absent from dest, then `listed N`.
const COMPARE: &str = crate::host::UNARCHIVE_COMPARE;

/// Unpacks, then applies `m_` mode and `o_` owner[:group] to each member (links skipped for
/// mode). Prints `extracted`.
const EXTRACT: &str = crate::host::UNARCHIVE_EXTRACT;

struct Src {
    /// The archive on the host (`remote_src`), or `None` to stream `bytes`.
    remote: Option<String>,
    /// A URL the host downloads the archive from (`remote_src` with a `src` that has `://`).
    url: Option<String>,
    /// Do not verify the URL's TLS certificate (`validate_certs: no`).
    insecure: bool,
    /// A controller archive: its bytes shared by every host in flight (never copied per host),
    /// or a large one streamed from disk.
    bytes: Content,
    format: &'static str,
    shown: String,
}

/// A path a tool cannot take for an option.
fn not_an_option(p: &str) -> String {
    if p.starts_with('-') {
        format!("./{p}")
    } else {
        p.to_string()
    }
}

async fn source(a: &UnarchiveArgs, ctx: &ModuleCtx<'_>) -> Result<Src, ModuleError> {
    let src = a.src.clone();
    let by_name = |s: &str| if zip_by_name(s) { "zip" } else { "tar" };
    if a.remote()? && src.contains("://") {
        let path = src.split(['?', '#']).next().unwrap_or_default();
        return Ok(Src {
            remote: None,
            url: Some(src.clone()),
            insecure: !a.validate_certs,
            bytes: Content::Mem(std::sync::Arc::from(Vec::new())),
            format: by_name(path),
            shown: src,
        });
    }
    if src.contains("://") {
        return Err(ModuleError::Args(format!(
            "Unsupported option, an URI src ({src}) is only supported when remote_src is True"
        )));
    }
    if a.remote()? {
        return Ok(Src {
            remote: Some(not_an_option(&src)),
            url: None,
            insecure: false,
            bytes: Content::Mem(std::sync::Arc::from(Vec::new())),
            format: by_name(&src),
            shown: src,
        });
    }
    let local = ctx
        .local_src
        .ok_or_else(|| ModuleError::Args(format!("src '{src}' was not found on the controller")))?;
    // A vault-encrypted archive is unpacked decrypted, as Ansible's `decrypt: true` default.
    let bytes = crate::modules::source::open(local).await?.0;
    let format = if is_zip(&bytes, local) { "zip" } else { "tar" };
    Ok(Src {
        remote: None,
        url: None,
        insecure: false,
        bytes,
        format,
        shown: src,
    })
}

/// Whether a controller archive is a zip file (by its first bytes, as Ansible's handlers do).
fn is_zip(c: &Content, path: &std::path::Path) -> bool {
    match c.bytes() {
        Some(b) => zip_magic(b),
        None => file_is_zip(path),
    }
}

/// [`is_zip`] of a controller file, read from disk.
fn file_is_zip(path: &std::path::Path) -> bool {
    use std::io::Read;
    let mut head = Vec::with_capacity(4);
    // An unreadable file fails when it is sent, naming it.
    let _ = std::fs::File::open(path).and_then(|f| f.take(4).read_to_end(&mut head));
    zip_magic(&head)
}

fn zip_magic(head: &[u8]) -> bool {
    head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06")
}

/// A host's archive is a zip file when its name says so.
fn zip_by_name(src: &str) -> bool {
    src.to_ascii_lowercase().ends_with(".zip")
}

fn base_cmd(dest: &str, s: &Src) -> Cmd {
    Cmd::raw("set --")
        .arg(dest)
        .arg(s.format)
        .arg(s.remote.clone().unwrap_or_default())
        .arg(s.url.clone().unwrap_or_default())
        .arg(if s.insecure { "yes" } else { "no" })
}

/// Runs `cmd` with the controller archive on its stdin (borrowed: no copy per host).
async fn run_with_archive(
    tr: &mut HostView<'_>,
    ctx: &ModuleCtx<'_>,
    cmd: Cmd,
    s: &Src,
) -> Result<crate::transport::Output, ModuleError> {
    match (&s.remote, &s.url) {
        (None, None) => ctx.query_input(tr, cmd, s.bytes.payload()).await,
        _ => ctx.query(tr, cmd).await,
    }
}

fn handler(s: &Src) -> &'static str {
    if s.format == "zip" {
        "ZipArchive"
    } else {
        "TgzArchive"
    }
}

async fn check_unarchive(
    tr: &mut HostView<'_>,
    args: &Args,
    ctx: &ModuleCtx<'_>,
) -> Result<Verdict, ModuleError> {
    let a = UnarchiveArgs::parse(args)?;
    let dest = a.dest.clone();
    let s = source(&a, ctx).await?;
    let mut r = result([
        ("dest", Value::from(dest.clone())),
        ("src", Value::from(s.shown.clone())),
        ("handler", Value::from(handler(&s))),
    ]);
    if let Some(c) = &a.creates {
        let out = ctx.query(tr, super::common::glob_exists(c)).await?;
        if out.status == 0 {
            r.insert(
                "msg".into(),
                Value::from(format!("skipped, since {c} exists")),
            );
            r.insert("changed".into(), Value::from(false));
            return Ok(Verdict::InSync { result: r });
        }
    }
    let cmd = base_cmd(&dest, &s).op(PRELUDE).op(COMPARE);
    let out = run_with_archive(tr, ctx, cmd, &s).await?;
    let text = out.stdout_lossy();
    if text.lines().next() == Some("nodest") {
        return Err(failed(format!("dest '{dest}' must be an existing dir"), r));
    }
    if out.status != 0 {
        return Err(failed(
            format!("cannot list {}: {}", s.shown, out.stderr_lossy().trim()),
            r,
        ));
    }
    let missing: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("missing "))
        .collect();
    if missing.is_empty() {
        return Ok(Verdict::InSync { result: r });
    }
    let mut shown: Vec<String> = missing.iter().take(10).map(|m| m.to_string()).collect();
    if missing.len() > 10 {
        shown.push(format!("... and {} more", missing.len() - 10));
    }
    let change = Change::Attr {
        subject: dest.clone(),
        what: "members".into(),
        before: format!("{} missing", missing.len()),
        after: format!("unpacked from {}: {}", s.shown, shown.join(", ")),
    };
    Ok(Verdict::Drift(Drift::new(vec![change], ())))
}

async fn apply_unarchive(
    tr: &mut AnyTransport,
    args: &Args,
    ctx: &ModuleCtx<'_>,
) -> Result<Args, ModuleError> {
    let a = UnarchiveArgs::parse(args)?;
    let dest = a.dest.clone();
    let s = source(&a, ctx).await?;
    let mode = match &a.mode {
        Value::Null => String::new(),
        Value::String(m) => {
            // Validated here; chmod applies the symbolic form to each member itself.
            parse_mode(&Value::String(m.clone()), Some(0), false)?;
            m.clone()
        }
        v => format!("{:04o}", parse_mode(v, None, false)?),
    };
    let owner = match (a.owner, a.group) {
        (None, None) => String::new(),
        (Some(o), None) => o,
        (None, Some(g)) => format!(":{g}"),
        (Some(o), Some(g)) => format!("{o}:{g}"),
    };
    let cmd = base_cmd(&dest, &s)
        .arg(mode)
        .arg(owner)
        .op(PRELUDE)
        .op(EXTRACT);
    let out = run_with_archive(&mut HostView::of(tr), ctx, cmd, &s).await?;
    let mut r = result([
        ("dest", Value::from(dest.clone())),
        ("src", Value::from(s.shown.clone())),
        ("handler", Value::from(handler(&s))),
    ]);
    let text = out.stdout_lossy();
    if text.lines().next() == Some("nodest") {
        return Err(failed(format!("dest '{dest}' must be an existing dir"), r));
    }
    if out.status != 0 || !text.contains("extracted") {
        r.insert("rc".into(), Value::from(out.status));
        r.insert(
            "stderr".into(),
            Value::from(out.stderr_lossy().trim().to_string()),
        );
        return Err(failed(
            format!(
                "failed to unpack {} into {dest}: {}",
                s.shown,
                out.stderr_lossy().trim()
            ),
            r,
        ));
    }
    Ok(r)
}

impl Module for Unarchive {
    fn name(&self) -> &'static str {
        "unarchive"
    }

    /// Ansible's unarchive supports check mode for zip archives only: a tar archive is not
    /// looked at (here it would be copied to the host to be listed).
    fn check_mode_skip(&self, args: &Args, ctx: &ModuleCtx<'_>) -> Option<&'static str> {
        let a = UnarchiveArgs::parse(args).ok()?;
        let zip = match (a.remote(), ctx.local_src) {
            (Ok(false), Some(local)) => file_is_zip(local),
            _ => zip_by_name(&a.src),
        };
        (!zip).then_some(
            "remote module (ansible.legacy.unarchive) does not support check mode when using gtar",
        )
    }

    fn check<'a>(
        &'a self,
        tr: &'a mut HostView<'_>,
        args: &'a Args,
        ctx: &'a ModuleCtx<'a>,
    ) -> BoxFut<'a, Result<Verdict, ModuleError>> {
        Box::pin(check_unarchive(tr, args, ctx))
    }

    fn apply<'a>(
        &'a self,
        tr: &'a mut AnyTransport,
        args: &'a Args,
        ctx: &'a ModuleCtx<'a>,
        _drift: &'a Drift,
    ) -> BoxFut<'a, Result<Args, ModuleError>> {
        Box::pin(apply_unarchive(tr, args, ctx))
    }

    /// The whole `dest` tree: which members an archive holds is only known on the host.
    fn resources(&self, args: &Args) -> Vec<Resource> {
        UnarchiveArgs::parse(args)
            .map(|a| vec![Resource::Tree(a.dest)])
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::system::testutil::*;
    use serde_json::json;
    use std::path::Path;
    use std::process::Command as Proc;

    fn make_archives(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
        let content = dir.join("content");
        std::fs::create_dir_all(content.join("app/bin")).unwrap();
        std::fs::write(content.join("app/bin/run $(id).sh"), "#!/bin/sh\n").unwrap();
        std::fs::write(content.join("app/README"), "{{ x }}\n").unwrap();
        let tgz = dir.join("app.tar.gz");
        let zip = dir.join("app.zip");
        let ok = Proc::new("tar")
            .arg("-czf")
            .arg(&tgz)
            .arg("-C")
            .arg(&content)
            .arg("app")
            .status()
            .unwrap();
        assert!(ok.success());
        let ok = Proc::new("zip")
            .arg("-qr")
            .arg(&zip)
            .arg("app")
            .current_dir(&content)
            .status();
        if !ok.map(|s| s.success()).unwrap_or(false) {
            let _ = std::fs::remove_file(&zip);
        }
        (tgz, zip)
    }

    #[tokio::test]
    async fn local_tgz_and_zip_unpack_then_in_sync() {
        let dir = tempfile::tempdir().unwrap();
        let (tgz, zip) = make_archives(dir.path());
        for archive in [tgz, zip] {
            if !archive.exists() {
                continue; // no `zip` tool to build the fixture
            }
            let dest = dir
                .path()
                .join(format!("dest-{}", archive.display().to_string().len()));
            std::fs::create_dir_all(&dest).unwrap();
            let c = ctx(dir.path(), Some(&archive), vec![]);
            let mut tr = transport();
            let a = args(
                json!({"src": archive.file_name().unwrap().to_string_lossy(), "dest": dest, "mode": "u=rwx,go=rx"}),
            );
            let Ran::Applied(ch, Ok(r)) = check_apply(&Unarchive, &mut tr, &a, &c).await else {
                panic!("{}", archive.display())
            };
            assert!(
                matches!(&ch[0], Change::Attr { before, .. } if before == "4 missing"),
                "{ch:?}"
            );
            assert!(r["handler"].is_string());
            assert_eq!(
                std::fs::read_to_string(dest.join("app/README")).unwrap(),
                "{{ x }}\n"
            );
            assert!(dest.join("app/bin/run $(id).sh").exists());
            use std::os::unix::fs::PermissionsExt;
            let m = std::fs::metadata(dest.join("app/README"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(m & 0o777, 0o755);
            assert_eq!(recorded(&tr).len(), 2);
            assert!(matches!(
                check_apply(&Unarchive, &mut tr, &a, &c).await,
                Ran::InSync(_)
            ));
            // Nothing left in the host's temp dir by us.
            assert!(
                recorded(&tr)
                    .iter()
                    .all(|l| !l.contains("rdeploy-unarchive.X") || l.contains("rm -rf"))
            );
        }
    }

    #[tokio::test]
    async fn remote_src_creates_and_missing_dest() {
        let dir = tempfile::tempdir().unwrap();
        let (tgz, _) = make_archives(dir.path());
        let dest = dir.path().join("d");
        std::fs::create_dir_all(&dest).unwrap();
        let c = ctx(dir.path(), None, vec![]);
        let mut tr = transport();
        let a = args(json!({"src": tgz, "dest": dest, "remote_src": true}));
        assert!(matches!(
            check_apply(&Unarchive, &mut tr, &a, &c).await,
            Ran::Applied(_, Ok(_))
        ));
        assert!(dest.join("app/README").exists());
        assert!(matches!(
            check_apply(&Unarchive, &mut tr, &a, &c).await,
            Ran::InSync(_)
        ));
        let a = args(json!({"src": tgz, "dest": dest.join("nope"), "remote_src": true}));
        assert!(
            matches!(check_apply(&Unarchive, &mut tr, &a, &c).await, Ran::CheckFailed(m, _) if m.contains("must be an existing dir"))
        );
        let a = args(
            json!({"src": tgz, "dest": dir.path().join("e"), "remote_src": true, "creates": dest.join("app")}),
        );
        let Ran::InSync(r) = check_apply(&Unarchive, &mut tr, &a, &c).await else {
            panic!()
        };
        assert!(
            r["msg"]
                .as_str()
                .unwrap_or_default()
                .starts_with("skipped, since")
        );
        let a = args(
            json!({"src": dir.path().join("content/app/README"), "dest": dest, "remote_src": true}),
        );
        assert!(
            matches!(check_apply(&Unarchive, &mut tr, &a, &c).await, Ran::CheckFailed(m, _) if m.contains("cannot list"))
        );
        assert_eq!(
            Unarchive.resources(&a),
            vec![Resource::Tree(dest.display().to_string())]
        );
    }

    /// `copy: no` (Ansible's deprecated spelling) reads the archive on the host, like
    /// `remote_src: yes`; `copy: yes` is the controller's archive; both with `remote_src` are
    /// refused with Ansible's message.
    #[tokio::test]
    async fn copy_no_is_remote_src() {
        let dir = tempfile::tempdir().unwrap();
        let (tgz, _) = make_archives(dir.path());
        let dest = dir.path().join("d");
        std::fs::create_dir_all(&dest).unwrap();
        let c = ctx(dir.path(), None, vec![]);
        let mut tr = transport();
        let a = args(json!({"src": tgz, "dest": dest, "copy": "no"}));
        let ran = check_apply(&Unarchive, &mut tr, &a, &c).await;
        assert!(matches!(ran, Ran::Applied(_, Ok(_))), "{ran:?}");
        assert!(dest.join("app/README").exists());
        assert!(matches!(
            check_apply(&Unarchive, &mut tr, &a, &c).await,
            Ran::InSync(_)
        ));
        // `copy: yes` wants the controller's file, which this context has not.
        let a = args(json!({"src": "app.tar.gz", "dest": dest, "copy": true}));
        let ran = check_apply(&Unarchive, &mut tr, &a, &c).await;
        assert!(
            matches!(ran, Ran::CheckFailed(ref m, _) if m.contains("not found on the controller")),
            "{ran:?}"
        );
        let a = args(json!({"src": tgz, "dest": dest, "copy": false, "remote_src": true}));
        let ran = check_apply(&Unarchive, &mut tr, &a, &c).await;
        assert!(
            matches!(ran, Ran::CheckFailed(ref m, _) if m == COPY_AND_REMOTE_SRC),
            "{ran:?}"
        );
        // A tar archive on the host is not looked at under --check (as Ansible's gtar
        // handler), whichever spelling says it is there.
        let a = args(json!({"src": tgz, "dest": dest, "copy": false}));
        assert!(Unarchive.check_mode_skip(&a, &c).is_some());
        let a = args(json!({"src": "/x/app.zip", "dest": dest, "copy": false}));
        assert!(Unarchive.check_mode_skip(&a, &c).is_none());
    }

    fn load_errors(playbook: &str) -> Vec<String> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("pb.yml");
        std::fs::write(&p, playbook).unwrap();
        match crate::playbook::load(&p, &crate::playbook::LoadOptions::default()) {
            Ok(_) => Vec::new(),
            Err(d) => d.0.iter().map(|e| e.to_string()).collect(),
        }
    }

    /// At playbook load: `copy: no` names an archive on the host, so it is not looked for on
    /// the controller, and a templated `copy` may (before, it was refused); `copy` with
    /// `remote_src` is refused.
    #[test]
    fn copy_no_is_not_looked_for_on_the_controller() {
        let pb = |args: &str| {
            format!(
                "- hosts: all\n  tasks:\n    - unarchive: {{ src: /var/cache/app.tgz, dest: /srv/app{args} }}\n"
            )
        };
        assert_eq!(load_errors(&pb(", copy: no")), Vec::<String>::new());
        assert_eq!(
            load_errors(&pb(", copy: \"{{ x }}\"")),
            Vec::<String>::new()
        );
        assert_eq!(load_errors(&pb(", remote_src: yes")), Vec::<String>::new());
        let e = load_errors(&pb(""));
        assert!(
            e.iter().any(|e| e.contains("not found on the controller")),
            "{e:?}"
        );
        let e = load_errors(&pb(", copy: yes"));
        assert!(
            e.iter().any(|e| e.contains("not found on the controller")),
            "{e:?}"
        );
        let e = load_errors(&pb(", copy: no, remote_src: yes"));
        assert!(e.iter().any(|e| e.contains("mutually exclusive")), "{e:?}");
    }

    /// Serves `body` to every request on 127.0.0.1 (a 404 for paths not ending in `.tar.gz`).
    fn serve(body: Vec<u8>) -> u16 {
        use std::io::{Read, Write};
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
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
                let head = String::from_utf8_lossy(&req).to_string();
                let path = head.split_whitespace().nth(1).unwrap_or_default();
                let (status, b): (&str, &[u8]) = if path.ends_with(".tar.gz") {
                    ("200 OK", &body)
                } else {
                    ("404 Not Found", b"")
                };
                let _ = s.write_all(
                    format!(
                        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        b.len()
                    )
                    .as_bytes(),
                );
                let _ = s.write_all(b);
            }
        });
        port
    }

    /// With `remote_src`, a URL `src` is downloaded by the host into a private temporary file
    /// (in check, to list it, and in apply), as Ansible's module does; without it, Ansible's
    /// refusal. A download that fails names the URL.
    #[tokio::test]
    async fn remote_src_url_is_downloaded_by_the_host() {
        let dir = tempfile::tempdir().unwrap();
        let (tgz, _) = make_archives(dir.path());
        let port = serve(std::fs::read(&tgz).unwrap());
        let dest = dir.path().join("d");
        std::fs::create_dir_all(&dest).unwrap();
        let env = vec![("no_proxy".to_string(), "127.0.0.1".to_string())];
        let c = ctx(dir.path(), None, env);
        let mut tr = transport();
        let url = format!("http://127.0.0.1:{port}/app.tar.gz");
        let a = args(json!({"src": url, "dest": dest, "remote_src": true}));
        let ran = check_apply(&Unarchive, &mut tr, &a, &c).await;
        assert!(matches!(ran, Ran::Applied(_, Ok(_))), "{ran:?}");
        assert!(dest.join("app/README").exists());
        assert!(matches!(
            check_apply(&Unarchive, &mut tr, &a, &c).await,
            Ran::InSync(_)
        ));
        let a = args(json!({"src": url, "dest": dest}));
        let ran = check_apply(&Unarchive, &mut tr, &a, &c).await;
        assert!(
            matches!(ran, Ran::CheckFailed(ref m, _) if m.contains("is only supported when remote_src is True")),
            "{ran:?}"
        );
        let a = args(
            json!({"src": format!("http://127.0.0.1:{port}/nope"), "dest": dest,
            "copy": false}),
        );
        let ran = check_apply(&Unarchive, &mut tr, &a, &c).await;
        assert!(
            matches!(ran, Ran::CheckFailed(ref m, _) if m.contains("cannot download")),
            "{ran:?}"
        );
    }
}
