//! Any output file but the disk image, explained: the JSON fields of
//! manifest.json that differ, the first differing line of a text file
//! (start_vm.sh, IMAGE.raw.bmap), else the first differing byte.
//!
//! Texts come from the builds, which copy text from the inputs (a board's
//! description, a firmware path), so every quoted line is printed with its
//! control characters escaped. Reads the two files; writes nothing.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use anyhow::{Context, Result};
use serde_json::Value;

use crate::filesystems::ext4::shown;
use crate::outputs::manifest::MANIFEST_FILE;

/// Files up to this size are read whole and compared as text.
const TEXT_MAX: u64 = 4 << 20;
/// How many JSON fields are named.
const FIELDS_SHOWN: usize = 8;
/// How much of a line is quoted.
const LINE_SHOWN: usize = 160;

/// What differs between the two builds' `name` (`first`, `second`).
pub fn explain_file(name: &str, first: &Path, second: &Path) -> Result<String> {
    let small = |p: &Path| std::fs::metadata(p).is_ok_and(|m| m.len() <= TEXT_MAX);
    if small(first) && small(second) {
        let read = |p: &Path| std::fs::read(p).with_context(|| format!("reading {}", p.display()));
        let (a, b) = (read(first)?, read(second)?);
        if name == MANIFEST_FILE {
            if let (Ok(x), Ok(y)) = (
                serde_json::from_slice::<Value>(&a),
                serde_json::from_slice::<Value>(&b),
            ) {
                let mut fields = Vec::new();
                json_differences(&x, &y, "", &mut fields);
                return Ok(describe_fields(&fields));
            }
        }
        if let (Ok(x), Ok(y)) = (std::str::from_utf8(&a), std::str::from_utf8(&b)) {
            if !x.contains('\0') && !y.contains('\0') {
                return Ok(first_differing_line(x, y));
            }
        }
    }
    Ok(match first_differing_byte(first, second)? {
        Some((offset, sizes)) => format!(
            "first differing byte at {offset:#x} (sizes {} and {})",
            sizes.0, sizes.1
        ),
        None => "the same bytes (only the digests differ?)".to_string(),
    })
}

fn describe_fields(fields: &[String]) -> String {
    match fields.len() {
        0 => "the same JSON, written differently".to_string(),
        n => {
            let mut text = fields
                .iter()
                .take(FIELDS_SHOWN)
                .map(|f| shown(f))
                .collect::<Vec<_>>()
                .join(", ");
            if n > FIELDS_SHOWN {
                text.push_str(&format!(" and {} more", n.saturating_sub(FIELDS_SHOWN)));
            }
            format!("fields differ: {text}")
        }
    }
}

/// The paths of the JSON values that differ: `files["d.raw"].sha256` (an
/// array element with a string `file` or `name` is named by it), `a.b[2]`.
pub fn json_differences(a: &Value, b: &Value, at: &str, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
            keys.sort();
            keys.dedup();
            for key in keys {
                let path = if at.is_empty() {
                    key.clone()
                } else {
                    format!("{at}.{key}")
                };
                match (x.get(key), y.get(key)) {
                    (Some(p), Some(q)) => json_differences(p, q, &path, out),
                    (Some(_), None) => out.push(format!("{path} (only in the first build)")),
                    (None, _) => out.push(format!("{path} (only in the second build)")),
                }
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (index, (p, q)) in x.iter().zip(y).enumerate() {
                let label = ["file", "name"]
                    .iter()
                    .find_map(|k| p.get(k).and_then(Value::as_str))
                    .filter(|l| q.get("file").or(q.get("name")).and_then(Value::as_str) == Some(l))
                    .map_or_else(|| index.to_string(), |l| format!("{l:?}"));
                json_differences(p, q, &format!("{at}[{label}]"), out);
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            out.push(format!("{at} ({} entries, then {})", x.len(), y.len()))
        }
        _ if a != b => out.push(at.to_string()),
        _ => {}
    }
}

/// `line N differs: "first" / "second"`, or which text is longer.
pub fn first_differing_line(a: &str, b: &str) -> String {
    let (mut x, mut y) = (a.lines(), b.lines());
    let mut number = 0usize;
    loop {
        number = number.saturating_add(1);
        match (x.next(), y.next()) {
            (Some(p), Some(q)) if p == q => {}
            (Some(p), Some(q)) => {
                return format!(
                    "line {number} differs: first build \"{}\", second build \"{}\"",
                    quote(p),
                    quote(q)
                )
            }
            (Some(_), None) => {
                return format!("the first build has more lines, from line {number}")
            }
            (None, Some(_)) => {
                return format!("the second build has more lines, from line {number}")
            }
            (None, None) => return "the same lines (line endings differ)".to_string(),
        }
    }
}

fn quote(line: &str) -> String {
    let cut: String = line.chars().take(LINE_SHOWN).collect();
    let more = if cut.len() < line.len() { "…" } else { "" };
    format!("{}{more}", shown(&cut))
}

/// The first offset where the files differ (one ending early counts) and
/// their sizes, reading both in step; None when they are the same bytes.
pub fn first_differing_byte(first: &Path, second: &Path) -> Result<Option<(u64, (u64, u64))>> {
    let open = |p: &Path| File::open(p).with_context(|| format!("opening {}", p.display()));
    let (mut a, mut b) = (open(first)?, open(second)?);
    let sizes = (a.metadata()?.len(), b.metadata()?.len());
    let (mut x, mut y) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    let mut offset = 0u64;
    loop {
        crate::host::interrupt::check()?;
        let n = read_up_to(&mut a, &mut x)?;
        let m = read_up_to(&mut b, &mut y)?;
        if let Some(i) = x[..n].iter().zip(&y[..m]).position(|(p, q)| p != q) {
            return Ok(Some((offset.saturating_add(i as u64), sizes)));
        }
        if n != m {
            return Ok(Some((offset.saturating_add(n.min(m) as u64), sizes)));
        }
        if n == 0 {
            return Ok(None);
        }
        offset = offset.saturating_add(n as u64);
    }
}

fn read_up_to(file: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match file.read(&mut buf[done..]) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{first_differing_byte, first_differing_line, json_differences};

    #[test]
    fn json_fields_are_named_by_path_and_file_name() {
        let a = json!({"board": {"name": "x"}, "files": [
            {"file": "d.raw", "sha256": "aa", "size": 1},
            {"file": "start_vm.sh", "sha256": "bb", "size": 2}
        ], "rootfs": {"sha256": "cc"}, "old": 1});
        let b = json!({"board": {"name": "x"}, "files": [
            {"file": "d.raw", "sha256": "ab", "size": 1},
            {"file": "start_vm.sh", "sha256": "bb", "size": 2}
        ], "rootfs": {"sha256": "cd"}, "new": 1});
        let mut out = Vec::new();
        json_differences(&a, &b, "", &mut out);
        assert_eq!(
            out,
            [
                "files[\"d.raw\"].sha256",
                "new (only in the second build)",
                "old (only in the first build)",
                "rootfs.sha256"
            ]
        );
    }

    #[test]
    fn text_names_the_first_differing_line_escaped() {
        assert_eq!(
            first_differing_line("a\nb\nc\n", "a\nb\x1b[2J\nc\n"),
            "line 2 differs: first build \"b\", second build \"b\\u{1b}[2J\""
        );
        assert_eq!(
            first_differing_line("a\n", "a\nb\n"),
            "the second build has more lines, from line 2"
        );
    }

    #[test]
    fn binary_files_give_the_first_differing_offset() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        let mut data = vec![0u8; 3 << 20];
        std::fs::write(&a, &data).unwrap();
        data[(2 << 20) + 5] = 1;
        std::fs::write(&b, &data).unwrap();
        assert_eq!(
            first_differing_byte(&a, &b).unwrap(),
            Some(((2 << 20) + 5, (3 << 20, 3 << 20)))
        );
        std::fs::write(&b, &data[..100]).unwrap();
        assert_eq!(
            first_differing_byte(&a, &b).unwrap(),
            Some((100, (3 << 20, 100)))
        );
        assert_eq!(first_differing_byte(&a, &a).unwrap(), None);
    }
}
