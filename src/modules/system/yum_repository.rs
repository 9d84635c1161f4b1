//! `yum_repository`: one `[repoid]` section of a `.repo` file under `reposdir`.
//!
//! Owns reading the `.repo` file as Python's `configparser` does (sections, `key = value` or
//! `key: value`, lower-cased keys, indented continuation lines, full-line `#`/`;` comments),
//! replacing or removing the task's section, and writing the file back as
//! `RawConfigParser.write` does (sections in file order, the replaced section last with its
//! keys sorted, `key = value`, continuation lines indented with a tab, a blank line after each
//! section). Like Ansible, "changed" compares the sorted dump of all sections, so comments and
//! ordering alone never make a change; a file left without sections is removed. It must not
//! format shell lines.

use serde_json::Value;

use super::common::{failed, result};
use super::repofile::{self, FileEdit};
use crate::modules::files::common::{WantAttrs, join};
use crate::modules::runtime::{
    Args, BoxFut, Drift, HostView, Module, ModuleCtx, ModuleError, Resource, Verdict,
};
use crate::transport::AnyTransport;
use crate::transport::cmd::test_e;

/// `yum_repository`.
pub struct YumRepository;

crate::module_args! {
    /// Adds or removes a YUM/DNF repository: the section `[name]` of `reposdir/file.repo`,
    /// written with Ansible's key order and format (`name = DESCRIPTION`, booleans as `0`/`1`,
    /// list values one per line). A file left without sections is removed. The parameters
    /// Ansible deprecates (`async`) are not supported. Comments in a file that changes are
    /// dropped, as Ansible's `configparser` drops them.
    #[module(
        name = "yum_repository",
        backup = "The .repo file (content, mode, owner, or its absence); rollback puts it back or removes it.",
        returns = &[("repo", "the repository id (name)"), ("state", "present or absent")],
        examples = "- yum_repository:\n    name: epel\n    description: EPEL YUM repo\n    baseurl: https://download.fedoraproject.org/pub/epel/$releasever/$basearch/\n    gpgcheck: true\n    gpgkey: file:///etc/pki/rpm-gpg/RPM-GPG-KEY-EPEL-9"
    )]
    pub struct YumRepositoryArgs {
        /// The repository id: the section name, and the file name unless `file` is given.
        #[arg(required)]
        name: String,
        /// The repository's human-readable name (written as `name = ...`); required with `state: present`.
        description: Option<String>,
        /// URLs of the repository (one per line in the file).
        baseurl: Vec<String>,
        /// URL of a mirror list.
        mirrorlist: Option<String>,
        /// URL of a metalink.
        metalink: Option<String>,
        /// The file name without `.repo` (default: `name`).
        file: Option<String>,
        /// The directory of `.repo` files; it must exist.
        #[arg(kind = Path, default = "/etc/yum.repos.d")]
        reposdir: String,
        /// Whether the section is there.
        #[arg(default = "present", choices = &["present", "absent"])]
        state: String,
        /// Check package signatures.
        gpgcheck: Option<bool>,
        /// URLs of the GPG keys (one per line in the file).
        gpgkey: Vec<String>,
        /// Check the repository metadata's signature.
        repo_gpgcheck: Option<bool>,
        /// Whether the repository is used.
        enabled: Option<bool>,
        /// Let the package manager use the repository's groups.
        enablegroups: Option<bool>,
        /// Packages never taken from this repository (space-separated in the file).
        #[arg(aliases = &["excludepkgs"])]
        exclude: Vec<String>,
        /// The only packages taken from this repository.
        includepkgs: Vec<String>,
        /// Maximum download rate.
        bandwidth: Option<String>,
        /// Relative cost of the repository.
        cost: Option<String>,
        /// Take part in DNF's countme statistics.
        countme: Option<bool>,
        /// Deprecated by Ansible (no effect with dnf); written as given.
        deltarpm_metadata_percentage: Option<String>,
        /// When to use delta RPMs.
        deltarpm_percentage: Option<String>,
        /// `roundrobin` or `priority`.
        #[arg(choices = &["roundrobin", "priority"])]
        failovermethod: Option<String>,
        /// Deprecated by Ansible (no effect with dnf); written as given.
        gpgcakey: Option<String>,
        /// Deprecated by Ansible (no effect with dnf); written as given.
        #[arg(choices = &["all", "packages", "none"])]
        http_caching: Option<String>,
        /// A URL to include a repository configuration from.
        include: Option<String>,
        /// IP version to resolve names with.
        #[arg(choices = &["4", "6", "IPv4", "IPv6", "whatever"])]
        ip_resolve: Option<String>,
        /// Deprecated by Ansible (no effect with dnf); written as given.
        keepalive: Option<bool>,
        /// Deprecated by Ansible (only valid in the main configuration); written as given.
        #[arg(choices = &["0", "1"])]
        keepcache: Option<String>,
        /// Time after which the metadata expires.
        metadata_expire: Option<String>,
        /// Deprecated by Ansible (no effect with dnf); written as given.
        #[arg(choices = &["never", "read-only:past", "read-only:present", "read-only:future"])]
        metadata_expire_filter: Option<String>,
        /// Deprecated by Ansible (no effect with dnf); written as given.
        mirrorlist_expire: Option<String>,
        /// Allow DNF to use the repository's hotfix packages.
        module_hotfixes: Option<bool>,
        /// Password for basic authentication.
        password: Option<String>,
        /// The repository's priority.
        priority: Option<String>,
        /// Deprecated by Ansible (no effect with dnf); written as given.
        protect: Option<bool>,
        /// Proxy URL.
        proxy: Option<String>,
        /// Proxy password.
        proxy_password: Option<String>,
        /// Proxy user name.
        proxy_username: Option<String>,
        /// Download retries.
        retries: Option<String>,
        /// Use Amazon S3 for the repository.
        s3_enabled: Option<bool>,
        /// Go on when the repository is unreachable.
        skip_if_unavailable: Option<bool>,
        /// CA certificate file.
        #[arg(aliases = &["ca_cert"])]
        sslcacert: Option<String>,
        /// Deprecated by Ansible (no effect with dnf); written as given.
        ssl_check_cert_permissions: Option<bool>,
        /// Client certificate file.
        #[arg(aliases = &["client_cert"])]
        sslclientcert: Option<String>,
        /// Client key file.
        #[arg(aliases = &["client_key"])]
        sslclientkey: Option<String>,
        /// Verify the server's certificate.
        #[arg(aliases = &["validate_certs"])]
        sslverify: Option<bool>,
        /// Delay between downloads.
        throttle: Option<String>,
        /// Connection timeout.
        timeout: Option<String>,
        /// Deprecated by Ansible (no effect with dnf); written as given.
        ui_repoid_vars: Option<String>,
        /// User name for basic authentication.
        username: Option<String>,
        /// Mode of the `.repo` file.
        mode: Value,
        /// Owner of the `.repo` file.
        owner: Option<String>,
        /// Group of the `.repo` file.
        group: Option<String>,
    }
}

/// A `configparser` section: its name and its keys with their values, in file order.
type Section = (String, Vec<(String, String)>);

/// A `.repo` file as `configparser` reads it.
#[derive(Clone, Debug, Default, PartialEq)]
struct Ini {
    defaults: Vec<(String, String)>,
    sections: Vec<Section>,
}

/// Reads `text` as `RawConfigParser` (strict, default delimiters and comment prefixes) does.
fn parse_ini(text: &str) -> Result<Ini, String> {
    let mut ini = Ini::default();
    // Where the current section is: None before any header, Some(None) for DEFAULT.
    let mut cur: Option<Option<usize>> = None;
    // The current option: its key and its lines.
    let mut opt: Option<(String, Vec<String>)> = None;
    let mut indent_level = 0usize;
    let mut seen_sections: Vec<String> = Vec::new();
    fn flush(ini: &mut Ini, cur: Option<Option<usize>>, opt: &mut Option<(String, Vec<String>)>) {
        if let (Some(sect), Some((k, lines))) = (cur, opt.take()) {
            let v = lines.join("\n").trim_end().to_string();
            let keys = match sect {
                None => &mut ini.defaults,
                Some(i) => &mut ini.sections[i].1,
            };
            keys.push((k, v));
        }
    }
    for (n, line) in text.lines().enumerate() {
        let lineno = n + 1;
        let stripped = line.trim();
        let comment = stripped.starts_with('#') || stripped.starts_with(';');
        if comment || stripped.is_empty() {
            // empty_lines_in_values: a blank line (not a comment) may belong to a value.
            if !comment && let Some((_, lines)) = opt.as_mut() {
                lines.push(String::new());
            }
            continue;
        }
        let cur_indent = line.len() - line.trim_start().len();
        if cur.is_some() && opt.is_some() && cur_indent > indent_level {
            if let Some((_, lines)) = opt.as_mut() {
                lines.push(stripped.to_string());
            }
            continue;
        }
        indent_level = cur_indent;
        if let Some(rest) = stripped.strip_prefix('[')
            && let Some(end) = rest.rfind(']')
            && end > 0
        {
            flush(&mut ini, cur, &mut opt);
            let name = rest[..end].to_string();
            if seen_sections.contains(&name) {
                return Err(format!("line {lineno}: section '{name}' already exists"));
            }
            seen_sections.push(name.clone());
            cur = if name == "DEFAULT" {
                Some(None)
            } else {
                ini.sections.push((name, Vec::new()));
                Some(Some(ini.sections.len() - 1))
            };
            continue;
        }
        let Some(sect) = cur else {
            return Err(format!(
                "line {lineno}: file contains no section headers: {line:?}"
            ));
        };
        let Some(at) = stripped.find(['=', ':']) else {
            return Err(format!("line {lineno}: cannot parse {line:?}"));
        };
        let key = stripped[..at].trim().to_lowercase();
        if key.is_empty() {
            return Err(format!("line {lineno}: cannot parse {line:?}"));
        }
        flush(&mut ini, cur, &mut opt);
        let keys = match sect {
            None => &ini.defaults,
            Some(i) => &ini.sections[i].1,
        };
        if keys.iter().any(|(k, _)| *k == key) {
            return Err(format!("line {lineno}: option '{key}' already exists"));
        }
        opt = Some((key, vec![stripped[at + 1..].trim().to_string()]));
    }
    flush(&mut ini, cur, &mut opt);
    Ok(ini)
}

/// `RawConfigParser.write`: DEFAULT first, then the sections in order, each followed by a
/// blank line; a value's later lines are indented with a tab.
fn write_ini(ini: &Ini) -> String {
    let mut out = String::new();
    let mut section = |name: &str, keys: &[(String, String)]| {
        out.push_str(&format!("[{name}]\n"));
        for (k, v) in keys {
            out.push_str(&format!("{k} = {}\n", v.replace('\n', "\n\t")));
        }
        out.push('\n');
    };
    if !ini.defaults.is_empty() {
        section("DEFAULT", &ini.defaults);
    }
    for (name, keys) in &ini.sections {
        section(name, keys);
    }
    out
}

/// Ansible's `YumRepo.dump`: the sections sorted, each with its keys (DEFAULT's merged in)
/// sorted. What "changed" compares.
fn dump_ini(ini: &Ini) -> String {
    let mut sections: Vec<&Section> = ini.sections.iter().collect();
    sections.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out = String::new();
    for (name, keys) in sections {
        let mut items: Vec<(String, String)> = ini.defaults.clone();
        for (k, v) in keys {
            match items.iter_mut().find(|(dk, _)| dk == k) {
                Some(slot) => slot.1 = v.clone(),
                None => items.push((k.clone(), v.clone())),
            }
        }
        items.sort();
        out.push_str(&format!("[{name}]\n"));
        for (k, v) in items {
            out.push_str(&format!("{k} = {v}\n"));
        }
        out.push('\n');
    }
    out
}

fn bool_value(b: Option<bool>) -> Option<String> {
    b.map(|b| if b { "1".into() } else { "0".into() })
}

fn joined(v: Vec<String>, sep: &str) -> Option<String> {
    (!v.is_empty()).then(|| v.join(sep))
}

/// What the task wants: the file, the section name and its keys (sorted, as Ansible adds
/// them), and the file attributes.
struct Want {
    path: String,
    repoid: String,
    present: bool,
    keys: Vec<(String, String)>,
    attrs: WantAttrs,
    reposdir: String,
}

fn want(a: YumRepositoryArgs) -> Result<Want, ModuleError> {
    let present = a.state == "present";
    if present {
        if a.baseurl.is_empty() && a.mirrorlist.is_none() && a.metalink.is_none() {
            return Err(ModuleError::Args(
                "state is present but any of the following are missing: baseurl, mirrorlist, metalink".into(),
            ));
        }
        if a.description.is_none() {
            return Err(ModuleError::Args(
                "state is present but all of the following are missing: description".into(),
            ));
        }
    }
    let mut keys: Vec<(&str, Option<String>)> = vec![
        ("bandwidth", a.bandwidth),
        ("baseurl", joined(a.baseurl, "\n")),
        ("cost", a.cost),
        ("countme", bool_value(a.countme)),
        (
            "deltarpm_metadata_percentage",
            a.deltarpm_metadata_percentage,
        ),
        ("deltarpm_percentage", a.deltarpm_percentage),
        ("enabled", bool_value(a.enabled)),
        ("enablegroups", bool_value(a.enablegroups)),
        ("exclude", joined(a.exclude, " ")),
        ("failovermethod", a.failovermethod),
        ("gpgcakey", a.gpgcakey),
        ("gpgcheck", bool_value(a.gpgcheck)),
        ("gpgkey", joined(a.gpgkey, "\n")),
        ("http_caching", a.http_caching),
        ("include", a.include),
        ("includepkgs", joined(a.includepkgs, " ")),
        ("ip_resolve", a.ip_resolve),
        ("keepalive", bool_value(a.keepalive)),
        ("keepcache", a.keepcache),
        ("metadata_expire", a.metadata_expire),
        ("metadata_expire_filter", a.metadata_expire_filter),
        ("metalink", a.metalink),
        ("mirrorlist", a.mirrorlist),
        ("mirrorlist_expire", a.mirrorlist_expire),
        ("module_hotfixes", bool_value(a.module_hotfixes)),
        ("name", a.description),
        ("password", a.password),
        ("priority", a.priority),
        ("protect", bool_value(a.protect)),
        ("proxy", a.proxy),
        ("proxy_password", a.proxy_password),
        ("proxy_username", a.proxy_username),
        ("repo_gpgcheck", bool_value(a.repo_gpgcheck)),
        ("retries", a.retries),
        ("s3_enabled", bool_value(a.s3_enabled)),
        ("skip_if_unavailable", bool_value(a.skip_if_unavailable)),
        (
            "ssl_check_cert_permissions",
            bool_value(a.ssl_check_cert_permissions),
        ),
        ("sslcacert", a.sslcacert),
        ("sslclientcert", a.sslclientcert),
        ("sslclientkey", a.sslclientkey),
        ("sslverify", bool_value(a.sslverify)),
        ("throttle", a.throttle),
        ("timeout", a.timeout),
        ("ui_repoid_vars", a.ui_repoid_vars),
        ("username", a.username),
    ];
    keys.sort_by(|x, y| x.0.cmp(y.0));
    let file = a.file.unwrap_or_else(|| a.name.clone());
    let mut attrs_args = Args::new();
    attrs_args.insert("mode".into(), a.mode);
    if let Some(o) = a.owner {
        attrs_args.insert("owner".into(), Value::from(o));
    }
    if let Some(g) = a.group {
        attrs_args.insert("group".into(), Value::from(g));
    }
    Ok(Want {
        path: join(&a.reposdir, &format!("{file}.repo")),
        repoid: a.name,
        present,
        keys: keys
            .into_iter()
            .filter_map(|(k, v)| Some((k.to_string(), v?)))
            .collect(),
        attrs: WantAttrs::from_args(&attrs_args),
        reposdir: a.reposdir,
    })
}

/// The file's sections after the task: the task's section removed, then (present) added last.
fn edited(before: &Ini, w: &Want) -> Ini {
    let mut after = before.clone();
    after.sections.retain(|(n, _)| *n != w.repoid);
    if w.present {
        after.sections.push((w.repoid.clone(), w.keys.clone()));
    }
    after
}

async fn check_repo(
    tr: &mut HostView<'_>,
    args: &Args,
    ctx: &ModuleCtx<'_>,
) -> Result<Verdict, ModuleError> {
    let w = want(YumRepositoryArgs::parse(args)?)?;
    let dir = ctx.query(tr, test_e(&w.reposdir)).await?;
    if !dir.success() {
        return Err(failed(
            format!("Repo directory '{}' does not exist.", w.reposdir),
            Args::new(),
        ));
    }
    let tf = repofile::read(tr, ctx, &w.path).await?;
    let before = parse_ini(&repofile::text_of(&tf).unwrap_or_default())
        .map_err(|e| failed(format!("cannot parse {}: {e}", w.path), Args::new()))?;
    let after = edited(&before, &w);
    let (before_dump, after_dump) = (dump_ini(&before), dump_ini(&after));
    let mut r = result([
        ("repo", Value::from(w.repoid.clone())),
        (
            "state",
            Value::from(if w.present { "present" } else { "absent" }),
        ),
    ]);
    let planned = if before_dump != after_dump {
        if after.sections.is_empty() {
            repofile::plan_remove(&w.path, &tf)
        } else {
            repofile::plan_write(&w.path, &tf, write_ini(&after).into_bytes(), &w.attrs)?
        }
    } else if tf.state.exists() {
        // Only the attributes, as Ansible's set_fs_attributes_if_different.
        let bytes = tf.bytes.clone().unwrap_or_default();
        repofile::plan_write(&w.path, &tf, bytes, &w.attrs)?
    } else {
        None
    };
    match planned {
        None => {
            r.insert("changed".into(), Value::from(false));
            Ok(Verdict::InSync { result: r })
        }
        Some((changes, edit)) => Ok(Verdict::Drift(Drift::new(changes, (edit, r)))),
    }
}

async fn apply_repo(
    tr: &mut AnyTransport,
    ctx: &ModuleCtx<'_>,
    drift: &Drift,
) -> Result<Args, ModuleError> {
    let (edit, r) = drift
        .plan::<(FileEdit, Args)>()
        .ok_or_else(|| ModuleError::Args("yum_repository: apply without a plan".into()))?;
    repofile::apply(tr, ctx, edit).await?;
    Ok(r.clone())
}

impl Module for YumRepository {
    fn name(&self) -> &'static str {
        "yum_repository"
    }

    fn check<'a>(
        &'a self,
        tr: &'a mut HostView<'_>,
        args: &'a Args,
        ctx: &'a ModuleCtx<'a>,
    ) -> BoxFut<'a, Result<Verdict, ModuleError>> {
        Box::pin(check_repo(tr, args, ctx))
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

    /// The `.repo` file.
    fn resources(&self, args: &Args) -> Vec<Resource> {
        match YumRepositoryArgs::parse(args).and_then(want) {
            Ok(w) => vec![Resource::Path(w.path)],
            Err(_) => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::system::testutil::*;
    use serde_json::json;

    fn present(dir: &std::path::Path, extra: Value) -> Args {
        let mut a = args(json!({
            "name": "epel",
            "description": "EPEL YUM repo",
            "baseurl": ["https://a.example/epel/", "https://b.example/epel/"],
            "gpgcheck": true,
            "reposdir": dir,
        }));
        a.extend(args(extra));
        a
    }

    #[test]
    fn configparser_reading_and_writing() {
        let text = "# top comment\n[b]\nName=B\nbaseurl = x\n  y\n\n; c\n[a]\nk: v\n";
        let ini = parse_ini(text).unwrap();
        assert_eq!(
            ini.sections,
            vec![
                (
                    "b".into(),
                    vec![
                        ("name".into(), "B".into()),
                        ("baseurl".into(), "x\ny".into())
                    ]
                ),
                ("a".into(), vec![("k".into(), "v".into())]),
            ]
        );
        assert_eq!(
            write_ini(&ini),
            "[b]\nname = B\nbaseurl = x\n\ty\n\n[a]\nk = v\n\n"
        );
        assert_eq!(
            dump_ini(&ini),
            "[a]\nk = v\n\n[b]\nbaseurl = x\ny\nname = B\n\n"
        );
        assert!(
            parse_ini("k = v\n")
                .unwrap_err()
                .contains("no section headers")
        );
        assert!(
            parse_ini("[a]\n[a]\n")
                .unwrap_err()
                .contains("already exists")
        );
        assert!(
            parse_ini("[a]\nk=1\nK=2\n")
                .unwrap_err()
                .contains("already exists")
        );
    }

    #[tokio::test]
    async fn present_writes_ansibles_section_then_in_sync_then_absent_removes_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let c = ctx(dir.path(), None, vec![]);
        let mut tr = transport();
        let a = present(dir.path(), json!({"enabled": "no", "exclude": ["a*", "b"]}));
        assert_eq!(
            YumRepository.resources(&a),
            vec![Resource::Path(format!(
                "{}/epel.repo",
                dir.path().display()
            ))]
        );
        let Ran::Applied(ch, Ok(r)) = check_apply(&YumRepository, &mut tr, &a, &c).await else {
            panic!()
        };
        assert_eq!(ch.len(), 1);
        assert_eq!(r["repo"], json!("epel"));
        let file = dir.path().join("epel.repo");
        assert_eq!(
            std::fs::read_to_string(&file).unwrap(),
            "[epel]\nbaseurl = https://a.example/epel/\n\thttps://b.example/epel/\nenabled = 0\nexclude = a* b\ngpgcheck = 1\nname = EPEL YUM repo\n\n"
        );
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&file).unwrap().permissions(),
        );
        assert_eq!(mode & 0o777, 0o644);
        assert!(matches!(
            check_apply(&YumRepository, &mut tr, &a, &c).await,
            Ran::InSync(_)
        ));
        // Another section in the same file stays; the task's section moves last when it
        // changes; comments go (configparser drops them).
        std::fs::write(
            &file,
            "# mine\n[epel]\nname = old\nbaseurl = x\n\n[other]\nname = O\nbaseurl = y\n",
        )
        .unwrap();
        let a2 = present(dir.path(), json!({"file": "epel", "mode": "0600"}));
        assert!(matches!(
            check_apply(&YumRepository, &mut tr, &a2, &c).await,
            Ran::Applied(_, Ok(_))
        ));
        assert_eq!(
            std::fs::read_to_string(&file).unwrap(),
            "[other]\nname = O\nbaseurl = y\n\n[epel]\nbaseurl = https://a.example/epel/\n\thttps://b.example/epel/\ngpgcheck = 1\nname = EPEL YUM repo\n\n"
        );
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&file).unwrap().permissions(),
        );
        assert_eq!(mode & 0o777, 0o600);
        // Only the mode differs: a change of the mode alone.
        let a3 = present(dir.path(), json!({"mode": "0644"}));
        let Ran::Applied(ch, Ok(_)) = check_apply(&YumRepository, &mut tr, &a3, &c).await else {
            panic!()
        };
        assert!(
            matches!(&ch[..], [crate::modules::runtime::Change::Attr { what, .. }] if what == "mode")
        );
        // absent removes the section, and the file once it has none left.
        let gone = args(
            json!({"name": "other", "state": "absent", "reposdir": dir.path(), "file": "epel"}),
        );
        assert!(matches!(
            check_apply(&YumRepository, &mut tr, &gone, &c).await,
            Ran::Applied(_, Ok(_))
        ));
        let gone = args(json!({"name": "epel", "state": "absent", "reposdir": dir.path()}));
        assert!(matches!(
            check_apply(&YumRepository, &mut tr, &gone, &c).await,
            Ran::Applied(_, Ok(_))
        ));
        assert!(!file.exists());
        assert!(matches!(
            check_apply(&YumRepository, &mut tr, &gone, &c).await,
            Ran::InSync(_)
        ));
    }

    #[tokio::test]
    async fn refusals_follow_ansible() {
        let dir = tempfile::tempdir().unwrap();
        let c = ctx(dir.path(), None, vec![]);
        let mut tr = transport();
        let a = args(json!({"name": "x", "description": "X", "reposdir": dir.path()}));
        assert!(
            matches!(check_apply(&YumRepository, &mut tr, &a, &c).await, Ran::CheckFailed(m, _) if m.contains("baseurl, mirrorlist, metalink"))
        );
        let a = args(json!({"name": "x", "baseurl": "u", "reposdir": dir.path()}));
        assert!(
            matches!(check_apply(&YumRepository, &mut tr, &a, &c).await, Ran::CheckFailed(m, _) if m.contains("description"))
        );
        let a = args(
            json!({"name": "x", "description": "X", "baseurl": "u", "reposdir": "/nonexistent/repos"}),
        );
        assert!(
            matches!(check_apply(&YumRepository, &mut tr, &a, &c).await, Ran::CheckFailed(m, _) if m == "Repo directory '/nonexistent/repos' does not exist.")
        );
        let a = args(json!({"name": "x", "async": true}));
        assert!(YumRepositoryArgs::parse(&a).is_err());
    }
}
