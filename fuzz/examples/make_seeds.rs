//! Writes the seed corpora that need mkimg's own writers or a tar builder:
//! `cargo run --example make_seeds -- fuzz/corpus` (fuzz/make-seeds.sh runs
//! it). Every seed is byte-for-byte reproducible: fixed GUIDs, mtimes and
//! owners. Prints one "target/name: what it is for" line per seed.

use std::fs;
use std::io::{Cursor, Write};
use std::path::PathBuf;

use mkimg::digest::sha256_hex;
use mkimg::disk::bmap::BmapBuilder;
use mkimg::disk::gpt::{write_gpt, GptDisk, GptPartition};
use mkimg::disk::mbr::{write_mbr, MbrEntry, MbrTable};
use mkimg::disk::qcow2::{Compression, Qcow2Options, Qcow2Writer};
use mkimg::plan::parttype::{ESP, LINUX_DATA};
use uuid::Uuid;

struct Seeds {
    root: PathBuf,
}

impl Seeds {
    fn put(&self, target: &str, name: &str, purpose: &str, bytes: &[u8]) {
        let dir = self.root.join(target);
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join(name), bytes).unwrap();
        println!("{target}/{name}: {purpose}");
    }
}

fn main() {
    let root = PathBuf::from(
        std::env::args()
            .nth(1)
            .expect("usage: make_seeds CORPUS_DIR"),
    );
    let seeds = Seeds { root };
    tar_seeds(&seeds);
    let images = table_seeds(&seeds);
    qcow2_seeds(&seeds, &images);
    bmap_seeds(&seeds);
}

// ---- tarballs (rootfs_pass: first byte 0 = as is, 1 gzip, 2 zstd, 3 xz) ----

/// A 64-byte ELF64 little-endian header for riscv64 (e_machine 243).
fn elf_header() -> Vec<u8> {
    let mut h = vec![0u8; 64];
    h[..4].copy_from_slice(b"\x7fELF");
    h[4] = 2; // 64-bit
    h[5] = 1; // little endian
    h[6] = 1;
    h[16] = 3; // ET_DYN
    h[18..20].copy_from_slice(&243u16.to_le_bytes());
    h[20] = 1;
    h[52] = 64;
    h
}

fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_600_000_000);
    h.set_size(size);
    h
}

fn dir(b: &mut tar::Builder<Vec<u8>>, path: &str) {
    let mut h = header(tar::EntryType::Directory, 0o755, 0);
    b.append_data(&mut h, path, &[][..]).unwrap();
}

fn file(b: &mut tar::Builder<Vec<u8>>, path: &str, data: &[u8]) {
    let mut h = header(tar::EntryType::Regular, 0o644, data.len() as u64);
    b.append_data(&mut h, path, data).unwrap();
}

fn link(b: &mut tar::Builder<Vec<u8>>, kind: tar::EntryType, path: &str, target: &str) {
    let mut h = header(kind, 0o777, 0);
    b.append_link(&mut h, path, target).unwrap();
}

/// A small root filesystem: what the pass routes, edits and captures.
fn basic_rootfs() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for d in [
        "./",
        "etc/",
        "etc/default/",
        "usr/",
        "usr/bin/",
        "usr/lib/",
        "boot/",
        "boot/efi/",
        "boot/efi/EFI/",
        "boot/efi/EFI/BOOT/",
        "dev/",
    ] {
        dir(&mut b, d);
    }
    file(&mut b, "etc/os-release", b"ID=debian\nVERSION_ID=13\n");
    file(&mut b, "etc/default/grub", b"GRUB_TIMEOUT=1\n");
    file(
        &mut b,
        "etc/hosts",
        b"127.0.0.1\tlocalhost\n127.0.1.1\told\n",
    );
    file(&mut b, "etc/resolv.conf", b"nameserver 10.0.0.1\n");
    file(&mut b, "etc/fstab", b"# old\n");
    file(&mut b, "usr/bin/sh", &elf_header());
    link(&mut b, tar::EntryType::Link, "usr/bin/dash", "usr/bin/sh");
    link(&mut b, tar::EntryType::Symlink, "bin", "usr/bin");
    file(&mut b, "boot/vmlinuz-6.1.0", b"kernel");
    link(
        &mut b,
        tar::EntryType::Symlink,
        "boot/vmlinuz",
        "vmlinuz-6.1.0",
    );
    file(&mut b, "boot/efi/EFI/BOOT/BOOTRISCV64.EFI", b"MZ efi");
    let mut null = header(tar::EntryType::Char, 0o666, 0);
    null.set_device_major(1).unwrap();
    null.set_device_minor(3).unwrap();
    b.append_data(&mut null, "dev/null", &[][..]).unwrap();
    let mut fifo = header(tar::EntryType::Fifo, 0o600, 0);
    b.append_data(&mut fifo, "dev/initctl", &[][..]).unwrap();
    b.into_inner().unwrap()
}

/// GNU long names ('L') and long link targets ('K').
fn gnu_long_names() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let deep = format!("usr/{}", "d".repeat(150));
    dir(&mut b, &format!("{deep}/"));
    let long = format!("{deep}/{}", "f".repeat(120));
    file(&mut b, &long, b"long");
    link(&mut b, tar::EntryType::Symlink, "usr/short", &long);
    link(&mut b, tar::EntryType::Link, &format!("{deep}/hard"), &long);
    b.into_inner().unwrap()
}

/// PAX extended headers: path, linkpath, mtime, uid, xattrs, a global header.
fn pax_headers() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let long = format!("opt/{}/file", "p".repeat(200));
    let mut g = header(tar::EntryType::XGlobalHeader, 0o644, 0);
    let global = b"23 comment=fuzz seeds\n";
    g.set_size(global.len() as u64);
    b.append_data(&mut g, "pax_global_header", &global[..])
        .unwrap();
    b.append_pax_extensions([
        ("path", long.as_bytes()),
        ("mtime", b"1600000000.5".as_slice()),
        ("uid", b"1000".as_slice()),
        ("uname", b"user".as_slice()),
        ("SCHILY.xattr.user.x", b"value".as_slice()),
        (
            "SCHILY.xattr.security.capability",
            b"\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
                .as_slice(),
        ),
    ])
    .unwrap();
    file(&mut b, "opt/placeholder", b"pax file");
    b.append_pax_extensions([("linkpath", long.as_bytes())])
        .unwrap();
    link(&mut b, tar::EntryType::Symlink, "opt/link", "placeholder");
    b.append_pax_extensions([("SCHILY.xattr.system.posix_acl_access", b"\x02\x00\x00\x00\x01\x00\x06\x00\xff\xff\xff\xff\x04\x00\x04\x00\xff\xff\xff\xff\x20\x00\x04\x00\xff\xff\xff\xff".as_slice())])
        .unwrap();
    dir(&mut b, "opt/acl/");
    b.into_inner().unwrap()
}

fn compress(how: u8, tar: &[u8]) -> Vec<u8> {
    match how {
        1 => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
            e.write_all(tar).unwrap();
            e.finish().unwrap()
        }
        2 => zstd::bulk::compress(tar, 19).unwrap(),
        3 => {
            let mut e = liblzma::write::XzEncoder::new(Vec::new(), 6);
            e.write_all(tar).unwrap();
            e.finish().unwrap()
        }
        _ => tar.to_vec(),
    }
}

fn with_mode(how: u8, bytes: &[u8]) -> Vec<u8> {
    let mut v = vec![how];
    v.extend_from_slice(bytes);
    v
}

fn tar_seeds(s: &Seeds) {
    let t = "rootfs_pass";
    let basic = basic_rootfs();
    s.put(
        t,
        "basic.tar",
        "plain tar: dirs, files, hard link, symlinks, char device, FIFO, captured files, ESP split",
        &with_mode(0, &basic),
    );
    s.put(
        t,
        "gnu-long.tar",
        "GNU 'L'/'K' long names and link targets",
        &with_mode(0, &gnu_long_names()),
    );
    s.put(
        t,
        "pax.tar",
        "PAX global + per-file headers: long path/linkpath, mtime, uid, xattrs, ACL",
        &with_mode(0, &pax_headers()),
    );
    s.put(
        t,
        "basic-via-gzip",
        "mode byte 1: the fuzz target gzips the tar (mutations go through the gzip reader)",
        &with_mode(1, &basic),
    );
    s.put(
        t,
        "basic-via-zstd",
        "mode byte 2: the target compresses with zstd",
        &with_mode(2, &basic),
    );
    s.put(
        t,
        "basic-via-xz",
        "mode byte 3: the target compresses with xz",
        &with_mode(3, &basic),
    );
    s.put(
        t,
        "basic.tar.gz",
        "a gzip stream as is (corrupt-stream mutations)",
        &with_mode(0, &compress(1, &basic)),
    );
    s.put(
        t,
        "basic.tar.zst",
        "a zstd frame as is",
        &with_mode(0, &compress(2, &basic)),
    );
    s.put(
        t,
        "basic.tar.xz",
        "an xz stream as is",
        &with_mode(0, &compress(3, &basic)),
    );
}

// ---- partition tables (partition_tables) ----

fn gpt_image(sector_size: u64, disk_sectors: u64, entry_count: u32) -> (Vec<u8>, GptDisk) {
    let mut gpt = GptDisk::with_layout(
        sector_size,
        disk_sectors,
        Uuid::from_u128(0x1111_2222_3333_4444_5555_6666_7777_8888),
        2,
        entry_count,
    );
    let first = gpt.first_usable_lba;
    let last = gpt.last_usable_lba;
    let mid = first + (last - first) / 2;
    gpt.partitions = vec![
        GptPartition {
            type_guid: ESP,
            part_guid: Uuid::from_u128(1),
            first_lba: first,
            last_lba: mid - 1,
            attributes: 1 << 2,
            name: "efi".into(),
        },
        GptPartition {
            type_guid: LINUX_DATA,
            part_guid: Uuid::from_u128(2),
            first_lba: mid,
            last_lba: last,
            attributes: 0,
            name: "rootfs".into(),
        },
    ];
    let mut disk = Cursor::new(vec![0u8; (sector_size * disk_sectors) as usize]);
    write_gpt(&gpt, &mut disk).unwrap();
    (disk.into_inner(), gpt)
}

fn table_seeds(s: &Seeds) -> Vec<Vec<u8>> {
    let t = "partition_tables";
    // GPT: 128 entries (32 sectors per array), protective MBR.
    let (mut gpt, _) = gpt_image(512, 96, 128);
    write_mbr(&MbrTable::protective(96), 96, &mut Cursor::new(&mut gpt)).unwrap();
    s.put(
        t,
        "gpt-512",
        "GPT, 128 entries, 512-byte sectors, protective MBR, 2 partitions",
        &gpt,
    );

    let (mut small, _) = gpt_image(512, 24, 4);
    write_mbr(&MbrTable::protective(24), 24, &mut Cursor::new(&mut small)).unwrap();
    s.put(
        t,
        "gpt-4-entries",
        "GPT with a 4-entry array (one sector), protective MBR",
        &small,
    );

    let (mut big, _) = gpt_image(4096, 16, 128);
    write_mbr(&MbrTable::protective(16), 16, &mut Cursor::new(&mut big)).unwrap();
    s.put(t, "gpt-4096", "GPT on 4096-byte sectors", &big);

    let mut mbr = Cursor::new(vec![0u8; 512 * 8]);
    let table = MbrTable {
        disk_signature: 0x1234_5678,
        entries: vec![
            MbrEntry {
                bootable: true,
                type_byte: 0x0c,
                start_lba: 2,
                sectors: 2,
            },
            MbrEntry {
                bootable: false,
                type_byte: 0x83,
                start_lba: 4,
                sectors: 4,
            },
        ],
    };
    write_mbr(&table, 8, &mut mbr).unwrap();
    s.put(
        t,
        "mbr",
        "MBR only: FAT32 LBA (active) + Linux",
        &mbr.into_inner(),
    );

    let (mut hybrid, gpt_disk) = gpt_image(512, 96, 128);
    let p = &gpt_disk.partitions[0];
    let mirrored = [MbrEntry {
        bootable: true,
        type_byte: 0xef,
        start_lba: p.first_lba as u32,
        sectors: (p.last_lba - p.first_lba + 1) as u32,
    }];
    write_mbr(
        &MbrTable::hybrid(96, &mirrored).unwrap(),
        96,
        &mut Cursor::new(&mut hybrid),
    )
    .unwrap();
    s.put(
        t,
        "hybrid",
        "hybrid MBR (ESP mirrored, 0xEE last) over a GPT",
        &hybrid,
    );
    vec![gpt, hybrid, small]
}

// ---- qcow2 (qcow2_inspect) ----

fn qcow2(image: &[u8], cluster_bits: u32, compression: Compression) -> Vec<u8> {
    let opts = Qcow2Options {
        cluster_bits,
        compression,
    };
    let mut w = Qcow2Writer::new(Cursor::new(Vec::new()), image.len() as u64, opts).unwrap();
    let cluster = 1usize << cluster_bits;
    for (i, chunk) in image.chunks(cluster).enumerate() {
        if chunk.iter().any(|&b| b != 0) {
            w.write_at((i * cluster) as u64, chunk).unwrap();
        }
    }
    w.finish().unwrap().into_inner()
}

fn qcow2_seeds(s: &Seeds, images: &[Vec<u8>]) {
    let t = "qcow2_inspect";
    let (gpt, hybrid, small) = (&images[0], &images[1], &images[2]);
    s.put(
        t,
        "gpt-512b-clusters",
        "qcow2 v3 (mkimg's writer), 512-byte clusters, uncompressed, a GPT inside",
        &qcow2(gpt, 9, Compression::None),
    );
    s.put(
        t,
        "hybrid-zlib",
        "qcow2, 512-byte clusters, zlib-compressed clusters, hybrid MBR + GPT inside",
        &qcow2(hybrid, 9, Compression::Zlib),
    );
    s.put(
        t,
        "gpt-zstd-4k",
        "qcow2, 4 KiB clusters, zstd-compressed clusters (incompatible bit 3)",
        &qcow2(small, 12, Compression::Zstd),
    );
}

// ---- block maps (bmap_read) ----

fn bmap_seeds(s: &Seeds) {
    let t = "bmap_read";
    // Data blocks, a forced zero range and a short tail block.
    let size = 10 * 4096 + 1536;
    let mut b = BmapBuilder::new(size, &[(6 * 4096, 8 * 4096)]).unwrap();
    b.write_at(0, &[0xaa; 512]).unwrap();
    b.write_at(3 * 4096, &[1; 8192]).unwrap();
    b.write_at(10 * 4096, &[7; 1536]).unwrap();
    let xml = b.finish().to_xml();
    s.put(
        t,
        "mkimg-2.0.bmap",
        "mkimg's own bmap 2.0: a single block, ranges, a forced zero range, a short tail",
        xml.as_bytes(),
    );
    // The same as format 1.4 (bmaptool's first name for 2.0), checksum redone.
    let old = xml.replacen("version=\"2.0\"", "version=\"1.4\"", 1);
    let zeros = "0".repeat(64);
    let start = old.find("<BmapFileChecksum> ").unwrap() + "<BmapFileChecksum> ".len();
    let zeroed = format!("{}{}{}", &old[..start], zeros, &old[start + 64..]);
    let sum = sha256_hex(zeroed.as_bytes());
    s.put(
        t,
        "mkimg-1.4.bmap",
        "the same map declared as version 1.4, file checksum recomputed",
        zeroed.replacen(&zeros, &sum, 1).as_bytes(),
    );
}
