//! `apt_key`: an OpenPGP key in an APT keyring.
//!
//! Owns Ansible's key-id rules (`parse_key_id`: 8, 16 or more hex digits, `0x` allowed; the
//! short id for `apt-key del`, the last 16 for comparisons), its reading of key listings
//! (`pub`/`sub` lines, not expired) and the two ways a key is kept. With `keyring` (the way
//! that works on Debian 12+ and Ubuntu 22.04+, where `apt-key` is deprecated or gone), rdeploy
//! uses `gpg` alone: `check` builds the keyring's new bytes in a temporary `GNUPGHOME` (the
//! keys already there plus the new one, or minus the removed one; exported armored when the
//! file ends in `.asc`) and `apply` writes them like any file, so a rollback restores the
//! keyring file. Without `keyring`, `apt-key add`/`del` on `/etc/apt/trusted.gpg` as
//! Ansible does, and when `apt-key` is missing the task fails as Ansible's does. A key `url`
//! is downloaded on the host (curl, else wget). It must not format shell lines.

use serde_json::Value;

use super::common::{failed, result};
use super::repofile::{self, FileEdit};
use crate::modules::files::common::WantAttrs;
use crate::modules::runtime::{
    Args, BoxFut, Change, Drift, HostView, Module, ModuleCtx, ModuleError, Resource, Verdict,
    output_result,
};
use crate::transport::cmd::{if_program, read_file_cmd};
use crate::transport::{AnyTransport, Cmd};

/// `apt_key`.
pub struct AptKey;

/// The keyring `apt-key add` writes without `--keyring`.
pub const TRUSTED_GPG: &str = "/etc/apt/trusted.gpg";
/// The folder `apt-key del` may remove a key from too.
pub const TRUSTED_GPG_D: &str = "/etc/apt/trusted.gpg.d";

crate::module_args! {
    /// Adds or removes an APT key. With `keyring` (recommended: a file such as
    /// `/etc/apt/keyrings/NAME.gpg` that a source's `signed-by` names) rdeploy needs only
    /// `gpg` on the host, not `apt-key`: the keyring file is rewritten with the key added or
    /// removed (binary, or ASCII-armored when it ends in `.asc`). Without `keyring` it runs
    /// `apt-key` as Ansible does (and fails where `apt-key` is gone). The key comes from
    /// `data`, a `file` on the host or a `url` the host downloads (curl or wget); `keyserver`
    /// is not supported. Without `id`, the key's id is read from the key with gpg.
    #[module(
        name = "apt_key",
        backup = "The keyring file (or /etc/apt/trusted.gpg and /etc/apt/trusted.gpg.d without keyring): content, mode, or absence; rollback puts it back or removes it.",
        returns = &[("id", "the id as given or read from the key"), ("short_id", "its last 8 hex digits"), ("fp", "its last 16 hex digits"), ("key_id", "the id upper-cased without 0x"), ("before", "key ids in the keyring before")],
        examples = "- apt_key:\n    url: https://apt.example.com/key.asc\n    keyring: /etc/apt/keyrings/example.asc"
    )]
    pub struct AptKeyArgs {
        /// The key id (8, 16 or more hex digits); read from the key when not given.
        id: Option<String>,
        /// A URL the host downloads the key from.
        url: Option<String>,
        /// The key itself (armored or binary text).
        data: Option<String>,
        /// A key file on the host.
        #[arg(kind = Path)]
        file: Option<String>,
        /// The keyring file to keep the key in.
        #[arg(kind = Path)]
        keyring: Option<String>,
        /// Check the server's certificate when downloading `url`.
        #[arg(default = "yes")]
        validate_certs: bool,
        /// Whether the key is there.
        #[arg(default = "present", choices = &["present", "absent"])]
        state: String,
    }
}

/// Runs `gpg ARGS` in a fresh temporary `GNUPGHOME` (removed after), so nothing of the
/// user's own keyrings is read or changed.
const GPG_TMP: &str = crate::host::APT_KEY_GPG;

/// Prints the keyring `$1` with one key added (from stdin) or the key `$3` removed, exported
/// binary or armored (`$2` = 1). Runs in a temporary `GNUPGHOME`; changes nothing else.
const REBUILD: &str = crate::host::APT_KEY_REBUILD;

/// Lists the keys of keyring `$1` (nothing when it does not exist or is empty: removing the
/// last key leaves an empty keyring, as `apt-key del` does).
const SHOW_KEYRING: &str = crate::host::APT_KEY_SHOW_KEYRING;

/// Ansible's `parse_key_id`: (short id, fingerprint part, key id).
fn parse_key_id(id: &str) -> Result<(String, String, String), String> {
    let upper = id.to_uppercase();
    let key = upper.strip_prefix("0X").unwrap_or(&upper).to_string();
    if key.is_empty() || !key.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err("Invalid key_id".into());
    }
    let n = key.len();
    if n != 8 && n != 16 && n <= 16 {
        return Err("Invalid key_id".into());
    }
    let short = key[n - 8..].to_string();
    let fp = if n > 16 {
        key[n - 16..].to_string()
    } else {
        key.clone()
    };
    Ok((short, fp, key))
}

/// Ansible's `parse_output_for_keys`: key ids of `pub`/`sub` lines that are not expired,
/// from `gpg --list-public-keys --keyid-format=long` or `--with-colons` output.
fn keys_in(output: &str, short: bool) -> Vec<String> {
    let mut found = Vec::new();
    for line in output.split('\n') {
        if !(line.starts_with("pub") || line.starts_with("sub")) || line.contains("expired") {
            continue;
        }
        let tokens: Vec<&str> = line.split_whitespace().collect();
        let code = tokens
            .get(1)
            .and_then(|c| c.split_once('/'))
            .filter(|(_, rest)| !rest.contains('/'))
            .map(|(_, real)| real.to_string())
            .or_else(|| line.split(':').nth(4).map(str::to_string));
        if let Some(c) = code {
            found.push(c);
        }
    }
    if short {
        found = found
            .into_iter()
            .map(|k| k[k.len().saturating_sub(8)..].to_string())
            .collect();
    }
    found
}

/// Where the key comes from.
enum Source {
    Data(String),
    File(String),
    Url(String, bool),
    None,
}

/// The key's bytes, read or downloaded on the host.
async fn key_bytes(
    tr: &mut HostView<'_>,
    ctx: &ModuleCtx<'_>,
    src: &Source,
) -> Result<Option<Vec<u8>>, ModuleError> {
    let cmd = match src {
        Source::None => return Ok(None),
        Source::Data(d) => return Ok(Some(d.clone().into_bytes())),
        Source::File(f) => read_file_cmd(f),
        Source::Url(u, validate) => {
            let curl = match validate {
                true => Cmd::raw("curl -fsSL --"),
                false => Cmd::raw("curl -fsSL -k --"),
            };
            let wget = match validate {
                true => Cmd::raw("wget -q -O - --"),
                false => Cmd::raw("wget -q -O - --no-check-certificate --"),
            };
            if_program("curl", curl.arg(u.clone()), wget.arg(u.clone()))
        }
    };
    let out = ctx.query(tr, cmd).await?;
    if !out.success() {
        let msg = match src {
            Source::Url(u, _) => format!(
                "Failed to download key at {u}: {}",
                out.stderr_lossy().trim()
            ),
            Source::File(f) => format!("Unable to extract key from '{f}'"),
            _ => "Unable to read the key".into(),
        };
        return Err(failed(msg, output_result(&out)));
    }
    Ok(Some(out.stdout))
}

/// What `apply` does.
enum Plan {
    /// Write the keyring's new bytes.
    Keyring(FileEdit),
    /// `apt-key add -` with these bytes.
    AptKeyAdd(Vec<u8>),
    /// `apt-key del SHORT`.
    AptKeyDel(String),
}

async fn check_key(
    tr: &mut HostView<'_>,
    args: &Args,
    ctx: &ModuleCtx<'_>,
) -> Result<Verdict, ModuleError> {
    let a = AptKeyArgs::parse(args)?;
    let given = [&a.data, &a.file, &a.url]
        .iter()
        .filter(|v| v.is_some())
        .count();
    if given > 1 {
        return Err(ModuleError::Args(
            "parameters are mutually exclusive: data|file|keyserver|url".into(),
        ));
    }
    let present = a.state == "present";
    let src = match (a.data, a.file, a.url) {
        (Some(d), _, _) => Source::Data(d),
        (_, Some(f), _) => Source::File(f),
        (_, _, Some(u)) => Source::Url(u, a.validate_certs),
        _ => Source::None,
    };
    if a.keyring.is_none() {
        let found = ctx.query(tr, Cmd::raw("command -v apt-key")).await?;
        if !found.success() {
            return Err(failed(
                "Failed to find required executable \"apt-key\". Apt-key has been deprecated. See the deb822_repository as an alternative.",
                Args::new(),
            ));
        }
    }
    // The key's bytes are needed to add it, or to learn its id.
    let bytes = if present || a.id.is_none() {
        key_bytes(tr, ctx, &src).await?
    } else {
        None
    };
    let id = match a.id.clone() {
        Some(id) => Some(id),
        None => match &bytes {
            Some(b) => {
                let out = ctx
                    .query(
                        tr,
                        Cmd::raw("set --")
                            .op("--with-colons --show-keys")
                            .op(";")
                            .op(GPG_TMP)
                            .stdin(b.clone()),
                    )
                    .await?;
                if !out.success() {
                    let from = match &src {
                        Source::File(f) => f.clone(),
                        _ => "inline data".into(),
                    };
                    return Err(failed(
                        format!("Unable to extract key from '{from}'"),
                        output_result(&out),
                    ));
                }
                keys_in(&out.stdout_lossy(), false).into_iter().next()
            }
            None => None,
        },
    };
    let mut r = result([("id", id.clone().map_or(Value::Null, Value::from))]);
    let (short, fp, key_id) = match id.as_deref().map(parse_key_id) {
        Some(Ok(parts)) => parts,
        _ => return Err(failed("Invalid key_id", r)),
    };
    r.insert("short_id".into(), Value::from(short.clone()));
    r.insert("fp".into(), Value::from(fp.clone()));
    r.insert("key_id".into(), Value::from(key_id.clone()));
    let short_format = key_id.len() == 8;
    let listing = match &a.keyring {
        Some(k) => {
            ctx.query_ok(
                tr,
                Cmd::raw("set --").arg(k.clone()).op(";").op(SHOW_KEYRING),
            )
            .await?
        }
        None => ctx
            .query_ok(
                tr,
                Cmd::raw("apt-key adv --list-public-keys --keyid-format=long"),
            )
            .await
            .map_err(|e| failed(format!("Unable to list public keys: {e}"), Args::new()))?,
    };
    let keys = keys_in(&listing.stdout_lossy(), short_format);
    r.insert("before".into(), Value::from(keys.clone()));
    let has = if present {
        keys.contains(if short_format { &short } else { &fp })
    } else {
        keys.contains(&fp)
    };
    if has == present {
        r.insert("changed".into(), Value::from(false));
        return Ok(Verdict::InSync { result: r });
    }
    let plan = match (&a.keyring, present) {
        (Some(k), _) => {
            let armor = if k.ends_with(".asc") { "1" } else { "0" };
            let del = if present { String::new() } else { fp.clone() };
            let mut cmd = Cmd::raw("set --")
                .arg(k.clone())
                .arg(armor)
                .arg(del)
                .op(";")
                .op(REBUILD);
            if let Some(b) = &bytes {
                cmd = cmd.stdin(b.clone());
            }
            let out = ctx.query(tr, cmd).await?;
            if !out.success() {
                return Err(failed(
                    format!(
                        "Unable to rebuild the keyring {k}: {}",
                        out.stderr_lossy().trim()
                    ),
                    output_result(&out),
                ));
            }
            let tf = repofile::read(tr, ctx, k).await?;
            match repofile::plan_write(k, &tf, out.stdout, &WantAttrs::default())? {
                Some((_, edit)) => Plan::Keyring(edit),
                None => {
                    r.insert("changed".into(), Value::from(false));
                    return Ok(Verdict::InSync { result: r });
                }
            }
        }
        (None, true) => match bytes {
            Some(b) => Plan::AptKeyAdd(b),
            None => return Err(failed("No key to add: give data, file or url", r)),
        },
        (None, false) => Plan::AptKeyDel(short.clone()),
    };
    let subject = a.keyring.clone().unwrap_or_else(|| TRUSTED_GPG.into());
    let change = Change::Attr {
        subject,
        what: format!("key {key_id}"),
        before: if present {
            "absent".into()
        } else {
            "present".into()
        },
        after: a.state.clone(),
    };
    Ok(Verdict::Drift(Drift::new(vec![change], (plan, r))))
}

async fn apply_key(
    tr: &mut AnyTransport,
    ctx: &ModuleCtx<'_>,
    drift: &Drift,
) -> Result<Args, ModuleError> {
    let (plan, r) = drift
        .plan::<(Plan, Args)>()
        .ok_or_else(|| failed("apt_key: apply without a plan", Args::new()))?;
    match plan {
        Plan::Keyring(edit) => repofile::apply(tr, ctx, edit).await?,
        Plan::AptKeyAdd(b) => {
            let out = ctx
                .run(tr, Cmd::raw("apt-key add -").stdin(b.clone()))
                .await?;
            if !out.success() {
                return Err(failed(
                    "Unable to add a key from binary data",
                    output_result(&out),
                ));
            }
        }
        Plan::AptKeyDel(short) => {
            let out = ctx
                .run(tr, Cmd::raw("apt-key del").arg(short.clone()))
                .await?;
            if !out.success() {
                return Err(failed(
                    format!("Unable to remove a key with id {short}"),
                    output_result(&out),
                ));
            }
        }
    }
    Ok(r.clone())
}

impl Module for AptKey {
    fn name(&self) -> &'static str {
        "apt_key"
    }

    fn check<'a>(
        &'a self,
        tr: &'a mut HostView<'_>,
        args: &'a Args,
        ctx: &'a ModuleCtx<'a>,
    ) -> BoxFut<'a, Result<Verdict, ModuleError>> {
        Box::pin(check_key(tr, args, ctx))
    }

    fn apply<'a>(
        &'a self,
        tr: &'a mut AnyTransport,
        _args: &'a Args,
        ctx: &'a ModuleCtx<'a>,
        drift: &'a Drift,
    ) -> BoxFut<'a, Result<Args, ModuleError>> {
        Box::pin(apply_key(tr, ctx, drift))
    }

    /// The keyring file; without one, apt-key's /etc/apt/trusted.gpg and trusted.gpg.d.
    fn resources(&self, args: &Args) -> Vec<Resource> {
        match AptKeyArgs::parse(args).ok().and_then(|a| a.keyring) {
            Some(k) => vec![Resource::Path(k)],
            None => vec![
                Resource::Path(TRUSTED_GPG.into()),
                Resource::Tree(TRUSTED_GPG_D.into()),
            ],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::system::testutil::*;
    use serde_json::json;

    #[test]
    fn ansibles_key_id_rules_and_listings() {
        assert_eq!(
            parse_key_id("0x9fed2bcbdcd29cdf762678cba6a5ecbcf4e0e16b").unwrap(),
            (
                "F4E0E16B".into(),
                "A6A5ECBCF4E0E16B".into(),
                "9FED2BCBDCD29CDF762678CBA6A5ECBCF4E0E16B".into()
            )
        );
        assert_eq!(parse_key_id("473041FA").unwrap().1, "473041FA");
        assert!(parse_key_id("12345").is_err());
        assert!(parse_key_id("0x123456789").is_err());
        assert!(parse_key_id("zz345678").is_err());
        let long = "pub   rsa4096/DC30D7C23CBBABEE 2021-01-17 [SC] [expires: 2029-01-15]\n      4CB5\nuid  x\nsub   rsa4096/1111222233334444 2021 [E] [expired: 2020]\n";
        assert_eq!(keys_in(long, false), vec!["DC30D7C23CBBABEE"]);
        assert_eq!(keys_in(long, true), vec!["3CBBABEE"]);
        let colons = "pub:-:255:22:7E1C4D2A5B3C9F01:1700000000:::-:::scSC::::::23::0:\nfpr:::::::::ABCD7E1C4D2A5B3C9F01:\n";
        assert_eq!(keys_in(colons, false), vec!["7E1C4D2A5B3C9F01"]);
    }

    /// A key made with the host's gpg: (armored public key, its 16-digit id).
    fn test_key(dir: &std::path::Path, name: &str) -> (String, String) {
        let home = dir.join(format!("gnupg-{name}"));
        std::fs::create_dir_all(&home).unwrap();
        std::fs::set_permissions(&home, std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .unwrap();
        let gpg = |args: &[&str]| {
            let out = std::process::Command::new("gpg")
                .env("GNUPGHOME", &home)
                .args(["--batch", "--quiet"])
                .args(args)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8_lossy(&out.stdout).into_owned()
        };
        let uid = format!("{name} <{name}@example.com>");
        gpg(&[
            "--passphrase",
            "",
            "--quick-gen-key",
            &uid,
            "ed25519",
            "sign",
            "never",
        ]);
        let armored = gpg(&["--armor", "--export", &uid]);
        let listing = gpg(&["--with-colons", "--list-keys", &uid]);
        (armored, keys_in(&listing, false)[0].clone())
    }

    #[tokio::test]
    async fn a_key_is_added_to_and_removed_from_a_keyring_with_gpg_alone() {
        let dir = tempfile::tempdir().unwrap();
        let (k1, id1) = test_key(dir.path(), "one");
        let (k2, id2) = test_key(dir.path(), "two");
        let c = ctx(dir.path(), None, vec![]);
        let mut tr = transport();
        let keyring = dir.path().join("keyrings/example.gpg");
        let a = args(json!({"data": k1, "keyring": keyring}));
        let Ran::Applied(ch, Ok(r)) = check_apply(&AptKey, &mut tr, &a, &c).await else {
            panic!()
        };
        assert_eq!(ch.len(), 1);
        assert_eq!(r["fp"], json!(id1));
        assert_eq!(r["before"], json!([]));
        let bytes = std::fs::read(&keyring).unwrap();
        assert_ne!(
            bytes.first(),
            Some(&b'-'),
            "a binary keyring, as apt reads it"
        );
        assert!(matches!(
            check_apply(&AptKey, &mut tr, &a, &c).await,
            Ran::InSync(_)
        ));
        // A second key joins the first; then the first goes by id.
        let a2 = args(json!({"data": k2, "keyring": keyring, "id": id2}));
        assert!(matches!(
            check_apply(&AptKey, &mut tr, &a2, &c).await,
            Ran::Applied(_, Ok(_))
        ));
        let gone = args(json!({"id": id1, "keyring": keyring, "state": "absent"}));
        let Ran::Applied(_, Ok(r)) = check_apply(&AptKey, &mut tr, &gone, &c).await else {
            panic!()
        };
        let mut before: Vec<String> = serde_json::from_value(r["before"].clone()).unwrap();
        before.sort();
        let mut both = vec![id1.clone(), id2.clone()];
        both.sort();
        assert_eq!(before, both);
        assert!(matches!(
            check_apply(&AptKey, &mut tr, &gone, &c).await,
            Ran::InSync(_)
        ));
        assert!(matches!(
            check_apply(&AptKey, &mut tr, &a2, &c).await,
            Ran::InSync(_)
        ));
        // Removing the last key leaves an empty keyring, which reads as no keys.
        let last = dir.path().join("keyrings/last.gpg");
        let one = args(json!({"data": k2, "keyring": last}));
        assert!(matches!(
            check_apply(&AptKey, &mut tr, &one, &c).await,
            Ran::Applied(_, Ok(_))
        ));
        let none = args(json!({"id": id2, "keyring": last, "state": "absent"}));
        assert!(matches!(
            check_apply(&AptKey, &mut tr, &none, &c).await,
            Ran::Applied(_, Ok(_))
        ));
        assert_eq!(std::fs::read(&last).unwrap().len(), 0);
        assert!(matches!(
            check_apply(&AptKey, &mut tr, &none, &c).await,
            Ran::InSync(_)
        ));
        // A url is downloaded on the host (curl reads file: URLs too).
        let key_file = dir.path().join("one.asc");
        std::fs::write(&key_file, &k1).unwrap();
        let by_url =
            args(json!({"url": format!("file://{}", key_file.display()), "keyring": keyring}));
        let Ran::Applied(_, Ok(r)) = check_apply(&AptKey, &mut tr, &by_url, &c).await else {
            panic!()
        };
        assert_eq!(r["fp"], json!(id1));
        assert!(matches!(
            check_apply(&AptKey, &mut tr, &by_url, &c).await,
            Ran::InSync(_)
        ));
        let by_file = args(json!({"file": key_file, "keyring": keyring}));
        assert!(matches!(
            check_apply(&AptKey, &mut tr, &by_file, &c).await,
            Ran::InSync(_)
        ));
        let bad_url = args(json!({"url": "file:///nonexistent/key.asc", "keyring": keyring}));
        assert!(
            matches!(check_apply(&AptKey, &mut tr, &bad_url, &c).await, Ran::CheckFailed(m, _) if m.starts_with("Failed to download key at file:///nonexistent/key.asc"))
        );
        // An .asc keyring is written armored.
        let asc = dir.path().join("keyrings/example.asc");
        let a3 = args(json!({"data": k2, "keyring": asc}));
        assert!(matches!(
            check_apply(&AptKey, &mut tr, &a3, &c).await,
            Ran::Applied(_, Ok(_))
        ));
        assert!(
            std::fs::read_to_string(&asc)
                .unwrap()
                .starts_with("-----BEGIN PGP PUBLIC KEY BLOCK-----")
        );
        assert_eq!(
            AptKey.resources(&a3),
            vec![Resource::Path(asc.display().to_string())]
        );
    }

    #[tokio::test]
    async fn without_a_keyring_apt_key_is_used_and_its_absence_fails_like_ansible() {
        let (dir, bin, state) = fake_dirs();
        let (k1, id1) = test_key(dir.path(), "three");
        let c = ctx(dir.path(), None, fake_env(&bin, &state));
        let mut tr = transport();
        let a = args(json!({"data": k1}));
        if !std::path::Path::new("/usr/bin/apt-key").exists() {
            let e = check_apply(&AptKey, &mut tr, &a, &c).await;
            assert!(
                matches!(e, Ran::CheckFailed(m, _) if m.contains("Apt-key has been deprecated"))
            );
        }
        fake_tool(
            &bin,
            "apt-key",
            r#"echo "$*" >> "$FAKE/apt-key.log"; case "$1" in adv) cat "$FAKE/keys" 2>/dev/null; exit 0 ;; add) cat > /dev/null; printf 'pub   ed25519/%s 2024-01-01 [SC]\n' "$KEYID" > "$FAKE/keys" ;; del) : > "$FAKE/keys" ;; esac"#,
        );
        let mut env = fake_env(&bin, &state);
        env.push(("KEYID".into(), id1.clone()));
        let c = ctx(dir.path(), None, env);
        assert!(matches!(
            check_apply(&AptKey, &mut tr, &a, &c).await,
            Ran::Applied(_, Ok(_))
        ));
        assert!(matches!(
            check_apply(&AptKey, &mut tr, &a, &c).await,
            Ran::InSync(_)
        ));
        let gone = args(json!({"id": id1, "state": "absent"}));
        assert!(matches!(
            check_apply(&AptKey, &mut tr, &gone, &c).await,
            Ran::Applied(_, Ok(_))
        ));
        let log = std::fs::read_to_string(state.join("apt-key.log")).unwrap();
        assert!(log.contains("add -\n"), "{log}");
        assert!(log.contains(&format!("del {}\n", &id1[8..])), "{log}");
        assert_eq!(
            AptKey.resources(&a),
            vec![
                Resource::Path(TRUSTED_GPG.into()),
                Resource::Tree(TRUSTED_GPG_D.into())
            ]
        );
        let both = args(json!({"data": "x", "url": "http://x"}));
        assert!(
            matches!(check_apply(&AptKey, &mut tr, &both, &c).await, Ran::CheckFailed(m, _) if m.contains("mutually exclusive"))
        );
    }
}
