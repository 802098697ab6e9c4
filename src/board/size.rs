//! Sizes and offsets as written in board files: `512`, `2M`, `1G`, `16384s`.
//!
//! Binary units only (`K` = 1024, `M`, `G`, `T`), `s` = 512-byte sectors
//! (always 512, whatever the disk's logical sector size, because that is what
//! boot-ROM documentation counts in). Anything ambiguous is rejected rather
//! than guessed: lower-case `m`/`g` (megabit? metre?), `MB`/`MiB` spellings,
//! leading zeros (octal?), signs, fractions, whitespace. Pure: no I/O.

use std::fmt;
use std::str::FromStr;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

/// The largest size or offset a board may write: 1 EiB (ext4's limit). The
/// planner adds and aligns a handful of these; below 2^60 no such sum can
/// wrap a `u64` (found by fuzz/board_plan: `offset` + `size` of a blob did).
pub const MAX_SIZE: u64 = 1 << 60;

/// A byte count parsed from a board file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Size(pub u64);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SizeError {
    #[error("empty size; write a number such as 512, 2M, 1G or 16384s")]
    Empty,
    #[error("size {0:?}: negative sizes are not allowed")]
    Negative(String),
    #[error("size {0:?}: leading zeros are ambiguous; write {1}")]
    LeadingZero(String, String),
    #[error("size {0:?}: unit {1:?} is not accepted; use K, M, G, T (binary, upper case) or s (512-byte sectors)")]
    BadUnit(String, String),
    #[error("size {0:?}: not a whole number; use a smaller unit (e.g. 1536K instead of 1.5M)")]
    NotInteger(String),
    #[error("size {0:?} is too large (over 1 EiB, the most a board may write)")]
    Overflow(String),
}

/// `Size(bytes)` when it is at most [`MAX_SIZE`]; `text` is what the board wrote.
fn capped(bytes: u64, text: impl fmt::Display) -> Result<Size, SizeError> {
    if bytes > MAX_SIZE {
        return Err(SizeError::Overflow(text.to_string()));
    }
    Ok(Size(bytes))
}

impl FromStr for Size {
    type Err = SizeError;

    fn from_str(text: &str) -> Result<Self, SizeError> {
        if text.is_empty() {
            return Err(SizeError::Empty);
        }
        if text.starts_with('-') {
            return Err(SizeError::Negative(text.to_string()));
        }
        let digits_end = text
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len());
        let (digits, unit) = text.split_at(digits_end);
        if digits.is_empty() {
            return Err(SizeError::BadUnit(text.to_string(), unit.to_string()));
        }
        if unit.starts_with('.') || unit.starts_with(',') {
            return Err(SizeError::NotInteger(text.to_string()));
        }
        if digits.len() > 1 && digits.starts_with('0') {
            let fixed = format!("{}{}", digits.trim_start_matches('0'), unit);
            let fixed = if fixed.is_empty() || fixed == unit {
                format!("0{unit}")
            } else {
                fixed
            };
            return Err(SizeError::LeadingZero(text.to_string(), fixed));
        }
        let multiplier: u64 = match unit {
            "" => 1,
            "s" => 512,
            "K" => 1 << 10,
            "M" => 1 << 20,
            "G" => 1 << 30,
            "T" => 1 << 40,
            other => return Err(SizeError::BadUnit(text.to_string(), other.to_string())),
        };
        let value: u64 = digits
            .parse()
            .map_err(|_| SizeError::Overflow(text.to_string()))?;
        let bytes = value
            .checked_mul(multiplier)
            .ok_or_else(|| SizeError::Overflow(text.to_string()))?;
        capped(bytes, text)
    }
}

impl fmt::Display for Size {
    /// The largest binary unit that divides the value exactly.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", format_bytes(self.0))
    }
}

/// `2097152` → `2M`; `1536` → `1536`; exact, never rounded.
pub fn format_bytes(bytes: u64) -> String {
    for (shift, unit) in [(40, "T"), (30, "G"), (20, "M"), (10, "K")] {
        if bytes != 0 && bytes.is_multiple_of(1u64 << shift) {
            return format!("{}{}", bytes >> shift, unit);
        }
    }
    bytes.to_string()
}

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(SizeVisitor)
    }
}

/// A partition size: a fixed size or "the rest of the disk".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartSize {
    Fixed(Size),
    Rest,
}

impl<'de> Deserialize<'de> for PartSize {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct PartSizeVisitor;
        impl Visitor<'_> for PartSizeVisitor {
            type Value = PartSize;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a size such as \"1G\", or \"rest\" for the rest of the disk")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<PartSize, E> {
                SizeVisitor.visit_i64(v).map(PartSize::Fixed)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<PartSize, E> {
                SizeVisitor.visit_u64(v).map(PartSize::Fixed)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<PartSize, E> {
                if v == "rest" {
                    Ok(PartSize::Rest)
                } else {
                    v.parse().map(PartSize::Fixed).map_err(E::custom)
                }
            }
        }
        deserializer.deserialize_any(PartSizeVisitor)
    }
}

/// Accepts TOML integers and strings; shared by [`Size`] and [`PartSize`].
struct SizeVisitor;

impl Visitor<'_> for SizeVisitor {
    type Value = Size;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a size such as 512, \"2M\", \"1G\" or \"16384s\"")
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Size, E> {
        let v = u64::try_from(v).map_err(|_| E::custom(SizeError::Negative(v.to_string())))?;
        self.visit_u64(v)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Size, E> {
        capped(v, v).map_err(E::custom)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Size, E> {
        v.parse().map_err(E::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::{format_bytes, Size, SizeError};

    fn parse(text: &str) -> Result<u64, SizeError> {
        text.parse::<Size>().map(|s| s.0)
    }

    #[test]
    fn accepts_documented_forms() {
        assert_eq!(parse("512"), Ok(512));
        assert_eq!(parse("0"), Ok(0));
        assert_eq!(parse("2M"), Ok(2 << 20));
        assert_eq!(parse("1G"), Ok(1 << 30));
        assert_eq!(parse("4032K"), Ok(4032 * 1024));
        assert_eq!(parse("16384s"), Ok(16384 * 512));
        assert_eq!(parse("10G"), Ok(10 << 30));
    }

    #[test]
    fn rejects_ambiguous_forms() {
        assert!(matches!(parse("2m"), Err(SizeError::BadUnit(..))));
        assert!(matches!(parse("2MB"), Err(SizeError::BadUnit(..))));
        assert!(matches!(parse("2MiB"), Err(SizeError::BadUnit(..))));
        assert!(matches!(parse("-1M"), Err(SizeError::Negative(..))));
        assert!(matches!(parse("1.5G"), Err(SizeError::NotInteger(..))));
        assert!(matches!(parse(" 2M"), Err(SizeError::BadUnit(..))));
        assert!(matches!(parse(""), Err(SizeError::Empty)));
        assert!(matches!(
            parse("99999999999T"),
            Err(SizeError::Overflow(..))
        ));
        // Fits a u64 but is over MAX_SIZE (fuzz/board_plan found the planner
        // wrapping on two of these).
        assert!(matches!(parse("16777215T"), Err(SizeError::Overflow(..))));
        assert_eq!(parse("1048576T"), Ok(super::MAX_SIZE));
        assert!(matches!(parse("1048577T"), Err(SizeError::Overflow(..))));
        let err = parse("0010M").unwrap_err();
        assert_eq!(
            err.to_string(),
            "size \"0010M\": leading zeros are ambiguous; write 10M"
        );
    }

    #[test]
    fn formats_exact_units() {
        assert_eq!(format_bytes(2 << 20), "2M");
        assert_eq!(format_bytes(1536), "1536");
        assert_eq!(format_bytes(1 << 30), "1G");
        assert_eq!(format_bytes(0), "0");
        assert_eq!(format_bytes(4032 * 1024), "4032K");
    }
}
