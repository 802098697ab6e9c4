//! losetup argv (no root needed) and the guard against real loop devices
//! (root; `losetup -a` is the oracle).

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use super::{attach_cmd, detach_cmd, parse_attach_output, LoopDevice, LoopOptions};
use crate::host::test_support::{ext4_image, loops_of, privileged};

fn argv(cmd: &crate::host::cmd::Cmd) -> Vec<String> {
    cmd.args
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect()
}

#[test]
fn attach_argv() {
    let plain = attach_cmd(Path::new("/w/root.img"), &LoopOptions::default());
    assert_eq!(plain.program, "losetup");
    assert_eq!(argv(&plain), ["--find", "--show", "/w/root.img"]);
    let window = attach_cmd(
        Path::new("/w/disk.raw"),
        &LoopOptions {
            read_only: true,
            offset: 2 << 20,
            size_limit: 1 << 30,
        },
    );
    assert_eq!(
        argv(&window),
        [
            "--find",
            "--show",
            "--read-only",
            "--offset",
            "2097152",
            "--sizelimit",
            "1073741824",
            "/w/disk.raw"
        ]
    );
    assert!(window.purpose.contains("/w/disk.raw"));
}

#[test]
fn detach_argv_and_output_parsing() {
    assert_eq!(
        argv(&detach_cmd(Path::new("/dev/loop7"))),
        ["--detach", "/dev/loop7"]
    );
    assert_eq!(
        parse_attach_output(b"/dev/loop12\n").unwrap(),
        Path::new("/dev/loop12")
    );
    assert!(parse_attach_output(b"").is_err());
    assert!(parse_attach_output(b"loop0\n").is_err());
    assert!(parse_attach_output(b"/dev/loop0\n/dev/loop1\n").is_err());
}

#[test]
fn attach_read_only_then_close_and_drop_detach() {
    if !privileged("attach_read_only_then_close_and_drop_detach") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let image = ext4_image(dir.path(), &[("etc/hello", b"hi")]);
    let opts = LoopOptions {
        read_only: true,
        ..LoopOptions::default()
    };
    let device = LoopDevice::attach(&image, &opts).unwrap();
    assert_eq!(loops_of(&image).len(), 1, "{:?}", loops_of(&image));
    let meta = std::fs::metadata(device.path()).unwrap();
    assert_eq!(device.rdev(), meta.rdev());
    assert_eq!(rustix::fs::major(device.rdev()), 7, "loop major");
    // Read-only: the kernel refuses writes (at open or at write).
    let written = std::fs::OpenOptions::new()
        .write(true)
        .open(device.path())
        .and_then(|mut f| std::io::Write::write_all(&mut f, &[0u8; 4096]));
    assert!(written.is_err(), "wrote to a read-only loop device");
    device.close().unwrap();
    assert!(loops_of(&image).is_empty());

    let dropped = LoopDevice::attach(&image, &opts).unwrap();
    assert_eq!(loops_of(&image).len(), 1);
    drop(dropped);
    assert!(loops_of(&image).is_empty());
}

#[test]
fn panic_inside_the_guarded_scope_detaches() {
    if !privileged("panic_inside_the_guarded_scope_detaches") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let image = ext4_image(dir.path(), &[]);
    let result = std::panic::catch_unwind(|| {
        let _device = LoopDevice::attach(&image, &LoopOptions::default()).unwrap();
        assert_eq!(loops_of(&image).len(), 1);
        panic!("boom inside the guarded scope");
    });
    assert!(result.is_err());
    assert!(loops_of(&image).is_empty(), "{:?}", loops_of(&image));
}
