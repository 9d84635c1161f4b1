//! `get_url`: the HOST downloads a URL to a file (so the controller needs no route to it).
//!
//! Owns deciding whether a download is needed (one round trip: stat of `dest` and of
//! `dest/<url file name>` for a directory `dest`, plus the checksum tool when the algorithm is
//! not sha256; a `checksum` given as `ALGORITHM:URL` is looked up in that checksum file, which
//! the host fetches in the same check), and the download itself in one round trip: `curl -fsSL`
//! (else `wget -q`) into a temporary file next to the destination, checksum verified, mode/owner
//! set, then `mv` over the destination unless the content is the same, the temporary file
//! removed on any failure. Without `checksum`, an existing file is in sync unless `force`; with
//! `force` every run downloads and the step is a change only when the content (or mode/owner)
//! differed, as in Ansible. A file whose content is right but whose mode/owner/group differ is
//! fixed without downloading. It must not format shell lines: paths are quoted arguments; the
//! URL, the headers and the credentials go to the host on the command's stdin (curl reads them
//! as its config), never in a command line, and the URL is shown with its password masked.

use serde_json::Value;

use super::common::{failed, result};
use crate::modules::runtime::{
    Args, BoxFut, Change, Drift, HostView, Module, ModuleCtx, ModuleError, Resource, Unpredicted,
    Verdict, parse_mode,
};
use crate::transport::cmd::{PathKind, PathState, chmod, chown, parse_stat, stat_cmd};
use crate::transport::{AnyTransport, Cmd};

/// `get_url`.
pub struct GetUrl;

crate::module_args! {
    /// Downloads a URL to a path on the host (the host makes the request, with curl or wget),
    /// optionally checking a checksum. The URL, headers and credentials reach the host on
    /// stdin, never on a command line. Unlike Ansible, an existing file without `checksum` is
    /// kept unless `force` (Ansible asks the server with `If-Modified-Since`); a directory
    /// `dest` takes the URL's last path segment as the file name and is in sync when that file
    /// exists (and matches `checksum`); `url_username` needs curl on the host.
    #[module(
        name = "get_url",
        backup = "`dest` is copied before it is replaced; rollback puts the old file back, or removes the file the step downloaded.",
        returns = &[("dest", "where the file went"), ("checksum_dest", "SHA-256 of the file"), ("status_code", "the HTTP status of a download"), ("url", "the URL, its password masked"), ("elapsed", "seconds the download took"), ("msg", "what happened")],
        examples = "- get_url:\n    url: https://example.com/app-2.1.tar.gz\n    dest: /srv/app/app-2.1.tar.gz\n    checksum: sha256:4f1c5e2a6b7d8e9f00112233445566778899aabbccddeeff0011223344556677\n- get_url:\n    url: https://repo.example.com/private/tool\n    dest: /usr/local/bin/tool\n    mode: \"0755\"\n    url_username: deploy\n    url_password: \"{{ lookup('env', 'REPO_PASSWORD') }}\"\n    force_basic_auth: true\n  no_log: true"
    )]
    pub struct GetUrlArgs {
        /// The URL (http, https or ftp).
        #[arg(required)]
        url: String,
        /// Destination file or directory on the host.
        #[arg(required, kind = Path)]
        dest: String,
        /// `ALGORITHM:HEX` the download must match (e.g. `sha256:...`), or `ALGORITHM:URL` of a
        /// checksum file (`sha256sum` output) listing the URL's file name; an existing `dest`
        /// that matches is not downloaded again.
        checksum: Option<String>,
        /// Permissions of the file.
        mode: Value,
        /// Owner of the file.
        owner: Option<String>,
        /// Group of the file.
        group: Option<String>,
        /// Request timeout in seconds.
        #[arg(default = "10")]
        timeout: i64,
        /// Download every time (replacing `dest` only when the content differs), even when
        /// `dest` exists or matches `checksum`.
        #[arg(default = "no")]
        force: bool,
        /// Extra request headers.
        #[arg(kind = Dict)]
        headers: Value,
        /// Verify TLS certificates.
        #[arg(default = "yes")]
        validate_certs: bool,
        /// User for HTTP basic authentication (needs curl on the host).
        #[arg(aliases = &["username"])]
        url_username: Option<String>,
        /// Password for HTTP basic authentication; sent to the host on stdin, never in a
        /// command line.
        #[arg(aliases = &["password"])]
        url_password: Option<String>,
        /// Send the credentials with the first request instead of after the server asks (401).
        #[arg(default = "no")]
        force_basic_auth: bool,
    }
}

/// Downloads. `$1` dest, `$2` timeout, `$3` checksum tool (empty: none), `$4` expected hex,
/// `$5` `yes` to skip TLS verification, `$6` mode, `$7` owner[:group], `$8` how many header
/// lines follow the URL on stdin, `$9` `yes` when credentials are in the config. Stdin: the URL
/// (one line), the headers (one line each), then curl's config (`url`, `header`, `user`...).
/// Prints `status CODE` (curl), `sha256 HEX`, `size BYTES`, then `same` when `dest` already had
/// that content (then it is kept).
const DOWNLOAD: &str = crate::host::GET_URL_DOWNLOAD;

/// Fetches a checksum file to stdout. Stdin as for [`DOWNLOAD`] (without headers for wget:
/// `$1` `yes` to skip TLS verification, `$2` timeout, `$3` header count, `$4` credentials).
const FETCH_SUMS: &str = crate::host::GET_URL_FETCH_SUMS;

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

/// What `checksum` says: the digest itself, or where to find it.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Expected {
    /// Lowercase hex.
    Hex(String),
    /// A checksum file's URL.
    Url(String),
}

/// `ALGO:HEX` or `ALGO:URL` → (tool, algo, digest). As Ansible, every non-word character of a
/// hex digest is dropped (a zero-width space pasted with it) before it must be hex.
fn parse_checksum(s: &str) -> Result<(&'static str, String, Expected), ModuleError> {
    let (algo, rest) = s.split_once(':').ok_or_else(|| {
        ModuleError::Args(format!(
            "The checksum parameter has to be in format <algorithm>:<checksum>: '{s}'"
        ))
    })?;
    let algo = algo.trim().to_ascii_lowercase();
    let tool = hash_tool(&algo)
        .ok_or_else(|| ModuleError::Args(format!("unsupported checksum algorithm '{algo}'")))?;
    if is_url(rest) {
        return Ok((tool, algo, Expected::Url(rest.trim().to_string())));
    }
    Ok((tool, algo, Expected::Hex(clean_hex(rest, s)?)))
}

fn clean_hex(raw: &str, shown: &str) -> Result<String, ModuleError> {
    let hex: String = raw
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == '_')
        .collect::<String>()
        .to_ascii_lowercase();
    if hex.is_empty() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ModuleError::Args(format!(
            "The checksum format is invalid: '{shown}'"
        )));
    }
    Ok(hex)
}

/// Ansible's `is_url`: a scheme it can fetch.
fn is_url(s: &str) -> bool {
    let s = s.trim().to_ascii_lowercase();
    ["http://", "https://", "ftp://", "file://"]
        .iter()
        .any(|p| s.starts_with(p))
}

/// Ansible's `parse_digest_lines`: the digest listed for `filename` in a checksum file
/// (`HEX  NAME`, `HEX *NAME`, or one bare digest for a file of one line).
fn digest_for(text: &str, filename: &str) -> Option<String> {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    if let [one] = lines.as_slice()
        && one.split_whitespace().count() == 1
    {
        return Some(one.trim().to_string());
    }
    lines.iter().find_map(|l| {
        let mut parts = l.split_whitespace();
        let (sum, name) = (parts.next()?, parts.next()?);
        let name = name.strip_prefix('*').unwrap_or(name);
        let name = name.strip_prefix("./").unwrap_or(name);
        (name == filename).then(|| sum.to_string())
    })
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

/// Ansible's `mask_url`: the URL with the password of its `user:password@` replaced by
/// `********`, for results and messages.
fn mask_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let auth_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let Some(at) = rest[..auth_end].rfind('@') else {
        return url.to_string();
    };
    match rest[..at].split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:********{}", &rest[at..]),
        None => url.to_string(),
    }
}

/// A value of curl's config file, quoted (`"..."` with `\\`, `\"` and control escapes).
fn curl_quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

struct Want {
    url: String,
    dest: String,
    checksum: Option<(&'static str, String, Expected)>,
    mode: Option<Value>,
    owner: Option<String>,
    group: Option<String>,
    force: bool,
    timeout: u64,
    insecure: bool,
    headers: Vec<String>,
    user: Option<String>,
    password: Option<String>,
    force_basic_auth: bool,
}

fn want(args: &Args) -> Result<Want, ModuleError> {
    let a = GetUrlArgs::parse(args)?;
    let url = a.url;
    let scheme = url.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
    if !matches!(scheme.as_deref(), Some("http" | "https" | "ftp")) {
        return Err(ModuleError::Args(format!(
            "url '{}' must start with http://, https:// or ftp://",
            mask_url(&url)
        )));
    }
    if url.contains(['\n', '\r']) {
        return Err(ModuleError::Args("url must be one line".into()));
    }
    let headers: Vec<String> = match &a.headers {
        Value::Object(m) => m
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => format!("{k}: {s}"),
                other => format!("{k}: {other}"),
            })
            .collect(),
        Value::Null => Vec::new(),
        other => {
            return Err(ModuleError::Args(format!(
                "argument 'headers' expects a mapping, found {other}"
            )));
        }
    };
    if headers.iter().any(|h| h.contains(['\n', '\r'])) {
        return Err(ModuleError::Args(
            "a header of get_url must be one line".into(),
        ));
    }
    let timeout = u64::try_from(a.timeout).map_err(|_| {
        ModuleError::Args(format!(
            "argument 'timeout' expects a non-negative integer, found {}",
            a.timeout
        ))
    })?;
    Ok(Want {
        url,
        dest: a.dest,
        checksum: a
            .checksum
            .filter(|s| !s.is_empty())
            .map(|s| parse_checksum(&s))
            .transpose()?,
        mode: Some(a.mode).filter(|m| !m.is_null()),
        owner: a.owner,
        group: a.group,
        force: a.force,
        timeout,
        insecure: !a.validate_certs,
        headers,
        // As Ansible: a password without a user is not used.
        password: a.url_password.filter(|_| a.url_username.is_some()),
        user: a.url_username,
        force_basic_auth: a.force_basic_auth,
    })
}

impl Want {
    /// The command's stdin for fetching `url`: the URL line, the header lines (for wget), then
    /// curl's config. Credentials and headers are here only, never in a command line.
    fn request_input(&self, url: &str) -> Vec<u8> {
        let mut s = format!("{url}\n");
        for h in &self.headers {
            s.push_str(h);
            s.push('\n');
        }
        s.push_str(&format!("url = {}\n", curl_quoted(url)));
        for h in &self.headers {
            s.push_str(&format!("header = {}\n", curl_quoted(h)));
        }
        if let Some(u) = &self.user {
            let cred = format!("{u}:{}", self.password.as_deref().unwrap_or_default());
            s.push_str(&format!("user = {}\n", curl_quoted(&cred)));
            // Without force_basic_auth, as urllib: credentials only when the server asks.
            s.push_str(if self.force_basic_auth {
                "basic\n"
            } else {
                "anyauth\n"
            });
        }
        s.into_bytes()
    }

    fn yes(b: bool) -> &'static str {
        if b { "yes" } else { "no" }
    }

    /// Fetches the checksum file of an `ALGO:URL` checksum (read-only: to stdout) and finds
    /// the digest of the URL's file.
    async fn digest_from_url(
        &self,
        tr: &mut HostView<'_>,
        ctx: &ModuleCtx<'_>,
        sums_url: &str,
    ) -> Result<String, ModuleError> {
        let cmd = Cmd::raw("set --")
            .arg(Self::yes(self.insecure))
            .arg(self.timeout.to_string())
            .arg(self.headers.len().to_string())
            .arg(Self::yes(self.user.is_some()))
            .op(FETCH_SUMS)
            .stdin(self.request_input(sums_url));
        let out = ctx.query(tr, cmd).await?;
        if out.status != 0 {
            return Err(failed(
                format!(
                    "cannot fetch the checksum file {} (rc {}): {}",
                    mask_url(sums_url),
                    out.status,
                    out.stderr_lossy().trim()
                ),
                Args::new(),
            ));
        }
        let name = url_file_name(&self.url).unwrap_or_default();
        let found = digest_for(&out.stdout_lossy(), &name).ok_or_else(|| {
            failed(
                format!(
                    "Unable to find a checksum for file '{name}' in '{}'",
                    mask_url(sums_url)
                ),
                Args::new(),
            )
        })?;
        clean_hex(&found, &found)
    }
}

/// What `apply` does.
enum Plan {
    Download {
        dest: String,
        /// The expected digest (looked up in a checksum file at check time).
        hex: Option<String>,
        /// Whether mode/owner/group of an existing `dest` differ from what is asked (then a
        /// download with the same content is still a change).
        attrs_differ: bool,
    },
    Attrs {
        dest: String,
        cmds: Vec<Cmd>,
    },
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
    tr: &mut HostView<'_>,
    args: &Args,
    ctx: &ModuleCtx<'_>,
) -> Result<Verdict, ModuleError> {
    let w = want(args)?;
    let shown_url = mask_url(&w.url);
    let hex = match &w.checksum {
        Some((_, _, Expected::Hex(h))) => Some(h.clone()),
        Some((_, _, Expected::Url(u))) => Some(w.digest_from_url(tr, ctx, u).await?),
        None => None,
    };
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
        .query_batch(tr, &batch)
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
        && !w.force
        && match &hex {
            Some(want) => current.as_deref() == Some(want.as_str()),
            None => true,
        };
    let mut r = result([
        ("url", Value::from(shown_url.clone())),
        ("dest", Value::from(dest.clone())),
    ]);
    let attrs = if st.kind == PathKind::File {
        Some(attr_fixes(&w, &dest, &st)?)
    } else {
        None
    };
    if content_ok {
        let (changes, fixes) = attrs.unwrap_or_default();
        if let Some(s) = &st.sha256 {
            r.insert("checksum_dest".into(), Value::from(s.clone()));
        }
        if changes.is_empty() {
            r.insert("msg".into(), Value::from("file already exists"));
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
        after: format!("downloaded from {shown_url}"),
    };
    Ok(Verdict::Drift(Drift::new(
        vec![change],
        Plan::Download {
            dest,
            hex,
            attrs_differ: attrs.is_some_and(|(c, _)| !c.is_empty()),
        },
    )))
}

async fn apply_get_url(
    tr: &mut AnyTransport,
    args: &Args,
    ctx: &ModuleCtx<'_>,
    drift: &Drift,
) -> Result<Args, ModuleError> {
    let w = want(args)?;
    let shown_url = mask_url(&w.url);
    let plan = drift
        .plan::<Plan>()
        .ok_or_else(|| ModuleError::Args("get_url: apply without a plan from check".into()))?;
    let clock = std::time::Instant::now();
    let (dest, hex, attrs_differ) = match plan {
        Plan::Attrs { dest, cmds } => {
            let cmd = cmds
                .iter()
                .cloned()
                .reduce(Cmd::and)
                .unwrap_or(Cmd::raw(":"));
            ctx.run_ok(tr, cmd).await?;
            return Ok(result([
                ("url", Value::from(shown_url)),
                ("dest", Value::from(dest.clone())),
                (
                    "msg",
                    Value::from("file already exists but file attributes changed"),
                ),
            ]));
        }
        Plan::Download {
            dest,
            hex,
            attrs_differ,
        } => (dest.clone(), hex.clone(), *attrs_differ),
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
    let (tool, hex) = match (&w.checksum, hex) {
        (Some((t, _, _)), Some(h)) => (t.to_string(), h),
        _ => (String::new(), String::new()),
    };
    let cmd = Cmd::raw("set --")
        .arg(dest.clone())
        .arg(w.timeout.to_string())
        .arg(tool)
        .arg(hex)
        .arg(Want::yes(w.insecure))
        .arg(mode)
        .arg(owner)
        .arg(w.headers.len().to_string())
        .arg(Want::yes(w.user.is_some()))
        .op(DOWNLOAD)
        .stdin(w.request_input(&w.url));
    let out = ctx.run(tr, cmd).await?;
    let mut r = result([
        ("url", Value::from(shown_url)),
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
    if text.lines().any(|l| l == "same") && !attrs_differ {
        // `force`: downloaded again, and the same content (Ansible's changed=false).
        r.insert("changed".into(), Value::from(false));
    }
    // Ansible's message and status, from urllib: `OK (N bytes)`.
    let size = text.lines().find_map(|l| l.strip_prefix("size "));
    let msg = size.map_or_else(|| "OK".to_string(), |n| format!("OK ({} bytes)", n.trim()));
    r.insert("msg".into(), Value::from(msg));
    let status = text
        .lines()
        .find_map(|l| l.strip_prefix("status "))
        .and_then(|c| c.trim().parse::<u16>().ok())
        .unwrap_or(200);
    r.insert("status_code".into(), Value::from(status));
    Ok(r)
}

impl Module for GetUrl {
    fn name(&self) -> &'static str {
        "get_url"
    }

    fn check<'a>(
        &'a self,
        tr: &'a mut HostView<'_>,
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
        GetUrlArgs::parse(args)
            .map(|a| vec![Resource::Path(a.dest)])
            .unwrap_or_default()
    }

    /// With `force` every run downloads: whether that changed anything is only known after
    /// (the same content is `ok`, as in Ansible), so the step is not verified by a second
    /// check, which would always see the forced download again.
    fn converges(&self, args: &Args) -> bool {
        GetUrlArgs::parse(args).map_or(true, |a| !a.force)
    }

    /// Under `--check`, a forced download is predicted as a change (Ansible's check mode
    /// compares with an empty download and reports it changed).
    fn unpredicted(&self, _args: &Args, _drift: &Drift) -> Unpredicted {
        Unpredicted {
            skip: false,
            result: Args::new(),
        }
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
        assert_eq!(r["msg"], json!(format!("OK ({} bytes)", BODY.len())));
        assert_eq!(r["status_code"], json!(200));
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
                GetUrl
                    .check(&mut HostView::of(&mut tr), &args(bad), &c)
                    .await,
                Err(ModuleError::Args(_))
            ));
        }
        assert_eq!(
            url_file_name("https://h/a/b.tgz?x=/y#z").as_deref(),
            Some("b.tgz")
        );
        assert_eq!(url_file_name("https://h/"), None);
    }

    /// Serves `routes` (path → body) on 127.0.0.1; a path missing is a 404. With `auth`, a
    /// request without `Authorization: Basic AUTH` gets a 401 asking for basic authentication.
    /// Returns the port and every request's head.
    fn serve_routes(
        routes: Vec<(&'static str, Vec<u8>)>,
        auth: Option<&'static str>,
    ) -> (u16, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = seen.clone();
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
                log.lock().unwrap().push(head.clone());
                let path = head
                    .split_whitespace()
                    .nth(1)
                    .unwrap_or_default()
                    .to_string();
                let authorized = auth.is_none_or(|a| {
                    head.lines()
                        .any(|l| l.trim() == format!("Authorization: Basic {a}"))
                });
                let (status, extra, body): (&str, &str, &[u8]) = if !authorized {
                    (
                        "401 Unauthorized",
                        "WWW-Authenticate: Basic realm=\"t\"\r\n",
                        b"no",
                    )
                } else {
                    match routes.iter().find(|(p, _)| *p == path) {
                        Some((_, b)) => ("200 OK", "", b),
                        None => ("404 Not Found", "", b"nope"),
                    }
                };
                let head = format!(
                    "HTTP/1.1 {status}\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = s.write_all(head.as_bytes());
                let _ = s.write_all(body);
            }
        });
        (port, seen)
    }

    /// `url_username`/`url_password` reach the server (after its 401, as urllib does without
    /// `force_basic_auth`; with the first request with it) and never a command line; the URL's
    /// own password is masked in the result.
    #[tokio::test]
    async fn basic_auth_credentials_go_on_stdin_only() {
        // base64("deploy:s3cr3t pass")
        let (port, seen) = serve_routes(
            vec![("/f", BODY.to_vec())],
            Some("ZGVwbG95OnMzY3IzdCBwYXNz"),
        );
        let dir = tempfile::tempdir().unwrap();
        let c = ctx(dir.path(), None, no_proxy());
        let mut tr = transport();
        let dest = dir.path().join("f");
        let url = format!("http://127.0.0.1:{port}/f");
        let a = args(json!({"url": url, "dest": dest, "url_username": "deploy",
            "url_password": "s3cr3t pass", "headers": {"X-Token": "tok3n"}}));
        let ran = check_apply(&GetUrl, &mut tr, &a, &c).await;
        let Ran::Applied(_, Ok(r)) = ran else {
            panic!("{ran:?}")
        };
        assert_eq!(std::fs::read(&dest).unwrap(), BODY);
        assert_eq!(r["url"], json!(url));
        let heads = seen.lock().unwrap().clone();
        assert_eq!(heads.len(), 2, "{heads:?}");
        assert!(!heads[0].contains("Authorization"), "{heads:?}");
        assert!(heads[1].contains("X-Token: tok3n"), "{heads:?}");
        for line in recorded(&tr) {
            assert!(
                !line.contains("s3cr3t") && !line.contains("tok3n"),
                "{line}"
            );
        }
        // force_basic_auth: the first request carries them.
        std::fs::remove_file(&dest).unwrap();
        seen.lock().unwrap().clear();
        let a = args(json!({"url": url, "dest": dest, "url_username": "deploy",
            "url_password": "s3cr3t pass", "force_basic_auth": true}));
        assert!(matches!(
            check_apply(&GetUrl, &mut tr, &a, &c).await,
            Ran::Applied(_, Ok(_))
        ));
        assert_eq!(seen.lock().unwrap().len(), 1);
        // Wrong password: the request fails, nothing is left behind.
        std::fs::remove_file(&dest).unwrap();
        let a = args(json!({"url": url, "dest": dest, "url_username": "deploy",
            "url_password": "wrong"}));
        let r = check_apply(&GetUrl, &mut tr, &a, &c).await;
        assert!(
            matches!(r, Ran::Applied(_, Err(ref m)) if m.contains("Request failed")),
            "{r:?}"
        );
        assert!(!dest.exists());
        assert_eq!(
            mask_url("https://u:p%40ss@h:8/x?y=a@b"),
            "https://u:********@h:8/x?y=a@b"
        );
        assert_eq!(mask_url("https://u@h/x"), "https://u@h/x");
        assert_eq!(mask_url("https://h/x@y"), "https://h/x@y");
        assert_eq!(curl_quoted("a\"b\\c\nd"), "\"a\\\"b\\\\c\\nd\"");
    }

    /// `force: yes` downloads every time but is a change only when the content differs (the
    /// step reports `changed: false` from apply, and the module does not claim to converge, so
    /// the executor does not verify it by a second check that would see drift again).
    #[tokio::test]
    async fn force_with_the_same_content_is_not_a_change() {
        let (port, seen) = serve_routes(vec![("/f", BODY.to_vec())], None);
        let dir = tempfile::tempdir().unwrap();
        let c = ctx(dir.path(), None, no_proxy());
        let mut tr = transport();
        let dest = dir.path().join("f");
        let a = args(
            json!({"url": format!("http://127.0.0.1:{port}/f"), "dest": dest,
            "force": true}),
        );
        assert!(!GetUrl.converges(&a));
        assert!(GetUrl.converges(&args(json!({"url": "http://h/f", "dest": "/f"}))));
        let Ran::Applied(_, Ok(r)) = check_apply(&GetUrl, &mut tr, &a, &c).await else {
            panic!()
        };
        assert_eq!(r.get("changed"), None, "{r:?}");
        let Ran::Applied(_, Ok(r)) = check_apply(&GetUrl, &mut tr, &a, &c).await else {
            panic!()
        };
        assert_eq!(r["changed"], json!(false), "{r:?}");
        assert_eq!(seen.lock().unwrap().len(), 2);
        // Different content on the host: replaced, a change.
        std::fs::write(&dest, "old\n").unwrap();
        let Ran::Applied(_, Ok(r)) = check_apply(&GetUrl, &mut tr, &a, &c).await else {
            panic!()
        };
        assert_eq!(r.get("changed"), None, "{r:?}");
        assert_eq!(std::fs::read(&dest).unwrap(), BODY);
        // Same content but another mode: a change, the mode fixed.
        let a = args(
            json!({"url": format!("http://127.0.0.1:{port}/f"), "dest": dest,
            "force": true, "mode": "0600"}),
        );
        let Ran::Applied(_, Ok(r)) = check_apply(&GetUrl, &mut tr, &a, &c).await else {
            panic!()
        };
        assert_eq!(r.get("changed"), None, "{r:?}");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&dest).unwrap().permissions().mode() & 0o7777,
            0o600
        );
    }

    /// `checksum: sha256:URL` looks the digest up in a `sha256sum` file (by the URL's file
    /// name); a matching file is in sync, a missing entry fails naming the file.
    #[tokio::test]
    async fn checksum_from_a_checksum_file_url() {
        let sum = hex::encode(Sha256::digest(BODY));
        let sums = format!("{}  other.tar\n{sum} *app.tar\n", "0".repeat(64));
        let (port, _) = serve_routes(
            vec![
                ("/app.tar", BODY.to_vec()),
                ("/SHA256SUMS", sums.into_bytes()),
            ],
            None,
        );
        let dir = tempfile::tempdir().unwrap();
        let c = ctx(dir.path(), None, no_proxy());
        let mut tr = transport();
        let dest = dir.path().join("app.tar");
        let base = format!("http://127.0.0.1:{port}");
        let a = args(json!({"url": format!("{base}/app.tar"), "dest": dest,
            "checksum": format!("sha256:{base}/SHA256SUMS")}));
        assert!(matches!(
            check_apply(&GetUrl, &mut tr, &a, &c).await,
            Ran::Applied(_, Ok(_))
        ));
        assert!(matches!(
            check_apply(&GetUrl, &mut tr, &a, &c).await,
            Ran::InSync(_)
        ));
        let a = args(json!({"url": format!("{base}/nothere.tar"), "dest": dest,
            "checksum": format!("sha256:{base}/SHA256SUMS")}));
        let r = check_apply(&GetUrl, &mut tr, &a, &c).await;
        assert!(
            matches!(r, Ran::CheckFailed(ref m, _) if m.contains("Unable to find a checksum for file 'nothere.tar'")),
            "{r:?}"
        );
        assert_eq!(digest_for("abc\n", "x").as_deref(), Some("abc"));
        assert_eq!(digest_for("abc  ./x\n", "x").as_deref(), Some("abc"));
        // A zero-width space pasted with the digest is dropped, as Ansible does.
        let (_, _, d) = parse_checksum("SHA256:ab\u{200b}CD").unwrap();
        assert_eq!(d, Expected::Hex("abcd".into()));
    }

    /// Arguments Ansible has and rdeploy does not honour are refused by name.
    #[test]
    fn unsupported_arguments_are_refused() {
        for k in [
            "backup",
            "tmp_dest",
            "use_netrc",
            "client_cert",
            "http_agent",
        ] {
            let mut a = args(json!({"url": "http://h/f", "dest": "/f"}));
            a.insert(k.into(), json!("x"));
            let e = GetUrlArgs::parse(&a).unwrap_err().to_string();
            assert!(e.contains("not supported by rdeploy"), "{e}");
        }
    }

    /// A host without curl downloads with wget (headers still read from stdin), and refuses
    /// credentials, which wget would take in its command line.
    #[tokio::test]
    async fn wget_when_there_is_no_curl() {
        if std::process::Command::new("wget")
            .arg("--version")
            .output()
            .is_err()
        {
            return;
        }
        let (port, seen) = serve_routes(vec![("/f", BODY.to_vec())], None);
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        for tool in [
            "sh",
            "wget",
            "mktemp",
            "dirname",
            "sha256sum",
            "chmod",
            "chown",
            "mv",
            "rm",
            "cat",
            "stat",
            "test",
            "[",
        ] {
            let found = ["/usr/bin", "/bin"]
                .iter()
                .map(|d| std::path::Path::new(d).join(tool))
                .find(|p| p.exists());
            if let Some(p) = found {
                let _ = std::os::unix::fs::symlink(p, bin.join(tool));
            }
        }
        let mut env = no_proxy();
        env.push(("PATH".into(), bin.display().to_string()));
        let c = ctx(dir.path(), None, env);
        let mut tr = transport();
        let dest = dir.path().join("f");
        let url = format!("http://127.0.0.1:{port}/f");
        let a = args(json!({"url": url, "dest": dest, "headers": {"X-A": "b c"}}));
        let ran = check_apply(&GetUrl, &mut tr, &a, &c).await;
        assert!(matches!(ran, Ran::Applied(_, Ok(_))), "{ran:?}");
        assert_eq!(std::fs::read(&dest).unwrap(), BODY);
        let heads = seen.lock().unwrap().clone();
        assert!(heads[0].contains("X-A: b c"), "{heads:?}");
        assert!(
            heads[0].to_lowercase().contains("user-agent: wget"),
            "{heads:?}"
        );
        std::fs::remove_file(&dest).unwrap();
        let a = args(json!({"url": url, "dest": dest, "url_username": "u", "url_password": "p"}));
        let ran = check_apply(&GetUrl, &mut tr, &a, &c).await;
        assert!(
            matches!(ran, Ran::Applied(_, Err(ref m)) if m.contains("needs curl")),
            "{ran:?}"
        );
    }
}
