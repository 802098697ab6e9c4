//! Reads a FAT volume back: the whole tree, and the boot sector summary.
//!
//! Owns: walking directories and collecting file contents, sorted like
//! the writer's canonical order. Must not write (access dates are not
//! updated). In: a `Read + Write + Seek` device positioned anywhere (lamfat
//! needs `Write` in its bounds only). Out: `Vec<VfatEntry>`, `VfatInfo`.

use std::io::{Read, Seek, SeekFrom, Write};

use fscommon::BufStream;
use lamfat::{FileSystem, FsOptions, LossyOemCpConverter, NullTimeProvider, StdIoWrapper};

use super::{fat_error, io_error, tree, FatType, VfatEntry, VfatError, VfatInfo};

type ReadFs<'d, D> =
    FileSystem<StdIoWrapper<&'d mut BufStream<D>>, NullTimeProvider, LossyOemCpConverter>;
type ReadDir<'a, 'd, D> =
    lamfat::Dir<'a, StdIoWrapper<&'d mut BufStream<D>>, NullTimeProvider, LossyOemCpConverter>;

fn open_volume<D: Read + Write + Seek>(
    buffered: &mut BufStream<D>,
) -> Result<ReadFs<'_, D>, VfatError> {
    buffered
        .seek(SeekFrom::Start(0))
        .map_err(io_error("seeking to the boot sector"))?;
    let options = FsOptions::new()
        .time_provider(NullTimeProvider::new())
        .update_accessed_date(false);
    FileSystem::new(buffered, options).map_err(fat_error("opening the FAT volume"))
}

/// Every directory and file on the volume (implicit parents included),
/// sorted like `format_vfat` creates them.
pub fn read_vfat_tree<D: Read + Write + Seek>(dev: D) -> Result<Vec<VfatEntry>, VfatError> {
    let mut buffered = BufStream::new(dev);
    let fs = open_volume(&mut buffered)?;
    let mut out = Vec::new();
    collect_dir(&fs.root_dir(), "", &mut out)?;
    out.sort_by_cached_key(|entry| tree::sort_key(entry.path()));
    Ok(out)
}

fn collect_dir<D: Read + Write + Seek>(
    dir: &ReadDir<'_, '_, D>,
    prefix: &str,
    out: &mut Vec<VfatEntry>,
) -> Result<(), VfatError> {
    for entry in dir.iter() {
        let entry = entry.map_err(fat_error(format!("listing directory {prefix:?}")))?;
        let name = entry.file_name();
        if name == "." || name == ".." {
            continue;
        }
        let path = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        if entry.is_dir() {
            collect_dir(&entry.to_dir(), &path, out)?;
            out.push(VfatEntry::Dir { path });
        } else {
            let mut data = Vec::with_capacity(usize::try_from(entry.len()).unwrap_or(0));
            entry
                .to_file()
                .read_to_end(&mut data)
                .map_err(io_error(format!("reading file {path:?}")))?;
            out.push(VfatEntry::File { path, data });
        }
    }
    Ok(())
}

/// FAT type, identity and space of the volume on `dev`.
pub fn read_vfat_info<D: Read + Write + Seek>(dev: D) -> Result<VfatInfo, VfatError> {
    let mut buffered = BufStream::new(dev);
    let fs = open_volume(&mut buffered)?;
    let stats = fs.stats().map_err(fat_error("reading free space"))?;
    let root_label = fs
        .read_volume_label_from_root_dir()
        .map_err(fat_error("reading the root directory label"))?;
    Ok(VfatInfo {
        fat_type: match fs.fat_type() {
            lamfat::FatType::Fat12 => FatType::Fat12,
            lamfat::FatType::Fat16 => FatType::Fat16,
            lamfat::FatType::Fat32 => FatType::Fat32,
        },
        volume_id: fs.volume_id(),
        label: fs.volume_label().trim_end().to_owned(),
        root_label: root_label.map(|label| label.trim_end().to_owned()),
        cluster_size: stats.cluster_size(),
        total_clusters: stats.total_clusters(),
        free_clusters: stats.free_clusters(),
    })
}
