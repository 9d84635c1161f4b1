//! `authorized_key` (`ansible.posix.authorized_key`): SSH public keys present in (or absent
//! from) a user's `authorized_keys` file.
//!
//! Owns Ansible's rules, ported from its `parsekey`/`parseoptions`/`enforce_state`/
//! `serialize`: lines are keyed by the base64 key, a key whose type, options or comment differ
//! is replaced (moved after the others), new keys go after the existing ones in the order
//! given, `exclusive` drops every other line, and a written file has every key line rebuilt as
//! `OPTIONS TYPE KEY COMMENT` (so a key without a comment ends in a space, as Ansible writes
//! it). The file is `~USER/.ssh/authorized_keys` unless `path` says otherwise; the executor
//! expands `~USER` before the run ([`Module::implied_paths`]), so backups name the same file.
//! The host is read in one round trip (the user's passwd entry, the folder, the file, and a
//! `file://` key or an `https://` key through curl/wget); the new content is computed here and
//! written by one `put` (mode 0600, the user's uid and gid). It must not format shell lines.

use serde_json::Value;

use crate::modules::files::common::{READ_KEEP, as_text, failed, parent_of, run_batch, take};
use crate::modules::runtime::{
    Args, BoxFut, Change, Drift, HostView, Module, ModuleCtx, ModuleError, Resource, Verdict,
};
use crate::transport::cmd::{
    self, Cmd, PathKind, chmod, chown, if_program, mkdir_p, stat_attrs_cmd, stat_resolved_attrs_cmd,
};
use crate::transport::{AnyTransport, FileAttrs, Payload, Transport, TransportError};

/// The `authorized_key` module.
pub struct AuthorizedKey;

/// Where the executor puts the default file, `~USER/.ssh/authorized_keys` expanded.
const KEYFILE: &str = "_keyfile";

crate::module_args! {
    /// Adds or removes SSH public keys in a user's `authorized_keys` file
    /// (`~USER/.ssh/authorized_keys`, the home from the host's user database, unless `path`
    /// names another). When it writes, the file becomes mode 0600 owned by the user and, with
    /// `manage_dir`, its folder is created (0700) and given to the user, as Ansible does. Keys
    /// may come as text (one per line), `file://PATH` (a file on the host) or an `https://` URL
    /// fetched on the host with curl or wget (Ansible fetches it on the host too). Differences
    /// from Ansible: with `follow: true` and a symlink at the path, rollback restores the link,
    /// not the content of the file it points to; under `--check` the user must exist even when
    /// `path` is given; a kept comment or unparsable last line without a final newline gets one
    /// before a key is added after it (Ansible would join the two lines).
    #[module(
        name = "authorized_key",
        backup = "The authorized_keys file is copied (content, mode, owner) before it is changed, and with manage_dir its folder's mode and owner (or its absence) are recorded; rollback puts the file back byte for byte, or removes it and the folder if the step created them.",
        returns = &[
            ("keyfile", "the authorized_keys file"),
            ("user", "the user"),
            ("key", "the key(s) as given"),
            ("path", "the path given, or null"),
            ("state", "present or absent"),
            ("exclusive", "whether other keys were removed"),
            ("manage_dir", "whether the folder was managed"),
            ("key_options", "the options given"),
            ("comment", "the comment given"),
            ("validate_certs", "as given"),
            ("follow", "as given"),
        ],
        examples = "- authorized_key:\n    user: deploy\n    key: \"{{ lookup('file', 'files/deploy.pub') }}\"\n- ansible.posix.authorized_key:\n    user: deploy\n    key: \"{{ keys | join('\\n') }}\"\n    exclusive: true\n    key_options: 'no-port-forwarding,from=\"10.0.1.1\"'"
    )]
    pub struct AuthorizedKeyArgs {
        /// The user whose authorized_keys file is edited (looked up on the host).
        #[arg(required)]
        user: String,
        /// The public key(s), one per line (blank lines and `#` lines are skipped); or
        /// `https://...` (fetched on the host); or `file://PATH`, a file on the host.
        #[arg(required)]
        key: String,
        /// Another authorized_keys file; by default `.ssh/authorized_keys` in the user's home.
        #[arg(kind = Path)]
        path: Option<String>,
        /// Create the file's folder (0700) and give it to the user when writing. Set it to false
        /// for a `path` outside the user's home.
        #[arg(default = "yes")]
        manage_dir: bool,
        /// Whether the key(s) (with these options) should be in the file.
        #[arg(default = "present", choices = &["absent", "present"])]
        state: String,
        /// SSH key options put before each key (`no-port-forwarding,from="10.0.1.1"`).
        key_options: Option<String>,
        /// Remove every line that is not one of the given keys (comments too).
        #[arg(default = "no")]
        exclusive: bool,
        /// Check the TLS certificate of an `https://` key source.
        #[arg(default = "yes")]
        validate_certs: bool,
        /// Replace the keys' comment; by default the key's own comment is kept.
        comment: Option<String>,
        /// Write the file a symlink at the path points to, instead of replacing the link.
        #[arg(default = "no")]
        follow: bool,
    }
}

/// The key types Ansible recognises (`VALID_SSH2_KEY_TYPES`).
const KEY_TYPES: &[&str] = &[
    "sk-ecdsa-sha2-nistp256@openssh.com",
    "sk-ecdsa-sha2-nistp256-cert-v01@openssh.com",
    "webauthn-sk-ecdsa-sha2-nistp256@openssh.com",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp256-cert-v01@openssh.com",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp384-cert-v01@openssh.com",
    "ecdsa-sha2-nistp521",
    "ecdsa-sha2-nistp521-cert-v01@openssh.com",
    "sk-ssh-ed25519@openssh.com",
    "sk-ssh-ed25519-cert-v01@openssh.com",
    "ssh-ed25519",
    "ssh-ed25519-cert-v01@openssh.com",
    "ssh-dss",
    "ssh-rsa",
    "ssh-xmss@openssh.com",
    "ssh-xmss-cert-v01@openssh.com",
    "rsa-sha2-256",
    "rsa-sha2-512",
    "ssh-rsa-cert-v01@openssh.com",
    "rsa-sha2-256-cert-v01@openssh.com",
    "rsa-sha2-512-cert-v01@openssh.com",
    "ssh-dss-cert-v01@openssh.com",
];

/// Key options in their order, each `NAME` or `NAME=VALUE` (Ansible's `keydict`).
type Options = Vec<(String, Option<String>)>;

/// Whether two option lists are equal as Ansible's `keydict`s compare: each name's values in
/// order, whatever the order of the names.
fn same_options(a: &Options, b: &Options) -> bool {
    grouped(a) == grouped(b)
}

/// Each option name's values, in order.
fn grouped(o: &Options) -> std::collections::BTreeMap<&str, Vec<Option<&str>>> {
    let mut m: std::collections::BTreeMap<&str, Vec<Option<&str>>> = Default::default();
    for (k, v) in o {
        m.entry(k.as_str()).or_default().push(v.as_deref());
    }
    m
}

/// One line of the file, as Ansible's `parsekey` sees it.
#[derive(Clone, Debug)]
enum Line {
    /// A key: its type, options and comment (the base64 key is the entry's id).
    Key {
        kind: String,
        options: Options,
        comment: String,
    },
    /// A comment, blank or unparsable line, written back as it was.
    Skipped(String),
}

impl Line {
    fn same(&self, other: &Line) -> bool {
        match (self, other) {
            (
                Line::Key {
                    kind: k1,
                    options: o1,
                    comment: c1,
                },
                Line::Key {
                    kind: k2,
                    options: o2,
                    comment: c2,
                },
            ) => k1 == k2 && c1 == c2 && same_options(o1, o2),
            (Line::Skipped(a), Line::Skipped(b)) => a == b,
            _ => false,
        }
    }
}

/// An entry of the file's ordered table: (id, line, rank).
type Entry = (String, Line, usize);

/// Ansible's `parseoptions`: split on commas outside double or single quotes.
fn parse_options(text: &str) -> Options {
    // The runs `((?:[^,"']|"[^"]*"|'[^']*')+)` matches, and what lies between them.
    let b = text.as_bytes();
    let mut parts: Vec<String> = Vec::new();
    let mut seps: Vec<String> = Vec::new();
    let (mut i, mut last_end) = (0, 0);
    while i < b.len() {
        let start = i;
        let mut j = i;
        loop {
            match b.get(j) {
                Some(b',') | None => break,
                Some(q @ (b'"' | b'\'')) => match b[j + 1..].iter().position(|c| c == q) {
                    Some(k) => j += k + 2,
                    None => break,
                },
                Some(_) => j += 1,
            }
        }
        if j > start {
            seps.push(text[last_end..start].to_string());
            parts.push(text[start..j].to_string());
            last_end = j;
            i = j;
        } else {
            i += 1;
        }
    }
    // `regex.split(options)[1:-1]`: each run, with the separators between runs.
    let mut out = Options::new();
    for (n, p) in parts.iter().enumerate() {
        if n > 0 {
            let sep = &seps[n];
            if sep != "," {
                out.push((sep.clone(), None));
            }
        }
        match p.split_once('=') {
            Some((k, v)) => out.push((k.to_string(), Some(v.to_string()))),
            None if p != "," => out.push((p.clone(), None)),
            None => {}
        }
    }
    out
}

/// Words split on spaces, tabs, CR and LF (Python's `shlex` with no quotes or comments).
fn words(text: &str) -> Vec<&str> {
    text.split([' ', '\t', '\r', '\n'])
        .filter(|w| !w.is_empty())
        .collect()
}

/// Ansible's `parsekey`: `Some((id, line))`, `None` when no key type is found; an error for a
/// key type without a key after it.
fn parse_key(raw: &str) -> Option<Result<(String, Line), String>> {
    let raw = raw.replace(r"\#", "#");
    let parts = words(&raw);
    if parts.first() == Some(&"#") {
        return Some(Ok((raw.clone(), Line::Skipped(raw))));
    }
    let ti = parts.iter().position(|p| KEY_TYPES.contains(p))?;
    let options = if ti > 0 {
        parse_options(&parts[..ti].join(" "))
    } else {
        Options::new()
    };
    let Some(key) = parts.get(ti + 1) else {
        return Some(Err(format!(
            "a {} key without its key text: {}",
            parts[ti],
            raw.trim_end()
        )));
    };
    Some(Ok((
        key.to_string(),
        Line::Key {
            kind: parts[ti].to_string(),
            options,
            comment: parts[ti + 2..].join(" "),
        },
    )))
}

/// Python's `str.splitlines(keepends)`.
fn py_splitlines(text: &str, keepends: bool) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut it = text.char_indices().peekable();
    while let Some((i, c)) = it.next() {
        let is_break = matches!(
            c,
            '\n' | '\r'
                | '\x0b'
                | '\x0c'
                | '\x1c'
                | '\x1d'
                | '\x1e'
                | '\u{85}'
                | '\u{2028}'
                | '\u{2029}'
        );
        if !is_break {
            continue;
        }
        let mut end = i + c.len_utf8();
        if c == '\r'
            && let Some((_, '\n')) = it.peek()
        {
            it.next();
            end += 1;
        }
        out.push(if keepends {
            &text[start..end]
        } else {
            &text[start..i]
        });
        start = end;
    }
    if start < text.len() {
        out.push(&text[start..]);
    }
    out
}

/// The position of `id` in the table.
fn find(table: &[Entry], id: &str) -> Option<usize> {
    table.iter().position(|(i, _, _)| i == id)
}

/// Ansible's `parsekeys`: a table keyed by key (or by the line, for other lines), in the order
/// first seen; a key seen twice keeps its last line and rank.
fn parse_file(text: &str) -> Result<Vec<Entry>, String> {
    let mut table: Vec<Entry> = Vec::new();
    for (rank, line) in py_splitlines(text, true).into_iter().enumerate() {
        let (id, l) = match parse_key(line) {
            Some(r) => r?,
            None => (line.to_string(), Line::Skipped(line.to_string())),
        };
        match find(&table, &id) {
            Some(i) => table[i] = (id, l, rank),
            None => table.push((id, l, rank)),
        }
    }
    Ok(table)
}

/// Ansible's `serialize`: the lines ordered by rank.
fn serialize(table: &[Entry]) -> String {
    let mut sorted: Vec<&Entry> = table.iter().collect();
    sorted.sort_by_key(|(_, _, rank)| *rank);
    let mut out = String::new();
    for (id, line, _) in sorted {
        // A kept last line without its newline is not joined to what follows (a deviation).
        if !out.is_empty() && !out.ends_with(['\n', '\r']) {
            out.push('\n');
        }
        match line {
            Line::Skipped(text) => out.push_str(text),
            Line::Key {
                kind,
                options,
                comment,
            } => {
                let opts: Vec<String> = options
                    .iter()
                    .map(|(k, v)| match v {
                        Some(v) => format!("{k}={v}"),
                        None => k.clone(),
                    })
                    .collect();
                if !opts.is_empty() {
                    out.push_str(&opts.join(","));
                    out.push(' ');
                }
                out.push_str(&format!("{kind} {id} {comment}\n"));
            }
        }
    }
    out
}

/// Ansible's `enforce_state` on the file's text: the new text, or `None` when nothing changes.
fn enforce(existing: &str, keys: &str, a: &AuthorizedKeyArgs) -> Result<Option<String>, String> {
    let present = a.state == "present";
    let new_keys: Vec<&str> = py_splitlines(keys, false)
        .into_iter()
        .filter(|s| !s.is_empty() && !s.starts_with('#'))
        .collect();
    let mut table = parse_file(existing)?;
    let max_rank = table.len();
    let mut to_exist: Vec<String> = Vec::new();
    let mut write = false;
    for (rank, new) in new_keys.iter().enumerate() {
        let invalid = || format!("invalid key specified: {new}");
        let (id, mut line) = match parse_key(new) {
            Some(Ok((id, l @ Line::Key { .. }))) => (id, l),
            _ => return Err(invalid()),
        };
        if let Line::Key {
            options, comment, ..
        } = &mut line
        {
            if let Some(o) = &a.key_options {
                *options = parse_options(o);
            }
            if let Some(c) = &a.comment {
                c.clone_into(comment);
            }
        }
        let mut matched = false;
        if let Some(i) = find(&table, &id) {
            if present && !table[i].1.same(&line) {
                table.remove(i);
                write = true;
            } else {
                matched = true;
            }
        }
        if present {
            to_exist.push(id.clone());
            if !matched {
                table.push((id, line, max_rank + rank));
                write = true;
            }
        } else if matched && let Some(i) = find(&table, &id) {
            table.remove(i);
            write = true;
        }
    }
    if present && a.exclusive {
        let before = table.len();
        table.retain(|(id, _, _)| to_exist.contains(id));
        write |= table.len() != before;
    }
    Ok(write.then(|| serialize(&table)))
}

/// The user's passwd entry: (uid, gid, home).
fn passwd_entry(out: &crate::transport::Output) -> Option<(u32, u32, String)> {
    let text = out.stdout_lossy();
    let f: Vec<&str> = text.lines().next()?.split(':').collect();
    match f.as_slice() {
        [_, _, uid, gid, _, home, ..] => {
            Some((uid.parse().ok()?, gid.parse().ok()?, home.to_string()))
        }
        _ => None,
    }
}

/// Where the keys come from.
enum Source {
    /// Given as text.
    Text,
    /// `https://...`, fetched on the host.
    Url(String),
    /// `file://PATH`: a file on the host.
    File(String),
}

fn source_of(key: &str) -> Source {
    if key.starts_with("http") {
        return Source::Url(key.to_string());
    }
    if key.starts_with("file") {
        // `urlparse(key).path`: after `file:` and `//host`, before `?` or `#`.
        let rest = key.strip_prefix("file:").unwrap_or(key);
        let rest = match rest.strip_prefix("//") {
            Some(r) => r.find('/').map_or("", |i| &r[i..]),
            None => rest,
        };
        let path = rest.split(['?', '#']).next().unwrap_or_default();
        return Source::File(path.to_string());
    }
    Source::Text
}

/// The command fetching or reading the keys, if they are not text.
fn source_cmd(src: &Source, validate_certs: bool) -> Option<Cmd> {
    match src {
        Source::Text => None,
        Source::Url(u) => {
            let (curl, wget) = if validate_certs {
                (Cmd::raw("curl -fsSL --"), Cmd::raw("wget -q -O - --"))
            } else {
                (
                    Cmd::raw("curl -fsSL -k --"),
                    Cmd::raw("wget -q -O - --no-check-certificate --"),
                )
            };
            Some(if_program("curl", curl.arg(u.clone()), wget.arg(u.clone())))
        }
        // 2: missing, 3: not a regular file, else cat's status.
        Source::File(p) => Some(Cmd::raw("set --").arg(p.clone()).op(
            r#"; if ! [ -e "$1" ]; then exit 2; elif ! [ -f "$1" ]; then exit 3; fi; cat -- "$1""#,
        )),
    }
}

/// What `apply` does, found by `check`.
#[derive(Debug)]
struct Plan {
    /// Where the content is written (the link's target with `follow`).
    target: String,
    /// The folder to create and give to the user (`manage_dir`), and whether it exists.
    dir: Option<(String, bool)>,
    /// The file (as followed) exists.
    file_exists: bool,
    uid: u32,
    gid: u32,
    content: String,
    result: Args,
}

fn result_of(a: &AuthorizedKeyArgs, keyfile: &str) -> Args {
    let opt = |v: &Option<String>| v.clone().map_or(Value::Null, Value::from);
    let mut r = Args::new();
    r.insert("user".into(), Value::from(a.user.clone()));
    r.insert("key".into(), Value::from(a.key.clone()));
    r.insert("path".into(), opt(&a.path));
    r.insert("manage_dir".into(), Value::from(a.manage_dir));
    r.insert("state".into(), Value::from(a.state.clone()));
    r.insert("key_options".into(), opt(&a.key_options));
    r.insert("exclusive".into(), Value::from(a.exclusive));
    r.insert("validate_certs".into(), Value::from(a.validate_certs));
    r.insert("comment".into(), opt(&a.comment));
    r.insert("follow".into(), Value::from(a.follow));
    r.insert("keyfile".into(), Value::from(keyfile.to_string()));
    r
}

/// The file named by the arguments: `path`, else the executor's expansion of
/// `~USER/.ssh/authorized_keys`; `None` when neither (the home is then looked up here).
fn named_file(a: &AuthorizedKeyArgs, args: &Args) -> Option<String> {
    a.path.clone().or_else(|| {
        args.get(KEYFILE)
            .and_then(Value::as_str)
            .filter(|p| p.starts_with('/'))
            .map(str::to_string)
    })
}

async fn check(
    tr: &mut HostView<'_>,
    args: &Args,
    ctx: &ModuleCtx<'_>,
) -> Result<Verdict, ModuleError> {
    let a = AuthorizedKeyArgs::parse(args)?;
    let getent = Cmd::raw("getent passwd --").arg(a.user.clone());
    let lookup_failed = || {
        failed(format!(
            "Failed to lookup user {}: \"getpwnam(): name not found: '{}'\"",
            a.user, a.user
        ))
    };
    let keyfile = match named_file(&a, args) {
        Some(k) => k,
        None => {
            let out = ctx.query(tr, getent.clone()).await?;
            let (_, _, home) = passwd_entry(&out).ok_or_else(lookup_failed)?;
            format!("{}/.ssh/authorized_keys", home.trim_end_matches('/'))
        }
    };
    let dir = parent_of(&keyfile).to_string();
    let src = source_of(&a.key);
    let mut cmds = vec![
        getent,
        stat_attrs_cmd(&dir),
        stat_resolved_attrs_cmd(&keyfile),
        crate::transport::cmd::read_following_cmd(&keyfile),
        cmd::realpath_cmd(&keyfile),
    ];
    cmds.extend(source_cmd(&src, a.validate_certs));
    let mut outs = run_batch(tr, ctx, &cmds, READ_KEEP).await?.into_iter();
    let (pw, dir_st, file_st, content, real) = (
        take(&mut outs)?,
        take(&mut outs)?,
        take(&mut outs)?,
        take(&mut outs)?,
        take(&mut outs)?,
    );
    let (uid, gid, _) = passwd_entry(&pw).ok_or_else(lookup_failed)?;
    let keys = match &src {
        Source::Text => a.key.clone(),
        Source::Url(u) => {
            let out = take(&mut outs)?;
            if !out.success() || out.truncated.stdout > 0 {
                return Err(failed(format!("Error getting key from: {u}")));
            }
            String::from_utf8(out.stdout)
                .map_err(|_| failed(format!("Error getting key from: {u}")))?
        }
        Source::File(p) => {
            let out = take(&mut outs)?;
            match out.status {
                0 if out.truncated.stdout == 0 => String::from_utf8(out.stdout)
                    .map_err(|_| failed(format!("Failed to read key file {p} : not UTF-8")))?,
                2 => return Err(failed(format!("Path to a key file not found: {p}"))),
                3 => {
                    return Err(failed(format!(
                        "Path to a key is a directory and must be a file: {p}"
                    )));
                }
                _ => {
                    return Err(failed(format!(
                        "Failed to read key file {p} : {}",
                        out.stderr_lossy().trim()
                    )));
                }
            }
        }
    };
    let dir_state = cmd::parse_stat(&dir_st).map_err(|e| failed(format!("{dir}: {e}")))?;
    let file_state = cmd::parse_stat(&file_st).ok();
    let file_exists = file_state
        .as_ref()
        .is_some_and(|s| s.kind == PathKind::File);
    let text = if file_exists {
        if content.truncated.stdout > 0 {
            return Err(failed(format!(
                "{keyfile}: too big to edit here (at most {} bytes)",
                2 * READ_KEEP
            )));
        }
        String::from_utf8(content.stdout.clone())
            .map_err(|_| failed(format!("{keyfile} is not UTF-8 text")))?
    } else {
        String::new()
    };
    if matches!(&file_state, Some(s) if s.kind == PathKind::Directory) {
        return Err(failed(format!("{keyfile} is a directory")));
    }
    let result = result_of(&a, &keyfile);
    let Some(new) = enforce(&text, &keys, &a).map_err(failed)? else {
        return Ok(Verdict::InSync { result });
    };
    let target = if a.follow {
        let r = real.stdout_lossy().trim_end_matches('\n').to_string();
        if real.success() && !r.is_empty() {
            r
        } else {
            keyfile.clone()
        }
    } else {
        keyfile.clone()
    };
    let mut changes = Vec::new();
    let dir_exists = dir_state.exists();
    if !dir_exists {
        changes.push(Change::Attr {
            subject: dir.clone(),
            what: "state".into(),
            before: "absent".into(),
            after: "directory".into(),
        });
    }
    changes.push(Change::Content {
        path: keyfile.clone(),
        before: file_exists.then(|| as_text(&content.stdout)).flatten(),
        after: new.clone(),
    });
    let plan = Plan {
        target,
        dir: a.manage_dir.then_some((dir, dir_exists)),
        file_exists,
        uid,
        gid,
        content: new,
        result,
    };
    Ok(Verdict::Drift(Drift::new(changes, plan)))
}

async fn apply(
    tr: &mut AnyTransport,
    ctx: &ModuleCtx<'_>,
    drift: &Drift,
) -> Result<Args, ModuleError> {
    let p = drift
        .plan::<Plan>()
        .ok_or_else(|| ModuleError::Args("internal: foreign drift plan".into()))?;
    let (uid, gid) = (p.uid.to_string(), p.gid.to_string());
    if let Some((dir, exists)) = &p.dir {
        // Ansible's `os.mkdir(sshdir, 0o700)`: the folder above must exist.
        if !*exists {
            let out = ctx
                .run(tr, Cmd::raw("mkdir -m 0700 --").arg(dir.clone()))
                .await?;
            if !out.success() {
                return Err(failed(format!(
                    "Failed to create directory {dir} : {}",
                    out.stderr_lossy().trim()
                )));
            }
        }
        ctx.run_ok(
            tr,
            chown(dir, Some(&uid), Some(&gid)).and(chmod(dir, 0o700)),
        )
        .await?;
    } else if !p.file_exists {
        ctx.run_ok(tr, mkdir_p(parent_of(&p.target))).await?;
    }
    let attrs = FileAttrs {
        mode: Some(0o600),
        owner: Some(uid),
        group: Some(gid),
        become_: ctx.become_.clone(),
        // Ansible ignores a chown the writing user may not make.
        keep: true,
    };
    tr.put(Payload::Bytes(p.content.as_bytes()), &p.target, &attrs)
        .await
        .map_err(|e| match e {
            TransportError::Io(m) | TransportError::Protocol(m) => {
                failed(format!("Failed to write to file {}: {m}", p.target))
            }
            other => ModuleError::Transport(other),
        })?;
    Ok(p.result.clone())
}

impl Module for AuthorizedKey {
    fn name(&self) -> &'static str {
        "authorized_key"
    }

    fn implied_paths(&self, args: &Args) -> Vec<(&'static str, String)> {
        let user = args.get("user").and_then(Value::as_str).unwrap_or_default();
        let given = args.get("path").is_some_and(|v| !v.is_null());
        if given || user.is_empty() || user.contains('/') {
            return Vec::new();
        }
        vec![(KEYFILE, format!("~{user}/.ssh/authorized_keys"))]
    }

    fn check<'a>(
        &'a self,
        tr: &'a mut HostView<'_>,
        args: &'a Args,
        ctx: &'a ModuleCtx<'a>,
    ) -> BoxFut<'a, Result<Verdict, ModuleError>> {
        Box::pin(check(tr, args, ctx))
    }

    fn apply<'a>(
        &'a self,
        tr: &'a mut AnyTransport,
        _args: &'a Args,
        ctx: &'a ModuleCtx<'a>,
        drift: &'a Drift,
    ) -> BoxFut<'a, Result<Args, ModuleError>> {
        Box::pin(apply(tr, ctx, drift))
    }

    /// The folder (its mode and owner, or its absence) with `manage_dir`, then the file.
    fn resources(&self, args: &Args) -> Vec<Resource> {
        let Ok(a) = AuthorizedKeyArgs::parse(args) else {
            return Vec::new();
        };
        let Some(file) = named_file(&a, args) else {
            return Vec::new();
        };
        let mut r = Vec::new();
        if a.manage_dir {
            r.push(Resource::Attrs(parent_of(&file).to_string()));
        }
        r.push(Resource::Path(file));
        r
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    use serde_json::json;

    use super::*;
    use crate::modules::system::testutil::*;

    const ED: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIBbW";
    const RSA: &str = "AAAAB3NzaC1yc2EAAAADAQABAAABAQ";

    /// Each case of `authorized_key_cases.json` was recorded by running ansible.posix's own
    /// `enforce_state` (check mode with diff) on `before` with `args`: `after` is the file it
    /// writes (`null`: unchanged), `error` its failure.
    #[test]
    fn file_edits_match_what_ansibles_enforce_state_writes() {
        let cases: Vec<Value> =
            serde_json::from_str(include_str!("authorized_key_cases.json")).expect("cases");
        assert!(cases.len() >= 15);
        for c in cases {
            let mut a = c["args"].as_object().cloned().unwrap_or_default();
            a.insert("user".into(), json!("u"));
            let parsed = AuthorizedKeyArgs::parse(&a).expect("arguments");
            let got = enforce(
                c["before"].as_str().unwrap_or_default(),
                &parsed.key,
                &parsed,
            );
            match (&got, c.get("error")) {
                (Err(e), Some(want)) => assert_eq!(Some(e.as_str()), want.as_str(), "{c}"),
                (Ok(new), None) => assert_eq!(new.as_deref(), c["after"].as_str(), "{c}"),
                _ => panic!("{c}: got {got:?}"),
            }
        }
    }

    #[test]
    fn options_split_on_commas_outside_quotes() {
        let o = parse_options(r#"command="echo a,b",no-pty,from='x,y',a=1=2"#);
        assert_eq!(
            o,
            vec![
                ("command".to_string(), Some(r#""echo a,b""#.to_string())),
                ("no-pty".to_string(), None),
                ("from".to_string(), Some("'x,y'".to_string())),
                ("a".to_string(), Some("1=2".to_string())),
            ]
        );
        // Double commas are an option of their own, as Ansible's regex split leaves them.
        assert_eq!(
            parse_options("a,,b"),
            vec![
                ("a".to_string(), None),
                (",,".to_string(), None),
                ("b".to_string(), None)
            ]
        );
        assert!(parse_options(",").is_empty());
        assert!(same_options(
            &parse_options("no-pty,from=\"x\""),
            &parse_options("from=\"x\",no-pty")
        ));
        assert_eq!(py_splitlines("a\r\nb\rc\x0bd", false), ["a", "b", "c", "d"]);
        assert_eq!(py_splitlines("a\n\nb\n", true), ["a\n", "\n", "b\n"]);
    }

    #[test]
    fn key_sources_are_parsed_as_urlparse_does() {
        assert!(
            matches!(source_of("file:///home/a/k.pub"), Source::File(p) if p == "/home/a/k.pub")
        );
        assert!(matches!(source_of("file://host/k.pub?x"), Source::File(p) if p == "/k.pub"));
        assert!(matches!(
            source_of("https://github.com/a.keys"),
            Source::Url(_)
        ));
        assert!(matches!(source_of(&format!("ssh-rsa {RSA}")), Source::Text));
    }

    /// A fake `getent` giving user `deploy` (the test's own uid and gid) a home in `home`.
    fn host(home: &std::path::Path) -> (tempfile::TempDir, Vec<(String, String)>) {
        let (dir, bin, state) = fake_dirs();
        let (uid, gid) = {
            let m = std::fs::metadata(dir.path()).unwrap();
            (m.uid(), m.gid())
        };
        fake_tool(
            &bin,
            "getent",
            &format!(
                "[ \"$3\" = deploy ] || exit 2; echo 'deploy:x:{uid}:{gid}::{}:/bin/sh'",
                home.display()
            ),
        );
        (dir, fake_env(&bin, &state))
    }

    #[tokio::test]
    async fn creates_the_folder_and_file_then_stays_in_sync() {
        let home = tempfile::tempdir().unwrap();
        let (dir, env) = host(home.path());
        let c = ctx(dir.path(), None, env);
        let mut tr = transport();
        let key = format!("ssh-ed25519 {ED} me@laptop");
        let a = args(json!({"user": "deploy", "key": key}));
        // The executor's expansion of `~deploy/.ssh/authorized_keys`, or the module's own.
        assert_eq!(
            AuthorizedKey.implied_paths(&a),
            vec![(KEYFILE, "~deploy/.ssh/authorized_keys".to_string())]
        );
        let file = home.path().join(".ssh/authorized_keys");
        match check_apply(&AuthorizedKey, &mut tr, &a, &c).await {
            Ran::Applied(changes, Ok(r)) => {
                assert_eq!(changes.len(), 2, "{changes:?}");
                assert_eq!(r["keyfile"], json!(file.display().to_string()));
                assert_eq!(r["path"], Value::Null);
                assert_eq!(r["exclusive"], json!(false));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(std::fs::read_to_string(&file).unwrap(), format!("{key}\n"));
        let mode =
            |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode(&file), 0o600);
        assert_eq!(mode(&home.path().join(".ssh")), 0o700);
        assert!(matches!(
            check_apply(&AuthorizedKey, &mut tr, &a, &c).await,
            Ran::InSync(_)
        ));
        // With the executor's expansion, the resources name the same file.
        let mut expanded = a.clone();
        expanded.insert(KEYFILE.into(), json!(file.display().to_string()));
        assert_eq!(
            AuthorizedKey.resources(&expanded),
            vec![
                Resource::Attrs(home.path().join(".ssh").display().to_string()),
                Resource::Path(file.display().to_string())
            ]
        );
        // A key from a file on the host, exclusive: the file holds only it.
        let src = home.path().join("k.pub");
        std::fs::write(&src, format!("ssh-rsa {RSA} other\n")).unwrap();
        let a = args(
            json!({"user": "deploy", "key": format!("file://{}", src.display()), "exclusive": true, "_keyfile": file.display().to_string()}),
        );
        assert!(matches!(
            check_apply(&AuthorizedKey, &mut tr, &a, &c).await,
            Ran::Applied(_, Ok(_))
        ));
        assert_eq!(
            std::fs::read_to_string(&file).unwrap(),
            format!("ssh-rsa {RSA} other\n")
        );
    }

    #[tokio::test]
    async fn failures_say_what_ansible_says() {
        let home = tempfile::tempdir().unwrap();
        let (dir, env) = host(home.path());
        let c = ctx(dir.path(), None, env);
        let mut tr = transport();
        let key = format!("ssh-ed25519 {ED}");
        let cases = [
            (
                json!({"user": "nobody-here", "key": key}),
                "Failed to lookup user nobody-here: \"getpwnam(): name not found: 'nobody-here'\"",
            ),
            (
                json!({"user": "deploy", "key": "file:///nonexistent/k.pub"}),
                "Path to a key file not found: /nonexistent/k.pub",
            ),
            (
                json!({"user": "deploy", "key": format!("file://{}", home.path().display())}),
                &*format!(
                    "Path to a key is a directory and must be a file: {}",
                    home.path().display()
                ),
            ),
            (
                json!({"user": "deploy", "key": "ssh-foo AAAA"}),
                "invalid key specified: ssh-foo AAAA",
            ),
        ];
        for (a, want) in cases {
            match check_apply(&AuthorizedKey, &mut tr, &args(a.clone()), &c).await {
                Ran::CheckFailed(m, _) => assert_eq!(m, want, "{a}"),
                other => panic!("{a}: {other:?}"),
            }
        }
        assert!(!home.path().join(".ssh").exists());
    }

    #[tokio::test]
    async fn https_keys_are_fetched_on_the_host_with_curl() {
        let home = tempfile::tempdir().unwrap();
        let (dir, mut env) = host(home.path());
        let bin = tempfile::tempdir().unwrap();
        fake_tool(
            bin.path(),
            "curl",
            &format!(
                "for a in \"$@\"; do u=$a; done; [ \"$u\" = https://keys.example/me.keys ] || exit 22; case \" $* \" in *' -k '*) printf 'ssh-rsa {RSA} insecure\\n' ;; *) printf 'ssh-ed25519 {ED} a\\nssh-rsa {RSA} b\\n' ;; esac"
            ),
        );
        if let Some((_, path)) = env.iter_mut().find(|(k, _)| k == "PATH") {
            *path = format!("{}:{path}", bin.path().display());
        }
        let c = ctx(dir.path(), None, env);
        let mut tr = transport();
        let file = home.path().join(".ssh/authorized_keys");
        let a = args(json!({"user": "deploy", "key": "https://keys.example/me.keys"}));
        match check_apply(&AuthorizedKey, &mut tr, &a, &c).await {
            Ran::Applied(_, Ok(r)) => assert_eq!(r["key"], json!("https://keys.example/me.keys")),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            std::fs::read_to_string(&file).unwrap(),
            format!("ssh-ed25519 {ED} a\nssh-rsa {RSA} b\n")
        );
        // validate_certs: false passes -k.
        let a = args(
            json!({"user": "deploy", "key": "https://keys.example/me.keys", "validate_certs": false, "exclusive": true}),
        );
        assert!(matches!(
            check_apply(&AuthorizedKey, &mut tr, &a, &c).await,
            Ran::Applied(_, Ok(_))
        ));
        assert_eq!(
            std::fs::read_to_string(&file).unwrap(),
            format!("ssh-rsa {RSA} insecure\n")
        );
        let a = args(json!({"user": "deploy", "key": "https://keys.example/missing"}));
        match check_apply(&AuthorizedKey, &mut tr, &a, &c).await {
            Ran::CheckFailed(m, _) => {
                assert_eq!(m, "Error getting key from: https://keys.example/missing")
            }
            other => panic!("{other:?}"),
        }
    }
}
