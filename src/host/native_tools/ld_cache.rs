//! A root's `/etc/ld.so.cache`, read for one question: does it list a
//! library the host's dynamic loader would take? The loader reads the
//! cache of the root it runs in before its default directories, and takes
//! an entry only when the entry's flags are its own architecture's
//! (`_dl_cache_check_flags`); entries of the rootfs's architecture are
//! skipped, an entry of the host's would be loaded into a host program.
//!
//! Owns: glibc's two cache layouts (`ld.so-1.7.0`, and
//! `glibc-ld.so.cache1.1`, alone or after the old one), little-endian as
//! the x86_64 and aarch64 loaders read them.
//!
//! Must not: trust the file: every count and offset is checked; a file of
//! neither layout is one the loader ignores too ([`host_entry`] says none).

/// `FLAG_TYPE_MASK | FLAG_REQUIRED_MASK` of glibc's `dl-cache.h`: the
/// library type and the architecture; the bits the loader compares.
const FLAG_MASK: i32 = 0xffff;

const OLD_MAGIC: &[u8] = b"ld.so-1.7.0";
/// Old header: magic (11 bytes, padded to 12), `nlibs`; then 12-byte entries.
const OLD_HEADER: usize = 16;
const OLD_ENTRY: usize = 12;
const NEW_MAGIC: &[u8] = b"glibc-ld.so.cache1.1";
/// New header: magic and version (20 bytes), `nlibs`, `len_strings`,
/// flags, padding, `extension_offset`, three unused words.
const NEW_HEADER: usize = 48;
const NEW_ENTRY: usize = 24;

/// The cache does not hold together.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0} entries do not fit in the file")]
pub struct CacheError(usize);

/// The name of the first entry whose flags are `flags` (the host loader's,
/// e.g. `FLAG_ELF_LIBC6 | FLAG_X8664_LIB64` = 0x0303), if any.
pub fn host_entry(cache: &[u8], flags: i32) -> Result<Option<String>, CacheError> {
    let matching = |entries: Vec<(i32, u32)>, strings: usize| {
        entries
            .into_iter()
            .find(|(f, _)| f & FLAG_MASK == flags)
            .map(|(_, key)| name_at(cache, strings, key))
    };
    if cache.starts_with(NEW_MAGIC) {
        return Ok(matching(new_entries(cache, 0)?, 0));
    }
    if !cache.starts_with(OLD_MAGIC) {
        return Ok(None);
    }
    let count = u32_at(cache, 12).ok_or(CacheError(0))? as usize;
    let end = count
        .checked_mul(OLD_ENTRY)
        .and_then(|n| n.checked_add(OLD_HEADER))
        .filter(|&end| end <= cache.len())
        .ok_or(CacheError(count))?;
    let old = (0..count)
        .map(|i| {
            let at = OLD_HEADER + i * OLD_ENTRY;
            (i32_at(cache, at), u32_at(cache, at + 4).unwrap_or(0))
        })
        .collect();
    if let Some(found) = matching(old, end) {
        return Ok(Some(found));
    }
    // glibc 2.x before 2.32 appended the new layout, 8-byte aligned.
    let new = end.next_multiple_of(8);
    if cache
        .get(new..)
        .is_some_and(|rest| rest.starts_with(NEW_MAGIC))
    {
        return Ok(matching(new_entries(cache, new)?, new));
    }
    Ok(None)
}

/// (flags, key) of every entry of the new layout starting at `start`.
fn new_entries(cache: &[u8], start: usize) -> Result<Vec<(i32, u32)>, CacheError> {
    let count = u32_at(cache, start + 20).ok_or(CacheError(0))? as usize;
    count
        .checked_mul(NEW_ENTRY)
        .and_then(|n| n.checked_add(start + NEW_HEADER))
        .filter(|&end| end <= cache.len())
        .ok_or(CacheError(count))?;
    Ok((0..count)
        .map(|i| {
            let at = start + NEW_HEADER + i * NEW_ENTRY;
            (i32_at(cache, at), u32_at(cache, at + 4).unwrap_or(0))
        })
        .collect())
}

/// The NUL-terminated name at `base + key`, for messages ("?" when outside).
fn name_at(cache: &[u8], base: usize, key: u32) -> String {
    let start = base.saturating_add(key as usize);
    cache
        .get(start..)
        .and_then(|rest| rest.split(|&b| b == 0).next())
        .map(|name| String::from_utf8_lossy(name).into_owned())
        .unwrap_or_else(|| "?".to_string())
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    let bytes = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes(bytes.try_into().ok()?))
}

/// Only called inside a range already checked to fit.
fn i32_at(b: &[u8], at: usize) -> i32 {
    u32_at(b, at).map_or(0, |v| v as i32)
}
