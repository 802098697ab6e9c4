//! Small crafted rootfs tarballs, member by member: the riscv64-looking
//! minimum the stock qemu-riscv64 board needs, plus whatever a test adds —
//! including what the `tar` crate would refuse to write (a raw `../` name,
//! a GNU sparse bomb, a zstd stream of zeros). Every member is owned by
//! root with a fixed mtime, so a tarball is the same bytes on every run.

use std::io::Write;
use std::path::Path;

pub const MIB: u64 = 1 << 20;

/// The mtime of every member.
pub const MTIME: u64 = 1_700_000_000;

/// A real 64-byte ELF header from `tests/fixtures/elf` (see its README),
/// padded to 4 KiB: enough for mkimg's architecture check.
/// The smallest PE file mkimg reads as a grub EFI image: PE machine
/// `machine` (0x5064 riscv64, 0xaa64 arm64), one `mods` section holding
/// grub's module info header and one prefix module (type 3), as
/// grub-mkimage lays them out. Enough for detection to find the prefix;
/// not bootable (boot tests use the rootfs's real grub).
pub fn grub_efi_fixture(machine: u16, prefix: &str) -> Vec<u8> {
    const MODS_AT: usize = 0x200;
    let mut module = Vec::new();
    module.extend_from_slice(&3u32.to_le_bytes());
    let data_len = prefix.len() + 1;
    module.extend_from_slice(&(8 + data_len as u32).to_le_bytes());
    module.extend_from_slice(prefix.as_bytes());
    module.push(0);
    module.resize(module.len().div_ceil(8) * 8, 0);
    let mut mods = Vec::new();
    mods.extend_from_slice(&0x676d_696du32.to_le_bytes());
    mods.extend_from_slice(&[0; 4]);
    mods.extend_from_slice(&24u64.to_le_bytes());
    mods.extend_from_slice(&(24 + module.len() as u64).to_le_bytes());
    mods.extend_from_slice(&module);
    let mut b = vec![0u8; MODS_AT];
    b[..2].copy_from_slice(b"MZ");
    b[0x3c..0x40].copy_from_slice(&0x40u32.to_le_bytes());
    b[0x40..0x44].copy_from_slice(b"PE\0\0");
    b[0x44..0x46].copy_from_slice(&machine.to_le_bytes());
    b[0x46..0x48].copy_from_slice(&1u16.to_le_bytes());
    b[0x54..0x56].copy_from_slice(&0xf0u16.to_le_bytes());
    b[0x58..0x5a].copy_from_slice(&0x20bu16.to_le_bytes());
    let sh = 0x58 + 0xf0;
    b[sh..sh + 8].copy_from_slice(b"mods\0\0\0\0");
    b[sh + 16..sh + 20].copy_from_slice(&(mods.len() as u32).to_le_bytes());
    b[sh + 20..sh + 24].copy_from_slice(&(MODS_AT as u32).to_le_bytes());
    b.extend_from_slice(&mods);
    b
}

pub fn elf_fixture(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/elf")
        .join(name);
    let mut bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    bytes.resize(4096, 0);
    bytes
}

fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(size);
    h.set_mtime(MTIME);
    h.set_uid(0);
    h.set_gid(0);
    h
}

/// A tar stream being built; [`Tarball::finish`] adds the end blocks.
#[derive(Default)]
pub struct Tarball {
    /// The members so far, without the end-of-archive blocks.
    bytes: Vec<u8>,
}

impl Tarball {
    pub fn new() -> Self {
        Tarball::default()
    }

    /// What the stock qemu-riscv64 board needs: an ELF /usr/bin/dash, a
    /// kernel and initrd, Debian's grub EFI binary, /boot/efi.
    pub fn minimal_riscv64() -> Self {
        Tarball::minimal("dash-riscv64.elfhdr")
    }

    /// [`Tarball::minimal_riscv64`] with /usr/bin/dash from another ELF
    /// fixture (e.g. an arm64 one, for the architecture check).
    pub fn minimal(elf: &str) -> Self {
        let mut t = Tarball::new();
        t.add_minimal(elf);
        t
    }

    /// The members of [`Tarball::minimal`], appended.
    pub fn add_minimal(&mut self, elf: &str) -> &mut Self {
        for dir in [
            "etc",
            "usr",
            "usr/bin",
            "boot",
            "boot/efi",
            "usr/lib",
            "usr/lib/grub",
            "usr/lib/grub/riscv64-efi",
            "usr/lib/grub/riscv64-efi/monolithic",
        ] {
            self.dir(dir);
        }
        self.file("usr/bin/dash", &elf_fixture(elf))
            .file("boot/vmlinux-6.12.1-riscv64", b"kernel")
            .file("boot/initrd.img-6.12.1-riscv64", b"initrd")
            .file(
                "usr/lib/grub/riscv64-efi/monolithic/grubriscv64.efi",
                &grub_efi_fixture(0x5064, "/EFI/debian"),
            )
            .file("etc/hosts", b"127.0.0.1\tlocalhost\n")
    }

    /// Append one member as the `tar` crate writes it (a GNU long name or
    /// long link when needed), without its end blocks.
    fn member(&mut self, write: impl FnOnce(&mut tar::Builder<Vec<u8>>) -> std::io::Result<()>) {
        let mut builder = tar::Builder::new(Vec::new());
        write(&mut builder).unwrap();
        let bytes = builder.into_inner().unwrap();
        self.bytes.extend_from_slice(&bytes[..bytes.len() - 1024]);
    }

    pub fn dir(&mut self, path: &str) -> &mut Self {
        let mut h = header(tar::EntryType::Directory, 0o755, 0);
        self.member(|b| b.append_data(&mut h, path, std::io::empty()));
        self
    }

    /// A regular file, mode 0644; a path of any length.
    pub fn file(&mut self, path: &str, data: &[u8]) -> &mut Self {
        let mut h = header(tar::EntryType::Regular, 0o644, data.len() as u64);
        self.member(|b| b.append_data(&mut h, path, data));
        self
    }

    /// A regular file with the given mode and numeric owner.
    pub fn file_owned(
        &mut self,
        path: &str,
        data: &[u8],
        mode: u32,
        uid: u64,
        gid: u64,
    ) -> &mut Self {
        let mut h = header(tar::EntryType::Regular, mode, data.len() as u64);
        h.set_uid(uid);
        h.set_gid(gid);
        self.member(|b| b.append_data(&mut h, path, data));
        self
    }

    /// A regular file, mode 0755 (a program or script).
    pub fn executable(&mut self, path: &str, data: &[u8]) -> &mut Self {
        let mut h = header(tar::EntryType::Regular, 0o755, data.len() as u64);
        self.member(|b| b.append_data(&mut h, path, data));
        self
    }

    pub fn symlink(&mut self, path: &str, target: &str) -> &mut Self {
        let mut h = header(tar::EntryType::Symlink, 0o777, 0);
        self.member(|b| b.append_link(&mut h, path, target));
        self
    }

    /// A regular file whose header name is `name` byte for byte (at most
    /// 100 bytes), past the `tar` crate's own path checks: `../x` and such.
    pub fn raw_name_file(&mut self, name: &str, data: &[u8]) -> &mut Self {
        let mut h = header(tar::EntryType::Regular, 0o644, data.len() as u64);
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        h.set_cksum();
        self.member(|b| b.append(&h, data));
        self
    }

    /// A GNU sparse member `real` bytes long that stores one 512-byte
    /// chunk of 'x' at offset 0: a 2 GiB file in 1 KiB of tar.
    pub fn sparse(&mut self, path: &str, real: u64) -> &mut Self {
        let mut h = header(tar::EntryType::GNUSparse, 0o644, 512);
        h.set_path(path).unwrap();
        let gnu = h.as_gnu_mut().unwrap();
        gnu.sparse[0].set_offset(0);
        gnu.sparse[0].set_length(512);
        gnu.set_real_size(real);
        h.set_cksum();
        self.member(|b| b.append(&h, &[b'x'; 512][..]));
        self
    }

    /// The archive with its end-of-archive blocks.
    pub fn finish(&self) -> Vec<u8> {
        let mut out = self.bytes.clone();
        out.extend_from_slice(&[0u8; 1024]);
        out
    }

    /// The members so far plus a plain header for `path` of `size` zero
    /// bytes, compressed with zstd as it streams: a zstd bomb.
    pub fn zstd_with_zeros(&self, path: &str, size: u64) -> Vec<u8> {
        let mut enc = zstd::stream::Encoder::new(Vec::new(), 1).unwrap();
        enc.write_all(&self.bytes).unwrap();
        let mut h = header(tar::EntryType::Regular, 0o644, size);
        h.set_path(path).unwrap();
        h.set_cksum();
        enc.write_all(h.as_bytes()).unwrap();
        let zeros = vec![0u8; MIB as usize];
        let mut left = size;
        while left > 0 {
            let n = left.min(MIB);
            enc.write_all(&zeros[..n as usize]).unwrap();
            left -= n;
        }
        enc.write_all(&[0u8; 1024]).unwrap();
        enc.finish().unwrap()
    }
}
