//! Tarball bytes → `process_rootfs` (decompression, the tar reader, the
//! pass with its edits, split and captures) into in-memory sinks, set up as
//! `ingest_rootfs` sets them up for a board with `/` (2 GiB), `/boot`
//! (256 MiB; ext4: a PAX tar for mke2fs, here written to `io::sink()`) and
//! `/boot/efi` (64 MiB vfat, in memory), each with its budget, and the
//! rewrite a grub build makes of /etc/default/grub (the board's kernel
//! arguments merged in, `bootloader::board_args`). Nothing touches the
//! disk.
//!
//! The first byte picks how the rest reaches the reader: as is (whatever
//! magic it has, so corrupt compressed streams are fed too), or compressed
//! here with gzip, zstd or xz so that the fuzzer's tar mutations also go
//! through each decompressor.
#![no_main]

use std::io::{self, Write};
use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use mkimg::bootloader::board_args::{merge_board_args, DEFAULT_GRUB_LIMIT};
use mkimg::elf::detect_elf;
use mkimg::rootfs::{
    process_rootfs, Budget, Captures, Edits, MemPolicy, MemorySink, Rewrite, RootfsJob,
    SplitTarget, TarSink,
};

fn compress(how: u8, tar: &[u8]) -> Vec<u8> {
    match how % 4 {
        1 => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(tar).unwrap();
            e.finish().unwrap()
        }
        2 => zstd::bulk::compress(tar, 1).unwrap(),
        3 => {
            let mut e = liblzma::write::XzEncoder::new(Vec::new(), 0);
            e.write_all(tar).unwrap();
            e.finish().unwrap()
        }
        _ => tar.to_vec(),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&how, tar)) = data.split_first() else {
        return;
    };
    let input = compress(how, tar);

    let mut edits = Edits::new(1_700_000_000);
    edits
        .remove
        .push("/boot/extlinux/extlinux.conf".to_string());
    edits.replace_file("/etc/fstab", "UUID=x / ext4 defaults 0 1\n");
    edits.set_hostname(&"fuzz".parse().expect("a valid hostname"));
    edits.rewrites.insert(
        "/etc/default/grub".to_string(),
        Rewrite {
            limit: DEFAULT_GRUB_LIMIT,
            edit: Arc::new(|bytes: &[u8]| {
                Ok(merge_board_args(bytes, "console=ttyS0 x'y $(z)")?
                    .unwrap_or_else(|| bytes.to_vec()))
            }),
        },
    );

    let mut root = TarSink::new(io::sink());
    let mut boot = TarSink::new(io::sink());
    let mut esp = MemorySink::new(MemPolicy::Vfat);
    let captures = Captures {
        files: vec![
            "/etc/default/grub".to_string(),
            "/etc/os-release".to_string(),
            "/usr/lib/os-release".to_string(),
            "/usr/lib/u-boot/u-boot.itb".to_string(),
        ],
        // What bootloader::detect asks for: grub binaries, BLS entries.
        patterns: vec![
            "/boot/efi/EFI/*/grubriscv64.efi".to_string(),
            "/boot/loader/entries/*.conf".to_string(),
        ],
        dirs: vec!["/boot".to_string()],
        elf_dirs: vec![
            "/usr/bin".to_string(),
            "/bin".to_string(),
            "/usr/lib".to_string(),
        ],
        elf_count: 3,
        max_file_bytes: 1 << 20,
        max_total_bytes: 4 << 20,
    };
    let job = RootfsJob {
        edits: &edits,
        root: &mut root,
        root_budget: Some(Budget::ext4("rootfs", 2 << 30)),
        split: vec![
            SplitTarget {
                mount_point: "/boot".to_string(),
                sink: &mut boot,
                budget: Some(Budget::ext4("boot", 256 << 20)),
            },
            SplitTarget {
                mount_point: "/boot/efi".to_string(),
                sink: &mut esp,
                // The ESP's files are held in memory here (no spill file):
                // its budget is what keeps a sparse bomb under /boot/efi out.
                budget: Some(Budget::vfat("esp", 64 << 20)),
            },
        ],
        captures,
    };
    if let Ok(summary) = process_rootfs(input.as_slice(), job) {
        let _ = (summary.entries(), summary.file_bytes());
        for head in &summary.captures.elf_heads {
            let _ = detect_elf(&head.head);
        }
    }
    let _ = root.into_parts();
    let _ = esp.into_entries();
});
