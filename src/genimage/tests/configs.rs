//! The positive configs, written from genimage 16's README. Each is also
//! built by genimage itself in `oracle`. Input files they name (created by
//! the oracle test): zImage, board.dtb, extlinux.conf, u-boot.bin (4 KiB),
//! bootloader.img (96 KiB), a.txt.

/// (name, config text, environment)
pub type Case = (
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
);

pub const SDCARD_MBR: &str = r#"
# Buildroot-style SD card: U-Boot raw, boot vfat, rootfs ext4, MBR
image boot.vfat {
	vfat {
		files = { "zImage", "board.dtb" }
		file extlinux/extlinux.conf { image = "extlinux.conf" }
		label = "BOOT"
	}
	size = 8M
}

image rootfs.ext4 {
	ext4 {
		label = "rootfs"
		use-mke2fs = true
		features = "^metadata_csum"
	}
	size = 8M
}

image sdcard.img {
	hdimage {
		partition-table-type = "mbr"
		disk-signature = 0x1234abcd
	}
	partition u-boot {
		in-partition-table = false
		image = "u-boot.bin"
		offset = 8K
	}
	partition boot {
		partition-type = 0xC
		bootable = "true"
		image = "boot.vfat"
		offset = 1M
	}
	partition rootfs {
		partition-type = 0x83
		image = "rootfs.ext4"
	}
}
"#;

pub const GPT_SHORTCUTS: &str = r#"
image esp.vfat { vfat { files = { "a.txt" } } size = 4M }
image disk.img {
	hdimage {
		partition-table-type = gpt
		disk-uuid = "8f9b2a51-0c3e-4d6a-9b1e-2f4c5d6e7a8b"
	}
	partition esp {
		partition-type-uuid = U
		partition-uuid = "11111111-2222-4333-8444-555555555555"
		image = "esp.vfat"
		offset = 1M
	}
	partition root {
		partition-type-uuid = L
		image = "esp.vfat"
	}
	partition swap { partition-type-uuid = S size = 1M }
	partition data { partition-type-uuid = "ebd0a0a2-b9e5-4433-87c0-68b6b72699c7" size = 1M }
}
"#;

pub const HYBRID: &str = r#"
image esp.vfat { vfat { files = { "a.txt" } } size = 4M }
image disk.img {
	hdimage { partition-table-type = "hybrid" align = 1M }
	partition esp {
		partition-type = 0xef
		partition-type-uuid = U
		bootable = yes
		image = "esp.vfat"
	}
	partition root { partition-type-uuid = L size = 2M }
}
"#;

pub const HOLES_INLINE: &str = r#"
image bar.img {
	hdimage {}
	partition bootloader {
		in-partition-table = false
		offset = 0
		image = "u-boot.bin"
		holes = {"(440; 512)"}
	}
	partition rootfs { offset = 1M image = "u-boot.bin" }
}
"#;

pub const HOLES_FILE_SECTION: &str = r#"
image foo.img {
	hdimage {
		gpt = true
		gpt-location = 64K
	}
	partition bootloader {
		in-partition-table = false
		offset = 0
		image = "bootloader.img"
	}
	partition rootfs {
		offset = 1M
		image = "u-boot.bin"
	}
}
image bootloader.img {
	file {
		holes = {"(440; 1K)", "(64K; 80K)"}
	}
}
"#;

pub const INCLUDES: &str = r#"
include("common/boot.cfg")
image sd.img {
	hdimage {}
	include("part-boot.cfg")
}
"#;
pub const INC_BOOT: &str =
    "image boot.vfat { vfat { files = { \"a.txt\" } label = \"INC\" } size = 4M }\n";
pub const INC_PART: &str = "partition boot { partition-type = 0xc image = \"boot.vfat\" }\n";

pub const ENV_VARS: &str = r#"
image ${IMG_NAME} {
	vfat { files = { "${FIRST}", ${SECOND} } label = "${NOPE:-DEFLABEL}" }
	size = ${SZ}
}
image "${NOPE}disk.img" {
	hdimage {}
	partition p { image = "${IMG_NAME}" partition-type = 0x0c }
}
"#;
pub const ENV: &[(&str, &str)] = &[
    ("IMG_NAME", "boot.vfat"),
    ("FIRST", "a.txt"),
    ("SECOND", "zImage"),
    ("SZ", "4M"),
];

pub const VFAT_NESTED: &str = r#"
image boot.vfat {
	vfat {
		label = "BOOT"
		files = { "zImage" }
		files += { "board.dtb", "a.txt" }
		file boot/extlinux.conf { image = "extlinux.conf" }
		file "EFI/BOOT/BOOTAA64.EFI" { image = "u-boot.bin" }
		extraargs = "-F 32 -s 1"
	}
	size = 40M
}
"#;

pub const EXT_VARIANTS: &str = r#"
image a.ext2 { ext2 { use-mke2fs = true label = "two" } size = 2M empty = true }
image b.ext3 {
	ext3 {
		use-mke2fs = true
		fs-timestamp = "20240101000000"
		extraargs = "-I 256 -m 0 -U 01234567-89ab-4cde-8f01-23456789abcd"
	}
	size = 4M
	mountpoint = "/etc"
}
image c.ext4 {
	ext4 { use-mke2fs = yes usage-type = "small" root-owner = "0:0" mke2fs-conf = "mke2fs.conf" }
	size = 4M
}
"#;

pub const GPT_NO_BACKUP: &str = r#"
image disk.img {
	hdimage {
		partition-table-type = "gpt"
		gpt-no-backup = true
		align = 64K
		fill = true
	}
	partition a { image = "bootloader.img" }
	partition b { image = "u-boot.bin" align = 128K }
}
"#;

pub const MBR_EXTENDED: &str = r#"
image disk.img {
	hdimage { extended-partition = 4 }
	partition p1 { partition-type = 0x83 size = 1M offset = 1M }
	partition p2 { partition-type = 0x83 size = 1M }
	partition p3 { partition-type = 0x83 size = 1M }
	partition p4 { partition-type = 0x83 size = 1M }
	partition p5 { partition-type = 0x83 size = 1M }
}
"#;

pub const TABLE_NONE: &str = r#"
image flash.img {
	hdimage { partition-table-type = none }
	partition spl { offset = 0 image = "u-boot.bin" }
	partition env { offset = 64K size = 16K image = "u-boot.bin" }
}
"#;

pub const SQUASHFS: &str = r#"
image root.squashfs {
	squashfs { compression = "xz" block-size = 131072 }
}
image disk.img {
	hdimage { partition-table-type = gpt }
	partition root { partition-type-uuid = L image = "root.squashfs" size = 1M }
}
"#;

pub const COMMENTS_QUOTES: &str = "
/* a block comment
   over lines */
image 'boot.vfat' { // a line comment
\tvfat { # a hash comment
\t\tfiles = { 'a.txt', \"z\\x49mage\" } # \\x49 is I
\t\tlabel = \"B\\117OT\"
\t}
\tsize = 2048s
}
";

pub const TEMPORARY: &str = r#"
image rootfs.ext4 {
	name = "rootfs"
	temporary = true
	ext4 { use-mke2fs = true }
	size = 4M
	mountpoint = "/"
}
image sd.img {
	hdimage { disk-signature = random }
	partition rootfs { partition-type = 0x83 image = "rootfs.ext4" autoresize = true }
	size = 16M
}
"#;

pub const GPT_ATTRIBUTES: &str = r#"
image disk.img {
	hdimage { partition-table-type = gpt }
	partition boot {
		partition-type-uuid = L
		bootable = on
		read-only = true
		hidden = true
		no-automount = true
		size = 1M
		offset = 1M
	}
	partition rest { partition-type-uuid = V size = 1M }
}
"#;

pub const CONFIG_SECTION: &str = r#"
config {
	outputpath = "images"
	inputpath = "input"
	rootpath = "root"
	tmppath = "tmp"
	loglevel = 1
}
image boot.vfat { vfat { files = { "a.txt" } } size = 0x200000 }
"#;

pub const CASES: [Case; 17] = [
    ("sdcard-mbr", SDCARD_MBR, &[]),
    ("gpt-shortcuts", GPT_SHORTCUTS, &[]),
    ("hybrid", HYBRID, &[]),
    ("holes-inline", HOLES_INLINE, &[]),
    ("holes-file-section", HOLES_FILE_SECTION, &[]),
    ("includes", INCLUDES, &[]),
    ("env-vars", ENV_VARS, ENV),
    ("vfat-nested", VFAT_NESTED, &[]),
    ("ext-variants", EXT_VARIANTS, &[]),
    ("gpt-no-backup", GPT_NO_BACKUP, &[]),
    ("mbr-extended", MBR_EXTENDED, &[]),
    ("table-none", TABLE_NONE, &[]),
    ("squashfs", SQUASHFS, &[]),
    ("comments-quotes", COMMENTS_QUOTES, &[]),
    ("temporary", TEMPORARY, &[]),
    ("gpt-attributes", GPT_ATTRIBUTES, &[]),
    ("config-section", CONFIG_SECTION, &[]),
];
