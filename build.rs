//! Compiles the libext2fs shim (src/filesystems/ext4/xattr_shim.c) and links
//! libext2fs and libcom_err (Debian: libext2fs-dev and comerr-dev, which
//! scripts/setup-debian.sh installs from bookworm-backports).

fn main() {
    let shim = "src/filesystems/ext4/xattr_shim.c";
    println!("cargo::rerun-if-changed={shim}");
    cc::Build::new()
        .file(shim)
        .warnings(true)
        .extra_warnings(true)
        .compile("mkimg_xattr_shim");
    println!("cargo::rustc-link-lib=ext2fs");
    println!("cargo::rustc-link-lib=com_err");
}
