//! Root's password: SHA-512 crypt (`$6$`, as glibc's crypt(3) and
//! `openssl passwd -6` make it) and the edit of root's line in /etc/shadow.
//!
//! Pure: no files, no randomness. The salt is a parameter; [`CryptSalt::derive`]
//! makes one from the recipe so a recipe always gives the same hash and so
//! the same tarball bytes. Written from Ulrich Drepper's "Unix crypt using
//! SHA-256 and SHA-512" specification; `openssl passwd -6` is the test oracle.

use sha2::{Digest, Sha256, Sha512};

/// crypt(3)'s base-64 alphabet.
const ALPHABET: &[u8; 64] = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// The specification's default round count (not written into the hash).
const ROUNDS: usize = 5000;

/// The order in which the 64 digest bytes are encoded, three at a time.
const ENCODE_ORDER: [[usize; 3]; 21] = [
    [0, 21, 42],
    [22, 43, 1],
    [44, 2, 23],
    [3, 24, 45],
    [25, 46, 4],
    [47, 5, 26],
    [6, 27, 48],
    [28, 49, 7],
    [50, 8, 29],
    [9, 30, 51],
    [31, 52, 10],
    [53, 11, 32],
    [12, 33, 54],
    [34, 55, 13],
    [56, 14, 35],
    [15, 36, 57],
    [37, 58, 16],
    [59, 17, 38],
    [18, 39, 60],
    [40, 61, 19],
    [62, 20, 41],
];

/// A crypt salt: 1 to 16 characters of the crypt alphabet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CryptSalt(String);

impl CryptSalt {
    pub fn new(salt: &str) -> Option<Self> {
        let ok = (1..=16).contains(&salt.len()) && salt.bytes().all(|b| ALPHABET.contains(&b));
        ok.then(|| CryptSalt(salt.to_string()))
    }

    /// A 16-character salt from the SHA-256 of `parts`.
    pub fn derive(parts: &[&str]) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(b"mkimg root password salt v1");
        for part in parts {
            hasher.update([0]);
            hasher.update(part.as_bytes());
        }
        let digest = hasher.finalize();
        let mut salt = String::new();
        for chunk in digest[..12].chunks(3) {
            push_b64(&mut salt, chunk[0], chunk[1], chunk[2], 4);
        }
        CryptSalt(salt)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `$6$<salt>$<hash>` for `password`.
pub fn sha512_crypt(password: &[u8], salt: &CryptSalt) -> String {
    let p = password;
    let s = salt.0.as_bytes();
    let b = Sha512::new()
        .chain_update(p)
        .chain_update(s)
        .chain_update(p)
        .finalize();

    let mut a = Sha512::new().chain_update(p).chain_update(s);
    let mut left = p.len();
    while left > 64 {
        a.update(b);
        left -= 64;
    }
    a.update(&b[..left]);
    let mut bits = p.len();
    while bits > 0 {
        if bits & 1 == 1 {
            a.update(b);
        } else {
            a.update(p);
        }
        bits >>= 1;
    }
    let mut a = a.finalize();

    let mut dp = Sha512::new();
    for _ in 0..p.len() {
        dp.update(p);
    }
    let p_bytes = cycle_to(&dp.finalize(), p.len());
    let mut ds = Sha512::new();
    for _ in 0..16 + usize::from(a[0]) {
        ds.update(s);
    }
    let s_bytes = cycle_to(&ds.finalize(), s.len());

    for round in 0..ROUNDS {
        let mut c = Sha512::new();
        if round % 2 == 1 {
            c.update(&p_bytes);
        } else {
            c.update(a);
        }
        if round % 3 != 0 {
            c.update(&s_bytes);
        }
        if round % 7 != 0 {
            c.update(&p_bytes);
        }
        if round % 2 == 1 {
            c.update(a);
        } else {
            c.update(&p_bytes);
        }
        a = c.finalize();
    }

    let mut out = format!("$6${}$", salt.0);
    for [i, j, k] in ENCODE_ORDER {
        push_b64(&mut out, a[i], a[j], a[k], 4);
    }
    push_b64(&mut out, 0, 0, a[63], 2);
    out
}

/// `digest` repeated to `len` bytes.
fn cycle_to(digest: &[u8], len: usize) -> Vec<u8> {
    digest.iter().copied().cycle().take(len).collect()
}

/// crypt's base 64: `count` characters of the 24-bit word, low bits first.
fn push_b64(out: &mut String, b2: u8, b1: u8, b0: u8, count: usize) {
    let mut word = (u32::from(b2) << 16) | (u32::from(b1) << 8) | u32::from(b0);
    for _ in 0..count {
        out.push(char::from(ALPHABET[(word & 0x3f) as usize]));
        word >>= 6;
    }
}

/// /etc/shadow with root's password field replaced by `hash`.
pub fn set_root_hash(shadow: &str, hash: &str) -> anyhow::Result<String> {
    let mut found = false;
    let mut out = String::with_capacity(shadow.len() + hash.len());
    for line in shadow.lines() {
        match line.split_once(':') {
            Some(("root", rest)) => {
                found = true;
                let tail = rest.split_once(':').map_or("", |(_, tail)| tail);
                out.push_str(&format!("root:{hash}:{tail}\n"));
            }
            _ => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    anyhow::ensure!(found, "/etc/shadow has no line for root");
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::{set_root_hash, sha512_crypt, CryptSalt};
    use crate::host::cmd::Cmd;

    /// Published example from the specification's test vectors.
    #[test]
    fn matches_specification_vector() {
        let salt = CryptSalt::new("saltstring").unwrap();
        assert_eq!(
            sha512_crypt(b"Hello world!", &salt),
            "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJu\
             esI68u4OTLiBFdcbYEdFCoEOfaS35inz1"
        );
    }

    /// `openssl passwd -6` is the oracle for lengths around the 64-byte block.
    #[test]
    fn matches_openssl_passwd() {
        let salt = CryptSalt::derive(&["debian", "trixie", "riscv64", "root"]);
        for password in ["root", "a", &"x".repeat(64), &"long password ".repeat(7)] {
            let ours = sha512_crypt(password.as_bytes(), &salt);
            let cmd = Cmd::new("hashing a password", "openssl").args([
                "passwd",
                "-6",
                "-salt",
                salt.as_str(),
                password,
            ]);
            match cmd.output() {
                Ok(out) => assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), ours),
                Err(e) if std::env::var_os("MKIMG_REQUIRE_TOOLS").is_none() => {
                    eprintln!("skipping: openssl unavailable: {e}");
                    return;
                }
                Err(e) => panic!("{e}"),
            }
        }
    }

    #[test]
    fn derived_salt_is_stable_and_valid() {
        let a = CryptSalt::derive(&["debian", "trixie"]);
        assert_eq!(a, CryptSalt::derive(&["debian", "trixie"]));
        assert_ne!(a, CryptSalt::derive(&["debian", "sid"]));
        assert_eq!(a.as_str().len(), 16);
        assert!(CryptSalt::new(a.as_str()).is_some());
        assert!(CryptSalt::new("bad$salt").is_none());
    }

    #[test]
    fn root_line_gets_the_hash() {
        let shadow = "root:*:20000:0:99999:7:::\ndaemon:*:20000:0:99999:7:::\n";
        let out = set_root_hash(shadow, "$6$s$h").unwrap();
        assert_eq!(
            out,
            "root:$6$s$h:20000:0:99999:7:::\ndaemon:*:20000:0:99999:7:::\n"
        );
        assert!(set_root_hash("daemon:*:1::::::\n", "$6$s$h").is_err());
    }
}
