//! Compression detection and decoding of the input tarball.
//!
//! Owns: recognising the container by its magic bytes (plain tar, gzip, xz,
//! zstd) and handing back one `Read` of the decompressed tar stream.
//! Must not: buffer more than the first 512 bytes, touch any path.
//! In: any `Read`. Out: `Box<dyn Read>`.

use std::io::{Cursor, Read};

use crate::rootfs::error::RootfsError;

/// How the tarball is compressed, as detected from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// An uncompressed POSIX/GNU tar (`ustar` magic at offset 257).
    None,
    Gzip,
    Xz,
    Zstd,
}

impl Compression {
    /// How a user reads it after a size: `zstd-compressed`; `None` for a
    /// plain tar, which needs no word.
    pub fn describe(self) -> Option<&'static str> {
        match self {
            Compression::None => None,
            Compression::Gzip => Some("gzip-compressed"),
            Compression::Xz => Some("xz-compressed"),
            Compression::Zstd => Some("zstd-compressed"),
        }
    }
}

const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];
const XZ_MAGIC: &[u8] = &[0xfd, b'7', b'z', b'X', b'Z', 0x00];
const ZSTD_MAGIC: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];
const USTAR_OFFSET: usize = 257;
const USTAR_MAGIC: &[u8] = b"ustar";

/// Detects the compression from the first bytes of the stream (up to 512).
pub fn detect_compression(head: &[u8]) -> Result<Compression, RootfsError> {
    if head.starts_with(GZIP_MAGIC) {
        Ok(Compression::Gzip)
    } else if head.starts_with(XZ_MAGIC) {
        Ok(Compression::Xz)
    } else if head.starts_with(ZSTD_MAGIC) {
        Ok(Compression::Zstd)
    } else if head.get(USTAR_OFFSET..USTAR_OFFSET + USTAR_MAGIC.len()) == Some(USTAR_MAGIC) {
        Ok(Compression::None)
    } else if head.len() >= 512 && head[..512].iter().all(|b| *b == 0) {
        // An end-of-archive block first: a valid tar with no entries, which
        // the pass then reports as such.
        Ok(Compression::None)
    } else if head.is_empty() {
        Err(RootfsError::EmptyInput)
    } else {
        let shown = head.len().min(16);
        Err(RootfsError::UnknownFormat {
            first_bytes: format_hex(&head[..shown]),
        })
    }
}

fn format_hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Reads the head of `input`, detects its compression and returns the
/// decompressed tar stream.
pub fn open_tar_stream<'r, R: Read + 'r>(
    mut input: R,
) -> Result<(Compression, Box<dyn Read + 'r>), RootfsError> {
    let mut head = Vec::with_capacity(512);
    (&mut input)
        .take(512)
        .read_to_end(&mut head)
        .map_err(|source| RootfsError::Input { offset: 0, source })?;
    let compression = detect_compression(&head)?;
    let whole = Cursor::new(head).chain(input);
    let decoded: Box<dyn Read + 'r> = match compression {
        Compression::None => Box::new(whole),
        // Multi-member readers: `pigz`/`zstd -T` and concatenated streams
        // are valid archives too.
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(whole)),
        Compression::Xz => Box::new(liblzma::read::XzDecoder::new_multi_decoder(whole)),
        Compression::Zstd => Box::new(
            zstd::stream::read::Decoder::new(whole)
                .map_err(|source| RootfsError::Input { offset: 0, source })?,
        ),
    };
    Ok((compression, decoded))
}
