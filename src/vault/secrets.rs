//! Vault passwords: reading them from `--vault-password-file` and `--vault-id label@FILE`, and
//! the process-wide set the YAML loader decrypts with.
//!
//! Owns how a password file is read (an executable file is run and the first line of its
//! stdout is the password; any other file's first line is; trailing whitespace is stripped)
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

/// The password in `path`: the first line of an executable's stdout, else the file's first
/// line; trailing whitespace stripped. An empty password is an error.
pub fn read_password_file(path: &Path) -> Result<Vec<u8>, String> {
    let shown = path.display();
    let bytes = if is_executable(path) {
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
    let line = bytes.split(|&b| b == b'\n').next().unwrap_or_default();
    let end = line
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(0, |i| i + 1);
    if end == 0 {
        return Err(format!(
            "vault password file {shown} holds an empty password"
        ));
    }
    Ok(line[..end].to_vec())
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
