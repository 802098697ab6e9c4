//! Where an hdimage partition's bytes come from: an input file resolved
//! inside `--inputpath` (`genimage::paths`, no symlink out of it), or
//! another image section's file (`<outputpath>/<file>`, `<tmppath>/<file>`
//! when `temporary`, a `file` section's input), and how long it is. The one
//! I/O here is reading file sizes.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::{image_output_path, Dirs};
use crate::genimage::model::ImageKind;
use crate::genimage::paths::resolve_within;
use crate::genimage::values::ImageSize;
use crate::genimage::Config;

/// Where a partition's bytes come from, and how many there are.
pub struct Content {
    /// The file as the board names it (absolute).
    pub path: PathBuf,
    /// Its length, when known (an image not built yet may not be).
    pub len: Option<u64>,
    /// The image section it is, if it is one.
    pub section: Option<usize>,
}

/// The genimage config's images that `image`'s partitions use.
pub fn find_content(
    config: &Config,
    self_index: usize,
    name: &str,
    dirs: &Dirs,
    built: &BTreeMap<String, PathBuf>,
) -> Result<Content, String> {
    let input = |file: &str| -> Result<Content, String> {
        let found = resolve_within(
            file,
            std::slice::from_ref(&dirs.inputpath),
            "the input path",
        )
        .map_err(|why| format!("input file '{file}': {why}"))?;
        let len = std::fs::metadata(&found.canonical)
            .map_err(|e| format!("input file '{file}': {e}"))?
            .len();
        Ok(Content {
            path: found.canonical,
            len: Some(len),
            section: None,
        })
    };
    let Some(index) = config.images.iter().position(|i| i.file.value == name) else {
        return input(name);
    };
    if index == self_index {
        return Err(format!("image '{name}' cannot hold itself"));
    }
    let section = &config.images[index];
    if let ImageKind::File(file) = &section.kind {
        let file_name = file.name.as_ref().map_or(name, |n| n.value.as_str());
        let mut content = input(file_name)?;
        content.section = Some(index);
        return Ok(content);
    }
    let path = image_output_path(section, dirs)?;
    // genimage takes an image section's `size` as its length, also when
    // the file it built is shorter (a squashfs: measured, the partition
    // and the disk file are sized from `size`, the gap written as zeros).
    let len = match (section.size.as_ref().map(|s| s.value), built.get(name)) {
        (Some(ImageSize::Bytes(n)), _) => Some(n),
        (_, Some(done)) => Some(
            std::fs::metadata(done)
                .map_err(|e| format!("image '{name}' (built as {}): {e}", done.display()))?
                .len(),
        ),
        (Some(ImageSize::Percent(_)) | None, None) => None,
    };
    Ok(Content {
        path,
        len,
        section: Some(index),
    })
}
