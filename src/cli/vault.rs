//! `rdeploy vault encrypt|decrypt|view FILE`: ansible-vault's file commands.
//!
//! Owns choosing the password to encrypt with and writing the result: `--output FILE` (or `-`
//! for stdout), else FILE rewritten through a temp file in its directory, fsynced and renamed
//! over it with FILE's permissions. It must not prompt: passwords come only from
//! `--vault-password-file` and `--vault-id`. The crypto is `crate::vault`'s.

use std::io::{self, Write};
use std::path::Path;

use super::args::{VaultCommand, VaultFileArgs};
use super::{Exit, Failed, settings};
use crate::diag::{Diagnostic, Diagnostics};
use crate::report;
use crate::vault;

/// Runs one `rdeploy vault` subcommand.
pub(crate) fn cmd_vault(out: &mut dyn Write, cmd: VaultCommand) -> Result<Exit, Failed> {
    let (what, a) = match cmd {
        VaultCommand::Encrypt(a) => ("encrypt", a),
        VaultCommand::Decrypt(a) => ("decrypt", a),
        VaultCommand::View(a) => ("view", a),
    };
    let secrets = settings::vault_secrets(&super::vault_sources(&a.vault))?;
    let err = |m: String| -> Failed { Diagnostics::from(Diagnostic::options(m)).into() };
    let shown = a.file.display().to_string();
    let data = std::fs::read(&a.file).map_err(|e| err(format!("{shown}: {e}")))?;
    let encrypted = data.starts_with(vault::HEADER.as_bytes());
    if secrets.is_empty() {
        return Err(err(format!(
            "{shown}: {what} needs a password: give --vault-password-file or --vault-id"
        )));
    }
    let result = if what == "encrypt" {
        if encrypted {
            return Err(err(format!("{shown} is already vault-encrypted")));
        }
        let secret = match &a.encrypt_vault_id {
            Some(l) => secrets
                .iter()
                .find(|s| &s.label == l)
                .ok_or_else(|| err(format!("--encrypt-vault-id {l}: no --vault-id {l}@FILE")))?,
            None => &secrets[0],
        };
        vault::encrypt(&data, secret, None).into_bytes()
    } else {
        if !encrypted {
            return Err(err(format!("{shown} is not vault-encrypted")));
        }
        let text = String::from_utf8_lossy(&data);
        vault::decrypt(&text, &secrets).map_err(|e| err(format!("{shown}: {e}")))?
    };
    match (what, a.output.as_deref()) {
        ("view", None) => report::bytes(out, &result)?,
        (_, Some(p)) if p == Path::new("-") => report::bytes(out, &result)?,
        (_, Some(p)) => write_replacing(p, &result, &a)?,
        (_, None) => write_replacing(&a.file, &result, &a)?,
    }
    Ok(Exit::Success)
}

/// Writes `data` to `dest` through a temp file in the same directory, renamed into place.
fn write_replacing(dest: &Path, data: &[u8], a: &VaultFileArgs) -> io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let dir = match dest.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| "vault".into());
    let tmp = dir.join(format!(".{name}.rdeploy-vault-{}", std::process::id()));
    let mode = std::fs::metadata(dest)
        .or_else(|_| std::fs::metadata(&a.file))
        .map(|m| m.permissions().mode() & 0o7777)
        .unwrap_or(0o600);
    let write = || -> io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(data)?;
        f.set_permissions(std::fs::Permissions::from_mode(mode))?;
        f.sync_all()?;
        std::fs::rename(&tmp, dest)
    };
    write().inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}
