//! Builds a genimage.cfg's filesystem images (vfat, ext2/3/4, squashfs).
//! A stub in this branch: the builders land separately with exactly this
//! API, which `commands::genimage` calls.

/// What a filesystem image may read while it is built.
pub struct FsEnv<'a> {
    pub config: &'a crate::genimage::Config,
    pub inputpath: &'a std::path::Path,
    /// --rootpath: a directory or (mkimg's extension) a rootfs tarball.
    pub rootpath: Option<&'a std::path::Path>,
    pub tmppath: &'a std::path::Path,
    /// Images of this config already built: section name → file.
    pub built: &'a std::collections::BTreeMap<String, std::path::PathBuf>,
    pub source_date_epoch: i64,
    pub seed: &'a str,
}

/// Builds one vfat / ext2/3/4 / squashfs image section into `out`.
pub fn build_fs_image(
    image: &crate::genimage::Image,
    env: &FsEnv<'_>,
    out: &std::path::Path,
) -> anyhow::Result<()> {
    let _ = (image, env, out);
    anyhow::bail!("image type not built yet")
}
