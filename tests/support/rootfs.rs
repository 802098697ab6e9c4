//! The Debian rootfs of a stock board's recipe, for the slow suites:
//! `$MKIMG_TEST_ROOTFS_<ARCH>` (what `scripts/prefetch-rootfs.sh` prints),
//! else `mkimg rootfs --board qemu-<arch>` (bootstrapped once, cached in the
//! user's rootfs cache, so unlike [`super::run`] this keeps HOME).

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Mutex;

use super::run::text;

/// Bootstraps run one at a time (they share the cache and the CPU).
static BOOTSTRAP: Mutex<()> = Mutex::new(());

/// The rootfs of `qemu-<arch>`'s default recipe (Debian trixie with
/// grub-efi, so grub-mkconfig and the monolithic grub EFI image).
pub fn board_rootfs(arch: &str) -> PathBuf {
    let var = format!("MKIMG_TEST_ROOTFS_{}", arch.to_uppercase());
    if let Some(path) = std::env::var_os(&var) {
        return PathBuf::from(path);
    }
    let board = format!("qemu-{arch}");
    eprintln!("no {var}: bootstrapping the default rootfs of {board}");
    let _one_at_a_time = BOOTSTRAP.lock().unwrap_or_else(|e| e.into_inner());
    let out = Command::new(env!("CARGO_BIN_EXE_mkimg"))
        .args(["rootfs", "--board", &board])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::null())
        .output()
        .expect("run mkimg rootfs");
    assert!(
        out.status.success(),
        "mkimg rootfs --board {board}: {}",
        text(&out.stderr)
    );
    let path = PathBuf::from(text(&out.stdout).trim());
    assert!(path.is_file(), "mkimg rootfs printed {path:?}");
    path
}
