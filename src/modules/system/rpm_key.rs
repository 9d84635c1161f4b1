//! `rpm_key`: a GPG public key in the RPM database (`gpg-pubkey-*`).
//!
//! Owns Ansible's reading of `key` (a URL the host downloads, a key id, or a key file on the
//! host), its key-id comparison against the `gpg-pubkey` entries (their descriptions listed
//! through gpg), the `fingerprint` check before an import, and `rpm --import` /
//! `rpm --erase --allmatches gpg-pubkey-ID`. The RPM database is not backed up: rollback
//! cannot undo an import or a removal ([`Module::not_reversible`]). It must not format shell
//! lines.

use serde_json::Value;

use super::common::{failed, result};
use crate::modules::runtime::{
    Args, BoxFut, Change, Drift, HostView, Module, ModuleCtx, ModuleError, Resource, Verdict,
    output_result,
};
use crate::transport::cmd::if_program;
use crate::transport::{AnyTransport, Cmd};

/// `rpm_key`.
pub struct RpmKey;

crate::module_args! {
    /// Imports or removes a GPG key in the RPM database. `key` is a URL (downloaded on the
    /// host with curl or wget), a key id (to check or remove), or the path of a key file on the
    /// host. With `fingerprint`, an import is refused unless the key file has every one of
    /// them. Not reversible: rdeploy does not back up the RPM database, so rollback leaves an
    /// imported key imported and a removed key removed (`rdeploy plan` says so).
    #[module(
        name = "rpm_key",
        backup = "Nothing: the RPM database's gpg-pubkey entries are not backed up, so rollback does not undo an import or a removal.",
        returns = &[("changed", "whether a key was imported or removed")],
        examples = "- rpm_key:\n    key: /etc/pki/rpm-gpg/RPM-GPG-KEY-EPEL-9\n    state: present"
    )]
    pub struct RpmKeyArgs {
        /// A URL, a key id, or a key file on the host.
        #[arg(required)]
        key: String,
        /// Whether the key is imported.
        #[arg(default = "present", choices = &["present", "absent"])]
        state: String,
        /// Fingerprints the key file must have before it is imported.
        fingerprint: Vec<String>,
        /// Check the server's certificate when downloading a URL.
        #[arg(default = "yes")]
        validate_certs: bool,
    }
}

/// Runs `gpg --no-tty --batch ARGS` in a fresh temporary `GNUPGHOME`.
const GPG_TMP: &str = crate::host::RPM_KEY_GPG;

/// Lists the imported keys as gpg reads their descriptions; exits 127 without rpm, prints
/// nothing when no key is imported.
const IMPORTED: &str = crate::host::RPM_KEY_IMPORTED;

/// `rpm --import` of the key on stdin, through a temporary file.
const IMPORT_STDIN: &str = crate::host::RPM_KEY_IMPORT;

/// Ansible's `is_keyid`: starts with eight hex digits (after an optional `0x`).
fn is_keyid(key: &str) -> bool {
    let k = key
        .strip_prefix("0x")
        .or_else(|| key.strip_prefix("0X"))
        .unwrap_or(key);
    k.len() >= 8 && k.as_bytes()[..8].iter().all(u8::is_ascii_hexdigit)
        || key.len() >= 8 && key.as_bytes()[..8].iter().all(u8::is_ascii_hexdigit)
}

/// Ansible's `normalize_keyid`.
fn normalize(id: &str) -> String {
    let up = id.trim().to_uppercase();
    up.strip_prefix("0X").unwrap_or(&up).to_string()
}

/// Ansible's `is_pubkey`.
fn is_pubkey(text: &str) -> bool {
    match text.find("-----BEGIN PGP PUBLIC KEY BLOCK-----") {
        Some(i) => text[i..].contains("-----END PGP PUBLIC KEY BLOCK-----"),
        None => false,
    }
}

/// Where the key's data is on the host.
#[derive(Clone, Debug)]
enum KeyData {
    File(String),
    Bytes(Vec<u8>),
}

impl KeyData {
    /// `cmd` reading the key: the file as its last argument, or the bytes on stdin (`-`).
    fn feed(&self, cmd: Cmd) -> Cmd {
        match self {
            KeyData::File(f) => cmd.arg(f.clone()),
            KeyData::Bytes(b) => cmd.arg("-").stdin(b.clone()),
        }
    }
}

async fn gpg(
    tr: &mut HostView<'_>,
    ctx: &ModuleCtx<'_>,
    args: &[&'static str],
    data: &KeyData,
) -> Result<String, ModuleError> {
    let mut cmd = Cmd::raw("set --");
    for a in args {
        cmd = cmd.op(a);
    }
    // The key file goes last: `set -- ARGS FILE`, then the gpg script.
    let cmd = data.feed(cmd).op(";").op(GPG_TMP);
    let out = ctx.query(tr, cmd).await?;
    if !out.success() {
        return Err(failed(
            out.stderr_lossy().trim().to_string(),
            output_result(&out),
        ));
    }
    Ok(out.stdout_lossy().into_owned())
}

enum Plan {
    Import(KeyData),
    Erase(String),
}

async fn check_key(
    tr: &mut HostView<'_>,
    args: &Args,
    ctx: &ModuleCtx<'_>,
) -> Result<Verdict, ModuleError> {
    let a = RpmKeyArgs::parse(args)?;
    let present = a.state == "present";
    let (data, keyid) = if a.key.contains("://") {
        let (curl, wget) = if a.validate_certs {
            (Cmd::raw("curl -fsSL --"), Cmd::raw("wget -q -O - --"))
        } else {
            (
                Cmd::raw("curl -fsSL -k --"),
                Cmd::raw("wget -q -O - --no-check-certificate --"),
            )
        };
        let out = ctx
            .query(
                tr,
                if_program("curl", curl.arg(a.key.clone()), wget.arg(a.key.clone())),
            )
            .await?;
        if !out.success() {
            return Err(failed(
                format!(
                    "failed to fetch key at {} , error was: {}",
                    a.key,
                    out.stderr_lossy().trim()
                ),
                output_result(&out),
            ));
        }
        if !is_pubkey(&out.stdout_lossy()) {
            return Err(failed(format!("Not a public key: {}", a.key), Args::new()));
        }
        let data = KeyData::Bytes(out.stdout);
        let id = key_id_of(tr, ctx, &data).await?;
        (Some(data), id)
    } else if is_keyid(&a.key) {
        (None, a.key.clone())
    } else if ctx
        .query(tr, Cmd::raw("test -f").arg(a.key.clone()))
        .await?
        .success()
    {
        let data = KeyData::File(a.key.clone());
        let id = key_id_of(tr, ctx, &data).await?;
        (Some(data), id)
    } else {
        return Err(failed(format!("Not a valid key {}", a.key), Args::new()));
    };
    let keyid = normalize(&keyid);
    let out = ctx.query(tr, Cmd::raw(IMPORTED)).await?;
    if !out.success() {
        return Err(failed(
            out.stderr_lossy().trim().to_string(),
            output_result(&out),
        ));
    }
    let imported = out
        .stdout_lossy()
        .lines()
        .any(|l| l.split(':').nth(4).is_some_and(|f| f.contains(&keyid)));
    if imported == present {
        return Ok(Verdict::InSync {
            result: result([("changed", Value::from(false))]),
        });
    }
    let plan = if present {
        let Some(data) = data else {
            return Err(failed(
                "When importing a key, a valid file must be given",
                Args::new(),
            ));
        };
        let wanted: Vec<String> = a
            .fingerprint
            .iter()
            .map(|f| f.replace(' ', "").to_uppercase())
            .collect();
        if !wanted.is_empty() {
            let listing = gpg(
                tr,
                ctx,
                &[
                    "--with-colons",
                    "--fixed-list-mode",
                    "--import",
                    "--import-options",
                    "show-only",
                    "--dry-run",
                ],
                &data,
            )
            .await?;
            let have: Vec<String> = listing
                .lines()
                .filter(|l| l.trim().starts_with("fpr:"))
                .filter_map(|l| l.trim().split(':').nth(9).map(str::to_string))
                .collect();
            if have.is_empty() {
                return Err(failed("Unexpected gpg output", Args::new()));
            }
            if !wanted.iter().all(|w| have.contains(w)) {
                return Err(failed(
                    format!(
                        "The specified fingerprint, '{}', does not match any key fingerprints in '{}'",
                        wanted.join(", "),
                        have.join(", ")
                    ),
                    Args::new(),
                ));
            }
        }
        Plan::Import(data)
    } else {
        let short = keyid[keyid.len().saturating_sub(8)..].to_lowercase();
        Plan::Erase(format!("gpg-pubkey-{short}"))
    };
    let change = Change::Attr {
        subject: format!("rpm key {keyid}"),
        what: "state".into(),
        before: if present {
            "absent".into()
        } else {
            "present".into()
        },
        after: a.state.clone(),
    };
    Ok(Verdict::Drift(Drift::new(vec![change], plan)))
}

/// The id of the first `pub` key in `data` (`gpg --with-colons --fixed-list-mode`).
async fn key_id_of(
    tr: &mut HostView<'_>,
    ctx: &ModuleCtx<'_>,
    data: &KeyData,
) -> Result<String, ModuleError> {
    let out = gpg(tr, ctx, &["--with-colons", "--fixed-list-mode"], data).await?;
    out.lines()
        .map(str::trim)
        .find(|l| l.starts_with("pub:"))
        .and_then(|l| l.split(':').nth(4))
        .map(str::to_string)
        .ok_or_else(|| failed("Unexpected gpg output", Args::new()))
}

async fn apply_key(
    tr: &mut AnyTransport,
    ctx: &ModuleCtx<'_>,
    drift: &Drift,
) -> Result<Args, ModuleError> {
    let plan = drift
        .plan::<Plan>()
        .ok_or_else(|| failed("rpm_key: apply without a plan", Args::new()))?;
    let cmd = match plan {
        Plan::Import(KeyData::File(f)) => Cmd::raw("rpm --import --").arg(f.clone()),
        Plan::Import(KeyData::Bytes(b)) => Cmd::raw(IMPORT_STDIN).stdin(b.clone()),
        Plan::Erase(name) => Cmd::raw("rpm --erase --allmatches --").arg(name.clone()),
    };
    let out = ctx.run(tr, cmd).await?;
    if !out.success() {
        return Err(failed(
            out.stderr_lossy().trim().to_string(),
            output_result(&out),
        ));
    }
    Ok(result([("changed", Value::from(true))]))
}

impl Module for RpmKey {
    fn name(&self) -> &'static str {
        "rpm_key"
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

    /// Nothing: the RPM database is not backed up.
    fn resources(&self, _args: &Args) -> Vec<Resource> {
        Vec::new()
    }

    fn not_reversible(&self, _given: &dyn Fn(&str) -> bool) -> Option<&'static str> {
        Some(
            "rpm --import / rpm --erase change the RPM database's gpg-pubkey entries, which rdeploy does not back up; rollback leaves the key as the run left it",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::system::testutil::*;
    use serde_json::json;

    #[test]
    fn ansibles_key_forms() {
        assert!(is_keyid("0xDEADBEEF"));
        assert!(is_keyid("deadbeef"));
        assert!(
            is_keyid("deadbeef-not-only-hex"),
            "re.match matches a prefix"
        );
        assert!(!is_keyid("/etc/pki/rpm-gpg/KEY"));
        assert_eq!(normalize(" 0xdeadBEEF "), "DEADBEEF");
        assert!(is_pubkey(
            "x\n-----BEGIN PGP PUBLIC KEY BLOCK-----\nabc\n-----END PGP PUBLIC KEY BLOCK-----\n"
        ));
        assert!(!is_pubkey("<html>"));
    }

    /// A key made with the machine's gpg: (armored, 16-digit id, fingerprint).
    fn test_key(dir: &std::path::Path) -> (String, String, String) {
        let home = dir.join("gnupg");
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
            assert!(out.status.success());
            String::from_utf8_lossy(&out.stdout).into_owned()
        };
        let uid = "rpm test <rpm@example.com>";
        gpg(&[
            "--passphrase",
            "",
            "--quick-gen-key",
            uid,
            "ed25519",
            "sign",
            "never",
        ]);
        let listing = gpg(&["--with-colons", "--list-keys", uid]);
        let field = |prefix: &str, n: usize| {
            listing
                .lines()
                .find(|l| l.starts_with(prefix))
                .and_then(|l| l.split(':').nth(n))
                .unwrap()
                .to_string()
        };
        (
            gpg(&["--armor", "--export", uid]),
            field("pub:", 4),
            field("fpr:", 9),
        )
    }

    /// A fake `rpm`: `--import FILE` keeps the file as the one imported key's description,
    /// `--erase` forgets it, `-q gpg-pubkey` answers from that.
    const FAKE_RPM: &str = r#"echo "$*" >> "$FAKE/rpm.log"
case "$1" in
  --import) cp "$3" "$FAKE/imported" ;;
  --erase) rm -f "$FAKE/imported" ;;
  -q) [ -e "$FAKE/imported" ] || exit 1; [ "$3" = --qf ] && cat "$FAKE/imported"; exit 0 ;;
esac"#;

    #[tokio::test]
    async fn a_key_file_is_imported_once_then_erased_by_id() {
        let (dir, bin, state) = fake_dirs();
        fake_tool(&bin, "rpm", FAKE_RPM);
        let (key, id, fpr) = test_key(dir.path());
        let file = dir.path().join("RPM-GPG-KEY-test");
        std::fs::write(&file, &key).unwrap();
        let c = ctx(dir.path(), None, fake_env(&bin, &state));
        let mut tr = transport();
        let a = args(json!({"key": file, "fingerprint": [fpr]}));
        let Ran::Applied(ch, Ok(_)) = check_apply(&RpmKey, &mut tr, &a, &c).await else {
            panic!()
        };
        assert_eq!(ch.len(), 1);
        assert!(matches!(
            check_apply(&RpmKey, &mut tr, &a, &c).await,
            Ran::InSync(_)
        ));
        let wrong = args(json!({"key": file, "fingerprint": "0000 1111", "state": "present"}));
        std::fs::remove_file(state.join("imported")).unwrap();
        assert!(
            matches!(check_apply(&RpmKey, &mut tr, &wrong, &c).await, Ran::CheckFailed(m, _) if m.contains("does not match any key fingerprints"))
        );
        assert!(matches!(
            check_apply(&RpmKey, &mut tr, &a, &c).await,
            Ran::Applied(_, Ok(_))
        ));
        let gone = args(json!({"key": format!("0x{id}"), "state": "absent"}));
        assert!(matches!(
            check_apply(&RpmKey, &mut tr, &gone, &c).await,
            Ran::Applied(_, Ok(_))
        ));
        assert!(matches!(
            check_apply(&RpmKey, &mut tr, &gone, &c).await,
            Ran::InSync(_)
        ));
        let log = std::fs::read_to_string(state.join("rpm.log")).unwrap();
        assert!(
            log.contains(&format!(
                "--erase --allmatches -- gpg-pubkey-{}",
                id[8..].to_lowercase()
            )),
            "{log}"
        );
        // A URL is downloaded on the host (curl reads file: URLs too) and must be a key.
        let by_url = args(json!({"key": format!("file://{}", file.display())}));
        assert!(matches!(
            check_apply(&RpmKey, &mut tr, &by_url, &c).await,
            Ran::Applied(_, Ok(_))
        ));
        assert!(matches!(
            check_apply(&RpmKey, &mut tr, &by_url, &c).await,
            Ran::InSync(_)
        ));
        assert!(matches!(
            check_apply(&RpmKey, &mut tr, &gone, &c).await,
            Ran::Applied(_, Ok(_))
        ));
        let html = dir.path().join("index.html");
        std::fs::write(&html, "<html></html>").unwrap();
        let not_key = args(json!({"key": format!("file://{}", html.display())}));
        assert!(
            matches!(check_apply(&RpmKey, &mut tr, &not_key, &c).await, Ran::CheckFailed(m, _) if m.starts_with("Not a public key: file://"))
        );
        // An id cannot be imported; a missing path is not a key.
        let by_id = args(json!({"key": id}));
        assert!(
            matches!(check_apply(&RpmKey, &mut tr, &by_id, &c).await, Ran::CheckFailed(m, _) if m == "When importing a key, a valid file must be given")
        );
        let missing = args(json!({"key": "/nonexistent/key"}));
        assert!(
            matches!(check_apply(&RpmKey, &mut tr, &missing, &c).await, Ran::CheckFailed(m, _) if m == "Not a valid key /nonexistent/key")
        );
        assert!(RpmKey.resources(&a).is_empty());
        assert!(RpmKey.not_reversible(&|_| true).is_some());
    }
}
