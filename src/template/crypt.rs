//! The crypt(3) password hashes `password_hash` writes: SHA-512 (`$6$`), SHA-256 (`$5$`) and
//! MD5 (`$1$`) crypt, byte-exact with passlib (which ansible-core 2.19 hashes with).
//!
//! The algorithms are Ulrich Drepper's "Unix crypt using SHA-256 and SHA-512" specification
//! and Poul-Henning Kamp's MD5-crypt, on the `sha2` and `md5` digests the crate already
//! builds; no crate of the ecosystem implements them on the digest versions we have without
//! a second copy of `sha2`. It owns hashing only: salt generation and argument checks are the
//! filter's (`more_filters::password_hash`).

use sha2::Digest;

/// The crypt alphabet (`./0-9A-Za-z`), also the characters a salt may use.
pub const CRYPT64: &[u8] = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

fn b64_from_24bit(out: &mut String, b2: u8, b1: u8, b0: u8, n: usize) {
    let mut w = (u32::from(b2) << 16) | (u32::from(b1) << 8) | u32::from(b0);
    for _ in 0..n {
        out.push(CRYPT64[(w & 0x3f) as usize] as char);
        w >>= 6;
    }
}

/// Drepper's SHA-crypt core over digest `D`; returns the encoded checksum only.
fn sha_crypt_raw<D: Digest>(pw: &[u8], salt: &[u8], rounds: u32) -> Vec<u8> {
    let len = <D as Digest>::output_size();
    let b = D::new()
        .chain_update(pw)
        .chain_update(salt)
        .chain_update(pw)
        .finalize();
    let mut a = D::new().chain_update(pw).chain_update(salt);
    let mut n = pw.len();
    while n > len {
        a.update(&b);
        n -= len;
    }
    a.update(&b[..n]);
    let mut n = pw.len();
    while n > 0 {
        if n & 1 == 1 {
            a.update(&b);
        } else {
            a.update(pw);
        }
        n >>= 1;
    }
    let a = a.finalize();
    let mut dp = D::new();
    for _ in 0..pw.len() {
        dp.update(pw);
    }
    let dp = dp.finalize();
    let p: Vec<u8> = dp.iter().cycle().take(pw.len()).copied().collect();
    let mut ds = D::new();
    for _ in 0..16 + usize::from(a[0]) {
        ds.update(salt);
    }
    let ds = ds.finalize();
    let s: Vec<u8> = ds.iter().cycle().take(salt.len()).copied().collect();
    let mut c = a.to_vec();
    for i in 0..rounds {
        let mut ctx = D::new();
        if i & 1 == 1 {
            ctx.update(&p);
        } else {
            ctx.update(&c);
        }
        if i % 3 != 0 {
            ctx.update(&s);
        }
        if i % 7 != 0 {
            ctx.update(&p);
        }
        if i & 1 == 1 {
            ctx.update(&c);
        } else {
            ctx.update(&p);
        }
        c = ctx.finalize().to_vec();
    }
    c
}

/// The rounds SHA-crypt uses when the hash does not say (`rounds=` is then left out).
pub const SHA_DEFAULT_ROUNDS: u32 = 5000;

/// `$6$[rounds=N$]salt$checksum` (salt at most 16 characters, rounds 1000..=999999999).
pub fn sha512_crypt(pw: &[u8], salt: &str, rounds: u32) -> String {
    let c = sha_crypt_raw::<sha2::Sha512>(pw, salt.as_bytes(), rounds);
    let mut out = head("6", salt, rounds);
    const ORDER: [(usize, usize, usize); 21] = [
        (0, 21, 42),
        (22, 43, 1),
        (44, 2, 23),
        (3, 24, 45),
        (25, 46, 4),
        (47, 5, 26),
        (6, 27, 48),
        (28, 49, 7),
        (50, 8, 29),
        (9, 30, 51),
        (31, 52, 10),
        (53, 11, 32),
        (12, 33, 54),
        (34, 55, 13),
        (56, 14, 35),
        (15, 36, 57),
        (37, 58, 16),
        (59, 17, 38),
        (18, 39, 60),
        (40, 61, 19),
        (62, 20, 41),
    ];
    for (x, y, z) in ORDER {
        b64_from_24bit(&mut out, c[x], c[y], c[z], 4);
    }
    b64_from_24bit(&mut out, 0, 0, c[63], 2);
    out
}

/// `$5$[rounds=N$]salt$checksum`.
pub fn sha256_crypt(pw: &[u8], salt: &str, rounds: u32) -> String {
    let c = sha_crypt_raw::<sha2::Sha256>(pw, salt.as_bytes(), rounds);
    let mut out = head("5", salt, rounds);
    const ORDER: [(usize, usize, usize); 10] = [
        (0, 10, 20),
        (21, 1, 11),
        (12, 22, 2),
        (3, 13, 23),
        (24, 4, 14),
        (15, 25, 5),
        (6, 16, 26),
        (27, 7, 17),
        (18, 28, 8),
        (9, 19, 29),
    ];
    for (x, y, z) in ORDER {
        b64_from_24bit(&mut out, c[x], c[y], c[z], 4);
    }
    b64_from_24bit(&mut out, 0, c[31], c[30], 3);
    out
}

fn head(id: &str, salt: &str, rounds: u32) -> String {
    if rounds == SHA_DEFAULT_ROUNDS {
        format!("${id}${salt}$")
    } else {
        format!("${id}$rounds={rounds}${salt}$")
    }
}

/// `$1$salt$checksum` (salt at most 8 characters).
pub fn md5_crypt(pw: &[u8], salt: &str) -> String {
    let salt_b = salt.as_bytes();
    let mut alt = md5::Context::new();
    alt.consume(pw);
    alt.consume(salt_b);
    alt.consume(pw);
    let alt = alt.finalize().0;
    let mut ctx = md5::Context::new();
    ctx.consume(pw);
    ctx.consume(b"$1$");
    ctx.consume(salt_b);
    let mut n = pw.len();
    while n > 0 {
        ctx.consume(&alt[..n.min(16)]);
        n = n.saturating_sub(16);
    }
    let mut n = pw.len();
    while n > 0 {
        if n & 1 == 1 {
            ctx.consume([0u8]);
        } else {
            ctx.consume(&pw[..1]);
        }
        n >>= 1;
    }
    let mut f = ctx.finalize().0;
    for i in 0..1000 {
        let mut c = md5::Context::new();
        if i & 1 == 1 {
            c.consume(pw);
        } else {
            c.consume(f);
        }
        if i % 3 != 0 {
            c.consume(salt_b);
        }
        if i % 7 != 0 {
            c.consume(pw);
        }
        if i & 1 == 1 {
            c.consume(f);
        } else {
            c.consume(pw);
        }
        f = c.finalize().0;
    }
    let mut out = format!("$1${salt}$");
    for (x, y, z) in [(0, 6, 12), (1, 7, 13), (2, 8, 14), (3, 9, 15), (4, 10, 5)] {
        b64_from_24bit(&mut out, f[x], f[y], f[z], 4);
    }
    b64_from_24bit(&mut out, 0, 0, f[11], 2);
    out
}

/// The bcrypt alphabet (`./A-Za-z0-9`), as passlib's `bcrypt64`.
pub const BCRYPT64: &[u8] = b"./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

fn bcrypt64_encode(data: &[u8]) -> String {
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let w = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for k in 0..=chunk.len() {
            out.push(BCRYPT64[((w >> (18 - 6 * k)) & 0x3f) as usize] as char);
        }
    }
    out
}

/// Decodes bcrypt base64 into `n` bytes (bits beyond them are dropped), or None on a
/// character outside the alphabet.
fn bcrypt64_decode(text: &str, n: usize) -> Option<Vec<u8>> {
    let mut bits: u64 = 0;
    let mut have = 0;
    let mut out = Vec::with_capacity(n);
    for c in text.bytes() {
        let v = BCRYPT64.iter().position(|x| *x == c)? as u64;
        bits = (bits << 6) | v;
        have += 6;
        if have >= 8 {
            have -= 8;
            out.push((bits >> have) as u8);
            bits &= (1 << have) - 1;
        }
    }
    out.truncate(n);
    Some(out)
}

/// passlib's `bcrypt64.repair_unused`: a 22-character salt with the unused low bits of its
/// last character cleared (`...2` becomes `...u`); None on a character outside the alphabet.
pub fn bcrypt_repair_salt(salt: &str) -> Option<String> {
    bcrypt64_decode(salt, 16).map(|b| bcrypt64_encode(&b))
}

/// `$2b$CC$<22 salt><31 checksum>`: bcrypt with `2^cost` rounds of the expensive key
/// schedule; `salt` is 22 bcrypt64 characters (already repaired), `ident` `2a`/`2b`/`2y`.
pub fn bcrypt(pw: &[u8], salt: &str, cost: u32, ident: &str) -> Option<String> {
    let salt_bytes = bcrypt64_decode(salt, 16)?;
    let mut key: Vec<u8> = pw.to_vec();
    key.push(0);
    key.truncate(72);
    let mut state = blowfish::Blowfish::bc_init_state();
    state.salted_expand_key(&salt_bytes, &key);
    for _ in 0..(1u64 << cost) {
        state.bc_expand_key(&key);
        state.bc_expand_key(&salt_bytes);
    }
    let magic = b"OrpheanBeholderScryDoubt";
    let mut words: Vec<u32> = magic
        .chunks(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    for _ in 0..64 {
        for i in 0..3 {
            let lr = state.bc_encrypt([words[2 * i], words[2 * i + 1]]);
            words[2 * i] = lr[0];
            words[2 * i + 1] = lr[1];
        }
    }
    let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_be_bytes()).collect();
    Some(format!(
        "${ident}${cost:02}${salt}{}",
        bcrypt64_encode(&bytes[..23])
    ))
}

#[cfg(test)]
mod unit_tests {
    use super::*;

    /// Expected values from Python's `crypt.crypt` (glibc), which passlib matches.
    #[test]
    fn hashes_match_glibc_crypt() {
        assert_eq!(sha512_crypt(b"secret", "mysalt", 5000), SHA512);
        assert_eq!(sha512_crypt(b"secret", "mysalt", 10000), SHA512_R);
        assert_eq!(sha256_crypt(b"secret", "mysalt", 5000), SHA256);
        assert_eq!(md5_crypt(b"secret", "mysalt"), MD5);
        assert_eq!(
            sha512_crypt(
                b"a much longer password than sixty-four bytes of text, really long!",
                "0123456789abcdef",
                5000
            ),
            SHA512_LONG
        );
    }

    /// From passlib through ansible-playbook: `password_hash('blowfish', '1234567890123456789012')`.
    #[test]
    fn bcrypt_matches_passlib() {
        let salt = bcrypt_repair_salt("1234567890123456789012").unwrap_or_default();
        assert_eq!(salt, "123456789012345678901u");
        assert_eq!(
            bcrypt(b"secret", &salt, 12, "2b").as_deref(),
            Some("$2b$12$123456789012345678901uO/yptqYYqXPYviqOvezm2C7cYzKwtUq")
        );
    }

    const SHA512: &str = "$6$mysalt$UX6P1VKOf6dr0s2pg4pLNvIUB6hLXvP6M5f/Yj9hJgMPdAJ4oArvk5YUD9/XWtk1JOpVwt/JTsczMJr8sFVML1";
    const SHA512_R: &str = "$6$rounds=10000$mysalt$9XTP7570fxVN/uTspSrH6kRPdR4KKGzGz7.TmJjDYGrKSwZuavW/3YaLur8JX6WP75Czcxa.megIO0lKreY0R.";
    const SHA256: &str = "$5$mysalt$I2SNajjJ3Gc5gIR/tkrLOGngF8wqv59buJCqxh.o9s8";
    const MD5: &str = "$1$mysalt$n/EfEiV74OYgBdqhKQzSW/";
    const SHA512_LONG: &str = "$6$0123456789abcdef$zvuaDhWK/83W6e98aonCkQbBQJ6qCZDc4Dp8BoujpTAHE67rjdCgtWnf4uXHSHC60PfjX1LT43bY6fUJsudUC1";
}
