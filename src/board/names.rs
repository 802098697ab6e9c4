//! Untrusted board text becomes a type at the edge: a board file may come
//! from anywhere, and its `name`, `image` and `hostname` end up in file
//! names, in `start_vm.sh`, `/etc/hostname` and `/etc/hosts`. Each type here
//! can only hold a value that is safe in every place it lands, so the
//! generators need not (and cannot forget to) check again.
//!
//! - [`PlainName`]: a board or image name — one path component of letters,
//!   digits, `.`, `_`, `+`, `-`; never `.`/`..`, never a leading `.` or `-`
//!   (hidden files, options); at most 64 bytes. Safe unquoted in a shell
//!   word, as a file name, and in a comment line.
//! - [`Hostname`]: RFC 1123 — dot-separated labels of letters, digits and
//!   `-` (not at either end of a label), each 1–63 bytes, 253 in all.
//! - [`OneLine`]: free text on one line (a description): no control
//!   characters.
//!
//! They deserialize from TOML strings through `TryFrom<String>`, so a bad
//! value is a parse error that cites the board file's `file:line:column`.
//! Pure: no I/O.

use std::fmt;
use std::ops::Deref;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// The longest board or image name.
pub const PLAIN_NAME_MAX: usize = 64;
/// The longest hostname (RFC 1123) and label.
pub const HOSTNAME_MAX: usize = 253;
const LABEL_MAX: usize = 63;

/// A board or image name: one plain path component (see the module doc).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PlainName(String);

/// A hostname valid by RFC 1123.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Hostname(String);

/// Text on one line, without control characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct OneLine(String);

impl TryFrom<String> for PlainName {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        let allowed = |c: char| c.is_ascii_alphanumeric() || "._+-".contains(c);
        let problem = if text.is_empty() {
            Some("is empty".to_string())
        } else if text.len() > PLAIN_NAME_MAX {
            Some(format!(
                "is {} bytes long (at most {PLAIN_NAME_MAX})",
                text.len()
            ))
        } else if text.starts_with('.') || text.starts_with('-') {
            Some("starts with '.' or '-'".to_string())
        } else {
            text.chars()
                .find(|c| !allowed(*c))
                .map(|bad| format!("contains {bad:?}"))
        };
        match problem {
            Some(problem) => Err(format!(
                "{text:?} {problem}: a name must be a plain file name of letters, digits, \
                 '.', '_', '+' and '-', not starting with '.' or '-' (it names output files \
                 and is written into start_vm.sh), e.g. \"my-board\""
            )),
            None => Ok(PlainName(text)),
        }
    }
}

impl TryFrom<String> for Hostname {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        let label_problem = |label: &str| -> Option<String> {
            if label.is_empty() {
                return Some("has an empty label (two dots, or a dot at an end)".to_string());
            }
            if label.len() > LABEL_MAX {
                return Some(format!("has a label longer than {LABEL_MAX} bytes"));
            }
            if label.starts_with('-') || label.ends_with('-') {
                return Some(format!(
                    "has a label {label:?} that starts or ends with '-'"
                ));
            }
            label
                .chars()
                .find(|c| !(c.is_ascii_alphanumeric() || *c == '-'))
                .map(|c| format!("contains {c:?}"))
        };
        let problem = if text.is_empty() {
            Some("is empty".to_string())
        } else if text.len() > HOSTNAME_MAX {
            Some(format!(
                "is {} bytes long (at most {HOSTNAME_MAX})",
                text.len()
            ))
        } else {
            text.split('.').find_map(label_problem)
        };
        match problem {
            Some(problem) => Err(format!(
                "hostname {text:?} {problem}: use letters, digits and '-' in dot-separated \
                 labels (RFC 1123), e.g. \"my-board\""
            )),
            None => Ok(Hostname(text)),
        }
    }
}

impl TryFrom<String> for OneLine {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        match text.chars().find(|c| c.is_control()) {
            Some(c) => Err(format!(
                "{text:?} contains the control character {c:?}: write it on one line"
            )),
            None => Ok(OneLine(text)),
        }
    }
}

macro_rules! string_newtype {
    ($name:ident) => {
        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl Deref for $name {
            type Target = str;

            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<Path> for $name {
            fn as_ref(&self) -> &Path {
                Path::new(&self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }

        impl std::str::FromStr for $name {
            type Err = String;

            fn from_str(text: &str) -> Result<Self, String> {
                Self::try_from(text.to_string())
            }
        }
    };
}

string_newtype!(PlainName);
string_newtype!(Hostname);
string_newtype!(OneLine);

#[cfg(test)]
mod tests {
    use super::{Hostname, OneLine, PlainName};

    #[test]
    fn plain_names_are_single_safe_components() {
        for good in ["qemu-riscv64", "rock3a", "a", "v1.2_b+c", &"x".repeat(64)] {
            assert!(good.parse::<PlainName>().is_ok(), "{good:?}");
        }
        for bad in [
            "",
            ".",
            "..",
            "../x",
            "/abs",
            "a/b",
            ".hidden",
            "-rf",
            "a b",
            "a\nexec rm -rf /",
            "a;b",
            "a$b",
            "a'b",
            "ü",
            &"x".repeat(65),
        ] {
            let err = bad.parse::<PlainName>().unwrap_err();
            assert!(err.contains("plain file name"), "{bad:?}: {err}");
        }
    }

    #[test]
    fn hostnames_follow_rfc1123() {
        for good in ["mkimg-riscv64", "a", "host.example.org", "0day", "A-b"] {
            assert!(good.parse::<Hostname>().is_ok(), "{good:?}");
        }
        let long_label = "x".repeat(64);
        let long_total = vec!["x".repeat(63); 4].join(".");
        for bad in [
            "",
            "a\nb",
            "a b",
            "-a",
            "a-",
            "a..b",
            ".a",
            "a.",
            "a_b",
            "a/b",
            long_label.as_str(),
            long_total.as_str(),
        ] {
            let err = bad.parse::<Hostname>().unwrap_err();
            assert!(err.contains("RFC 1123"), "{bad:?}: {err}");
        }
    }

    #[test]
    fn one_line_rejects_control_characters() {
        assert!("QEMU virt, UEFI + GRUB".parse::<OneLine>().is_ok());
        for bad in ["a\nb", "a\rb", "a\u{1b}[2Jb", "a\0b", "tab\there"] {
            assert!(bad.parse::<OneLine>().is_err(), "{bad:?}");
        }
    }
}
