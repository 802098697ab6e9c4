//! The two builds' `SHA256SUMS` compared: which files differ, and which
//! only one build has.
//!
//! Each output directory's `SHA256SUMS` lists every other file of it with
//! the digest taken while the file was written (`outputs::write`), so two
//! lists say which files differ without reading a byte of them. Pure: text
//! in, names out.

use std::collections::BTreeMap;

/// How a file of the two builds differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Both builds have it, with other contents.
    Differs,
    FirstOnly,
    SecondOnly,
}

/// `SHA256SUMS` as `sha256sum` writes it (`HEX  NAME` per line) → name →
/// digest; the error names the first line that is not of that form.
pub fn parse_sums(text: &str) -> Result<BTreeMap<String, String>, String> {
    let mut sums = BTreeMap::new();
    for (index, line) in text.lines().enumerate() {
        let (digest, name) = line
            .split_once("  ")
            .filter(|(d, n)| {
                d.len() == 64 && d.bytes().all(|b| b.is_ascii_hexdigit()) && !n.is_empty()
            })
            .ok_or_else(|| format!("line {} is not `SHA256  NAME`", index.saturating_add(1)))?;
        sums.insert(name.to_string(), digest.to_ascii_lowercase());
    }
    Ok(sums)
}

/// Every name whose digest differs or that one list lacks, by name.
pub fn changed_files(
    first: &BTreeMap<String, String>,
    second: &BTreeMap<String, String>,
) -> Vec<(String, Change)> {
    let mut names: Vec<&String> = first.keys().chain(second.keys()).collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .filter_map(|name| {
            let change = match (first.get(name), second.get(name)) {
                (Some(a), Some(b)) if a == b => return None,
                (Some(_), Some(_)) => Change::Differs,
                (Some(_), None) => Change::FirstOnly,
                (None, _) => Change::SecondOnly,
            };
            Some((name.clone(), change))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::{changed_files, parse_sums, Change};

    const A: &str = "0000000000000000000000000000000000000000000000000000000000000000";
    const B: &str = "1111111111111111111111111111111111111111111111111111111111111111";

    #[test]
    fn names_what_differs_and_what_one_build_lacks() {
        let first = parse_sums(&format!("{A}  d.raw\n{A}  manifest.json\n{A}  old.sh\n")).unwrap();
        let second = parse_sums(&format!("{B}  d.raw\n{A}  manifest.json\n{A}  new.sh\n")).unwrap();
        assert_eq!(
            changed_files(&first, &second),
            vec![
                ("d.raw".to_string(), Change::Differs),
                ("new.sh".to_string(), Change::SecondOnly),
                ("old.sh".to_string(), Change::FirstOnly),
            ]
        );
        assert!(changed_files(&first, &first).is_empty());
    }

    #[test]
    fn refuses_a_line_that_is_not_a_digest_and_a_name() {
        assert_eq!(
            parse_sums(&format!("{A}  ok\nnonsense\n")).unwrap_err(),
            "line 2 is not `SHA256  NAME`"
        );
        assert!(parse_sums(&format!("{}  short\n", &A[..10])).is_err());
    }
}
