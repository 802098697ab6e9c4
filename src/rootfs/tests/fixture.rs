//! Input tarballs for the tests, built member by member so that raw names
//! ("./etc", "/abs", "a//b", "../x") reach the reader unmodified.

use tar::{Builder, EntryType, Header};

use crate::rootfs::{
    process_rootfs, Budget, Captures, Edits, EntrySink, MemPolicy, MemorySink, RootfsError,
    RootfsJob, RootfsSummary, SplitTarget, TarSink, XattrRecord,
};

pub const EPOCH: u64 = 1_700_000_000;
pub const OLD: u64 = 1_600_000_000;
pub const FUTURE: u64 = 1_900_000_000;

/// `security.capability` v2 for cap_net_raw (+ep).
pub const CAP_NET_RAW: &[u8] = &[
    1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
];

/// A `system.posix_acl_access` value: u::rw-, u:<uid>:r--, g::r--, m::r--, o::---.
pub fn acl(uid: u32) -> Vec<u8> {
    let mut v = 2u32.to_le_bytes().to_vec();
    for (tag, perm, id) in [
        (1u16, 6u16, u32::MAX),
        (2, 4, uid),
        (4, 4, u32::MAX),
        (0x10, 4, u32::MAX),
        (0x20, 0, u32::MAX),
    ] {
        v.extend_from_slice(&tag.to_le_bytes());
        v.extend_from_slice(&perm.to_le_bytes());
        v.extend_from_slice(&id.to_le_bytes());
    }
    v
}

/// A 64-byte ELF64 little-endian header for RISC-V (e_machine 0xf3).
pub fn elf_riscv64() -> Vec<u8> {
    let mut h = vec![0u8; 64];
    h[..4].copy_from_slice(b"\x7fELF");
    h[4] = 2; // ELFCLASS64
    h[5] = 1; // little endian
    h[6] = 1;
    h[18] = 0xf3;
    h.extend_from_slice(b"rest of the program");
    h
}

pub struct Member<'a> {
    pub name: &'a str,
    pub kind: EntryType,
    pub mode: u32,
    pub owner: (u64, u64, &'a str, &'a str),
    pub mtime: u64,
    pub link: &'a str,
    pub dev: (u32, u32),
    pub data: &'a [u8],
    pub pax: Vec<(&'a str, Vec<u8>)>,
}

impl<'a> Member<'a> {
    pub fn new(name: &'a str, kind: EntryType) -> Self {
        Self {
            name,
            kind,
            mode: 0o644,
            owner: (0, 0, "root", "root"),
            mtime: OLD,
            link: "",
            dev: (0, 0),
            data: b"",
            pax: Vec::new(),
        }
    }
}

#[derive(Default)]
pub struct Fx {
    b: Option<Builder<Vec<u8>>>,
}

impl Fx {
    pub fn new() -> Self {
        Self {
            b: Some(Builder::new(Vec::new())),
        }
    }

    pub fn add(&mut self, m: Member<'_>) -> &mut Self {
        let b = self.b.as_mut().unwrap();
        let mut pax = m.pax.clone();
        if m.name.len() > 100 {
            pax.push(("path", m.name.as_bytes().to_vec()));
        }
        if !pax.is_empty() {
            b.append_pax_extensions(pax.iter().map(|(k, v)| (*k, v.as_slice())))
                .unwrap();
        }
        let mut h = Header::new_ustar();
        h.set_entry_type(m.kind);
        let ustar = h.as_ustar_mut().unwrap();
        let n = m.name.len().min(100);
        ustar.name[..n].copy_from_slice(&m.name.as_bytes()[..n]);
        ustar.linkname[..m.link.len()].copy_from_slice(m.link.as_bytes());
        h.set_mode(m.mode);
        h.set_uid(m.owner.0);
        h.set_gid(m.owner.1);
        h.set_username(m.owner.2).unwrap();
        h.set_groupname(m.owner.3).unwrap();
        h.set_mtime(m.mtime);
        h.set_size(m.data.len() as u64);
        if matches!(m.kind, EntryType::Char | EntryType::Block) {
            h.set_device_major(m.dev.0).unwrap();
            h.set_device_minor(m.dev.1).unwrap();
        }
        h.set_cksum();
        b.append(&h, m.data).unwrap();
        self
    }

    pub fn dir(&mut self, name: &str, mode: u32) -> &mut Self {
        self.add(Member {
            mode,
            ..Member::new(name, EntryType::Directory)
        })
    }

    pub fn file(&mut self, name: &str, data: &[u8]) -> &mut Self {
        self.add(Member {
            data,
            ..Member::new(name, EntryType::Regular)
        })
    }

    pub fn symlink(&mut self, name: &str, target: &str) -> &mut Self {
        self.add(Member {
            mode: 0o777,
            link: target,
            ..Member::new(name, EntryType::Symlink)
        })
    }

    pub fn hardlink(&mut self, name: &str, target: &str) -> &mut Self {
        self.add(Member {
            link: target,
            ..Member::new(name, EntryType::Link)
        })
    }

    pub fn finish(&mut self) -> Vec<u8> {
        self.b.take().unwrap().into_inner().unwrap()
    }
}

pub const LONG: &str = "usr/share/doc/a-package-with-a-rather-long-name/examples/and-a-deeply-nested-directory/with-a-file-name-past-100-bytes.txt";

/// Every entry kind a Debian rootfs has, with the traps the pass must handle.
pub fn every_kind() -> Vec<u8> {
    let mut fx = Fx::new();
    fx.dir("./", 0o755)
        .dir("./etc/", 0o755)
        .symlink("./etc/hostname", "/etc/shadow")
        .add(Member {
            mode: 0o640,
            owner: (0, 42, "root", "shadow"),
            data: b"root:*:19000::::::\n",
            ..Member::new("./etc/shadow", EntryType::Regular)
        })
        .file(
            "./etc/hosts",
            b"127.0.0.1\tlocalhost\n127.0.1.1\told-name\n::1\tlocalhost ip6-localhost\n",
        )
        .file("./etc/resolv.conf", b"nameserver 10.0.0.1\n")
        .file("/.dockerenv", b"")
        .symlink("etc/mtab", "/proc/self/mounts")
        .dir("etc/default", 0o755)
        .file("etc/default/grub", b"GRUB_TIMEOUT=5\n")
        .dir("./usr", 0o755)
        .dir("./usr/bin/", 0o755)
        .add(Member {
            mode: 0o755,
            data: &elf_riscv64(),
            pax: vec![("SCHILY.xattr.security.capability", CAP_NET_RAW.to_vec())],
            ..Member::new("./usr/bin/ping", EntryType::Regular)
        })
        .hardlink("./usr/bin/ping4", "./usr/bin/ping")
        .add(Member {
            mode: 0o4755,
            data: &elf_riscv64(),
            ..Member::new("usr//bin/sudo", EntryType::Regular)
        })
        .dir("./usr/lib", 0o755)
        .file("./usr/lib/libx.so.1", b"\x7fELF-not-in-bin")
        .symlink("./usr/lib/libx.so", "libx.so.1")
        .dir("./dev", 0o755)
        .add(Member {
            mode: 0o666,
            dev: (1, 3),
            ..Member::new("./dev/null", EntryType::Char)
        })
        .add(Member {
            mode: 0o660,
            owner: (0, 6, "root", "disk"),
            dev: (8, 0),
            ..Member::new("./dev/sda", EntryType::Block)
        })
        .dir("./run", 0o755)
        .add(Member {
            mode: 0o600,
            ..Member::new("./run/initctl", EntryType::Fifo)
        })
        .dir("./tmp", 0o1777)
        .dir("./home", 0o755)
        .add(Member {
            mode: 0o750,
            owner: (1000, 1000, "user", "user"),
            ..Member::new("./home/user", EntryType::Directory)
        })
        .add(Member {
            mode: 0o640,
            owner: (1000, 1000, "user", "user"),
            mtime: FUTURE,
            data: b"notes\n",
            pax: vec![
                ("SCHILY.xattr.system.posix_acl_access", acl(1000)),
                ("SCHILY.xattr.user.comment", b"hello".to_vec()),
            ],
            ..Member::new("./home/user/notes", EntryType::Regular)
        })
        .dir("./usr/share", 0o755)
        .file(&format!("./{LONG}"), b"long\n")
        .dir("./boot", 0o755)
        .file("./boot/vmlinuz-6.1.0-riscv64", b"kernel")
        .file("./boot/initrd.img-6.1.0-riscv64", b"initrd")
        .symlink("./vmlinuz", "boot/vmlinuz-6.1.0-riscv64")
        .add(Member {
            mode: 0o700,
            owner: (0, 0, "root", "root"),
            mtime: OLD + 7,
            ..Member::new("./boot/efi", EntryType::Directory)
        })
        .dir("./boot/efi/EFI", 0o700)
        .dir("./boot/efi/EFI/debian", 0o700)
        .file("./boot/efi/EFI/debian/grubriscv64.efi", b"MZ-efi-binary")
        .finish()
}

/// Processes `input` with a TarSink root and the given memory splits.
#[derive(Debug)]
pub struct Run {
    pub summary: RootfsSummary,
    pub root_tar: Vec<u8>,
    pub xattrs: Vec<XattrRecord>,
    pub splits: Vec<MemorySink>,
}

pub fn run(
    input: &[u8],
    edits: &Edits,
    split: &[&str],
    captures: Captures,
) -> Result<Run, RootfsError> {
    run_budgeted(input, edits, split, captures, None)
}

/// [`run`] with a budget on the root output.
pub fn run_budgeted(
    input: &[u8],
    edits: &Edits,
    split: &[&str],
    captures: Captures,
    root_budget: Option<Budget>,
) -> Result<Run, RootfsError> {
    let mut root = TarSink::new(Vec::new());
    let mut sinks: Vec<MemorySink> = split
        .iter()
        .map(|_| MemorySink::new(MemPolicy::Vfat))
        .collect();
    let targets = split
        .iter()
        .zip(sinks.iter_mut())
        .map(|(m, s)| SplitTarget {
            mount_point: (*m).to_owned(),
            sink: s as &mut dyn EntrySink,
            budget: None,
        })
        .collect();
    let job = RootfsJob {
        edits,
        root: &mut root,
        root_budget,
        split: targets,
        captures,
    };
    let summary = process_rootfs(input, job)?;
    let (root_tar, xattrs) = root.into_parts();
    Ok(Run {
        summary,
        root_tar,
        xattrs,
        splits: sinks,
    })
}

/// The edits an image build makes.
pub fn image_edits() -> Edits {
    let mut e = Edits::new(EPOCH);
    e.set_hostname(&"board".parse().unwrap());
    e.replace_file("/etc/fstab", b"LABEL=rootfs / ext4 defaults 0 1\n".to_vec());
    e
}
