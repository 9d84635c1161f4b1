//! Against vectors made by ansible-vault (tests/fixtures/vault, see its README): they decrypt,
//! and encrypting their plaintext with their salt gives them back byte for byte.

use super::*;

fn fixture(name: &str) -> String {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/vault")
        .join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn secret(label: &str, file: &str) -> VaultSecret {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/vault")
        .join(file);
    VaultSecret::new(label, secrets::read_password_file(&path).unwrap())
}

fn salt_of(text: &str) -> [u8; 32] {
    parse(text).unwrap().salt.try_into().unwrap()
}

/// The `!vault |` value of inline.yml, as the YAML block scalar holds it.
fn inline_value() -> String {
    fixture("inline.yml")
        .lines()
        .skip(1)
        .map(|l| format!("{}\n", l.trim()))
        .collect()
}

#[test]
fn v11_file_decrypts_and_reencrypts_byte_for_byte() {
    let text = fixture("v11.yml");
    let s = secret("default", "password.txt");
    let plain = decrypt(&text, std::slice::from_ref(&s)).unwrap();
    assert_eq!(plain, fixture("plain.yml").into_bytes());
    assert_eq!(encrypt(&plain, &s, Some(salt_of(&text))), text);
}

#[test]
fn v12_label_decrypts_and_reencrypts_byte_for_byte() {
    let text = fixture("v12.txt");
    assert!(text.starts_with("$ANSIBLE_VAULT;1.2;AES256;prod\n"));
    // The password file ends in spaces: they are stripped, as Ansible strips them.
    let prod = secret("prod", "prod-password.txt");
    let other = secret("default", "password.txt");
    let plain = decrypt(&text, &[other, prod.clone()]).unwrap();
    assert_eq!(plain, fixture("plain12.txt").into_bytes());
    assert_eq!(encrypt(&plain, &prod, Some(salt_of(&text))), text);
    // A secret under another label is still tried after the matching ones.
    let unlabelled = VaultSecret::new("default", prod.password().to_vec());
    assert_eq!(decrypt(&text, &[unlabelled]).unwrap(), plain);
}

#[test]
fn inline_encrypt_string_value_decrypts_and_reencrypts() {
    let value = inline_value();
    assert!(value.starts_with("$ANSIBLE_VAULT;1.1;AES256\n"));
    let s = secret("default", "password.txt");
    let plain = decrypt(&value, std::slice::from_ref(&s)).unwrap();
    assert_eq!(plain, b"hunter2-inline-Secret");
    assert_eq!(encrypt(&plain, &s, Some(salt_of(&value))), value);
}

#[test]
fn executable_password_file_gives_its_stdout_as_ansible_reads_it() {
    let s = secret("default", "password-script.sh");
    assert_eq!(s.password(), b"correct horse battery staple");
    assert!(decrypt(&fixture("v11.yml"), &[s]).is_ok());
}

#[test]
fn password_files_are_stripped_as_ansible_strips_them() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&[u8], &[u8]); 3] = [
        (b"  pw with spaces \t\n", b"pw with spaces"),
        (b"\nline one\nline two\n", b"line one\nline two"),
        (b"pw\r\n", b"pw"),
    ];
    for (i, (content, want)) in cases.into_iter().enumerate() {
        let f = dir.path().join(format!("pw{i}"));
        std::fs::write(&f, content).unwrap();
        assert_eq!(
            secrets::read_password_file(&f).unwrap(),
            want,
            "{content:?}"
        );
    }
    // A script's trailing spaces are part of its password (only CR/LF are stripped).
    let script = dir.path().join("pw.sh");
    std::fs::write(&script, "#!/bin/sh\nprintf 'pw  \\n'\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    assert_eq!(secrets::read_password_file(&script).unwrap(), b"pw  ");
    std::fs::write(dir.path().join("empty"), " \n").unwrap();
    assert!(secrets::read_password_file(&dir.path().join("empty")).is_err());
}

#[test]
fn wrong_password_is_a_clear_error() {
    let err = decrypt(&fixture("v12.txt"), &[VaultSecret::new("prod", "nope")]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "no vault password given decrypts this (tried 1, vault id 'prod')"
    );
    assert_eq!(
        decrypt(&fixture("v11.yml"), &[]).unwrap_err(),
        VaultError::NoSecret
    );
}

#[test]
fn tampered_hmac_or_ciphertext_is_refused() {
    let text = fixture("v11.yml");
    let s = secret("default", "password.txt");
    let env = parse(&text).unwrap();
    let rebuild = |hmac: &[u8], ct: &[u8]| {
        let inner = format!(
            "{}\n{}\n{}",
            hex::encode(&env.salt),
            hex::encode(hmac),
            hex::encode(ct)
        );
        format!("$ANSIBLE_VAULT;1.1;AES256\n{}\n", hex::encode(inner))
    };
    let mut hmac = env.hmac.clone();
    hmac[0] ^= 1;
    assert!(matches!(
        decrypt(&rebuild(&hmac, &env.ciphertext), std::slice::from_ref(&s)),
        Err(VaultError::WrongPassword { .. })
    ));
    let mut ct = env.ciphertext.clone();
    ct[3] ^= 0x80;
    assert!(decrypt(&rebuild(&env.hmac, &ct), std::slice::from_ref(&s)).is_err());
    assert!(decrypt(&rebuild(&env.hmac, &env.ciphertext), &[s]).is_ok());
}

#[test]
fn round_trip_with_a_random_salt_and_padding_edges() {
    let s = VaultSecret::new("default", "pw");
    for n in [0usize, 1, 15, 16, 17, 100] {
        let plain = vec![b'x'; n];
        let a = encrypt(&plain, &s, None);
        let b = encrypt(&plain, &s, None);
        assert_ne!(a, b, "a random salt each time");
        assert_eq!(decrypt(&a, std::slice::from_ref(&s)).unwrap(), plain);
        assert!(a.lines().skip(1).all(|l| l.len() <= 80));
    }
}

#[test]
fn bad_headers_are_format_errors() {
    let s = [VaultSecret::new("default", "pw")];
    assert!(matches!(
        decrypt("$ANSIBLE_VAULT;2.0;AES256\n3030\n", &s),
        Err(VaultError::Format(_))
    ));
    assert!(matches!(decrypt("hello", &s), Err(VaultError::Format(_))));
    assert!(matches!(
        decrypt("$ANSIBLE_VAULT;1.1;AES256\nzz\n", &s),
        Err(VaultError::Format(_))
    ));
}

#[test]
fn vault_id_parsing_never_prompts() {
    let s = secrets::Source::parse_vault_id("prod@/tmp/pw").unwrap();
    assert_eq!(s.label, "prod");
    assert_eq!(
        secrets::Source::parse_vault_id("/tmp/pw").unwrap().label,
        "default"
    );
    assert!(secrets::Source::parse_vault_id("prod@prompt").is_err());
}
