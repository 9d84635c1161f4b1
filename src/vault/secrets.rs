//! Vault passwords: reading them from `--vault-password-file` and `--vault-id label@FILE`, and
//! the process-wide set the YAML loader decrypts with.
//!
//! Owns how a password file is read, exactly as Ansible reads it (an executable file is run and
//! its stdout without leading and trailing CR/LF is the password; any other file's content
//! without leading and trailing whitespace is)
//! and the one place the passwords live for the rest of the process. It never prompts: there
//! is no terminal input anywhere in rdeploy. It must not decrypt (that is `mod.rs`).

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::RwLock;

/// One password, with the vault id it was given under (`default` when none).
#[derive(Clone, PartialEq, Eq)]
pub struct VaultSecret {
    /// The vault id (`prod` of `--vault-id prod@FILE`), `default` otherwise.
    pub label: String,
    password: Vec<u8>,
}

impl fmt::Debug for VaultSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VaultSecret({}, ********)", self.label)
    }
}

impl VaultSecret {
    /// A password under a vault id.
    pub fn new(label: impl Into<String>, password: impl Into<Vec<u8>>) -> VaultSecret {
        VaultSecret {
            label: label.into(),
            password: password.into(),
        }
    }

    /// The password's bytes.
    pub fn password(&self) -> &[u8] {
        &self.password
    }
}

/// Where one password comes from, as typed on the command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    /// The vault id.
    pub label: String,
    /// The password file or script.
    pub file: PathBuf,
}

impl Source {
    /// `--vault-id label@FILE` (or `FILE`, under `default`). `prompt` is refused: rdeploy
    /// never reads a terminal.
    pub fn parse_vault_id(raw: &str) -> Result<Source, String> {
        let (label, file) = match raw.split_once('@') {
            Some((l, f)) => (l, f),
            None => ("default", raw),
        };
        if file == "prompt" || file == "prompt_ask_vault_pass" {
            return Err(format!(
                "--vault-id {raw}: rdeploy never prompts for a password; give a password file"
            ));
        }
        if label.is_empty() || file.is_empty() {
            return Err(format!("--vault-id {raw}: expected LABEL@FILE (or FILE)"));
        }
        Ok(Source {
            label: label.to_string(),
            file: PathBuf::from(file),
        })
    }

    /// Reads the password (running the file when it is executable).
    pub fn read(&self) -> Result<VaultSecret, String> {
        let password = read_password_file(&self.file)?;
        Ok(VaultSecret::new(self.label.clone(), password))
    }
}

/// The password in `path`, as Ansible's `FileVaultSecret`/`ScriptVaultSecret` read it: an
/// executable's stdout with CR/LF stripped from both ends, else the file's content with
/// whitespace stripped from both ends (a password of several lines keeps its inner newlines).
/// An empty password is an error.
pub fn read_password_file(path: &Path) -> Result<Vec<u8>, String> {
    let shown = path.display();
    let script = is_executable(path);
    let bytes = if script {
        let out = std::process::Command::new(path)
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::inherit())
            .output()
            .map_err(|e| format!("vault password script {shown}: cannot run it: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "vault password script {shown} failed ({})",
                out.status
            ));
        }
        out.stdout
    } else {
        std::fs::read(path).map_err(|e| format!("vault password file {shown}: {e}"))?
    };
    // Python's bytes.strip(): space, \t, \n, \v, \f, \r.
    let stripped: &[u8] = if script {
        trim(&bytes, |b| b == b'\r' || b == b'\n')
    } else {
        trim(&bytes, |b| b" \t\n\x0b\x0c\r".contains(&b))
    };
    if stripped.is_empty() {
        return Err(format!(
            "vault password file {shown} holds an empty password"
        ));
    }
    Ok(stripped.to_vec())
}

/// `bytes` without the leading and trailing bytes that are `strip`.
fn trim(bytes: &[u8], strip: impl Fn(u8) -> bool) -> &[u8] {
    let start = bytes.iter().position(|&b| !strip(b)).unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|&b| !strip(b))
        .map_or(start, |i| i + 1);
    &bytes[start..end]
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The passwords of this process, set by the command line before anything is loaded.
static SECRETS: RwLock<Vec<VaultSecret>> = RwLock::new(Vec::new());

/// Adds passwords to the process-wide set (the CLI calls it once; tests add their own).
pub fn install(secrets: impl IntoIterator<Item = VaultSecret>) {
    let mut s = SECRETS.write().unwrap_or_else(|e| e.into_inner());
    for secret in secrets {
        if !s.contains(&secret) {
            s.push(secret);
        }
    }
}

/// Runs `f` with the process-wide passwords.
pub fn with<T>(f: impl FnOnce(&[VaultSecret]) -> T) -> T {
    let s = SECRETS.read().unwrap_or_else(|e| e.into_inner());
    f(&s)
}
