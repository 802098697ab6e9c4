//! The board's kernel arguments kept by the image's own /etc/default/grub.
//!
//! grub.cfg is made once, when the image is built; on the running system
//! every `update-grub` / `grub2-mkconfig` makes it again from
//! /etc/default/grub. A board's arguments (`console=ttyS0`, from
//! `[boot] cmdline` and `[board] console`) that only grub.cfg carries are
//! lost at the first kernel update, and with them the serial console. So
//! for every grub build the image's /etc/default/grub, when the rootfs has
//! one, gets them: the distro's text is kept byte for byte and a marked
//! block is appended ([`merge_board_args`]):
//!
//! ```text
//! # BEGIN mkimg: the board's kernel arguments ([boot] cmdline, [board] console),
//! # …
//! GRUB_CMDLINE_LINUX="$GRUB_CMDLINE_LINUX${GRUB_CMDLINE_LINUX:+ }"'console=ttyS0'
//! # END mkimg
//! ```
//!
//! Why a block at the end rather than an edit of the distro's line: it
//! holds whatever the file does before it (several assignments, an `if`,
//! continuation lines), and a later change of the distro's line on the
//! running system still counts — the block adds to the value, it does not
//! restate it. Arguments GRUB_CMDLINE_LINUX already has (the file read with
//! [`crate::bootloader::default_grub`], never run) are left out; with none
//! left the file is not changed, so a rootfs taken from an mkimg image
//! does not grow a second block. GRUB_CMDLINE_LINUX and not
//! GRUB_CMDLINE_LINUX_DEFAULT: the recovery entries get only the former,
//! and a serial console is wanted there most.
//!
//! Quoting: the arguments are one single-quoted sh word (`'` written as
//! `'\''`), so `$(…)`, backquotes, `"`, `\` and `;` reach grub-mkconfig as
//! text and nothing runs when the file is sourced. Control characters
//! (a newline would end the assignment) are refused by the board schema
//! and again here. The block ends in `\n` whatever the distro's line
//! endings (a CR would become part of the value).
//!
//! The rootfs pass applies it ([`default_grub_rewrite`] gives the
//! [`Rewrite`]); afterwards [`kept_in_image`] says from the pass's
//! captures whether the image's file carries the arguments. Pure: bytes
//! in, bytes out.

use std::sync::Arc;

use crate::board::schema::BootLoader;
use crate::bootloader::default_grub::parse_default_grub;
use crate::bootloader::detect::DEFAULT_GRUB;
use crate::bootloader::kernels::{args_missing_from, board_cmdline};
use crate::plan::Plan;
use crate::rootfs::{CaptureResults, Captured, Rewrite};

/// The largest /etc/default/grub changed (Debian's is 1.5 KiB); a larger
/// one is refused from its tar header, before it is read.
pub const DEFAULT_GRUB_LIMIT: u64 = 256 << 10;

/// First line of mkimg's block.
pub const BLOCK_BEGIN: &str =
    "# BEGIN mkimg: the board's kernel arguments ([boot] cmdline, [board] console),";
/// Last line of mkimg's block.
pub const BLOCK_END: &str = "# END mkimg";

/// `original` (the distro's /etc/default/grub) with a block adding to
/// GRUB_CMDLINE_LINUX the words of `board_args` it lacks; `None` when it
/// lacks none (the file stays as it is). Fails when the file is not shell
/// this parser reads (the same file fails the template grub.cfg) or an
/// argument holds a control character.
pub fn merge_board_args(original: &[u8], board_args: &str) -> Result<Option<Vec<u8>>, String> {
    if let Some(c) = board_args.chars().find(|c| c.is_control()) {
        return Err(format!(
            "the board's kernel arguments {board_args:?} contain {c:?}; they cannot be written \
             into /etc/default/grub"
        ));
    }
    let missing = missing_args(original, board_args)?;
    if missing.is_empty() {
        return Ok(None);
    }
    let mut out = original.to_vec();
    if !out.is_empty() && !out.ends_with(b"\n") {
        out.push(b'\n');
    }
    if !out.is_empty() {
        out.push(b'\n');
    }
    out.extend_from_slice(render_block(&missing.join(" ")).as_bytes());
    Ok(Some(out))
}

/// mkimg's block for `args` (non-empty, no control characters).
fn render_block(args: &str) -> String {
    format!(
        "{BLOCK_BEGIN}\n\
         # added when this image was built, so that update-grub and grub-mkconfig here keep\n\
         # them; arguments the lines above already give are not repeated.\n\
         GRUB_CMDLINE_LINUX=\"$GRUB_CMDLINE_LINUX${{GRUB_CMDLINE_LINUX:+ }}\"{}\n\
         {BLOCK_END}\n",
        shell_quote(args)
    )
}

/// The words of `board_args` (in order, each once) that GRUB_CMDLINE_LINUX
/// of `text` lacks.
fn missing_args(text: &[u8], board_args: &str) -> Result<Vec<String>, String> {
    let parsed = parse_default_grub(&String::from_utf8_lossy(text), None)
        .map_err(|e| format!("{e}; mkimg cannot add the board's kernel arguments to it"))?;
    Ok(args_missing_from(board_args, &parsed.cmdline_linux))
}

/// `'text'` for sh, with `'` as `'\''`.
fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// The rewrite of the image's /etc/default/grub for a grub build whose
/// board has kernel arguments; `None` otherwise.
pub fn default_grub_rewrite(plan: &Plan) -> Option<(String, Rewrite)> {
    if plan.boot.loader != BootLoader::Grub {
        return None;
    }
    let args = board_cmdline(plan);
    if args.trim().is_empty() {
        return None;
    }
    let edit = move |bytes: &[u8]| -> Result<Vec<u8>, String> {
        Ok(merge_board_args(bytes, &args)?.unwrap_or_else(|| bytes.to_vec()))
    };
    Some((
        DEFAULT_GRUB.to_string(),
        Rewrite {
            limit: DEFAULT_GRUB_LIMIT,
            edit: Arc::new(edit),
        },
    ))
}

/// What the image's /etc/default/grub holds of the board's arguments,
/// read from the rootfs pass's captures (which see the rewritten file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kept {
    /// Not a grub build, or the board has no kernel arguments.
    NothingToKeep,
    /// The rootfs has no /etc/default/grub.
    NoFile,
    /// Its GRUB_CMDLINE_LINUX has every argument.
    Kept,
    /// It is not a regular file (a symlink, hard link, …), which mkimg
    /// does not change; the words say what it is.
    NotAFile(String),
    /// It lacks these arguments.
    Missing(Vec<String>),
}

/// Whether the image's /etc/default/grub carries the board's arguments.
pub fn kept_in_image(plan: &Plan, captures: &CaptureResults) -> Kept {
    let args = board_cmdline(plan);
    if plan.boot.loader != BootLoader::Grub || args.trim().is_empty() {
        return Kept::NothingToKeep;
    }
    match captures.files.get(DEFAULT_GRUB) {
        None => Kept::NoFile,
        Some(Captured::File(bytes)) => match missing_args(bytes, &args) {
            Ok(missing) if missing.is_empty() => Kept::Kept,
            Ok(missing) => Kept::Missing(missing),
            Err(_) => Kept::Missing(args.split_whitespace().map(str::to_string).collect()),
        },
        Some(Captured::Symlink(target)) => Kept::NotAFile(format!("a symlink to {target:?}")),
        Some(Captured::HardLink(target)) => Kept::NotAFile(format!("a hard link to {target}")),
        Some(Captured::Other(kind)) => Kept::NotAFile(format!("of type {kind:?}")),
    }
}

#[cfg(test)]
mod tests;
