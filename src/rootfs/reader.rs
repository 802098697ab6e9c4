//! A streaming tar member walker.
//!
//! Owns: framing the decompressed tar stream into members: 512-byte header
//! blocks (decoded with `tar::Header`), PAX `x` records, GNU `L`/`K` long
//! names, GNU `S` sparse maps (decoded with `tar::GnuSparseHeader`), the
//! end-of-archive zero blocks, and truncation detection.
//!
//! Why not `tar::Archive::entries`: its PAX parser splits records on `\n`,
//! so a binary `SCHILY.xattr.*` value containing a 0x0a byte (an ACL entry
//! for uid 10, a capability mask with bits 1 and 3) is reported as
//! malformed; and it treats a stream that stops at a header boundary as a
//! clean end. Here records are split by their length prefix, and a missing
//! end-of-archive block is an error.
//!
//! Must not: interpret paths or apply edits (that is `member.rs`/`pass.rs`).
//! In: `Read` of a plain tar stream. Out: [`RawMember`] plus its data as a
//! `Read` that expands sparse holes and errors on premature end of file.

use std::io::{self, Read};

use tar::{EntryType, GnuExtSparseHeader, GnuSparseHeader, Header};

use crate::rootfs::error::RootfsError;

const BLOCK: u64 = 512;
/// Upper bound for PAX / GNU long-name payloads held in memory.
const MAX_META_BYTES: u64 = 16 << 20;

/// One archive member with its extension headers folded in.
pub struct RawMember {
    pub index: u64,
    /// Offset of the member's own header block in the decompressed stream.
    pub offset: u64,
    pub header: Header,
    /// Name from PAX `path`, GNU `L` or the header, in that order.
    pub name: Vec<u8>,
    /// Link target from PAX `linkpath`, GNU `K` or the header.
    pub link: Vec<u8>,
    /// Local PAX records, in archive order.
    pub pax: Vec<(String, Vec<u8>)>,
    /// Logical (expanded) size of the data.
    pub size: u64,
}

struct DataState {
    /// (logical offset, length) of the stored chunks; one chunk unless sparse.
    chunks: Vec<(u64, u64)>,
    chunk: usize,
    logical_size: u64,
    pos: u64,
    stored_left: u64,
    padding: u64,
}

pub struct TarWalker<R> {
    input: R,
    offset: u64,
    index: u64,
    data: Option<DataState>,
}

fn parse_err(index: u64, offset: u64, msg: &str) -> RootfsError {
    RootfsError::Member {
        index,
        offset,
        source: io::Error::new(io::ErrorKind::InvalidData, msg.to_owned()),
    }
}

/// Splits PAX extended header records (`"<len> <key>=<value>\n"`) by length.
pub fn parse_pax_records(mut buf: &[u8]) -> Result<Vec<(String, Vec<u8>)>, String> {
    let mut out = Vec::new();
    while !buf.is_empty() && buf[0] != 0 {
        let space = buf
            .iter()
            .position(|b| *b == b' ')
            .ok_or("record without length")?;
        let len: usize = std::str::from_utf8(&buf[..space])
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or("bad record length")?;
        if len <= space + 1 || len > buf.len() || buf[len - 1] != b'\n' {
            return Err("record length does not match its content".into());
        }
        let record = &buf[space + 1..len - 1];
        let eq = record
            .iter()
            .position(|b| *b == b'=')
            .ok_or("record without '='")?;
        let key = String::from_utf8(record[..eq].to_vec()).map_err(|_| "key is not UTF-8")?;
        out.push((key, record[eq + 1..].to_vec()));
        buf = &buf[len..];
    }
    Ok(out)
}

fn trim_nul(bytes: &[u8]) -> Vec<u8> {
    let end = bytes.iter().position(|b| *b == 0).unwrap_or(bytes.len());
    bytes[..end].to_vec()
}

impl<R: Read> TarWalker<R> {
    pub fn new(input: R) -> Self {
        Self {
            input,
            offset: 0,
            index: 0,
            data: None,
        }
    }

    /// Decompressed bytes consumed so far.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Reads into `buf` until full; returns bytes read (short only at EOF).
    fn fill(&mut self, buf: &mut [u8]) -> Result<usize, RootfsError> {
        let mut got = 0;
        while got < buf.len() {
            match self.input.read(&mut buf[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(source) => {
                    return Err(RootfsError::Input {
                        offset: self.offset + got as u64,
                        source,
                    })
                }
            }
        }
        self.offset += got as u64;
        Ok(got)
    }

    fn discard(&mut self, mut n: u64) -> Result<(), RootfsError> {
        let mut buf = [0u8; 8192];
        while n > 0 {
            let want = n.min(buf.len() as u64) as usize;
            let got = self.fill(&mut buf[..want])?;
            if got < want {
                return Err(RootfsError::TruncatedArchive {
                    offset: self.offset,
                    members: self.index,
                });
            }
            n -= got as u64;
        }
        Ok(())
    }

    fn read_block(&mut self) -> Result<Option<[u8; 512]>, RootfsError> {
        let mut block = [0u8; 512];
        let got = self.fill(&mut block)?;
        if got < block.len() {
            return Err(RootfsError::TruncatedArchive {
                offset: self.offset,
                members: self.index,
            });
        }
        Ok(if block.iter().all(|b| *b == 0) {
            None
        } else {
            Some(block)
        })
    }

    fn read_meta(&mut self, header: &Header, at: u64) -> Result<Vec<u8>, RootfsError> {
        let size = header.entry_size().map_err(|source| RootfsError::Member {
            index: self.index,
            offset: at,
            source,
        })?;
        if size > MAX_META_BYTES {
            return Err(parse_err(self.index, at, "extension header too large"));
        }
        let mut buf = vec![0u8; size as usize];
        if self.fill(&mut buf)? < buf.len() {
            return Err(RootfsError::TruncatedArchive {
                offset: self.offset,
                members: self.index,
            });
        }
        self.discard(padding(size))?;
        Ok(buf)
    }

    /// Skips what is left of the current member, then reads the next one.
    /// `Ok(None)` only after an end-of-archive zero block.
    pub fn next_member(&mut self) -> Result<Option<RawMember>, RootfsError> {
        if let Some(state) = self.data.take() {
            self.discard(state.stored_left + state.padding)?;
        }
        let (mut long_name, mut long_link, mut pax) = (None, None, Vec::new());
        loop {
            let at = self.offset;
            let Some(block) = self.read_block()? else {
                if long_name.is_some() || long_link.is_some() || !pax.is_empty() {
                    return Err(parse_err(
                        self.index,
                        at,
                        "extension header without a member",
                    ));
                }
                return Ok(None);
            };
            let header = Header::from_byte_slice(&block).clone();
            check_checksum(&header).map_err(|m| parse_err(self.index, at, m))?;
            match header.entry_type() {
                EntryType::XHeader => {
                    let raw = self.read_meta(&header, at)?;
                    pax = parse_pax_records(&raw)
                        .map_err(|m| parse_err(self.index, at, &format!("PAX header: {m}")))?;
                }
                EntryType::GNULongName => long_name = Some(trim_nul(&self.read_meta(&header, at)?)),
                EntryType::GNULongLink => long_link = Some(trim_nul(&self.read_meta(&header, at)?)),
                // Global PAX headers carry archive-wide defaults (comments,
                // mtime); none of them is a per-file attribute we keep.
                EntryType::XGlobalHeader => {
                    self.read_meta(&header, at)?;
                }
                _ => {
                    return self
                        .start_member(header, at, long_name, long_link, pax)
                        .map(Some)
                }
            }
        }
    }

    fn start_member(
        &mut self,
        header: Header,
        at: u64,
        long_name: Option<Vec<u8>>,
        long_link: Option<Vec<u8>>,
        pax: Vec<(String, Vec<u8>)>,
    ) -> Result<RawMember, RootfsError> {
        let index = self.index;
        let io_err = |source| RootfsError::Member {
            index,
            offset: at,
            source,
        };
        let pax_value = |key: &str| {
            pax.iter()
                .rev()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.clone())
        };
        let name = pax_value("path")
            .or(long_name)
            .unwrap_or_else(|| header.path_bytes().into_owned());
        let link = pax_value("linkpath")
            .or(long_link)
            .or_else(|| header.link_name_bytes().map(|b| b.into_owned()))
            .unwrap_or_default();
        let mut stored = header.entry_size().map_err(io_err)?;
        if let Some(v) = pax_value("size") {
            stored = std::str::from_utf8(&v)
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| parse_err(index, at, "bad PAX size"))?;
        }
        // Only regular data carries bytes; a hard link or symlink header with a
        // size would otherwise desynchronise every later member.
        let carries_data = matches!(
            header.entry_type(),
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse
        );
        let (chunks, logical_size) = if header.entry_type() == EntryType::GNUSparse {
            self.read_sparse_map(&header, at, stored)?
        } else if carries_data {
            (vec![(0, stored)], stored)
        } else {
            (Vec::new(), 0)
        };
        self.data = Some(DataState {
            chunks,
            chunk: 0,
            logical_size,
            pos: 0,
            stored_left: stored,
            padding: padding(stored),
        });
        self.index += 1;
        Ok(RawMember {
            index,
            offset: at,
            header,
            name,
            link,
            pax,
            size: logical_size,
        })
    }

    fn read_sparse_map(
        &mut self,
        header: &Header,
        at: u64,
        stored: u64,
    ) -> Result<(Vec<(u64, u64)>, u64), RootfsError> {
        let index = self.index;
        let io_err = |source| RootfsError::Member {
            index,
            offset: at,
            source,
        };
        let gnu = header
            .as_gnu()
            .ok_or_else(|| parse_err(index, at, "sparse member without a GNU header"))?;
        let mut chunks = Vec::new();
        let mut push = |s: &GnuSparseHeader| -> Result<(), RootfsError> {
            if !s.is_empty() {
                chunks.push((s.offset().map_err(io_err)?, s.length().map_err(io_err)?));
            }
            Ok(())
        };
        gnu.sparse.iter().try_for_each(&mut push)?;
        let mut extended = gnu.is_extended();
        while extended {
            let mut ext = GnuExtSparseHeader::new();
            if self.fill(ext.as_mut_bytes())? < 512 {
                return Err(RootfsError::TruncatedArchive {
                    offset: self.offset,
                    members: index,
                });
            }
            ext.sparse().iter().try_for_each(&mut push)?;
            extended = ext.is_extended();
        }
        let real_size = gnu.real_size().map_err(io_err)?;
        let mut end = 0;
        for &(off, len) in &chunks {
            if off < end || off.checked_add(len).is_none_or(|e| e > real_size) {
                return Err(parse_err(
                    index,
                    at,
                    "sparse map out of order or beyond the file size",
                ));
            }
            end = off + len;
        }
        if chunks.iter().map(|c| c.1).sum::<u64>() != stored {
            return Err(parse_err(
                index,
                at,
                "sparse map does not add up to the stored size",
            ));
        }
        Ok((chunks, real_size))
    }

    /// Reads the current member's logical data (holes expanded to zeros).
    pub fn read_data(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(state) = self.data.as_mut() else {
            return Ok(0);
        };
        if buf.is_empty() || state.pos >= state.logical_size {
            return Ok(0);
        }
        let room = buf.len() as u64;
        match state.chunks.get(state.chunk).copied() {
            Some((off, _)) if state.pos < off => {
                let n = room.min(off - state.pos) as usize;
                buf[..n].fill(0);
                state.pos += n as u64;
                Ok(n)
            }
            Some((off, len)) => {
                let n = room.min(off + len - state.pos) as usize;
                let got = match self.input.read(&mut buf[..n]) {
                    Ok(0) => {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "rootfs tarball ends inside a member",
                        ));
                    }
                    other => other?,
                };
                let state = self.data.as_mut().expect("state checked above");
                self.offset += got as u64;
                state.pos += got as u64;
                state.stored_left -= got as u64;
                if state.pos == off + len {
                    state.chunk += 1;
                }
                Ok(got)
            }
            None => {
                let n = room.min(state.logical_size - state.pos) as usize;
                buf[..n].fill(0);
                state.pos += n as u64;
                Ok(n)
            }
        }
    }

    /// Reads the rest of the stream after the end-of-archive block so that a
    /// decompressor verifies its trailer (CRC, size) and a cut-off compressed
    /// stream is reported.
    pub fn drain(&mut self) -> Result<(), RootfsError> {
        let mut buf = [0u8; 8192];
        while self.fill(&mut buf)? > 0 {}
        Ok(())
    }
}

fn padding(size: u64) -> u64 {
    (BLOCK - size % BLOCK) % BLOCK
}

fn check_checksum(header: &Header) -> Result<(), &'static str> {
    let bytes = header.as_bytes();
    let sum: u32 = bytes[..148]
        .iter()
        .chain(&bytes[156..])
        .map(|b| u32::from(*b))
        .sum::<u32>()
        + 8 * 32;
    match header.cksum() {
        Ok(c) if c == sum => Ok(()),
        _ => Err("header checksum mismatch"),
    }
}

/// A `Read` over the current member's data.
pub struct MemberData<'a, R> {
    pub walker: &'a mut TarWalker<R>,
}

impl<R: Read> Read for MemberData<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // One member can be gigabytes (a sparse file is all zero-fill
        // here): a signal stops it mid-copy, not only between members.
        crate::host::interrupt::pause_at("member-data");
        crate::host::interrupt::check().map_err(io::Error::other)?;
        self.walker.read_data(buf)
    }
}
