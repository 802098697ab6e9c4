//! Boot Loader Specification (Type #1) entries: `/boot/loader/entries/*.conf`,
//! which Fedora-family distributions write for every kernel (kernel-install)
//! and their grub reads with its `blscfg` command.
//!
//! mkimg reads them itself, so the menu it renders (grub.cfg in template
//! mode, extlinux.conf) boots what the distro declared — its title, initrds
//! and kernel options — whatever grub the rootfs has: upstream and Debian
//! grub have no `blscfg`.
//!
//! Flows in: the entries' file names and texts, and the text of the
//! rootfs's grubenv (older Fedora entries say `options $kernelopts`; grub
//! expands such variables from grubenv at boot). Flows out: [`BlsEntry`]s,
//! newest first, and warnings for entries skipped. Pure: no I/O. No crate
//! parses BLS entries (a line format of "key value"), hence this module.
//!
//! The text is untrusted and lands in grub.cfg and extlinux.conf: control
//! characters other than tab are refused, paths must be plain
//! (`/`-separated names of `[A-Za-z0-9._+~-]`, no `..`), and the loaders'
//! writers quote every word they paste.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use crate::arch::Arch;
use crate::bootloader::kernels::compare_versions;

/// Where the entries are (a rootfs path).
pub const ENTRIES_DIR: &str = "/boot/loader/entries";

/// One entry, its variables expanded.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BlsEntry {
    /// The file name, e.g. `0123…-6.12.0-1.fc41.aarch64.conf`.
    pub file: String,
    pub title: Option<String>,
    pub version: Option<String>,
    /// The kernel path as written (relative to the filesystem holding /boot).
    pub linux: String,
    pub initrds: Vec<String>,
    /// Kernel options, one word each.
    pub options: Vec<String>,
    pub devicetree: Option<String>,
    /// `grub_class`, for the menu entry's `--class`.
    pub class: Option<String>,
    pub sort_key: Option<String>,
}

/// The entries of `files` (name, text), usable ones only, in menu order:
/// by `sort-key`, then version, newest first (what grub's blscfg and
/// systemd-boot do); `grubenv` expands `$var`. Skipped entries and
/// expansion gaps are described in the warnings.
pub fn parse_entries(
    files: &[(String, Vec<u8>)],
    grubenv: Option<&[u8]>,
    arch: Arch,
) -> (Vec<BlsEntry>, Vec<String>) {
    let env = grubenv.map(parse_grubenv).unwrap_or_default();
    let mut entries = Vec::new();
    let mut warnings = Vec::new();
    for (file, data) in files {
        match parse_entry(file, data, &env, arch) {
            Ok((entry, mut notes)) => {
                warnings.append(&mut notes);
                entries.push(entry);
            }
            Err(why) => warnings.push(format!("{ENTRIES_DIR}/{file}: skipped: {why}")),
        }
    }
    entries.sort_by(menu_order);
    (entries, warnings)
}

/// sort-key ascending (entries without one last), then version newest
/// first, then file name descending.
fn menu_order(a: &BlsEntry, b: &BlsEntry) -> Ordering {
    let key = |e: &BlsEntry| e.sort_key.clone();
    match (key(a), key(b)) {
        (Some(x), Some(y)) if x != y => return x.cmp(&y),
        (Some(_), None) => return Ordering::Less,
        (None, Some(_)) => return Ordering::Greater,
        _ => {}
    }
    let version = |e: &BlsEntry| e.version.clone().unwrap_or_default();
    compare_versions(&version(b), &version(a)).then_with(|| b.file.cmp(&a.file))
}

fn parse_entry(
    file: &str,
    data: &[u8],
    env: &BTreeMap<String, String>,
    arch: Arch,
) -> Result<(BlsEntry, Vec<String>), String> {
    let text = std::str::from_utf8(data).map_err(|_| "not UTF-8 text".to_string())?;
    let mut notes = Vec::new();
    let mut entry = BlsEntry {
        file: file.to_string(),
        title: None,
        version: None,
        linux: String::new(),
        initrds: Vec::new(),
        options: Vec::new(),
        devicetree: None,
        class: None,
        sort_key: None,
    };
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(c) = line.chars().find(|c| c.is_control() && *c != '\t') {
            return Err(format!("line {}: control character {c:?}", number + 1));
        }
        let (key, value) = line
            .split_once([' ', '\t'])
            .map(|(k, v)| (k, v.trim()))
            .unwrap_or((line, ""));
        let mut expand = |value: &str| expand_vars(value, env, &mut notes, file);
        match key {
            "title" => entry.title = Some(value.to_string()),
            "version" => entry.version = Some(plain_word("version", value)?),
            "sort-key" => entry.sort_key = Some(plain_word("sort-key", value)?),
            "linux" => entry.linux = plain_path("linux", value)?,
            "initrd" => {
                for word in expand(value).split_whitespace() {
                    entry.initrds.push(plain_path("initrd", word)?);
                }
            }
            "options" => entry
                .options
                .extend(expand(value).split_whitespace().map(str::to_string)),
            "devicetree" => entry.devicetree = Some(plain_path("devicetree", value)?),
            "grub_class" => entry.class = Some(plain_word("grub_class", value)?),
            "architecture" => {
                let wanted = bls_architecture(arch);
                if !value.eq_ignore_ascii_case(wanted) {
                    return Err(format!("architecture {value}, not {wanted}"));
                }
            }
            // grub's users/arguments, the EFI program form and the machine
            // id change nothing about what boots.
            "machine-id" | "grub_users" | "grub_arg" | "efi" | "devicetree-overlay" => {
                if key == "devicetree-overlay" {
                    notes.push(format!(
                        "{ENTRIES_DIR}/{file}: devicetree-overlay is not applied by mkimg's menu"
                    ));
                }
            }
            other => notes.push(format!(
                "{ENTRIES_DIR}/{file}: unknown key {other:?} ignored"
            )),
        }
    }
    if entry.linux.is_empty() {
        return Err("no linux line".to_string());
    }
    Ok((entry, notes))
}

/// The BLS `architecture` value for `arch` (the UEFI names, lower-case).
fn bls_architecture(arch: Arch) -> &'static str {
    match arch {
        Arch::Riscv64 => "riscv64",
        Arch::Aarch64 => "aa64",
        Arch::Arm => "arm",
        Arch::X86_64 => "x64",
        Arch::Loongarch64 => "loongarch64",
        Arch::Ppc64le => "ppc64le",
        Arch::S390x => "s390x",
        Arch::Mips64el => "mips64el",
    }
}

/// A value that lands as one word in a loader config.
fn plain_word(key: &str, value: &str) -> Result<String, String> {
    if !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._+~-".contains(c))
    {
        Ok(value.to_string())
    } else {
        Err(format!(
            "{key} {value:?} must be one word of [A-Za-z0-9._+~-]"
        ))
    }
}

/// An absolute path of plain names, no `..`.
fn plain_path(key: &str, value: &str) -> Result<String, String> {
    let plain = value.starts_with('/')
        && value[1..].split('/').all(|part| {
            !part.is_empty()
                && part != "."
                && part != ".."
                && part
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._+~-".contains(c))
        });
    if plain {
        Ok(value.to_string())
    } else {
        Err(format!(
            "{key} {value:?} must be an absolute path of plain names ([A-Za-z0-9._+~-], no '..')"
        ))
    }
}

/// `$name` and `${name}` replaced from grubenv (as grub's blscfg does at
/// boot); a variable grubenv does not set becomes empty, with a note.
fn expand_vars(
    value: &str,
    env: &BTreeMap<String, String>,
    notes: &mut Vec<String>,
    file: &str,
) -> String {
    let mut out = String::new();
    let mut rest = value;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let (name, tail) = if let Some(braced) = after.strip_prefix('{') {
            match braced.split_once('}') {
                Some((name, tail)) => (name, tail),
                None => (braced, ""),
            }
        } else {
            let end = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            after.split_at(end)
        };
        match env.get(name) {
            Some(value) => out.push_str(value),
            None => notes.push(format!(
                "{ENTRIES_DIR}/{file}: ${name} is not set in grubenv; it expands to nothing"
            )),
        }
        rest = tail;
    }
    out.push_str(rest);
    out
}

/// grubenv: `# GRUB Environment Block`, then `name=value` lines, padded
/// with `#` to 1 KiB. Read as grub's `grub_envblk_iterate` reads it: a
/// backslash escapes the next byte, newline included (grub-editenv writes
/// a newline in a value as `\` + newline), so a line is not a variable
/// just because it follows a newline; `#` starts a comment line.
pub fn parse_grubenv(data: &[u8]) -> BTreeMap<String, String> {
    let mut vars = BTreeMap::new();
    let mut rest = data;
    while !rest.is_empty() {
        // One logical line: up to a newline no backslash escapes.
        let mut end = 0;
        while end < rest.len() && rest[end] != b'\n' {
            end += if rest[end] == b'\\' { 2 } else { 1 };
        }
        let end = end.min(rest.len());
        let line = &rest[..end];
        rest = rest.get(end + 1..).unwrap_or_default();
        if line.first() == Some(&b'#') {
            continue;
        }
        let Some(eq) = line.iter().position(|&b| b == b'=') else {
            continue;
        };
        let mut value = Vec::new();
        let mut bytes = line[eq + 1..].iter();
        while let Some(&b) = bytes.next() {
            match b {
                b'\\' => value.extend(bytes.next()),
                b => value.push(b),
            }
        }
        let name = String::from_utf8_lossy(&line[..eq]).into_owned();
        // A value is pasted into kernel options: one line.
        let value = String::from_utf8_lossy(&value).replace(|c: char| c.is_control(), " ");
        vars.insert(name, value);
    }
    vars
}

#[cfg(test)]
mod tests;
