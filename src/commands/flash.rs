//! `mkimg flash OUTPUT_DIR|IMAGE DEVICE`: write the mapped blocks of a raw
//! (or compressed raw) image to a block device or a file, then read them
//! back and check them.
//!
//! The order, and what each step refuses before anything is written:
//! 1. The source: an output directory gives its image by preference raw >
//!    raw.zst > raw.xz > raw.gz (a raw is read without decompressing and
//!    without reading its holes); an image path is taken as given, its
//!    compression by its extension, as bmaptool does.
//! 2. The block map: `--bmap FILE`, else found as bmaptool finds it
//!    (`IMAGE.bmap`, then one extension stripped at a time: `x.raw.zst` →
//!    `x.raw.zst.bmap`, `x.raw.bmap`, `x.bmap`). Without one, mkimg refuses
//!    unless `--nobmap` (bmaptool's rule), which writes every block. The map
//!    is hostile input (`disk::bmap::read`): its own checksum, its ranges.
//! 3. `SHA256SUMS` beside the image, when it lists the map or the image:
//!    the map is checked now; a compressed image (read whole anyway) is
//!    hashed while it streams and checked at the end — after writing, so a
//!    mismatch then says the target holds a bad image. A raw image read
//!    through its map is not hashed whole (its holes are never read): the
//!    map's range digests, the map itself checked against SHA256SUMS, cover
//!    every byte that is written.
//! 4. The target (`host::target`, `host::busy`): not the image or its map,
//!    not a device the image is stored on, not mounted / swap / holding the
//!    running system, large enough; opened `O_EXCL` when a device.
//! 5. Write (`disk::flash::write_mapped`: each range's digest is compared
//!    once it is written, as bmaptool does — see that module), `fsync`,
//!    drop the cached pages, read every range back and compare
//!    (`verify_mapped`) unless `--no-verify`.
//!
//! A progress bar (bytes of mapped data) is drawn on a terminal only. A
//! signal stops between chunks; the message says the target is partial.

use std::fs::File;
use std::io::{self, IsTerminal, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use sha2::{Digest, Sha256};

use crate::cli::FlashArgs;
use crate::digest::hex;
use crate::disk::bmap::read::{parse_bmap, MAX_BMAP_BYTES};
use crate::disk::bmap::{Bmap, BMAP_BLOCK};
use crate::disk::flash::{
    verify_mapped, whole_image_map, write_mapped, FlashError, RangeDigests, Seekable, Sequential,
};
use crate::host::busy::{device_family, refuse_in_use, DevNum, HostTables};
use crate::host::interrupt;
use crate::host::target::{identify, open_target, TargetKind};
use crate::outputs::manifest::{listed_sha256, SHA256SUMS_FILE};
use crate::rootfs::Compression;

/// Image suffixes of an output directory, in order of preference.
const PREFERENCE: [(&str, Compression); 4] = [
    (".raw", Compression::None),
    (".raw.zst", Compression::Zstd),
    (".raw.xz", Compression::Xz),
    (".raw.gz", Compression::Gzip),
];

/// SHA256SUMS larger than this is not read.
const MAX_SUMS_BYTES: u64 = 1 << 20;

pub fn run(args: &FlashArgs) -> Result<()> {
    interrupt::install().context("catching SIGINT and SIGTERM")?;
    let image = select_image(&args.source)?;
    let compression = compression_of(&image);
    let bmap_path = match (&args.bmap, args.nobmap) {
        (Some(path), _) => Some(path.clone()),
        (None, true) => None,
        (None, false) => Some(find_bmap(&image).ok_or_else(|| {
            anyhow::anyhow!(
                "no block map found for {} (looked for {}): give --bmap FILE, or --nobmap to \
                 write every block",
                image.display(),
                bmap_candidates(&image)
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })?),
    };
    let sums = read_sums(&image)?;
    let (bmap, digests) = match &bmap_path {
        Some(path) => (load_bmap(path, sums.as_ref())?, RangeDigests::Check),
        None => {
            let size = image_size_without_map(&image, compression)?;
            (whole_image_map(size, BMAP_BLOCK), RangeDigests::Record)
        }
    };
    let image_meta =
        std::fs::metadata(&image).with_context(|| format!("reading {}", image.display()))?;
    if compression == Compression::None && image_meta.len() != bmap.image_size {
        bail!(
            "{} holds {} bytes, its block map says {}: the block map is not this image's",
            image.display(),
            image_meta.len(),
            bmap.image_size
        );
    }
    if bmap.image_size == 0 {
        bail!("{} is empty: nothing to write", image.display());
    }
    eprintln!(
        "image: {}{}, {}",
        image.display(),
        compression
            .describe()
            .map(|c| format!(" ({c})"))
            .unwrap_or_default(),
        match &bmap_path {
            Some(path) => format!("block map {}", path.display()),
            None => String::from("no block map: every block is written"),
        }
    );

    let kind = identify(&args.target)?;
    refuse_same_files(
        &args.target,
        kind,
        &image,
        bmap_path.as_deref(),
        &args.sysfs,
    )?;
    if let Some(id) = kind.id() {
        let tables = HostTables {
            mountinfo: args.mount_table.clone(),
            swaps: args.swaps.clone(),
            sysfs: args.sysfs.clone(),
        };
        refuse_in_use(&args.target, id, &tables)?;
    }
    let mut target = open_target(&args.target, kind, bmap.image_size)?;

    let started = Instant::now();
    let mapped = bmap.mapped_bytes();
    let bar = progress_bar(mapped, "writing");
    let mut file = File::open(&image).with_context(|| format!("opening {}", image.display()))?;
    let mut hasher = Sha256::new();
    let hashed = compression != Compression::None || bmap_path.is_none();
    let written = {
        let mut progress = |n: u64| bar.inc(n);
        let tap = Tap {
            inner: &mut file,
            hasher: &mut hasher,
        };
        match compression {
            Compression::None if !hashed => write_mapped(
                &bmap,
                digests,
                &mut Seekable(tap.inner),
                &mut target.file,
                &mut progress,
            ),
            _ => {
                let mut stream = Sequential(decoder(tap, compression)?);
                write_mapped(&bmap, digests, &mut stream, &mut target.file, &mut progress)
            }
        }
    };
    bar.finish_and_clear();
    let written = written.map_err(|err| partial(err, &target.path))?;
    if hashed {
        io::copy(&mut file, &mut hasher).with_context(|| format!("reading {}", image.display()))?;
        check_listed(&image, sums.as_ref(), &hex(&hasher.finalize())).map_err(|err| {
            err.context(format!(
                "{} holds this image as written, but the image is not what SHA256SUMS lists",
                target.path.display()
            ))
        })?;
    }
    target.sync()?;

    let verified = if args.no_verify {
        String::from("not read back (--no-verify)")
    } else {
        let cold = target.drop_cache(bmap.image_size);
        let bar = progress_bar(mapped, "verifying");
        let result = verify_mapped(&bmap, &written, &mut target.file, &mut |n| bar.inc(n));
        bar.finish_and_clear();
        result.map_err(|err| partial(err, &target.path))?;
        match cold {
            true => String::from("read back and verified"),
            false => String::from("read back and verified (the page cache could not be dropped)"),
        }
    };
    eprintln!(
        "flashed {} of {} MiB ({} ranges) to {} in {:.1} s; {verified}",
        mib(mapped),
        mib(bmap.image_size),
        bmap.ranges.len(),
        target.path.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// MiB with one decimal.
fn mib(bytes: u64) -> String {
    #[allow(clippy::cast_precision_loss)] // display only
    let value = bytes as f64 / f64::from(1u32 << 20);
    format!("{value:.1}")
}

/// The error, with what it means for the target when it stopped midway.
fn partial(err: FlashError, target: &Path) -> anyhow::Error {
    match err {
        FlashError::Interrupted(_) => {
            eprintln!(
                "mkimg: {} is partially written: it holds no usable image; flash it again",
                target.display()
            );
            anyhow::Error::new(err)
        }
        FlashError::Verify { .. } | FlashError::ReadBack { .. } => anyhow::Error::new(err),
        _ => anyhow::Error::new(err).context(format!(
            "writing {} stopped: it holds a partial image",
            target.display()
        )),
    }
}

/// A bar of `total` bytes on a terminal; hidden otherwise.
fn progress_bar(total: u64, what: &str) -> ProgressBar {
    if !io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template(
        "{prefix} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_prefix(what.to_owned());
    bar
}

/// A reader that hashes what it passes on; borrowed, so the file can be
/// read to its end (and hashed) after the decoder is done.
struct Tap<'a> {
    inner: &'a mut File,
    hasher: &'a mut Sha256,
}

impl Read for Tap<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(buf.get(..n).unwrap_or_default());
        Ok(n)
    }
}

/// The decompressed stream of `input` (multi-member/-frame, as
/// `rootfs::decompress` reads tarballs).
fn decoder<'a, R: Read + 'a>(input: R, compression: Compression) -> Result<Box<dyn Read + 'a>> {
    Ok(match compression {
        Compression::None => Box::new(input),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(input)),
        Compression::Xz => Box::new(liblzma::read::XzDecoder::new_multi_decoder(input)),
        Compression::Zstd => {
            Box::new(zstd::stream::read::Decoder::new(input).context("starting zstd")?)
        }
    })
}

/// `source` itself, or the preferred raw-based image of a directory.
fn select_image(source: &Path) -> Result<PathBuf> {
    let meta =
        std::fs::metadata(source).with_context(|| format!("reading {}", source.display()))?;
    if !meta.is_dir() {
        return Ok(source.to_owned());
    }
    let mut names: Vec<String> = std::fs::read_dir(source)
        .with_context(|| format!("listing {}", source.display()))?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    let name = choose_image(&names).map_err(|e| anyhow::anyhow!("{}: {e}", source.display()))?;
    Ok(source.join(name))
}

/// The image among a directory's file names, by [`PREFERENCE`].
fn choose_image(names: &[String]) -> Result<&str, String> {
    for (suffix, _) in PREFERENCE {
        let found: Vec<&String> = names
            .iter()
            .filter(|n| n.len() > suffix.len() && n.ends_with(suffix))
            .collect();
        match found.as_slice() {
            [] => continue,
            [one] => return Ok(one.as_str()),
            many => {
                return Err(format!(
                    "several {suffix} images ({}): name the one to write",
                    many.iter()
                        .map(|n| n.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            }
        }
    }
    Err(String::from(
        "no raw image (.raw, .raw.zst, .raw.xz, .raw.gz) to write: build with --format raw \
         or raw.zst (a qcow2 or simg is not written by mkimg flash)",
    ))
}

/// By extension, as bmaptool decides.
fn compression_of(image: &Path) -> Compression {
    match image.extension().and_then(|e| e.to_str()) {
        Some("zst") => Compression::Zstd,
        Some("xz") => Compression::Xz,
        Some("gz") => Compression::Gzip,
        _ => Compression::None,
    }
}

/// Where bmaptool looks for the block map of `image`, in order.
fn bmap_candidates(image: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stem = image.to_owned();
    loop {
        let mut candidate = stem.clone().into_os_string();
        candidate.push(".bmap");
        out.push(PathBuf::from(candidate));
        if stem.extension().is_none() {
            return out;
        }
        stem.set_extension("");
    }
}

fn find_bmap(image: &Path) -> Option<PathBuf> {
    bmap_candidates(image).into_iter().find(|p| p.is_file())
}

/// SHA256SUMS beside `image`, when there is one.
fn read_sums(image: &Path) -> Result<Option<String>> {
    let path = image
        .parent()
        .unwrap_or(Path::new("."))
        .join(SHA256SUMS_FILE);
    let Ok(file) = File::open(&path) else {
        return Ok(None);
    };
    let mut text = String::new();
    file.take(MAX_SUMS_BYTES)
        .read_to_string(&mut text)
        .with_context(|| format!("reading {}", path.display()))?;
    Ok(Some(text))
}

/// When SHA256SUMS lists `file`, its digest must be `digest`.
fn check_listed(file: &Path, sums: Option<&String>, digest: &str) -> Result<()> {
    let name = file.file_name().and_then(|n| n.to_str()).unwrap_or("");
    if let Some(listed) = sums.and_then(|s| listed_sha256(s, name)) {
        if listed != digest {
            bail!(
                "{} does not match {SHA256SUMS_FILE} (SHA-256 {digest}, listed {listed}): \
                 it was changed or damaged",
                file.display()
            );
        }
    }
    Ok(())
}

fn load_bmap(path: &Path, sums: Option<&String>) -> Result<Bmap> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut bytes = Vec::new();
    file.take(
        u64::try_from(MAX_BMAP_BYTES)
            .unwrap_or(u64::MAX)
            .saturating_add(1),
    )
    .read_to_end(&mut bytes)
    .with_context(|| format!("reading {}", path.display()))?;
    check_listed(path, sums, &hex(&Sha256::digest(&bytes)))?;
    parse_bmap(&bytes).with_context(|| format!("{}: not a usable block map", path.display()))
}

/// `--nobmap`: a raw image's length, or a compressed one's decompressed
/// length (one extra pass: the size must be known before writing, to
/// refuse a target that is too small).
fn image_size_without_map(image: &Path, compression: Compression) -> Result<u64> {
    let file = File::open(image).with_context(|| format!("opening {}", image.display()))?;
    if compression == Compression::None {
        return Ok(file.metadata()?.len());
    }
    eprintln!(
        "no block map: decompressing {} once to learn its size",
        image.display()
    );
    let mut stream = decoder(file, compression)?;
    let mut size = 0u64;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        interrupt::check()?;
        let n = stream
            .read(&mut buf)
            .with_context(|| format!("decompressing {}", image.display()))?;
        if n == 0 {
            return Ok(size);
        }
        size = size.saturating_add(n as u64);
    }
}

/// The target is not the image, not its map, and not the device the
/// image is stored on.
fn refuse_same_files(
    target: &Path,
    kind: TargetKind,
    image: &Path,
    bmap: Option<&Path>,
    sysfs: &Path,
) -> Result<()> {
    for source in std::iter::once(image).chain(bmap) {
        let meta =
            std::fs::metadata(source).with_context(|| format!("reading {}", source.display()))?;
        match kind {
            TargetKind::File { dev, ino, .. } if meta.dev() == dev && meta.ino() == ino => {
                bail!(
                    "refusing to write {}: it is {} itself",
                    target.display(),
                    source.display()
                )
            }
            TargetKind::Block(dev)
                if device_family(sysfs, dev).contains(DevNum::from_rdev(meta.dev())) =>
            {
                bail!(
                    "refusing to write {}: {} is stored on it",
                    target.display(),
                    source.display()
                )
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::{bmap_candidates, choose_image};

    #[test]
    fn the_preferred_image_of_a_directory() {
        let names = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let pick = |list: &[&str]| choose_image(&names(list)).map(str::to_owned);
        assert_eq!(
            pick(&["a.raw.gz", "a.raw.zst", "a.raw", "a.qcow2"]),
            Ok("a.raw".into())
        );
        assert_eq!(
            pick(&["a.raw.gz", "a.raw.xz", "a.raw.bmap"]),
            Ok("a.raw.xz".into())
        );
        assert!(pick(&["a.qcow2", "a.simg", ".raw"]).is_err());
        let err = pick(&["a.raw.zst", "b.raw.zst"]).unwrap_err();
        assert!(err.contains("a.raw.zst, b.raw.zst"), "{err}");
    }

    #[test]
    fn block_maps_are_looked_for_as_bmaptool_does() {
        assert_eq!(
            bmap_candidates(Path::new("out/x.raw.zst")),
            ["out/x.raw.zst.bmap", "out/x.raw.bmap", "out/x.bmap"].map(PathBuf::from)
        );
        assert_eq!(
            bmap_candidates(Path::new("img")),
            [PathBuf::from("img.bmap")]
        );
    }
}
