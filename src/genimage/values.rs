//! genimage's value syntaxes, each parsed into a type: sizes, booleans,
//! integers, holes, partition type shortcuts, labels, and the allow-listed
//! `extraargs`. Pure: no I/O. Every function returns the reason as text;
//! the model adds `file:line`.

use uuid::Uuid;

/// The largest size or offset accepted (as mkimg's board sizes: sums of a
/// few of these cannot wrap a u64).
pub const MAX_SIZE: u64 = 1 << 60;

/// An image `size`: bytes, or genimage's `N%` (the filesystem made that
/// many percent of its content's size).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageSize {
    Bytes(u64),
    Percent(u32),
}

/// A size as genimage writes it: a decimal or `0x` hex number and an
/// optional suffix `k`/`K` (KiB), `M` (MiB), `G` (GiB) or `s` (512-byte
/// sectors). Stricter than genimage 16, which reads `-1M` as a huge
/// number and ignores what follows the suffix (`1MB`, `1Ki`): those are
/// refused, as are leading zeros (genimage reads `010` as octal 8).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    if t.is_empty() {
        return Err("an empty size".into());
    }
    let (digits, mult) = match t.char_indices().last() {
        Some((i, 'k' | 'K')) => (&t[..i], 1u64 << 10),
        Some((i, 'M')) => (&t[..i], 1 << 20),
        Some((i, 'G')) => (&t[..i], 1 << 30),
        Some((i, 's')) => (&t[..i], 512),
        _ => (t, 1),
    };
    let n = parse_number(digits).map_err(|why| format!("size '{text}': {why}"))?;
    let bytes = n
        .checked_mul(mult)
        .filter(|b| *b <= MAX_SIZE)
        .ok_or_else(|| format!("size '{text}' is larger than 1 EiB"))?;
    Ok(bytes)
}

/// A size that may also be `N%`.
pub fn parse_image_size(text: &str) -> Result<ImageSize, String> {
    match text.trim().strip_suffix('%') {
        Some(p) => {
            let n = parse_number(p).map_err(|why| format!("size '{text}': {why}"))?;
            match u32::try_from(n) {
                Ok(n) if (1..=100_000).contains(&n) => Ok(ImageSize::Percent(n)),
                _ => Err(format!("size '{text}': a percentage from 1% to 100000%")),
            }
        }
        None => parse_size(text).map(ImageSize::Bytes),
    }
}

/// Decimal or `0x` hex, no sign, no leading zero.
pub fn parse_number(text: &str) -> Result<u64, String> {
    let bad = || {
        format!(
            "'{text}' is not a number (decimal or 0x hex, optionally followed by k, K, M, G or s)"
        )
    };
    if let Some(hex) = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        if hex.is_empty() || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(bad());
        }
        return u64::from_str_radix(hex, 16).map_err(|_| bad());
    }
    if text.is_empty() || !text.chars().all(|c| c.is_ascii_digit()) {
        return Err(bad());
    }
    if text.len() > 1 && text.starts_with('0') {
        return Err(format!(
            "'{text}': a leading zero is ambiguous (genimage reads it as octal); \
             write it in decimal or 0x hex"
        ));
    }
    text.parse().map_err(|_| bad())
}

/// A boolean as libconfuse reads it: true/yes/on, false/no/off, any case.
pub fn parse_bool(text: &str) -> Result<bool, String> {
    match text.to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" => Ok(true),
        "false" | "no" | "off" => Ok(false),
        _ => Err(format!(
            "invalid boolean '{text}' (true, false, yes, no, on or off)"
        )),
    }
}

/// An integer option (libconfuse's strtol, base 0): decimal, `0x` hex, or
/// a sign. Leading-zero octal is refused as in [`parse_number`].
pub fn parse_int(text: &str) -> Result<i64, String> {
    let (neg, rest) = match text.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let n = parse_number(rest).map_err(|_| format!("invalid integer '{text}'"))?;
    let n = i64::try_from(n).map_err(|_| format!("integer '{text}' is out of range"))?;
    Ok(if neg { -n } else { n })
}

/// A byte range of a file that holds no data: `"(start;end)"`, end
/// exclusive, as genimage's `holes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hole {
    pub start: u64,
    pub end: u64,
}

pub fn parse_hole(text: &str) -> Result<Hole, String> {
    let form = || format!("hole '{text}': write \"(start;end)\", e.g. \"(440;1K)\"");
    let inner = text
        .trim()
        .strip_prefix('(')
        .and_then(|t| t.strip_suffix(')'))
        .ok_or_else(form)?;
    let (a, b) = inner.split_once(';').ok_or_else(form)?;
    let start = parse_size(a).map_err(|why| format!("hole '{text}': {why}"))?;
    let end = parse_size(b).map_err(|why| format!("hole '{text}': {why}"))?;
    if start >= end {
        return Err(format!("hole '{text}': the start must be below the end"));
    }
    Ok(Hole { start, end })
}

/// A UUID in its usual 8-4-4-4-12 text form.
pub fn parse_uuid(text: &str) -> Result<Uuid, String> {
    let ok = text.len() == 36 && text.matches('-').count() == 4;
    match Uuid::try_parse(text) {
        Ok(u) if ok => Ok(u),
        _ => Err(format!(
            "invalid UUID '{text}' (write it as xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)"
        )),
    }
}

/// genimage's one-letter `partition-type-uuid` shortcuts (its README, v16);
/// case-sensitive as in genimage.
pub const GPT_TYPE_SHORTCUTS: [(char, &str, &str); 7] = [
    (
        'L',
        "0fc63daf-8483-4772-8e79-3d69d8477de4",
        "Linux filesystem",
    ),
    ('S', "0657fd6d-a4ab-43c4-84e5-0933c84b4f4f", "Linux swap"),
    ('H', "933ac7e1-2eb4-4f13-b844-0e14e2aef915", "Linux home"),
    ('U', "c12a7328-f81f-11d2-ba4b-00a0c93ec93b", "EFI System"),
    ('R', "a19d880f-05fc-4d3b-a006-743f0f84911e", "Linux RAID"),
    ('V', "e6d6d379-f507-44c2-a23c-238f2a3df928", "Linux LVM"),
    (
        'F',
        "ebd0a0a2-b9e5-4433-87c0-68b6b72699c7",
        "basic data (FAT32)",
    ),
];

/// A GPT partition type: a UUID, or one of [`GPT_TYPE_SHORTCUTS`].
pub fn parse_gpt_type(text: &str) -> Result<Uuid, String> {
    let mut chars = text.chars();
    if let (Some(c), None) = (chars.next(), chars.next()) {
        return GPT_TYPE_SHORTCUTS
            .iter()
            .find(|(s, _, _)| *s == c)
            .and_then(|(_, u, _)| Uuid::try_parse(u).ok())
            .ok_or_else(|| {
                format!(
                    "invalid partition type shortcut '{text}' (L, S, H, U, R, V or F, or a UUID)"
                )
            });
    }
    parse_uuid(text)
        .map_err(|why| format!("partition-type-uuid: {why}; or a shortcut L, S, H, U, R, V, F"))
}

/// An ext2/3/4 volume label: at most 16 bytes, printable.
pub fn check_ext_label(text: &str) -> Result<(), String> {
    if text.len() > 16 {
        return Err(format!("ext label '{text}' is longer than 16 bytes"));
    }
    if text.chars().any(|c| c.is_control()) {
        return Err(format!("ext label {text:?} has a control character"));
    }
    Ok(())
}

/// A vfat volume label: at most 11 characters, none that FAT forbids.
pub fn check_vfat_label(text: &str) -> Result<(), String> {
    if text.chars().count() > 11 || !text.is_ascii() {
        return Err(format!("vfat label '{text}': at most 11 ASCII characters"));
    }
    if let Some(c) = text
        .chars()
        .find(|c| c.is_ascii_control() || "*?.,;:/\\|+=<>[]\"".contains(*c))
    {
        return Err(format!(
            "vfat label '{text}': '{c}' is not allowed in a FAT label"
        ));
    }
    Ok(())
}

/// `fs-timestamp`: genimage hands it to debugfs `set_current_time`, which
/// takes `YYYYMMDD[HHMM[SS]]` or `@SECONDS`. Only those shapes pass.
pub fn check_fs_timestamp(text: &str) -> Result<(), String> {
    let digits = text.strip_prefix('@').unwrap_or(text);
    let ok = !digits.is_empty()
        && digits.chars().all(|c| c.is_ascii_digit())
        && (text.starts_with('@') && digits.len() <= 12 || matches!(digits.len(), 8 | 12 | 14));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "fs-timestamp '{text}': write YYYYMMDDHHMMSS or @SECONDS"
        ))
    }
}

/// One allowed `mke2fs` argument from an ext image's `extraargs`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mke2fsArg {
    /// `-O list`: features.
    Features(String),
    /// `-L label`.
    Label(String),
    /// `-b N`: block size.
    BlockSize(u32),
    /// `-I N`: inode size.
    InodeSize(u32),
    /// `-i N`: bytes per inode.
    BytesPerInode(u64),
    /// `-N N`: number of inodes.
    Inodes(u64),
    /// `-m N`: reserved blocks percentage.
    ReservedPercent(u8),
    /// `-T type`: usage type.
    UsageType(String),
    /// `-U uuid`: filesystem UUID.
    Uuid(Uuid),
}

/// `extraargs` holding shell syntax: genimage runs the line through
/// `sh -c`, mkimg runs no shell, so any such character is refused.
fn refuse_shell_syntax(text: &str) -> Result<(), String> {
    match text
        .chars()
        .find(|c| "\"'`$\\;&|<>(){}*?[]~!#\n".contains(*c))
    {
        Some(c) => Err(format!(
            "extraargs '{text}': '{c}' is shell syntax; mkimg runs no shell, write plain options"
        )),
        None => Ok(()),
    }
}

/// Reads mke2fs `extraargs` through an allow-list: options that only shape
/// the filesystem (features, label, sizes, UUID). Everything else is
/// refused — options that name files or devices (`-d`, `-c`, `-l`, `-J`,
/// `-E`'s `offset=`/`root_owner=`…), change what is written where (`-S`,
/// `-n`, `-F`) — and so is any shell syntax: genimage runs the line
/// through `sh -c`, mkimg runs no shell and keeps no meaning it would have
/// there.
pub fn parse_mke2fs_args(text: &str) -> Result<Vec<Mke2fsArg>, String> {
    refuse_shell_syntax(text)?;
    let mut words = text.split_whitespace();
    let mut out = Vec::new();
    while let Some(w) = words.next() {
        let (flag, attached) = match w.strip_prefix('-') {
            Some(rest) if !rest.is_empty() => (rest.chars().next().unwrap_or('-'), &rest[1..]),
            _ => return Err(format!("extraargs: '{w}' is not an option")),
        };
        if !"OLbIiNmTU".contains(flag) {
            return Err(format!(
                "extraargs: mke2fs option '-{flag}' is refused (allowed: -O, -L, -b, -I, -i, -N, \
                 -m, -T, -U: options that name files or devices, or change where data goes, are not)"
            ));
        }
        let arg = if attached.is_empty() {
            words
                .next()
                .ok_or_else(|| format!("extraargs: '-{flag}' needs a value"))?
        } else {
            attached
        };
        let num = |max: u64| -> Result<u64, String> {
            parse_number(arg)
                .ok()
                .filter(|n| *n <= max)
                .ok_or_else(|| format!("extraargs: '-{flag} {arg}': a number up to {max}"))
        };
        out.push(match flag {
            'O' => Mke2fsArg::Features(arg.to_string()),
            'L' => {
                check_ext_label(arg)?;
                Mke2fsArg::Label(arg.to_string())
            }
            'b' => Mke2fsArg::BlockSize(num(65536)? as u32),
            'I' => Mke2fsArg::InodeSize(num(65536)? as u32),
            'i' => Mke2fsArg::BytesPerInode(num(1 << 26)?),
            'N' => Mke2fsArg::Inodes(num(u32::MAX as u64)?),
            'm' => Mke2fsArg::ReservedPercent(num(50)? as u8),
            'T' => Mke2fsArg::UsageType(arg.to_string()),
            _ => Mke2fsArg::Uuid(parse_uuid(arg)?),
        });
    }
    Ok(out)
}

/// One allowed `mkdosfs` argument from a vfat image's `extraargs`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MkdosfsArg {
    /// `-F 12|16|32`.
    FatSize(u8),
    /// `-s N`: sectors per cluster.
    SectorsPerCluster(u8),
    /// `-S N`: logical sector size.
    SectorSize(u16),
    /// `-n label`.
    Label(String),
    /// `-i XXXXXXXX`: volume id (hex).
    VolumeId(u32),
    /// `-r N`: root directory entries.
    RootEntries(u16),
    /// `-f N`: number of FATs.
    Fats(u8),
}

/// Reads mkdosfs `extraargs` through an allow-list (-F, -s, -S, -n, -i,
/// -r, -f: they only shape the filesystem); the rest, and any shell
/// syntax, is refused as in [`parse_mke2fs_args`].
pub fn parse_mkdosfs_args(text: &str) -> Result<Vec<MkdosfsArg>, String> {
    refuse_shell_syntax(text)?;
    let mut words = text.split_whitespace();
    let mut out = Vec::new();
    while let Some(w) = words.next() {
        let flag = match w.strip_prefix('-') {
            Some(rest) if rest.chars().count() == 1 => rest.chars().next().unwrap_or('-'),
            _ => return Err(format!("extraargs: '{w}' is not a single-letter option")),
        };
        if !"FsSnirf".contains(flag) {
            return Err(format!(
                "extraargs: mkdosfs option '-{flag}' is refused (allowed: -F, -s, -S, -n, -i, -r, -f)"
            ));
        }
        let arg = words
            .next()
            .ok_or_else(|| format!("extraargs: '-{flag}' needs a value"))?;
        let num = |allowed: &[u64]| -> Result<u64, String> {
            parse_number(arg)
                .ok()
                .filter(|n| allowed.contains(n))
                .ok_or_else(|| format!("extraargs: '-{flag} {arg}': one of {allowed:?}"))
        };
        out.push(match flag {
            'F' => MkdosfsArg::FatSize(num(&[12, 16, 32])? as u8),
            's' => MkdosfsArg::SectorsPerCluster(num(&[1, 2, 4, 8, 16, 32, 64, 128])? as u8),
            'S' => MkdosfsArg::SectorSize(num(&[512, 1024, 2048, 4096])? as u16),
            'n' => {
                check_vfat_label(arg)?;
                MkdosfsArg::Label(arg.to_string())
            }
            'i' => MkdosfsArg::VolumeId(
                u32::from_str_radix(arg, 16)
                    .ok()
                    .filter(|_| arg.len() <= 8)
                    .ok_or_else(|| format!("extraargs: '-i {arg}': up to 8 hex digits"))?,
            ),
            'r' => MkdosfsArg::RootEntries(
                parse_number(arg)
                    .ok()
                    .and_then(|n| u16::try_from(n).ok())
                    .filter(|n| *n > 0)
                    .ok_or_else(|| format!("extraargs: '-r {arg}': 1 to 65535"))?,
            ),
            _ => MkdosfsArg::Fats(num(&[1, 2])? as u8),
        });
    }
    Ok(out)
}
