//! Root's password: SHA-512 crypt (`$6$`, as glibc's crypt(3) and
//! `openssl passwd -6` make it) and the edit of root's line in /etc/shadow.
//!
//! Pure: no files, no randomness. The salt is a parameter; [`CryptSalt::derive`]
//! makes one from the recipe so a recipe always gives the same hash and so
//! the same tarball bytes.
//!
//! The hash itself is RustCrypto's `sha-crypt` (0.5: its `sha512_crypt_b64`
//! takes the salt as given, so a derived salt works, and gives glibc's exact
//! text). Ours are only the salt (derivation and the crypt-alphabet check)
//! and the shadow edit. Test oracles: the specification's published vectors,
//! `openssl passwd -6 -salt` and glibc's crypt(3) (through Python's `crypt`).

use sha2::{Digest, Sha256};
use sha_crypt::Sha512Params;

/// crypt(3)'s base-64 alphabet.
const ALPHABET: &[u8; 64] = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// The specification's default round count: the one `$6$<salt>$` hashes
/// without a `rounds=` field use.
const ROUNDS: usize = 5000;

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

/// `$6$<salt>$<hash>` for `password`, as glibc's crypt(3) writes it.
pub fn sha512_crypt(password: &[u8], salt: &CryptSalt) -> String {
    let params = Sha512Params::new(ROUNDS).expect("5000 rounds is in sha-crypt's range");
    let hash = sha_crypt::sha512_crypt_b64(password, salt.0.as_bytes(), &params)
        .expect("the rounds are in range and crypt's base 64 is ASCII");
    format!("$6${}${hash}", salt.0)
}

/// crypt's base 64 (for the derived salt): `count` characters of the
/// 24-bit word, low bits first.
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

    /// The specification's published vectors with the default 5000 rounds
    /// (the second salt is cut to 16 characters, as the spec does).
    #[test]
    fn matches_specification_vectors() {
        let salt = CryptSalt::new("saltstring").unwrap();
        assert_eq!(
            sha512_crypt(b"Hello world!", &salt),
            "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJu\
             esI68u4OTLiBFdcbYEdFCoEOfaS35inz1"
        );
        let salt = CryptSalt::new("toolongsaltstrin").unwrap();
        assert_eq!(
            sha512_crypt(b"This is just a test", &salt),
            "$6$toolongsaltstrin$lQ8jolhgVRVhY4b5pZKaysCLi0QBxGoNeKQzQ3glMhwllF7oGDZx\
             Uhx1yxdYcz/e1JSbq3y6JMxxl8audkUEm0"
        );
    }

    /// Salts of 1, 10 and 16 characters and the derived one; passwords around
    /// the 64-byte block and beyond.
    fn oracle_cases() -> Vec<(CryptSalt, String)> {
        let salts = [
            CryptSalt::derive(&["debian", "trixie", "riscv64", "root"]),
            CryptSalt::new("x").unwrap(),
            CryptSalt::new("saltstring").unwrap(),
            CryptSalt::new("./0123456789ABCz").unwrap(),
        ];
        let passwords = [
            "root".to_string(),
            "a".into(),
            "x".repeat(63),
            "x".repeat(64),
            "x".repeat(65),
            "long password ".repeat(7),
            "p\u{e4}ss w\u{f6}rd$!".into(),
        ];
        let mut cases = Vec::new();
        for salt in &salts {
            for password in &passwords {
                cases.push((salt.clone(), password.clone()));
            }
        }
        cases
    }

    /// A missing oracle skips on a laptop, fails where tools are required.
    fn oracle_missing(what: &str, e: &dyn std::fmt::Display) {
        crate::test_tools::skip_or_fail(format_args!("{what} unavailable: {e}"));
    }

    /// `openssl passwd -6 -salt` is one oracle.
    #[test]
    fn matches_openssl_passwd() {
        for (salt, password) in oracle_cases() {
            let ours = sha512_crypt(password.as_bytes(), &salt);
            let cmd = Cmd::new("hashing a password", "openssl").args([
                "passwd",
                "-6",
                "-salt",
                salt.as_str(),
                &password,
            ]);
            match cmd.output() {
                Ok(out) => assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), ours),
                Err(e) => return oracle_missing("openssl", &e),
            }
        }
    }

    /// glibc's crypt(3), through Python's `crypt` module, is the other; it
    /// also takes the empty password, which `openssl passwd` refuses.
    #[test]
    fn matches_glibc_crypt() {
        let script = "import sys, warnings\n\
                      warnings.simplefilter('ignore')\n\
                      import crypt\n\
                      print(crypt.crypt(sys.argv[1], '$6$' + sys.argv[2] + '$'))";
        let mut cases = oracle_cases();
        cases.push((CryptSalt::new("saltstring").unwrap(), String::new()));
        for (salt, password) in cases {
            let ours = sha512_crypt(password.as_bytes(), &salt);
            let cmd = Cmd::new("hashing a password with crypt(3)", "python3").args([
                "-c",
                script,
                &password,
                salt.as_str(),
            ]);
            match cmd.output() {
                Ok(out) => assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), ours),
                Err(e) => return oracle_missing("python3 with the crypt module", &e),
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
