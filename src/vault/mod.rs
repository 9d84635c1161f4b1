//! Ansible Vault: the `$ANSIBLE_VAULT;1.1;AES256` and `$ANSIBLE_VAULT;1.2;AES256;LABEL` formats.
//!
//! Owns the envelope (header, then the hex of `hex(salt)\nhex(hmac)\nhex(ciphertext)` wrapped
//! at 80 columns) and the cipher: PBKDF2-HMAC-SHA256 (10000 rounds, 32-byte salt) gives 80
//! bytes, split into an AES-256 key, an HMAC-SHA256 key and a CTR initial counter; the
//! PKCS#7-padded plaintext is encrypted with AES-256-CTR, and the HMAC of the ciphertext is
//! checked (in constant time) before anything is decrypted. `secrets` holds the passwords
//! given on the command line; `redact` the values that must never be printed. This module must
//! not read playbooks or print anything: the YAML loader calls [`decrypt`], the reporter
//! calls [`redact::redact`].

pub mod redact;
pub mod secrets;

use aes::Aes256;
use ctr::cipher::{KeyIvInit, StreamCipher};
use hmac::{KeyInit, Mac};
use sha2_11::Sha256;

pub use secrets::VaultSecret;

/// The first bytes of every vault envelope.
pub const HEADER: &str = "$ANSIBLE_VAULT";

const ITERATIONS: u32 = 10_000;
const SALT_LEN: usize = 32;
const WIDTH: usize = 80;

type Aes256Ctr = ctr::Ctr128BE<Aes256>;
type HmacSha256 = hmac::Hmac<Sha256>;

/// Why a vault text could not be decrypted.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VaultError {
    /// No password was given at all.
    #[error("vault-encrypted: give --vault-password-file or --vault-id")]
    NoSecret,
    /// The header is not one of the two formats.
    #[error("not an Ansible Vault text: {0}")]
    Format(String),
    /// Every password was tried and none matched the HMAC.
    #[error("no vault password given decrypts this (tried {tried}{label})")]
    WrongPassword {
        /// How many passwords were tried.
        tried: usize,
        /// `, vault id 'LABEL'` for a 1.2 envelope, or nothing.
        label: String,
    },
}

/// True when `text` starts with the vault header (an encrypted file or value).
pub fn is_vault(text: &str) -> bool {
    text.trim_start().starts_with(HEADER)
}

/// One parsed envelope.
struct Envelope {
    label: Option<String>,
    salt: Vec<u8>,
    hmac: Vec<u8>,
    ciphertext: Vec<u8>,
}

fn parse(text: &str) -> Result<Envelope, VaultError> {
    let text = text.trim();
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default().trim();
    let parts: Vec<&str> = header.split(';').map(str::trim).collect();
    if parts.first() != Some(&HEADER) || parts.len() < 3 {
        return Err(VaultError::Format(
            "expected a '$ANSIBLE_VAULT;1.1;AES256' header".into(),
        ));
    }
    if !matches!(parts[1], "1.1" | "1.2") {
        return Err(VaultError::Format(format!(
            "format version {} is not supported (1.1 and 1.2 are)",
            parts[1]
        )));
    }
    if parts[2] != "AES256" {
        return Err(VaultError::Format(format!(
            "cipher {} is not supported (AES256 is)",
            parts[2]
        )));
    }
    let label = parts
        .get(3)
        .map(|s| s.to_string())
        .filter(|s| !s.is_empty());
    let body: String = lines.map(str::trim).collect();
    let inner = hex::decode(&body)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| VaultError::Format("the body is not hexadecimal".into()))?;
    let fields: Vec<&str> = inner.split('\n').collect();
    let [salt, hmac, ct] = fields[..] else {
        return Err(VaultError::Format(
            "the body must hold a salt, an HMAC and the ciphertext".into(),
        ));
    };
    let field = |s: &str, what: &str| {
        hex::decode(s.trim())
            .map_err(|_| VaultError::Format(format!("the {what} is not hexadecimal")))
    };
    Ok(Envelope {
        label,
        salt: field(salt, "salt")?,
        hmac: field(hmac, "HMAC")?,
        ciphertext: field(ct, "ciphertext")?,
    })
}

/// The AES key, HMAC key and initial counter of a password and salt.
fn derive(password: &[u8], salt: &[u8]) -> ([u8; 32], [u8; 32], [u8; 16]) {
    let mut out = [0u8; 80];
    pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, ITERATIONS, &mut out);
    let mut key = [0u8; 32];
    let mut hmac_key = [0u8; 32];
    let mut iv = [0u8; 16];
    key.copy_from_slice(&out[..32]);
    hmac_key.copy_from_slice(&out[32..64]);
    iv.copy_from_slice(&out[64..]);
    (key, hmac_key, iv)
}

fn mac(hmac_key: &[u8; 32]) -> HmacSha256 {
    <HmacSha256 as KeyInit>::new_from_slice(hmac_key).expect("HMAC takes any key length")
}

/// Decrypts a vault text (a whole file, or the text of a `!vault` value) with the first
/// secret that fits: for a 1.2 envelope the secrets whose label matches are tried first, then
/// all of them.
pub fn decrypt(text: &str, secrets: &[VaultSecret]) -> Result<Vec<u8>, VaultError> {
    let env = parse(text)?;
    if secrets.is_empty() {
        return Err(VaultError::NoSecret);
    }
    let mut order: Vec<&VaultSecret> = Vec::with_capacity(secrets.len());
    if let Some(label) = &env.label {
        order.extend(secrets.iter().filter(|s| &s.label == label));
    }
    order.extend(
        secrets
            .iter()
            .filter(|s| env.label.as_ref() != Some(&s.label)),
    );
    for s in order {
        let (key, hmac_key, iv) = derive(s.password(), &env.salt);
        let mut m = mac(&hmac_key);
        m.update(&env.ciphertext);
        if m.verify_slice(&env.hmac).is_err() {
            continue;
        }
        let mut data = env.ciphertext.clone();
        Aes256Ctr::new(&key.into(), &iv.into()).apply_keystream(&mut data);
        unpad(&mut data)?;
        return Ok(data);
    }
    Err(VaultError::WrongPassword {
        tried: secrets.len(),
        label: env
            .label
            .map(|l| format!(", vault id '{l}'"))
            .unwrap_or_default(),
    })
}

fn unpad(data: &mut Vec<u8>) -> Result<(), VaultError> {
    let bad = || VaultError::Format("bad padding after decryption".into());
    let n = *data.last().ok_or_else(bad)? as usize;
    if n == 0
        || n > 16
        || n > data.len()
        || !data[data.len() - n..].iter().all(|&b| b as usize == n)
    {
        return Err(bad());
    }
    data.truncate(data.len() - n);
    Ok(())
}

/// Encrypts `plain` with `secret` as ansible-vault does: a 1.1 envelope, or 1.2 when the
/// secret has a label other than `default`. `salt` is random unless given (tests reproduce
/// a known vector with it). The text ends with a newline.
pub fn encrypt(plain: &[u8], secret: &VaultSecret, salt: Option<[u8; SALT_LEN]>) -> String {
    let salt = salt.unwrap_or_else(random_salt);
    let (key, hmac_key, iv) = derive(secret.password(), &salt);
    let pad = 16 - plain.len() % 16;
    let mut data = plain.to_vec();
    data.extend(std::iter::repeat_n(pad as u8, pad));
    Aes256Ctr::new(&key.into(), &iv.into()).apply_keystream(&mut data);
    let mut m = mac(&hmac_key);
    m.update(&data);
    let tag = m.finalize().into_bytes();
    let inner = format!(
        "{}\n{}\n{}",
        hex::encode(salt),
        hex::encode(tag),
        hex::encode(&data)
    );
    let body = hex::encode(inner.as_bytes());
    let mut out = if secret.label == "default" {
        format!("{HEADER};1.1;AES256\n")
    } else {
        format!("{HEADER};1.2;AES256;{}\n", secret.label)
    };
    for chunk in body.as_bytes().chunks(WIDTH) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out
}

fn random_salt() -> [u8; SALT_LEN] {
    let mut salt = [0u8; SALT_LEN];
    getrandom::fill(&mut salt).expect("the operating system's random source");
    salt
}

#[cfg(test)]
mod tests;
