//! Tests of the bootstrap stage: exact argv of both routes, the cache key,
//! cache hits and --refresh on a pre-seeded cache, and (behind
//! MKIMG_SLOW_TESTS=1) one real mmdebstrap run for riscv64 checked with tar,
//! /etc/shadow and a chroot.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::cache::{write_record, CacheRecord};
use super::debian::customize_hooks;
use super::{
    bootstrap, cache_key, customize_root, default_cache_dir, dnf_install_cmd, inspect_tarball,
    mmdebstrap_cmd, publish_copy, rpm_packages, tar_root_cmd, BootstrapOptions, Mode,
    ProgressStyle, ResolvedRecipe,
};
use crate::arch::Arch;
use crate::board::recipe::{Distro, RootfsRecipe};
use crate::host::cmd::Cmd;

const EPOCH: u64 = 1_735_689_600;

fn debian_recipe() -> RootfsRecipe {
    RootfsRecipe {
        distro: Distro::Debian,
        suite: "trixie".into(),
        mirror: None,
        packages: Vec::new(),
        console: Some("ttyS0".into()),
        root_password: None,
        repos: Vec::new(),
    }
}

fn rpm_recipe() -> RootfsRecipe {
    RootfsRecipe {
        distro: Distro::Openeuler,
        suite: "24.03".into(),
        mirror: None,
        packages: vec!["vim-minimal".into(), "openssh-server".into()],
        console: Some("ttyS0".into()),
        root_password: Some("secret".into()),
        repos: vec![
            "https://repo.example/openEuler-24.03/OS/riscv64/".into(),
            "https://repo.example/openEuler-24.03/everything/riscv64/".into(),
        ],
    }
}

fn argv(cmd: &Cmd) -> Vec<String> {
    std::iter::once(&cmd.program)
        .chain(&cmd.args)
        .map(|a| a.to_string_lossy().into_owned())
        .collect()
}

fn options(cache_dir: &Path) -> BootstrapOptions {
    BootstrapOptions {
        cache_dir: cache_dir.to_path_buf(),
        refresh: false,
        source_date_epoch: EPOCH,
        progress: ProgressStyle::Quiet,
    }
}

fn slow_tests_enabled() -> bool {
    let on = std::env::var_os("MKIMG_SLOW_TESTS").is_some_and(|v| v == "1");
    if !on {
        eprintln!("skipping: set MKIMG_SLOW_TESTS=1 to run the real bootstrap tests");
    }
    on
}

#[test]
fn slow_real_bootstrap_riscv64_is_bootable() {
    if !slow_tests_enabled() {
        return;
    }
    // The board's own default recipe, in the user's cache: the one rootfs
    // per architecture that scripts/prefetch-rootfs.sh bootstraps and every
    // slow suite boots, so no test bootstraps a rootfs only it uses.
    let board =
        crate::board::load_board("qemu-riscv64", &crate::board::BoardSearch::from_env()).unwrap();
    let recipe = board
        .file
        .rootfs
        .clone()
        .expect("qemu-riscv64 has a [rootfs] recipe");
    let mut opts = options(&default_cache_dir().unwrap());
    opts.progress = ProgressStyle::Plain;
    let started = Instant::now();
    let tarball = bootstrap(&recipe, Arch::Riscv64, &opts).unwrap();
    let elapsed = started.elapsed();
    let size = std::fs::metadata(&tarball).unwrap().len();
    eprintln!(
        "real bootstrap: {:.0}s, tarball {size} bytes ({} MiB)",
        elapsed.as_secs_f64(),
        size >> 20
    );

    let summary = inspect_tarball(&tarball).unwrap();
    assert!(
        summary
            .kernels
            .iter()
            .any(|k| k.starts_with("boot/vmlinux-")),
        "{summary:?}"
    );
    assert!(
        summary
            .initrds
            .iter()
            .any(|k| k.starts_with("boot/initrd.img-")),
        "{summary:?}"
    );
    let grub = "usr/lib/grub/riscv64-efi/monolithic/grubriscv64.efi";
    assert!(summary.grub_efi.iter().any(|g| g == grub), "{summary:?}");
    let resolved = ResolvedRecipe::new(&recipe, Arch::Riscv64).unwrap();
    assert_eq!(
        summary.root_password_field.as_deref(),
        Some(resolved.root_hash().as_str())
    );
    eprintln!(
        "root's last password change (days): {:?}",
        summary.root_last_change
    );
    let getty = (
        "etc/systemd/system/getty.target.wants/serial-getty@ttyS0.service".to_string(),
        "/usr/lib/systemd/system/serial-getty@.service".to_string(),
    );
    assert_eq!(summary.serial_gettys, [getty]);

    let record = std::fs::read_to_string(tarball.with_extension("json")).unwrap();
    assert!(record.contains("\"tool\": \"mmdebstrap"), "{record}");

    // A second run is a cache hit.
    let again = Instant::now();
    assert_eq!(bootstrap(&recipe, Arch::Riscv64, &opts).unwrap(), tarball);
    assert!(again.elapsed() < Duration::from_secs(1));

    run_true_in_chroot(&tarball);
}

/// Unpack as root, `chroot DIR /bin/true` (through binfmt), remove.
fn run_true_in_chroot(tarball: &Path) {
    if !super::preflight::running_as_root() {
        eprintln!("skipping the chroot check: needs root");
        return;
    }
    let root = tempfile::tempdir().unwrap();
    Cmd::new("unpacking the rootfs", "tar")
        .arg("--extract")
        .arg(format!("--file={}", tarball.display()))
        .arg(format!("--directory={}", root.path().display()))
        .run()
        .unwrap();
    Cmd::new("running /bin/true in the rootfs", "chroot")
        .arg(root.path())
        .arg("/bin/true")
        .run()
        .unwrap();
}

#[test]
fn debian_argv_is_exact() {
    let mut recipe = debian_recipe();
    recipe.packages = vec!["vim".into(), "curl".into(), "vim".into(), "udev".into()];
    let resolved = ResolvedRecipe::new(&recipe, Arch::Riscv64).unwrap();
    let cmd = mmdebstrap_cmd(&resolved, Mode::Root, Path::new("/c/.k.partial"), EPOCH).unwrap();
    let hash = resolved.root_hash();
    assert_eq!(
        argv(&cmd),
        [
            "mmdebstrap".to_string(),
            "--mode=root".into(),
            "--variant=minbase".into(),
            "--format=tar".into(),
            "--arch=riscv64".into(),
            "--include=linux-image-riscv64,grub-efi-riscv64-bin,systemd-sysv,udev,\
             initramfs-tools,login,passwd,util-linux,procps,iproute2,ca-certificates,curl,vim"
                .into(),
            format!("--customize-hook=echo 'root:{hash}' | chroot \"$1\" chpasswd -e"),
            "--customize-hook=test -e \"$1/usr/lib/systemd/system/serial-getty@.service\" && \
             mkdir -p \"$1/etc/systemd/system/getty.target.wants\" && \
             ln -sf /usr/lib/systemd/system/serial-getty@.service \
             \"$1/etc/systemd/system/getty.target.wants\"/serial-getty@ttyS0.service"
                .into(),
            "--customize-hook=rm -f \"$1/etc/hostname\" \"$1/etc/resolv.conf\"".into(),
            "trixie".into(),
            "/c/.k.partial".into(),
            "http://deb.debian.org/debian".into(),
        ]
    );
    assert_eq!(cmd.env, [("SOURCE_DATE_EPOCH".into(), "1735689600".into())]);
}

#[test]
fn debian_unshare_arm64_without_console() {
    let mut recipe = debian_recipe();
    recipe.console = None;
    recipe.mirror = Some("http://mirror.example/debian".into());
    let resolved = ResolvedRecipe::new(&recipe, Arch::Aarch64).unwrap();
    let cmd = mmdebstrap_cmd(&resolved, Mode::Unshare, Path::new("out.tar"), EPOCH).unwrap();
    let argv = argv(&cmd);
    assert_eq!(argv[1], "--mode=unshare");
    assert_eq!(argv[4], "--arch=arm64");
    assert!(
        argv[5].starts_with("--include=linux-image-arm64,grub-efi-arm64-bin,"),
        "{argv:?}"
    );
    assert_eq!(
        customize_hooks(&resolved).len(),
        2,
        "no getty hook without a console"
    );
    assert_eq!(argv.last().unwrap(), "http://mirror.example/debian");
    let s390x = ResolvedRecipe::new(&debian_recipe(), Arch::S390x).unwrap();
    let err = mmdebstrap_cmd(&s390x, Mode::Root, Path::new("o"), EPOCH).unwrap_err();
    assert!(err.to_string().contains("s390x"), "{err}");
}

/// The default password's hash is pinned: a change of salt derivation would
/// silently change every tarball.
#[test]
fn default_root_hash_is_pinned() {
    let resolved = ResolvedRecipe::new(&debian_recipe(), Arch::Riscv64).unwrap();
    let hash = resolved.root_hash();
    assert!(hash.starts_with("$6$"), "{hash}");
    assert_eq!(hash, PINNED_ROOT_HASH);
    let mut given = debian_recipe();
    given.root_password = Some(PINNED_ROOT_HASH.into());
    assert_eq!(
        ResolvedRecipe::new(&given, Arch::Riscv64)
            .unwrap()
            .root_hash(),
        PINNED_ROOT_HASH
    );
}

const PINNED_ROOT_HASH: &str =
    "$6$uQ25QvuuC25mvwXe$YvpYjZsIk6.PPphUXQ5G6otFmU7ykgqn02Qp1mC0m1TDsV8qiXABSE.7M7fqFR6EDocLoNJFFIL1thSvbw98p1";

#[test]
fn rpm_argv_is_exact() {
    let resolved = ResolvedRecipe::new(&rpm_recipe(), Arch::Riscv64).unwrap();
    let packages = rpm_packages(&resolved).unwrap();
    let cmd = dnf_install_cmd(&resolved, Path::new("/c/root"), &packages);
    assert_eq!(
        argv(&cmd),
        [
            "dnf",
            "--forcearch",
            "riscv64",
            "--installroot",
            "/c/root",
            "--releasever",
            "24.03",
            "--repofrompath=mkimg-0,https://repo.example/openEuler-24.03/OS/riscv64/",
            "--repofrompath=mkimg-1,https://repo.example/openEuler-24.03/everything/riscv64/",
            "--repo",
            "mkimg-0",
            "--repo",
            "mkimg-1",
            "--setopt=install_weak_deps=False",
            "-y",
            "install",
            "openEuler-release",
            "kernel",
            "grub2-efi-riscv64",
            "systemd",
            "util-linux",
            "passwd",
            "dracut",
            "openssh-server",
            "vim-minimal",
        ]
    );
    let mut fedora = rpm_recipe();
    fedora.distro = Distro::Fedora;
    let resolved = ResolvedRecipe::new(&fedora, Arch::Aarch64).unwrap();
    assert_eq!(
        rpm_packages(&resolved).unwrap()[..3],
        ["fedora-release", "kernel", "grub2-efi-aa64"]
    );
}

#[test]
fn tar_argv_is_exact() {
    let cmd = tar_root_cmd(Path::new("/c/root"), Path::new("/c/out.tar"), EPOCH);
    assert_eq!(
        argv(&cmd),
        [
            "tar",
            "--create",
            "--file=/c/out.tar",
            "--directory=/c/root",
            "--sort=name",
            "--numeric-owner",
            "--format=posix",
            "--pax-option=delete=atime,delete=ctime",
            "--xattrs",
            "--xattrs-include=*",
            "--mtime=@1735689600",
            "--clamp-mtime",
            ".",
        ]
    );
}

#[test]
fn rpm_root_is_customized_from_the_host() {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("etc")).unwrap();
    std::fs::write(
        root.path().join("etc/shadow"),
        "root:!::0:99999:7:::\nbin:*:19000::::::\n",
    )
    .unwrap();
    let resolved = ResolvedRecipe::new(&rpm_recipe(), Arch::Riscv64).unwrap();
    customize_root(root.path(), &resolved).unwrap();
    let shadow = std::fs::read_to_string(root.path().join("etc/shadow")).unwrap();
    assert_eq!(
        shadow,
        format!(
            "root:{}::0:99999:7:::\nbin:*:19000::::::\n",
            resolved.root_hash()
        )
    );
    let link = root
        .path()
        .join("etc/systemd/system/getty.target.wants/serial-getty@ttyS0.service");
    assert_eq!(
        std::fs::read_link(link).unwrap(),
        Path::new("/usr/lib/systemd/system/serial-getty@.service")
    );
    // Running twice is harmless.
    customize_root(root.path(), &resolved).unwrap();
}

#[test]
fn recipe_text_is_checked() {
    let bad = |edit: &dyn Fn(&mut RootfsRecipe)| {
        let mut recipe = debian_recipe();
        edit(&mut recipe);
        ResolvedRecipe::new(&recipe, Arch::Riscv64)
            .unwrap_err()
            .to_string()
    };
    assert!(bad(&|r| r.console = Some("ttyS0; reboot".into())).contains("console"));
    assert!(bad(&|r| r.packages = vec!["--allow-unauthenticated".into()]).contains("package"));
    assert!(bad(&|r| r.suite = "trixie main".into()).contains("suite"));
    assert!(bad(&|r| r.mirror = Some("http://x/' ; rm".into())).contains("URL"));
    assert!(bad(&|r| r.root_password = Some("a:b".into())).contains("password"));
    assert!(bad(&|r| r.root_password = Some("$6$x$'y".into())).contains("hash"));
    assert!(bad(&|r| r.repos = vec!["http://r/".into()]).contains("RPM"));
    let mut rpm = rpm_recipe();
    rpm.repos.clear();
    let err = ResolvedRecipe::new(&rpm, Arch::Riscv64)
        .unwrap_err()
        .to_string();
    assert!(err.contains("--repo"), "{err}");
}

#[test]
fn cache_key_is_stable_and_sensitive() {
    let key = |edit: &dyn Fn(&mut RootfsRecipe), arch: Arch, epoch: u64| {
        let mut recipe = debian_recipe();
        recipe.packages = vec!["vim".into(), "curl".into()];
        edit(&mut recipe);
        cache_key(&ResolvedRecipe::new(&recipe, arch).unwrap(), epoch)
    };
    let base = key(&|_| {}, Arch::Riscv64, EPOCH);
    assert_eq!(base.len(), 64);
    assert_eq!(base, key(&|_| {}, Arch::Riscv64, EPOCH));
    assert_eq!(
        base, PINNED_KEY,
        "the canonical recipe changed: bump RECIPE_FORMAT"
    );
    // Order and duplicates of packages do not matter…
    assert_eq!(
        base,
        key(
            &|r| r.packages = vec!["curl".into(), "vim".into(), "vim".into()],
            Arch::Riscv64,
            EPOCH
        )
    );
    // …the default mirror and password are the same as spelling them out…
    assert_eq!(
        base,
        key(
            &|r| {
                r.mirror = Some("http://deb.debian.org/debian".into());
                r.root_password = Some("root".into());
            },
            Arch::Riscv64,
            EPOCH
        )
    );
    // …and every field changes it.
    let changed = [
        key(&|r| r.suite = "sid".into(), Arch::Riscv64, EPOCH),
        key(&|_| {}, Arch::Aarch64, EPOCH),
        key(&|_| {}, Arch::Riscv64, EPOCH + 1),
        key(
            &|r| r.mirror = Some("http://m.example/debian".into()),
            Arch::Riscv64,
            EPOCH,
        ),
        key(&|r| r.packages.push("htop".into()), Arch::Riscv64, EPOCH),
        key(&|r| r.console = None, Arch::Riscv64, EPOCH),
        key(
            &|r| r.console = Some("ttyAMA0".into()),
            Arch::Riscv64,
            EPOCH,
        ),
        key(
            &|r| r.root_password = Some("toor".into()),
            Arch::Riscv64,
            EPOCH,
        ),
        key(
            &|r| {
                r.distro = Distro::Fedora;
                r.repos = vec!["http://r.example/".into()];
            },
            Arch::Riscv64,
            EPOCH,
        ),
    ];
    for (i, other) in changed.iter().enumerate() {
        assert_ne!(&base, other, "change {i} kept the key");
        assert!(!changed[..i].contains(other), "changes collide at {i}");
    }
}

const PINNED_KEY: &str = "968243adf614896b7423e25087ca25ceb2181dfac4046d4206fdd043f8e5beac";

/// Seed `dir` with a fake cache entry for `recipe`; returns its path.
fn seed_cache(dir: &Path, recipe: &RootfsRecipe, arch: Arch, content: &[u8]) -> PathBuf {
    let key = cache_key(&ResolvedRecipe::new(recipe, arch).unwrap(), EPOCH);
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join(format!("{key}.tar"));
    std::fs::write(&path, content).unwrap();
    path
}

/// The RPM route cannot run here (no dnf, no repository), so a hit proves
/// nothing ran, and --refresh proves the cache was bypassed.
#[test]
fn cache_hit_runs_nothing_and_refresh_rebuilds() {
    let dir = tempfile::tempdir().unwrap();
    let recipe = rpm_recipe();
    let seeded = seed_cache(dir.path(), &recipe, Arch::Riscv64, b"seeded");
    let started = Instant::now();
    assert_eq!(
        bootstrap(&recipe, Arch::Riscv64, &options(dir.path())).unwrap(),
        seeded
    );
    assert!(started.elapsed() < Duration::from_millis(500));

    let mut opts = options(dir.path());
    opts.refresh = true;
    let err = format!(
        "{:#}",
        bootstrap(&recipe, Arch::Riscv64, &opts).unwrap_err()
    );
    assert!(
        err.contains("dnf is not installed") || err.contains("are the repositories"),
        "{err}"
    );
    // A failed rebuild leaves the cached tarball and no temporaries.
    assert_eq!(std::fs::read(&seeded).unwrap(), b"seeded");
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, [seeded.file_name().unwrap()]);
}

/// Preflight fails fast, naming the binfmt command, for an arch with no
/// handler (loongarch64 on this machine).
#[test]
fn missing_binfmt_fails_within_a_second() {
    if Path::new("/proc/sys/fs/binfmt_misc/qemu-loongarch64").exists() {
        eprintln!("skipping: loongarch64 binfmt is registered here");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let err = bootstrap(&debian_recipe(), Arch::Loongarch64, &options(dir.path())).unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(1));
    assert!(
        err.to_string()
            .contains("run `sudo mkimg binfmt register loongarch64`"),
        "{err}"
    );
}

/// A run killed by Ctrl-C leaves `.<key>.<pid>.partial`; the next run for
/// that key removes it (the pid is gone), but not a live run's.
#[test]
fn partials_of_dead_runs_are_removed() {
    let dir = tempfile::tempdir().unwrap();
    let dead = dir.path().join(".k.4294967290.partial");
    let live = dir.path().join(".k.1.partial");
    let other = dir.path().join(".j.4294967290.partial");
    for path in [&dead, &live, &other] {
        std::fs::write(path, b"").unwrap();
    }
    let temp = super::cache::TempPath::new(dir.path(), "k").unwrap();
    assert!(!dead.exists() && live.exists() && other.exists());
    let expected = dir
        .path()
        .join(format!(".k.{}.partial", std::process::id()));
    assert_eq!(temp.path(), expected);
}

#[test]
fn output_copy_is_atomic_and_independent() {
    let dir = tempfile::tempdir().unwrap();
    let cached = dir.path().join("cached.tar");
    std::fs::write(&cached, b"tarball bytes").unwrap();
    let out = dir.path().join("out/rootfs.tar");
    std::fs::create_dir_all(out.parent().unwrap()).unwrap();
    std::fs::write(&out, b"old").unwrap();
    publish_copy(&cached, &out).unwrap();
    assert_eq!(std::fs::read(&out).unwrap(), b"tarball bytes");
    std::fs::write(&out, b"edited").unwrap();
    assert_eq!(std::fs::read(&cached).unwrap(), b"tarball bytes");
    assert_eq!(
        std::fs::read_dir(out.parent().unwrap()).unwrap().count(),
        1,
        "temporaries left"
    );
}

#[test]
fn record_is_written_next_to_the_tarball() {
    let dir = tempfile::tempdir().unwrap();
    let resolved = ResolvedRecipe::new(&debian_recipe(), Arch::Riscv64).unwrap();
    let record = CacheRecord::new(
        &resolved,
        "k",
        EPOCH,
        "mmdebstrap 1.3.5".into(),
        Duration::from_millis(361_240),
        42,
    );
    write_record(dir.path(), "k", &record).unwrap();
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("k.json")).unwrap()).unwrap();
    assert_eq!(json["tool"], "mmdebstrap 1.3.5");
    assert_eq!(json["elapsed_seconds"], 361.2);
    assert_eq!(json["size_bytes"], 42);
    assert_eq!(json["recipe"]["suite"], "trixie");
    assert_eq!(json["recipe"]["console"], "ttyS0");
    assert!(
        !json.to_string().contains("\"root\""),
        "password leaked: {json}"
    );
}

/// A tarball missing pieces is refused with the piece named.
#[test]
fn bootability_check_names_the_missing_piece() {
    let dir = tempfile::tempdir().unwrap();
    let resolved = ResolvedRecipe::new(&debian_recipe(), Arch::Riscv64).unwrap();
    let shadow = format!("root:{}:20000:0:99999:7:::\n", resolved.root_hash());
    let files: Vec<(&str, &[u8])> = vec![
        ("./boot/vmlinux-6.12.38+deb13-riscv64", b"k"),
        ("./boot/initrd.img-6.12.38+deb13-riscv64", b"i"),
        (
            "./usr/lib/grub/riscv64-efi/monolithic/grubriscv64.efi",
            b"g",
        ),
        ("./etc/shadow", shadow.as_bytes()),
    ];
    let write = |skip: Option<usize>, getty: bool| {
        let path = dir.path().join("t.tar");
        let mut builder = tar::Builder::new(std::fs::File::create(&path).unwrap());
        for (i, (name, data)) in files.iter().enumerate() {
            if Some(i) == skip {
                continue;
            }
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            builder.append_data(&mut header, name, *data).unwrap();
        }
        if getty {
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(tar::EntryType::Symlink);
            header.set_size(0);
            header.set_mode(0o777);
            let link = "./etc/systemd/system/getty.target.wants/serial-getty@ttyS0.service";
            builder
                .append_link(
                    &mut header,
                    link,
                    "/usr/lib/systemd/system/serial-getty@.service",
                )
                .unwrap();
        }
        builder.into_inner().unwrap();
        inspect_tarball(&path).unwrap()
    };
    write(None, true).check_bootable(&resolved).unwrap();
    let missing = |skip, getty| {
        write(skip, getty)
            .check_bootable(&resolved)
            .unwrap_err()
            .to_string()
    };
    assert!(missing(Some(0), true).contains("kernel"));
    assert!(missing(Some(1), true).contains("initrd"));
    assert!(missing(Some(2), true).contains("grubriscv64.efi"));
    assert!(missing(Some(3), true).contains("password"));
    assert!(missing(None, false).contains("serial-getty@ttyS0"));
}

/// The lead's hand-made mmdebstrap tarball, if present and finished, seeds a
/// cache: the hit returns it without running anything, and it holds a
/// kernel, an initrd and grub's monolithic EFI image.
#[test]
fn seeded_real_tarball_is_a_cache_hit() {
    let real = Path::new("/var/cache/mkimg-dev/rootfs-riscv64.tar");
    let log = std::fs::read_to_string("/var/cache/mkimg-dev/mmdeb-riscv64.log").unwrap_or_default();
    if !log.trim_end().ends_with("rc=0") || !real.is_file() {
        eprintln!("skipping: no finished {}", real.display());
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let recipe = debian_recipe();
    let key = cache_key(&ResolvedRecipe::new(&recipe, Arch::Riscv64).unwrap(), EPOCH);
    let seeded = dir.path().join(format!("{key}.tar"));
    if std::fs::hard_link(real, &seeded).is_err() {
        std::fs::copy(real, &seeded).unwrap();
    }
    let started = Instant::now();
    assert_eq!(
        bootstrap(&recipe, Arch::Riscv64, &options(dir.path())).unwrap(),
        seeded
    );
    assert!(started.elapsed() < Duration::from_millis(500));
    let summary = inspect_tarball(&seeded).unwrap();
    assert!(
        summary
            .kernels
            .iter()
            .any(|k| k.starts_with("boot/vmlinux-")),
        "{summary:?}"
    );
    assert!(!summary.initrds.is_empty(), "{summary:?}");
    let grub = "usr/lib/grub/riscv64-efi/monolithic/grubriscv64.efi";
    assert!(summary.grub_efi.iter().any(|g| g == grub), "{summary:?}");
    assert!(summary.root_can_log_in(), "{summary:?}");
}
