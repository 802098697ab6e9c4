//! The board's free-text fields that become identities or fstab fields:
//! UUIDs, 32-bit ids (`0x…` or vfat's `XXXX-XXXX`), mount points and mount
//! options. Each parser reports a problem naming the key and returns
//! nothing, so the caller falls back to a derived value and planning goes
//! on to find the board's other problems. Pure.

use toml::Spanned;
use uuid::Uuid;

use crate::board::Board;
use crate::plan::layout::Problem;

/// A UUID written as 8-4-4-4-12 hex digits; `what` names the key.
pub fn parse_uuid_field(
    board: &Board,
    field: Option<&Spanned<String>>,
    what: &str,
    problems: &mut Vec<Problem>,
) -> Option<Uuid> {
    let field = field?;
    let text = field.get_ref();
    match Uuid::parse_str(text) {
        Ok(uuid) if text.len() == 36 => Some(uuid),
        _ => {
            problems.push(
                Problem::error(format!("{what} = {text:?} is not a UUID"))
                    .at(board.locate(field.span()))
                    .with_fix("write 8-4-4-4-12 hex digits, e.g. \"78662d6f-706f-6570-6f72-742d726f6f74\", or drop it to derive one from the seed"),
            );
            None
        }
    }
}

/// A 32-bit id: `0x` and eight hex digits, or vfat's `XXXX-XXXX`.
pub fn parse_u32_field(
    board: &Board,
    field: Option<&Spanned<String>>,
    what: &str,
    problems: &mut Vec<Problem>,
) -> Option<u32> {
    let field = field?;
    let text = field.get_ref().as_str();
    let parsed = text
        .strip_prefix("0x")
        .and_then(|hex| {
            if hex.len() == 8 {
                u32::from_str_radix(hex, 16).ok()
            } else {
                None
            }
        })
        .or_else(|| {
            // vfat volume ids are often written 0045-5350.
            let (hi, lo) = text.split_once('-')?;
            if hi.len() == 4 && lo.len() == 4 {
                Some(u32::from_str_radix(hi, 16).ok()? << 16 | u32::from_str_radix(lo, 16).ok()?)
            } else {
                None
            }
        });
    if parsed.is_none() {
        problems.push(
            Problem::error(format!("{what} = {text:?} is not a 32-bit id"))
                .at(board.locate(field.span()))
                .with_fix("write eight hex digits such as \"0x00455350\" or \"0045-5350\""),
        );
    }
    parsed
}

/// A mount point lands in fstab (whitespace-separated fields) and names a
/// directory of the rootfs: absolute, plain components, nothing that fstab
/// would split or escape.
pub fn check_mount_path(path: &str) -> Result<(), String> {
    if !path.starts_with('/') {
        return Err("must be an absolute path".to_string());
    }
    check_fstab_field(path)?;
    if path
        .split('/')
        .skip(1)
        .any(|c| c == "." || c == ".." || (c.is_empty() && path != "/"))
    {
        return Err("must not contain '.', '..' or empty components".to_string());
    }
    Ok(())
}

/// One fstab field: no whitespace (fstab's separator), no control
/// characters, no `#` (a comment) and no `\\` (fstab's octal escapes).
pub fn check_fstab_field(text: &str) -> Result<(), String> {
    match text
        .chars()
        .find(|c| c.is_whitespace() || c.is_control() || *c == '#' || *c == '\\')
    {
        _ if text.is_empty() => Err("is empty".to_string()),
        Some(c) => Err(format!(
            "contains {c:?}, which would break its line in /etc/fstab"
        )),
        None => Ok(()),
    }
}
