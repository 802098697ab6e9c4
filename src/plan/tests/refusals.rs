//! Every refusal `plan_board` can make, one row each: a board (after
//! [`HEAD`]), the fragment its problem must say, and — marked `# <-` at the
//! end of a line — the line that problem must cite as `board.toml:LINE:COL`.
//!
//! Shorthand lines: `GPT` or `MBR` stands for a 64M disk with that table
//! (the lines after it, up to the next table, add to that `[disk]`),
//! `partition NAME` for a `[[partition]]` of type linux with that name, and
//! `blob NAME` for a `[[blob]]` of boot0.bin (64 KiB) with that name; the
//! mark after a `partition` or `blob` line stays on its table header.
//! One refusal has no row: `disk.size` over `MAX_DISK_SIZE`, which the size
//! parser already refuses (`sizes_over_an_exbibyte_are_refused_when_parsed`).

use super::{board_in, HEAD};
use crate::plan::{plan_board, PlanError};

const MARK: &str = "# <-";

const REFUSALS: &[(&str, &str)] = &[
    // -- bounds: values beyond the disk stop planning at once.
    (
        r#"GPT
partition p
offset = "1152921504606846976" # <-
size = "1M""#,
        "partition 1 'p': offset = 0x1000000000000000 is beyond the end of the 64M disk",
    ),
    (
        r#"GPT
partition p
size = "1152921504606845952" # <-"#,
        "partition 1 'p': size = 0xffffffffffffc00 is beyond the end",
    ),
    (
        r#"GPT
partition p
size = "1M"
alignment = "1G" # <-"#,
        "partition 1 'p': alignment = 0x40000000 is beyond the end",
    ),
    (
        r#"GPT
blob b
offset = "1152921504606781440" # <-"#,
        "blob 'b': offset = 0xfffffffffff0000 is beyond the end",
    ),
    (
        r#"GPT
blob b
offset = "8K"
size = "1152921504606781440" # <-"#,
        "blob 'b': size = 0xfffffffffff0000 is beyond the end",
    ),
    (
        r#"GPT
blob b
offset = "8K"
magic = "eGON"
magic_offset = 1152921504606846976 # <-"#,
        "blob 'b': magic_offset = 0x1000000000000000 is beyond the end",
    ),
    (
        r#"GPT
alignment = "1G" # <-"#,
        "disk.alignment = 0x40000000 is beyond the end",
    ),
    (
        r#"GPT
gpt_entries_offset = "65M" # <-"#,
        "disk.gpt_entries_offset = 0x4100000 is beyond the end",
    ),
    // -- geometry: [disk].
    (
        r#"GPT
sector_size = 1024 # <-"#,
        "disk.sector_size = 1024: only 512 and 4096 are supported",
    ),
    (
        r#"[disk]
table = "mbr"
size = "16K" # <-"#,
        "disk.size = 16384 bytes is not a multiple of the 512-byte sector size or is too small",
    ),
    (
        r#"GPT
alignment = "1000" # <-"#,
        "disk.alignment = 1000 is not a multiple of the sector size 512",
    ),
    (
        r#"GPT
gpt_entries = 0 # <-"#,
        "disk.gpt_entries = 0: a GPT needs at least one entry",
    ),
    (
        r#"GPT
gpt_entries_offset = "512" # <-"#,
        "disk.gpt_entries_offset = 512 must be a multiple of the sector size and at or after LBA 2",
    ),
    (
        r#"GPT
guid = "not-a-guid" # <-"#,
        r#"disk.guid = "not-a-guid" is not a UUID"#,
    ),
    (
        r#"MBR
mbr_signature = "0x123" # <-"#,
        r#"disk.mbr_signature = "0x123" is not a 32-bit id"#,
    ),
    // -- partitions: placement.
    (
        r#"GPT
partition p
offset = "1536K" # <-
size = "1M""#,
        "partition 1 'p': offset 0x180000 is not aligned to 1M",
    ),
    (
        r#"GPT
partition a
size = "rest" # <-

partition b
size = "1M""#,
        r#"partition 1 'a': size = "rest" is only allowed on the last partition"#,
    ),
    (
        r#"GPT
partition p
size = "0" # <-"#,
        "partition 1 'p': size is zero",
    ),
    (
        r#"GPT
partition p
size = "1000" # <-"#,
        "partition 1 'p': start 0x100000 / size 1000 are not multiples of the 512-byte sector",
    ),
    // -- partitions: what they hold.
    (
        r#"GPT
[[partition]]
name = "p"
type = "nope" # <-
size = "1M""#,
        r#"partition 1 'p': unknown partition type "nope""#,
    ),
    (
        r#"GPT
partition p
size = "1M"
uuid = "x" # <-"#,
        r#"partition 1 'p': uuid = "x" is not a UUID"#,
    ),
    (
        r#"GPT
[[partition]]
name = "p"
type = "esp"
size = "1M"
filesystem = "vfat"
label = "TWELVE_CHARS" # <-"#,
        r#"partition 1 'p': vfat label "TWELVE_CHARS" is longer than 11 ASCII characters"#,
    ),
    (
        r#"GPT
partition p
size = "1M"
filesystem = "ext4"
label = "seventeen-chars-x" # <-"#,
        r#"partition 1 'p': ext4 label "seventeen-chars-x" is longer than 16 bytes"#,
    ),
    (
        r#"GPT
partition root
size = "rest"
filesystem = "ext4"
fs_uuid = "78662d6f-706f-6570-6f72-742d726f6f7" # <-"#,
        r#"partition 1 'root': fs_uuid = "78662d6f-706f-6570-6f72-742d726f6f7" is not a UUID"#,
    ),
    (
        r#"GPT
[[partition]]
name = "p"
type = "esp"
size = "1M"
filesystem = "vfat"
fs_uuid = "12345" # <-"#,
        r#"partition 1 'p': fs_uuid = "12345" is not a 32-bit id"#,
    ),
    (
        r#"GPT
partition env
size = "1M"
filesystem = "raw"
source = "/etc/hostname" # <-"#,
        r#"partition 1 'env': source "/etc/hostname" resolves to /etc/hostname, outside the board directory"#,
    ),
    (
        r#"GPT
partition env # <-
size = "1M"
filesystem = "raw""#,
        r#"partition 1 'env': filesystem = "raw" needs source = "FILE""#,
    ),
    (
        r#"GPT
partition p
size = "1M"
filesystem = "ext4"
source = "boot0.bin" # <-"#,
        r#"partition 1 'p': source is only used with filesystem = "raw""#,
    ),
    (
        r#"GPT
partition p
size = "1M"
filesystem = "ext4"
mount = "boot" # <-"#,
        r#"partition 1 'p': mount = "boot" must be an absolute path"#,
    ),
    (
        r#"GPT
partition p
size = "1M"
filesystem = "ext4"
mount = "/data"
mount_options = "defaults noatime" # <-"#,
        r#"partition 1 'p': mount_options = "defaults noatime" contains ' ', which would break its line in /etc/fstab"#,
    ),
    // -- blobs.
    (
        r#"GPT
blob b
offset = "8K"
magic = "0xabc" # <-"#,
        r#"blob 'b': magic = "0xabc" is empty or bad hex"#,
    ),
    (
        r#"GPT
[[blob]]
name = "b"
source = "rootfs:usr/lib/spl.bin" # <-
offset = "1M"
size = "64K""#,
        r#"blob 'b': source "rootfs:usr/lib/spl.bin" must name an absolute rootfs path"#,
    ),
    (
        r#"GPT
[[blob]]
name = "spl"
source = "rootfs:/usr/lib/u-boot/b/spl.bin" # <-
offset = "1M""#,
        r#"blob 'spl': source "rootfs:/usr/lib/u-boot/b/spl.bin" has no size until the rootfs is read"#,
    ),
    (
        r#"GPT
[[blob]]
name = "b"
source = "/etc/hostname" # <-
offset = "1M""#,
        r#"blob 'b': source "/etc/hostname" resolves to /etc/hostname, outside the board directory"#,
    ),
    (
        r#"GPT
blob boot0
offset = "1M"
size = "32K" # <-"#,
        "boot0.bin is 65536 bytes, more than its room size = 32768",
    ),
    (
        r#"GPT
[[blob]]
name = "spl"
source = "nope.bin" # <-
offset = "1M"
hint = "U-Boot's SPL build""#,
        "nope.bin: No such file or directory (os error 2); it usually comes from U-Boot's SPL build",
    ),
    // -- firmware and edits.
    (
        r#"GPT
[firmware] # <-
code = "a.fd"
bios = "u-boot.bin""#,
        "[firmware] needs exactly one of code (UEFI on pflash, with optional vars) and bios",
    ),
    (
        r#"GPT
[firmware]
code = "/etc/hostname" # <-"#,
        r#"[firmware] code: "/etc/hostname" resolves to /etc/hostname, outside the board directory"#,
    ),
    (
        r#"GPT
[firmware]
code = "a.fd"
vars = "/etc/hostname" # <-"#,
        r#"[firmware] vars: "/etc/hostname" resolves to"#,
    ),
    (
        r#"GPT
[edits]
overlay = "/etc" # <-"#,
        r#"[edits] overlay: "/etc" resolves to /etc, outside the board directory"#,
    ),
    // -- boot: text that lands in boot loader configuration.
    (
        r#"console = "ttyS0 quiet" # <-
GPT"#,
        r#"board.console = "ttyS0 quiet" contains ' '; kernel arguments are written into the boot loader's configuration"#,
    ),
    (
        r#"GPT
[boot]
cmdline = "quiet\t" # <-"#,
        r#"boot.cmdline = "quiet\t" contains '\t'"#,
    ),
    (
        r#"GPT
[boot]
grub_cfg = "EFI/../grub.cfg" # <-"#,
        r#"boot.grub_cfg = "EFI/../grub.cfg" must be a path inside the ESP"#,
    ),
    (
        r#"GPT
[[efi_file]]
from = "/usr/lib/grub/grubriscv64.efi"
to = "/EFI//BOOT.EFI" # <-"#,
        r#"efi_file.to = "/EFI//BOOT.EFI" must be a path inside the ESP"#,
    ),
    (
        r#"GPT
[boot]
loader = "extlinux"
fdtdir = "/usr/lib/linux image" # <-"#,
        r#"boot.fdtdir = "/usr/lib/linux image" contains ' '; it is one word of extlinux.conf"#,
    ),
    // -- boot: a loader that cannot boot the disk.
    (
        r#"GPT
partition root
size = "rest"
filesystem = "ext4"
mount = "/"

[boot]
loader = "grub" # <-"#,
        r#"[boot] loader is "grub", but the board has no EFI System Partition to put GRUB in"#,
    ),
    (
        r#"GPT
partition root
size = "rest"
filesystem = "ext4"
mount = "/" # <-"#,
        r#"[boot] loader is "grub" (the default), but the board has no EFI System Partition"#,
    ),
    // -- layout checks: tables.
    (
        r#"GPT
gpt_entries = 1 # <-

partition a
size = "1M"

partition b
size = "1M""#,
        "2 partitions but the GPT has only 1 entries",
    ),
    // More than four MBR partitions make an extended partition (slot 4 by
    // default); an extended partition outside slots 1-4 is refused.
    (
        r#"MBR
extended_partition = 5 # <-

partition p1
size = "1M"

partition p2
size = "1M"

partition p3
size = "1M"

partition p4
size = "1M"

partition p5
size = "1M""#,
        "disk.extended_partition = 5: the extended partition takes an MBR slot, 1 to 4",
    ),
    (
        r#"GPT
extended_partition = 2 # <-

partition p1
size = "1M"

partition p2
size = "1M""#,
        "disk.extended_partition = 2: extended and logical partitions exist only in an MBR",
    ),
    (
        r#"MBR
extended_bootable = true # <-

partition p1
size = "1M""#,
        "disk.extended_bootable = true but the disk has no extended partition",
    ),
    (
        r#"MBR
[[partition]]
name = "p"
type = "0fc63daf-8483-4772-8e79-3d69d8477de4" # <-
size = "1M""#,
        "partition 1 'p': type has no MBR type byte",
    ),
    (
        r#"GPT
[[partition]]
name = "p"
type = "0x83" # <-
size = "1M""#,
        "partition 1 'p': an MBR type byte cannot be used in a GPT",
    ),
    (
        r#"[disk]
table = "mbr"
size = "3T"

partition p
offset = "2T" # <-
size = "1M""#,
        "partition 1 'p': beyond the 2^32-sector limit of an MBR",
    ),
    (
        r#"GPT
partition nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn # <-
size = "1M""#,
        "name is 37 UTF-16 code units; GPT names hold at most 36",
    ),
    // -- layout checks: where partitions and blobs lie.
    (
        r#"GPT
partition big
offset = "1M"
size = "64M" # <-"#,
        "partition 1 'big' ends at 0x4100000, past the end of the 64M disk",
    ),
    (
        r#"GPT
partition p
offset = "1M"
size = "63M" # <-"#,
        "partition 1 'p' ends at 0x4000000, past the last usable byte 0x3ffbe00 (the backup GPT follows)",
    ),
    (
        r#"GPT
partition p
alignment = "512"
offset = "8K" # <-
size = "1M""#,
        "partition 1 'p' starts at 0x2000, before the first usable byte 0x4400",
    ),
    (
        r#"GPT
blob b
offset = "63M" # <-
size = "2M""#,
        "blob 'b' (2097152 bytes at 0x3f00000) runs past the end of the disk",
    ),
    (
        r#"GPT
partition a
offset = "1M"
size = "8M"

partition b
offset = "4M" # <-
size = "8M""#,
        "partition 1 'a' and partition 2 'b' overlap by 5242880 bytes at 0x400000..0x900000",
    ),
    (
        r#"GPT
blob boot0
offset = "8K" # <-

partition rootfs
offset = "2M"
size = "rest""#,
        "primary GPT entries and blob 'boot0' overlap",
    ),
    // -- layout checks: names and identities used twice.
    (
        r#"GPT
partition a
size = "1M"

partition a # <-
size = "1M""#,
        "partitions 1 and 2 are both named 'a'",
    ),
    (
        r#"GPT
partition a
size = "1M"
uuid = "78662d6f-706f-6570-6f72-742d726f6f74"

partition b
size = "1M"
uuid = "78662d6f-706f-6570-6f72-742d726f6f74" # <-"#,
        "partition 1 'a' and partition 2 'b' have the same partition GUID",
    ),
    (
        r#"GPT
partition a
size = "1M"
filesystem = "ext4"
fs_uuid = "78662d6f-706f-6570-6f72-742d726f6f74"

partition b
size = "1M"
filesystem = "ext4"
fs_uuid = "78662d6f-706f-6570-6f72-742d726f6f74" # <-"#,
        "partition 1 'a' and partition 2 'b' have the same filesystem UUID",
    ),
    (
        r#"GPT
guid = "78662d6f-706f-6570-6f72-742d726f6f74" # <-

partition a
size = "1M"
uuid = "78662d6f-706f-6570-6f72-742d726f6f74""#,
        "disk GUID 78662d6f-706f-6570-6f72-742d726f6f74 is reused as a partition GUID",
    ),
    (
        r#"GPT
gpt_entries_offset = "1M"

blob b
offset = "8K"

[[blob]] # <-
name = "b"
source = "toc1.bin"
offset = "128K""#,
        "blobs 1 and 2 are both named 'b'",
    ),
];

/// `row` with its shorthand lines expanded, appended to [`HEAD`].
fn board_text(row: &str) -> String {
    let body: Vec<String> = row
        .lines()
        .map(|line| {
            let (bare, mark) = match line.strip_suffix(MARK) {
                Some(bare) => (bare.trim_end(), format!(" {MARK}")),
                None => (line, String::new()),
            };
            let mut words = bare.split(' ');
            match (words.next(), words.next(), words.next()) {
                (Some(table @ ("GPT" | "MBR")), None, _) => format!(
                    "[disk]{mark}\ntable = \"{}\"\nsize = \"64M\"\n",
                    table.to_lowercase()
                ),
                (Some("partition"), Some(name), None) => {
                    format!("[[partition]]{mark}\nname = \"{name}\"\ntype = \"linux\"")
                }
                (Some("blob"), Some(name), None) => {
                    format!("[[blob]]{mark}\nname = \"{name}\"\nsource = \"boot0.bin\"")
                }
                _ => line.to_string(),
            }
        })
        .collect();
    format!("{HEAD}{}\n", body.join("\n"))
}

/// The 1-based line of the text that ends with [`MARK`].
fn marked_line(text: &str) -> usize {
    let mut marked = text.lines().enumerate().filter(|(_, l)| l.ends_with(MARK));
    let (index, _) = marked.next().expect("a row marks the line it must cite");
    assert!(marked.next().is_none(), "a row marks one line:\n{text}");
    index.saturating_add(1)
}

fn refuse(text: &str) -> PlanError {
    let dir = tempfile::tempdir().unwrap();
    match plan_board(&board_in(dir.path(), text), "test") {
        Ok(plan) => panic!("planned, but must be refused:\n{text}\n{plan:#?}"),
        Err(err) => err,
    }
}

#[test]
fn every_refusal_says_why_and_cites_its_line() {
    let mut failures = Vec::new();
    for (row, says) in REFUSALS {
        let text = board_text(row);
        let line = marked_line(&text);
        let err = refuse(&text);
        let Some(problem) = err.problems.iter().find(|p| p.message.contains(says)) else {
            failures.push(format!("no problem says {says:?}:\n{err}"));
            continue;
        };
        match &problem.location {
            Some(at) if at.line == line && at.path.ends_with("board.toml") => {}
            other => failures.push(format!(
                "{says:?} cites {other:?}, not line {line}:\n{text}\n{err}"
            )),
        }
        // The user reads the same location in the message.
        let shown = err.to_string();
        if !shown.contains(&format!("board.toml:{line}:")) {
            failures.push(format!("the message does not show line {line}:\n{shown}"));
        }
        // Every problem of a board file names its line, not only the one
        // the row is about.
        for other in &err.problems {
            if other.location.is_none() {
                failures.push(format!("{:?} cites no line:\n{text}", other.message));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} rows failed:\n\n{}",
        failures.len(),
        REFUSALS.len(),
        failures.join("\n\n")
    );
}

/// The problem's column points at the value it is about.
#[test]
fn the_column_points_at_the_value() {
    let (row, _) = REFUSALS
        .iter()
        .find(|(_, says)| says.contains("offset 0x180000 is not aligned"))
        .unwrap();
    let text = board_text(row);
    let err = refuse(&text);
    let at = err.problems[0].location.clone().unwrap();
    let line = text.lines().nth(at.line.saturating_sub(1)).unwrap();
    assert!(
        line[at.column.saturating_sub(1)..].starts_with("\"1536K\""),
        "{line:?} at column {}",
        at.column
    );
}

/// The overlap problem names both parties, marks them in the disk map and
/// says what to move.
#[test]
fn an_overlap_shows_both_parties_in_the_map_with_a_fix() {
    let (row, _) = REFUSALS
        .iter()
        .find(|(_, says)| says.contains("overlap by 5242880 bytes"))
        .unwrap();
    let err = refuse(&board_text(row)).to_string();
    assert!(
        err.contains("fix: move partition 2 'b' to offset = \"9M\" or later"),
        "{err}"
    );
    assert!(
        err.contains("!! partition 1 'a'"),
        "conflict map marks both: {err}"
    );
    assert!(err.contains("!! partition 2 'b'"), "{err}");
}

/// The fixes the user is told to write, for the refusals that suggest one.
#[test]
fn refusals_suggest_the_value_to_write() {
    let fixes = [
        ("partition 1 'big' ends at", "shrink it to size = \"62M\""),
        (
            "primary GPT entries and blob 'boot0' overlap",
            "disk.gpt_entries_offset = \"1M\"",
        ),
        ("offset 0x180000 is not aligned to 1M", "offset = \"2M\""),
        ("the GPT has only 1 entries", "disk.gpt_entries = 4"),
        ("nope.bin: No such file", "--blob spl=PATH"),
    ];
    for (says, fix) in fixes {
        let (row, _) = REFUSALS.iter().find(|(_, s)| s.contains(says)).unwrap();
        let err = refuse(&board_text(row));
        let problem = err
            .problems
            .iter()
            .find(|p| p.message.contains(says))
            .unwrap();
        assert!(
            problem.fix.as_deref().is_some_and(|f| f.contains(fix)),
            "{says}: fix {:?}, not {fix:?}",
            problem.fix
        );
    }
}
