//! `deb822_repository`: an APT source in the deb822 format,
//! `/etc/apt/sources.list.d/SLUG.sources`.
//!
//! Owns Ansible's slug of `name`, its field names and order (the arguments sorted by name,
//! `name` as `X-Repolib-Name`, `uris` as `URIs`, the others title-cased with `-`), its value
//! formats (`yes`/`no`, lists joined by a space, a multi-line value such as an inline key on
//! indented lines with `.` for an empty one) and the comparison of the whole text with the file.
//! `signed_by` is a key file on the host or an inline key; a URL (which Ansible downloads on
//! the host into `/etc/apt/keyrings`) is refused: it needs the network, so download it with
//! `get_url` first. It must not format shell lines.

use serde_json::Value;

use super::common::{failed, result};
use super::repofile::{self, FileEdit};
use crate::modules::files::common::WantAttrs;
use crate::modules::runtime::{
    Args, BoxFut, Drift, HostView, Module, ModuleCtx, ModuleError, Resource, Verdict,
};
use crate::transport::AnyTransport;
use crate::transport::cmd::Cmd;

/// `deb822_repository`.
pub struct Deb822Repository;

/// Where Ansible keeps the keys it downloads for `signed_by`.
pub const KEYRINGS_DIR: &str = "/etc/apt/keyrings";

crate::module_args! {
    /// Adds or removes an APT source in the deb822 format
    /// (`/etc/apt/sources.list.d/SLUG.sources`, SLUG being `name` lower-cased, runs of `_` and
    /// blanks as `-`, other characters than `a-z0-9-` dropped), written with Ansible's field
    /// order and formats. `signed_by` is the path of a key file on the host or the key itself
    /// (ASCII-armored, written inline); a URL is not supported (Ansible downloads it on the host
    /// into `/etc/apt/keyrings`): download it with `get_url` and give its path. `absent` also
    /// removes `/etc/apt/keyrings/SLUG.asc` and `.gpg`, as Ansible does. The apt cache is not
    /// updated (as in Ansible).
    #[module(
        name = "deb822_repository",
        backup = "The .sources file and /etc/apt/keyrings/SLUG.asc and .gpg (content, mode, or absence); rollback puts them back or removes them.",
        returns = &[("repo", "the written deb822 text (null when absent)"), ("dest", "the .sources file"), ("key_filename", "the key file Ansible would manage (null when present)")],
        examples = "- deb822_repository:\n    name: example\n    types: deb\n    uris: https://apt.example.com/debian\n    suites: bookworm\n    components: main\n    signed_by: /etc/apt/keyrings/example.asc"
    )]
    pub struct Deb822RepositoryArgs {
        /// The repository's name (`X-Repolib-Name`) and, slugged, its file name.
        #[arg(required)]
        name: String,
        /// `deb` and/or `deb-src`.
        #[arg(default = "deb", choices = &["deb", "deb-src"])]
        types: Vec<String>,
        /// The repository URIs.
        uris: Vec<String>,
        /// Suites (distribution names, or an exact path ending in `/`).
        suites: Vec<String>,
        /// Components.
        components: Vec<String>,
        /// A key file on the host, or the key itself (a URL is refused).
        signed_by: Option<String>,
        /// Whether the source is there.
        #[arg(default = "present", choices = &["present", "absent"])]
        state: String,
        /// `Enabled: yes/no`.
        enabled: Option<bool>,
        /// Architectures to download.
        architectures: Vec<String>,
        /// Trust the repository without a signature check.
        trusted: Option<bool>,
        /// Mode of the `.sources` file.
        #[arg(default = "0644")]
        mode: Value,
        /// Allow downgrading a signed repository to an unsigned one.
        allow_downgrade_to_insecure: Option<bool>,
        /// Allow an unsigned repository.
        allow_insecure: Option<bool>,
        /// Allow weak digests.
        allow_weak: Option<bool>,
        /// Use `by-hash` index downloads.
        by_hash: Option<bool>,
        /// Check the Release file's date.
        check_date: Option<bool>,
        /// Check the Release file's `Valid-Until`.
        check_valid_until: Option<bool>,
        /// Seconds a Release file may be dated in the future.
        date_max_future: Option<i64>,
        /// Path of the InRelease file.
        inrelease_path: Option<String>,
        /// Translations to download.
        languages: Vec<String>,
        /// Use PDiffs for index updates.
        pdiffs: Option<bool>,
        /// Download targets.
        targets: Vec<String>,
    }
}

/// Ansible's slug of `name`.
fn slug(name: &str) -> String {
    let lower = name.to_lowercase();
    let mut dashed = String::new();
    let mut in_run = false;
    for c in lower.chars() {
        if c == '_' || c.is_whitespace() {
            if !in_run {
                dashed.push('-');
            }
            in_run = true;
        } else {
            dashed.push(c);
            in_run = false;
        }
    }
    dashed
        .chars()
        .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-')
        .collect()
}

/// Ansible's `format_field_name`.
fn field_name(arg: &str) -> String {
    match arg {
        "name" => "X-Repolib-Name".into(),
        "uris" => "URIs".into(),
        _ => arg
            .split('_')
            .map(|w| {
                let mut cs = w.chars();
                match cs.next() {
                    Some(f) => f.to_uppercase().chain(cs).collect::<String>(),
                    None => String::new(),
                }
            })
            .collect::<Vec<_>>()
            .join("-"),
    }
}

/// Ansible's `format_multiline`: the value's lines stripped (an empty one as `.`), each
/// indented by four spaces, after a newline.
fn multiline(v: &str) -> String {
    let lines: Vec<String> = v
        .trim()
        .lines()
        .map(|l| {
            let l = l.trim();
            if l.is_empty() {
                "    .".to_string()
            } else {
                format!("    {l}")
            }
        })
        .collect();
    format!("\n{}", lines.join("\n"))
}

/// Python's `urlsplit` scheme: letters first, then letters, digits, `+`, `-`, `.`, then `:`.
fn has_scheme(v: &str) -> bool {
    match v.find(':') {
        Some(i) if i > 0 => {
            let s = &v[..i];
            s.starts_with(|c: char| c.is_ascii_alphabetic())
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        }
        _ => false,
    }
}

/// Deb822's `dump` of `fields` (already in order): `Key: value`, or `Key:` followed by the
/// value's lines when it starts with a newline.
fn dump(fields: &[(String, String)]) -> String {
    let mut out = String::new();
    for (k, v) in fields {
        if v.is_empty() || v.starts_with('\n') {
            out.push_str(&format!("{k}:{v}\n"));
        } else {
            out.push_str(&format!("{k}: {v}\n"));
        }
    }
    out
}

fn yes_no(b: Option<bool>) -> Option<String> {
    b.map(|b| if b { "yes".into() } else { "no".into() })
}

fn words(v: Vec<String>) -> Option<String> {
    (!v.is_empty()).then(|| v.join(" "))
}

/// What the task wants.
struct Want {
    dest: String,
    slug: String,
    present: bool,
    /// (argument name, value) before `signed_by` is resolved, sorted by argument name.
    fields: Vec<(&'static str, String)>,
    signed_by: Option<String>,
    attrs: WantAttrs,
}

fn want(a: Deb822RepositoryArgs) -> Want {
    let slug = slug(&a.name);
    let mut fields: Vec<(&'static str, Option<String>)> = vec![
        (
            "allow_downgrade_to_insecure",
            yes_no(a.allow_downgrade_to_insecure),
        ),
        ("allow_insecure", yes_no(a.allow_insecure)),
        ("allow_weak", yes_no(a.allow_weak)),
        ("architectures", words(a.architectures)),
        ("by_hash", yes_no(a.by_hash)),
        ("check_date", yes_no(a.check_date)),
        ("check_valid_until", yes_no(a.check_valid_until)),
        ("components", words(a.components)),
        ("date_max_future", a.date_max_future.map(|n| n.to_string())),
        ("enabled", yes_no(a.enabled)),
        ("inrelease_path", a.inrelease_path),
        ("languages", words(a.languages)),
        ("name", Some(a.name)),
        ("pdiffs", yes_no(a.pdiffs)),
        ("suites", words(a.suites)),
        ("targets", words(a.targets)),
        ("trusted", yes_no(a.trusted)),
        ("types", words(a.types)),
        ("uris", words(a.uris)),
    ];
    fields.sort_by(|x, y| x.0.cmp(y.0));
    let mut attrs = Args::new();
    attrs.insert("mode".into(), a.mode);
    Want {
        dest: format!("/etc/apt/sources.list.d/{slug}.sources"),
        slug,
        present: a.state == "present",
        fields: fields
            .into_iter()
            .filter_map(|(k, v)| Some((k, v?)))
            .collect(),
        signed_by: a.signed_by,
        attrs: WantAttrs::from_args(&attrs),
    }
}

/// The deb822 text, `signed_by` being a file on the host (`is_file`) or inline data.
fn text(w: &Want, signed_by_is_file: bool) -> Result<String, ModuleError> {
    let mut fields = w.fields.clone();
    if let Some(s) = &w.signed_by {
        if !signed_by_is_file && has_scheme(s) {
            return Err(ModuleError::Args(format!(
                "signed_by {s}: a key URL is not supported by rdeploy (it needs the network on the host); download it with get_url and give its path, or give the key itself"
            )));
        }
        fields.push(("signed_by", s.clone()));
        fields.sort_by(|x, y| x.0.cmp(y.0));
    }
    let named: Vec<(String, String)> = fields
        .into_iter()
        .map(|(k, v)| {
            let v = if v.contains('\n') { multiline(&v) } else { v };
            (field_name(k), v)
        })
        .collect();
    Ok(dump(&named))
}

fn key_files(slug: &str) -> [String; 2] {
    [
        format!("{KEYRINGS_DIR}/{slug}.asc"),
        format!("{KEYRINGS_DIR}/{slug}.gpg"),
    ]
}

async fn check_repo(
    tr: &mut HostView<'_>,
    args: &Args,
    ctx: &ModuleCtx<'_>,
    root: &str,
) -> Result<Verdict, ModuleError> {
    let w = want(Deb822RepositoryArgs::parse(args)?);
    let dest = format!("{root}{}", w.dest);
    let mut changes = Vec::new();
    let mut edits = Vec::new();
    let mut r;
    if w.present {
        let is_file = match &w.signed_by {
            Some(s) => ctx
                .query(tr, Cmd::raw("test -f").arg(s.clone()))
                .await?
                .success(),
            None => false,
        };
        let repo = text(&w, is_file)?;
        let tf = repofile::read(tr, ctx, &dest).await?;
        if let Some((ch, e)) =
            repofile::plan_write(&dest, &tf, repo.clone().into_bytes(), &w.attrs)?
        {
            changes.extend(ch);
            edits.push(e);
        }
        r = result([
            ("repo", Value::from(repo)),
            ("dest", Value::from(w.dest.clone())),
            ("key_filename", Value::Null),
        ]);
    } else {
        let [asc, gpg] = key_files(&w.slug);
        for path in [dest.clone(), format!("{root}{asc}"), format!("{root}{gpg}")] {
            let tf = repofile::read(tr, ctx, &path).await?;
            if let Some((ch, e)) = repofile::plan_remove(&path, &tf) {
                changes.extend(ch);
                edits.push(e);
            }
        }
        r = result([
            ("repo", Value::Null),
            ("dest", Value::from(w.dest.clone())),
            ("key_filename", Value::from(gpg)),
        ]);
    }
    if edits.is_empty() {
        r.insert("changed".into(), Value::from(false));
        return Ok(Verdict::InSync { result: r });
    }
    Ok(Verdict::Drift(Drift::new(changes, (edits, r))))
}

async fn apply_repo(
    tr: &mut AnyTransport,
    ctx: &ModuleCtx<'_>,
    drift: &Drift,
) -> Result<Args, ModuleError> {
    let (edits, r) = drift
        .plan::<(Vec<FileEdit>, Args)>()
        .ok_or_else(|| failed("deb822_repository: apply without a plan", Args::new()))?;
    for e in edits {
        repofile::apply(tr, ctx, e).await?;
    }
    Ok(r.clone())
}

impl Module for Deb822Repository {
    fn name(&self) -> &'static str {
        "deb822_repository"
    }

    fn check<'a>(
        &'a self,
        tr: &'a mut HostView<'_>,
        args: &'a Args,
        ctx: &'a ModuleCtx<'a>,
    ) -> BoxFut<'a, Result<Verdict, ModuleError>> {
        Box::pin(check_repo(tr, args, ctx, ""))
    }

    fn apply<'a>(
        &'a self,
        tr: &'a mut AnyTransport,
        _args: &'a Args,
        ctx: &'a ModuleCtx<'a>,
        drift: &'a Drift,
    ) -> BoxFut<'a, Result<Args, ModuleError>> {
        Box::pin(apply_repo(tr, ctx, drift))
    }

    /// The `.sources` file and the two key files `absent` removes.
    fn resources(&self, args: &Args) -> Vec<Resource> {
        let Ok(a) = Deb822RepositoryArgs::parse(args) else {
            return Vec::new();
        };
        let w = want(a);
        let [asc, gpg] = key_files(&w.slug);
        vec![
            Resource::Path(w.dest),
            Resource::Path(asc),
            Resource::Path(gpg),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::system::testutil::*;
    use serde_json::json;

    #[test]
    fn ansibles_slug_field_names_and_formats() {
        assert_eq!(slug("My_Repo  name!"), "my-repo-name");
        assert_eq!(slug("Docker CE"), "docker-ce");
        assert_eq!(field_name("uris"), "URIs");
        assert_eq!(field_name("name"), "X-Repolib-Name");
        assert_eq!(
            field_name("allow_downgrade_to_insecure"),
            "Allow-Downgrade-To-Insecure"
        );
        assert_eq!(field_name("signed_by"), "Signed-By");
        assert_eq!(multiline("  a\n\n b \n"), "\n    a\n    .\n    b");
        assert!(has_scheme("https://x/k.asc"));
        assert!(!has_scheme("/etc/k.asc"));
        assert!(!has_scheme("-----BEGIN PGP PUBLIC KEY BLOCK-----\n"));
    }

    #[tokio::test]
    async fn present_writes_the_sources_file_then_in_sync_and_absent_removes_it_with_the_keys() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().display().to_string();
        std::fs::create_dir_all(dir.path().join("etc/apt/sources.list.d")).unwrap();
        std::fs::create_dir_all(dir.path().join("etc/apt/keyrings")).unwrap();
        let c = ctx(dir.path(), None, vec![]);
        let a = args(json!({
            "name": "Example Repo",
            "uris": "https://apt.example.com/debian",
            "suites": ["bookworm"],
            "components": ["main", "contrib"],
            "architectures": "amd64",
            "enabled": true,
            "signed_by": "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmQINBF\n-----END PGP PUBLIC KEY BLOCK-----\n",
        }));
        let mut tr = transport();
        let Verdict::Drift(d) = check_repo(&mut HostView::of(&mut tr), &a, &c, &root)
            .await
            .unwrap()
        else {
            panic!("drift expected")
        };
        let r = apply_repo(&mut tr, &c, &d).await.unwrap();
        let file = dir
            .path()
            .join("etc/apt/sources.list.d/example-repo.sources");
        let want = "Architectures: amd64\nComponents: main contrib\nEnabled: yes\nX-Repolib-Name: Example Repo\nSigned-By:\n    -----BEGIN PGP PUBLIC KEY BLOCK-----\n    .\n    mQINBF\n    -----END PGP PUBLIC KEY BLOCK-----\nSuites: bookworm\nTypes: deb\nURIs: https://apt.example.com/debian\n";
        assert_eq!(std::fs::read_to_string(&file).unwrap(), want);
        assert_eq!(r["repo"], json!(want));
        assert_eq!(
            r["dest"],
            json!("/etc/apt/sources.list.d/example-repo.sources")
        );
        assert!(matches!(
            check_repo(&mut HostView::of(&mut tr), &a, &c, &root)
                .await
                .unwrap(),
            Verdict::InSync { .. }
        ));
        // The mode alone is put right (Ansible's set_mode_if_different, default 0644).
        std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .unwrap();
        assert!(matches!(
            check_repo(&mut HostView::of(&mut tr), &a, &c, &root)
                .await
                .unwrap(),
            Verdict::Drift(_)
        ));
        std::fs::write(dir.path().join("etc/apt/keyrings/example-repo.asc"), "k").unwrap();
        let gone = args(json!({"name": "Example Repo", "state": "absent"}));
        let Verdict::Drift(d) = check_repo(&mut HostView::of(&mut tr), &gone, &c, &root)
            .await
            .unwrap()
        else {
            panic!("drift expected")
        };
        assert_eq!(d.changes.len(), 2);
        apply_repo(&mut tr, &c, &d).await.unwrap();
        assert!(!file.exists());
        assert!(
            !dir.path()
                .join("etc/apt/keyrings/example-repo.asc")
                .exists()
        );
        assert!(matches!(
            check_repo(&mut HostView::of(&mut tr), &gone, &c, &root)
                .await
                .unwrap(),
            Verdict::InSync { .. }
        ));
    }

    #[tokio::test]
    async fn signed_by_is_a_file_on_the_host_or_inline_and_a_url_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("k.gpg");
        std::fs::write(&key, "k").unwrap();
        let root = dir.path().display().to_string();
        let c = ctx(dir.path(), None, vec![]);
        let mut tr = transport();
        let a = args(json!({"name": "x", "uris": "http://x", "suites": "s", "signed_by": key}));
        let Verdict::Drift(d) = check_repo(&mut HostView::of(&mut tr), &a, &c, &root)
            .await
            .unwrap()
        else {
            panic!()
        };
        assert!(
            matches!(&d.changes[0], crate::modules::runtime::Change::Content { after, .. } if after.contains(&format!("Signed-By: {}\n", key.display())))
        );
        let a = args(json!({"name": "x", "uris": "http://x", "signed_by": "https://x/k.asc"}));
        let e = check_repo(&mut HostView::of(&mut tr), &a, &c, &root)
            .await
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("a key URL is not supported by rdeploy"), "{e}");
        assert_eq!(
            Deb822Repository.resources(&args(json!({"name": "x"}))),
            vec![
                Resource::Path("/etc/apt/sources.list.d/x.sources".into()),
                Resource::Path("/etc/apt/keyrings/x.asc".into()),
                Resource::Path("/etc/apt/keyrings/x.gpg".into()),
            ]
        );
    }
}
