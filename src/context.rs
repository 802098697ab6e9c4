//! The build context: the clock and identity every stage uses.
//!
//! Clock and identity are parameters: no stage reads the time or draws a
//! random id. Timestamps come from `SOURCE_DATE_EPOCH` (the environment
//! variable, as reproducible-builds.org defines it), default
//! [`DEFAULT_SOURCE_DATE_EPOCH`]; every rootfs mtime newer than it is clamped
//! to it, and filesystems are stamped with it. Identities come from the seed
//! (see `plan::identity`).

use anyhow::{bail, Result};

/// 2025-01-01T00:00:00Z: used when SOURCE_DATE_EPOCH is not set, so two
/// builds of the same inputs are identical without any setup.
pub const DEFAULT_SOURCE_DATE_EPOCH: i64 = 1_735_689_600;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildContext {
    pub source_date_epoch: i64,
    pub seed: String,
}

impl BuildContext {
    /// Read SOURCE_DATE_EPOCH from the environment (the one place that does).
    pub fn from_env(seed: &str) -> Result<Self> {
        let epoch = match std::env::var("SOURCE_DATE_EPOCH") {
            Err(_) => DEFAULT_SOURCE_DATE_EPOCH,
            Ok(text) => parse_epoch(&text)?,
        };
        Ok(BuildContext {
            source_date_epoch: epoch,
            seed: seed.to_string(),
        })
    }
}

fn parse_epoch(text: &str) -> Result<i64> {
    match text.trim().parse::<i64>() {
        Ok(v) if v >= 0 => Ok(v),
        _ => bail!("SOURCE_DATE_EPOCH={text:?} is not a non-negative number of seconds since 1970"),
    }
}

#[cfg(test)]
mod tests {
    use super::parse_epoch;

    #[test]
    fn parses_epoch_and_rejects_garbage() {
        assert_eq!(parse_epoch("1700000000").unwrap(), 1_700_000_000);
        assert!(parse_epoch("yesterday")
            .unwrap_err()
            .to_string()
            .contains("SOURCE_DATE_EPOCH"));
        assert!(parse_epoch("-5").is_err());
    }
}
