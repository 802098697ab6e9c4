//! losetup argv (no root needed) and the guard against real loop devices
//! (root; `losetup -a` is the oracle).

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use std::io::{BufRead, BufReader};
use std::os::fd::{AsFd, AsRawFd};
use std::process::{Command, Stdio};

use super::ioctl::{loop_config, LoopConfig, LoopInfo64, LO_FLAGS_AUTOCLEAR, LO_FLAGS_READ_ONLY};
use super::{LoopDevice, LoopOptions};
use crate::host::test_support::{ext4_image, loops_of};
use crate::test_tools::require_root;

#[test]
fn kernel_structures_and_config() {
    assert_eq!(std::mem::size_of::<LoopInfo64>(), 232);
    assert_eq!(std::mem::size_of::<LoopConfig>(), 304);
    let file = tempfile::tempfile().unwrap();
    let long = Path::new("/w").join("x".repeat(100));
    let config = loop_config(
        file.as_fd(),
        &long,
        &LoopOptions {
            read_only: true,
            offset: 2 << 20,
            size_limit: 1 << 30,
            block_size: 4096,
        },
    );
    assert_eq!(config.block_size, 4096);
    assert_eq!(config.fd as i32, file.as_raw_fd());
    assert_eq!(config.info.lo_offset, 2 << 20);
    assert_eq!(config.info.lo_sizelimit, 1 << 30);
    assert_eq!(
        config.info.lo_flags,
        LO_FLAGS_AUTOCLEAR | LO_FLAGS_READ_ONLY
    );
    assert_eq!(&config.info.lo_file_name[..5], b"/w/xx");
    assert_eq!(config.info.lo_file_name[63], 0, "NUL-terminated");
    let plain = loop_config(file.as_fd(), &long, &LoopOptions::default());
    assert_eq!(plain.info.lo_flags, LO_FLAGS_AUTOCLEAR);
    assert_eq!(plain.block_size, 0, "the kernel's default");
}

/// `block_size` is the sector size the kernel gives the device (what the
/// 4Kn partition table tests read through), as sysfs reports it.
#[test]
fn block_size_sets_the_logical_sector_size() {
    if !require_root("block_size_sets_the_logical_sector_size") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("4k.img");
    std::fs::File::create(&image)
        .unwrap()
        .set_len(8 << 20)
        .unwrap();
    for (block_size, expected) in [(0, "512"), (4096, "4096")] {
        let opts = LoopOptions {
            block_size,
            ..LoopOptions::default()
        };
        let device = LoopDevice::attach(&image, &opts).unwrap();
        let name = device.path().file_name().unwrap().to_string_lossy();
        let sector =
            std::fs::read_to_string(format!("/sys/block/{name}/queue/logical_block_size")).unwrap();
        assert_eq!(sector.trim(), expected, "block_size {block_size}");
        device.close().unwrap();
    }
    assert!(loops_of(&image).is_empty());
}

#[test]
fn attach_read_only_then_close_and_drop_detach() {
    if !require_root("attach_read_only_then_close_and_drop_detach") {
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
    assert_eq!(sysfs(&device, "autoclear"), "1");
    assert_eq!(sysfs(&device, "backing_file"), image.display().to_string());
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
    if !require_root("panic_inside_the_guarded_scope_detaches") {
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

/// `/sys/block/loopN/loop/NAME`, trimmed.
fn sysfs(device: &LoopDevice, name: &str) -> String {
    let loop_name = device.path().file_name().unwrap().to_string_lossy();
    std::fs::read_to_string(format!("/sys/block/{loop_name}/loop/{name}"))
        .unwrap()
        .trim()
        .to_string()
}

/// Set by [`killed_holder_leaves_no_loop_device`] in the environment of
/// the process it runs [`hold_loop_device_until_killed`] in.
const HOLD: &str = "MKIMG_TEST_HOLD_LOOP";

/// Not a test of its own: the body of the process that
/// [`killed_holder_leaves_no_loop_device`] kills. Without `HOLD` it does
/// nothing.
#[test]
fn hold_loop_device_until_killed() {
    let Some(image) = std::env::var_os(HOLD) else {
        return;
    };
    let device = LoopDevice::attach(Path::new(&image), &LoopOptions::default()).unwrap();
    println!("ATTACHED {}", device.path().display());
    // Block until killed: the parent never writes to our stdin.
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
    panic!("stdin closed before the parent killed this process");
}

/// A holder killed with SIGKILL (no destructor runs) leaves no loop device:
/// the kernel clears an autoclear device when the killed process's
/// descriptor is closed, which happens before its parent can reap it.
/// Before autoclear (losetup) the device stayed attached.
#[test]
fn killed_holder_leaves_no_loop_device() {
    if !require_root("killed_holder_leaves_no_loop_device") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let image = ext4_image(dir.path(), &[]);
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "host::loopdev::tests::hold_loop_device_until_killed",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(HOLD, &image)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let device = lines
        .by_ref()
        .map_while(Result::ok)
        // libtest prints "test NAME ... " before it on the same line.
        .find_map(|l| l.split("ATTACHED ").nth(1).map(str::to_string))
        .expect("the holder never attached");
    assert_eq!(
        loops_of(&image).len(),
        1,
        "{device}: {:?}",
        loops_of(&image)
    );
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success());
    assert!(loops_of(&image).is_empty(), "{:?}", loops_of(&image));
}
