//! `--grub mkconfig`: grub.cfg made by the distro's own grub-mkconfig
//! (Debian) or grub2-mkconfig (Fedora, openEuler), run through
//! binfmt-registered qemu-user in a sandbox whose only view is the rootfs.
//! Two paths, the same grub.cfg byte for byte (a slow test compares them on
//! Debian and on the openEuler layout); the build log and manifest.json say
//! which one ran ([`MkconfigVia`]):
//!
//! - **tree** (the default, for root and non-root users alike; [`tree`]):
//!   over the subtree of the root filesystem grub-mkconfig reads, written
//!   during the one rootfs pass; the rootless sandbox; grub-probe's
//!   questions answered from the plan (`bootloader::probe`). Needs no
//!   root, no loop device and no finished ext4 image;
//! - **mount** (`--mkconfig-via mount`, root only; this file): over the
//!   finished ext4 image on a loop device, mounted read-only, with the
//!   distro's real grub-probe — the fallback when the tree path cannot
//!   answer a question.
//!
//! Flows in (mount path): the plan and the finished ext4 image of the root
//! partition (built before the ESP, which receives the result). Flows out:
//! the grub.cfg text, linted ([`crate::bootloader::lint`]). The caller puts
//! it at `plan.boot.grub_cfg` in the ESP.
//!
//! The mount path's steps, each held by a guard and undone in reverse on
//! success, error, panic and SIGINT/SIGTERM ([`InterruptGuard`]):
//!
//! 1. attach the ext4 image to a loop device, read-only ([`LoopDevice`]);
//! 2. on a thread in a private mount namespace ([`in_private_namespace`]):
//!    mount it read-only with a private /dev, tmpfs /tmp and a tmpfs at the
//!    ESP's mount point ([`ChrootSession`]). Nothing else is laid over the
//!    root: its /etc/default/grub already carries the board's kernel
//!    arguments (the rootfs pass wrote them into the image's own file,
//!    `bootloader::board_args`), so grub-mkconfig sees exactly what the
//!    target's own update-grub will; only GRUB_DISABLE_OS_PROBER comes
//!    from the environment, for this run;
//! 3. `grub-mkconfig -o /tmp/grub.cfg` in the sandbox (`host::sandbox`:
//!    the rootfs's programs are not host root — own user, PID, mount, IPC,
//!    UTS and network namespaces, `pivot_root`, their own /proc, no /sys),
//!    read the result (the root is read-only: its output goes to tmpfs),
//!    unmount;
//! 4. detach; check the image is byte-identical to before; lint.
//!
//! For a foreign root, step 2 also lays in native tools
//! (`host::native_tools`): the shell, sed, grep, cat and a few more
//! generic tools run as the host's own programs instead of under qemu-user
//! (grub.cfg byte-identical, the stage 2-3x faster);
//! `MKIMG_NATIVE_TOOLS=0` turns that off. The log says which ran natively
//! or why none did.
//!
//! What grub-probe needs, found by running Debian trixie's grub 2.12:
//! `--target=device /` reads the root's device from
//! /proc/self/mountinfo and that node must exist in the chroot — hence the
//! root is mounted from `/dev/mkimg-root` (see `host::chroot::ROOT_NODE`,
//! also why not `/dev/loopN`); `--target=fs_uuid` reads the filesystem
//! through that node; 10_linux writes `root=UUID=` only when
//! `/dev/disk/by-uuid/<uuid>` exists, so the session makes that link. The
//! loop device has no partition table, so grub-probe reports no partmap and
//! no PARTUUID; the layout's identities come from the plan, never from
//! probing. No GRUB_DEVICE* overrides are needed. grub-probe needs no
//! /sys here: for a block device that is not a partition of a known disk
//! type it works from the node and the filesystem it reads through it (the
//! 2.06 of Debian 12, run in the sandbox on a host-architecture root, gives
//! the same device, fs and fs_uuid without /sys). The node is the
//! sandbox root's (host uid `SANDBOX_ID`) and the loop device read-only.
//! The tree path's answers are these, from the plan.
//!
//! Must not: write to the root filesystem, leave a mount or loop device
//! behind, or let the build host leak into the result (the lint checks).

use std::fs::{self, File};
use std::io;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};

use crate::bootloader::detect::{KernelSource, RootfsBoot, MKCONFIG_CANDIDATES};
use crate::bootloader::grub::{grub_config_for_rootfs, render_menu_entries};
use crate::bootloader::lint::{check_grub_cfg, LintRules, RootBy};
use crate::host::binfmt::preflight_host;
use crate::host::chroot::{ChrootSession, DiskLinks, Programs, ROOT_NODE};
use crate::host::interrupt::InterruptGuard;
use crate::host::loopdev::{LoopDevice, LoopOptions};
use crate::host::mount::in_private_namespace;
use crate::host::native_tools;
use crate::host::sandbox::Sandbox;
use crate::plan::{Plan, PlannedFs};

pub mod tree;

pub use tree::{grub_cfg_from_tree, tree_spec};

/// Where grub-mkconfig writes inside the chroot (a tmpfs).
pub const OUTPUT: &str = "/tmp/grub.cfg";
/// The programs looked for when the board does not name one and the
/// rootfs pass found none, in order.
const CANDIDATES: [&str; 4] = MKCONFIG_CANDIDATES;

/// The error for `--mkconfig-via mount` without root, said before any
/// work is done.
pub const NEEDS_ROOT: &str = "--mkconfig-via mount runs the distro's grub-mkconfig over the root \
     filesystem mounted from a loop device, which needs root; run mkimg as root, or leave \
     --mkconfig-via at tree (the default: no root), or use --grub template, which needs neither \
     root nor emulation";

/// Which path made grub.cfg (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MkconfigVia {
    /// Over the tree captured during the rootfs pass, rootless (default).
    #[default]
    Tree,
    /// Over the finished root filesystem on a loop device (root only).
    Mount,
}

impl MkconfigVia {
    pub fn name(self) -> &'static str {
        match self {
            MkconfigVia::Tree => "tree",
            MkconfigVia::Mount => "mount",
        }
    }
}

/// What the stage did, for the build's progress lines.
#[derive(Debug, Clone)]
pub struct MkconfigReport {
    pub grub_cfg: String,
    pub program: String,
    /// grub-mkconfig's own messages ("Found linux image: …").
    pub messages: Vec<String>,
    pub elapsed: Duration,
    pub via: MkconfigVia,
}

/// Checks made before the build starts: root for the mount path, user
/// namespaces for the sandbox, then binfmt for a foreign architecture.
/// Cheap; says the fix.
pub fn preflight(plan: &Plan, via: MkconfigVia) -> Result<()> {
    if via == MkconfigVia::Mount && !rustix::process::geteuid().is_root() {
        bail!(NEEDS_ROOT);
    }
    crate::host::sandbox::tree::preflight()
        .context("--grub mkconfig runs the rootfs's grub-mkconfig in a user namespace")?;
    preflight_host(plan.board.arch)
        .context("--grub mkconfig runs the rootfs's programs under qemu-user")?;
    root_partition(plan).map(|_| ())
}

/// The root partition and its filesystem UUID; /boot and /usr must be on it.
fn root_partition(plan: &Plan) -> Result<(&crate::plan::PlannedPartition, String)> {
    let root = plan
        .root_partition()
        .context("--grub mkconfig needs a partition mounted at /")?;
    let PlannedFs::Ext4 { uuid, .. } = &root.filesystem else {
        bail!(
            "--grub mkconfig mounts the root filesystem; partition '{}' is not ext4",
            root.name
        );
    };
    for path in ["/boot", "/usr"] {
        if let Some(other) = plan.partition_holding(path).filter(|p| p.name != root.name) {
            bail!(
                "--grub mkconfig needs {path} on the root filesystem, but board {} puts it on \
                 partition '{}'; use --grub template",
                plan.board.name,
                other.name
            );
        }
    }
    Ok((root, uuid.to_string()))
}

/// Run grub-mkconfig over `root_image` (the root partition's finished ext4
/// image) and return the linted grub.cfg. `workdir` holds the mount point.
pub fn grub_cfg_by_mkconfig(
    plan: &Plan,
    boot: &RootfsBoot,
    root_image: &Path,
    workdir: &Path,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<MkconfigReport> {
    let started = Instant::now();
    let (root, fs_uuid) = root_partition(plan)?;
    let before = hash_image(root_image)?;
    let interrupt = InterruptGuard::arm().context("catching SIGINT/SIGTERM")?;
    let mountpoint = workdir.join("mkconfig-root");
    fs::create_dir_all(&mountpoint)
        .with_context(|| format!("creating {}", mountpoint.display()))?;
    let links = DiskLinks {
        fs_uuid: Some(fs_uuid.clone()),
        part_uuid: root.uuid.map(|u| u.to_string()),
    };
    let esp_mount = plan
        .layout
        .partitions
        .iter()
        .filter(|p| matches!(p.filesystem, PlannedFs::Vfat { .. }))
        .filter_map(|p| p.mount.as_ref().map(|m| m.path.clone()))
        .collect::<Vec<_>>();

    let device = LoopDevice::attach(
        root_image,
        &LoopOptions {
            read_only: true,
            ..LoopOptions::default()
        },
    )?;
    progress(&format!(
        "mkconfig: {} attached read-only at {}",
        root_image.file_name().unwrap_or_default().to_string_lossy(),
        device.path().display()
    ));
    let interrupted = || -> Result<()> {
        match interrupt.signal_name() {
            Some(signal) => bail!("interrupted by {signal}"),
            None => Ok(()),
        }
    };
    interrupted()?;
    let programs = if native_tools::wanted() {
        Programs::NativeTools(plan.board.arch)
    } else {
        Programs::Rootfs
    };
    let result = in_private_namespace(|| {
        let mut session = ChrootSession::open_with(&device, "ext4", &mountpoint, &links, programs)?;
        progress(&format!("mkconfig: {}", session.native_tools().describe()));
        for mount in &esp_mount {
            // vfat cannot be mounted from here (it is built after this step).
            session.mount_tmpfs(mount, "mode=0700,size=1m")?;
        }
        let program = find_program(
            &session,
            plan.boot.mkconfig.as_deref().or(boot.mkconfig.as_deref()),
        )?;
        interrupted()?;
        progress(&format!(
            "mkconfig: running {program} -o {OUTPUT} (under qemu-user this takes a while) in the {}",
            Sandbox::new(session.root()).describe()
        ));
        let output = session.run(
            &format!("running {program} in a chroot of {}", root_image.display()),
            &[&program, "-o", OUTPUT],
            &[
                // Also what keeps native tools' output the same (host::native_tools).
                ("LC_ALL", "C"),
                ("TMPDIR", "/tmp"),
                ("GRUB_DISABLE_OS_PROBER", "true"),
            ],
            interrupt.flag(),
        )?;
        let grub_cfg = String::from_utf8(session.read(OUTPUT)?)
            .with_context(|| format!("{program} wrote a grub.cfg that is not UTF-8"))?;
        session.close()?;
        let messages = String::from_utf8_lossy(&output.stderr)
            .lines()
            .map(str::to_string)
            .collect();
        Ok((program, grub_cfg, messages))
    });
    let closed = device.close();
    let (program, grub_cfg, messages) = match result {
        Err(err) if interrupt.is_set() => {
            if let Err(detach) = closed {
                eprintln!("mkimg: warning: {detach:#}");
            }
            return Err(err.context(format!(
                "interrupted by {}: mounts and loop device cleaned up, nothing published",
                interrupt.signal_name().unwrap_or("a signal")
            )));
        }
        other => other?,
    };
    closed?;
    drop(interrupt);

    let after = hash_image(root_image)?;
    if before != after {
        bail!(
            "{} changed while mounted read-only (sha256 {before} → {after}); refusing to use it",
            root_image.display()
        );
    }
    finish(
        plan,
        boot,
        workdir,
        Ran {
            program,
            grub_cfg,
            messages,
            fs_uuid,
            started,
            via: MkconfigVia::Mount,
        },
    )
}

/// What one grub-mkconfig run gave, on either path, before [`finish`].
struct Ran {
    program: String,
    grub_cfg: String,
    /// Its stderr, a line each.
    messages: Vec<String>,
    /// The root filesystem's UUID, which grub.cfg must name root by.
    fs_uuid: String,
    started: Instant,
    via: MkconfigVia,
}

/// Both paths end here: the BLS entries grub-mkconfig ignored added
/// ([`with_bls_entries`]), then the lint: root by the plan's UUID, and no
/// trace of mkimg's own directories (`work`, any work dir) or of the
/// stand-in root node.
fn finish(plan: &Plan, boot: &RootfsBoot, work: &Path, ran: Ran) -> Result<MkconfigReport> {
    let Ran {
        program,
        grub_cfg,
        mut messages,
        fs_uuid,
        started,
        via,
    } = ran;
    let rules = LintRules {
        root: RootBy::Uuid(fs_uuid),
        arch: plan.board.arch,
        forbidden: vec![
            work.display().to_string(),
            "mkimg-work-".to_string(),
            format!("/dev/{ROOT_NODE}"),
        ],
    };
    let grub_cfg = with_bls_entries(plan, boot, &program, grub_cfg, &mut messages)?;
    check_grub_cfg(&format!("grub.cfg from {program}"), &grub_cfg, &rules)?;
    Ok(MkconfigReport {
        grub_cfg,
        program,
        messages,
        elapsed: started.elapsed(),
        via,
    })
}

/// BLS entries in a grub.cfg that would not boot them. A Fedora-family
/// grub-mkconfig writes `blscfg` (grub reads the entries at boot); that
/// needs a grub with the `blscfg` module, which is refused early when the
/// binary lacks it. Any other grub-mkconfig (Debian's, or a distro's with
/// GRUB_ENABLE_BLSCFG unset) lists /boot itself and ignores the entries:
/// mkimg then puts the entries, rendered like template mode does, first in
/// the menu (after 00_header), marked as its own.
fn with_bls_entries(
    plan: &Plan,
    boot: &RootfsBoot,
    program: &str,
    grub_cfg: String,
    messages: &mut Vec<String>,
) -> Result<String> {
    if boot.kernel_source != KernelSource::Bls {
        return Ok(grub_cfg);
    }
    let calls_blscfg = grub_cfg
        .lines()
        .any(|l| l.split_whitespace().next() == Some("blscfg"));
    if calls_blscfg {
        if let Some(grub) = boot.grub.as_ref().filter(|g| !g.blscfg) {
            bail!(
                "{program} wrote a grub.cfg that calls blscfg, but the grub binary {} has no                  blscfg module (it would show an empty menu); use --grub template, which                  renders the BLS entries itself",
                grub.path
            );
        }
        return Ok(grub_cfg);
    }
    let config = grub_config_for_rootfs(plan, boot)?;
    let entries = render_menu_entries(&config)?;
    messages.push(format!(
        "{program} ignored the {} BLS entries in /boot/loader/entries (no blscfg): mkimg put them first in the menu",
        boot.kernels.len()
    ));
    let block = format!(
        "
### BEGIN mkimg: Boot Loader Specification entries (/boot/loader/entries) ###
         {}
### END mkimg: Boot Loader Specification entries ###
",
        entries.trim_end()
    );
    const HEADER_END: &str = "### END /etc/grub.d/00_header ###
";
    Ok(match grub_cfg.find(HEADER_END) {
        Some(at) => {
            let at = at + HEADER_END.len();
            format!("{}{block}{}", &grub_cfg[..at], &grub_cfg[at..])
        }
        None => format!(
            "{block}
{grub_cfg}"
        ),
    })
}

/// The board's `[boot] mkconfig`, else the first of [`CANDIDATES`] present.
fn find_program(session: &ChrootSession, board: Option<&str>) -> Result<String> {
    if let Some(program) = board {
        return Ok(program.to_string());
    }
    CANDIDATES
        .iter()
        .find(|p| session.inside(p).is_ok_and(|path| path.is_file()))
        .map(|p| p.to_string())
        .with_context(|| {
            format!(
                "the rootfs has no grub-mkconfig or grub2-mkconfig (looked for {}): install it \
                 (Debian: add grub-efi-<arch> to the rootfs packages; Fedora: grub2-tools), \
                 name it with [boot] mkconfig, or use --grub template",
                CANDIDATES.join(", ")
            )
        })
}

/// A fingerprint of an image's content: sha256 over its length and every
/// non-zero 64 KiB chunk with its offset. Equal fingerprints mean equal
/// bytes (a skipped chunk is all zeros). Only the data extents are read
/// (SEEK_DATA/SEEK_HOLE), so a 10 GiB sparse image costs what its data
/// costs; the extent map itself is not hashed, as it may change without
/// the content changing (unwritten extents, delayed allocation).
pub fn hash_image(path: &Path) -> Result<String> {
    use std::io::{Read, Seek};
    const CHUNK: u64 = 64 << 10;
    let mut file = File::open(path).with_context(|| format!("hashing {}", path.display()))?;
    let len = file.metadata()?.len();
    let mut hasher = Sha256::new();
    hasher.update(len.to_le_bytes());
    let mut buf = vec![0u8; CHUNK as usize];
    // Next chunk not yet hashed.
    let mut next = 0;
    for (data, hole) in crate::host::sparse::data_extents(&file, len)? {
        let mut chunk = (data / CHUNK * CHUNK).max(next);
        file.seek(io::SeekFrom::Start(chunk))?;
        while chunk < hole {
            let size = CHUNK.min(len - chunk) as usize;
            file.read_exact(&mut buf[..size])
                .with_context(|| format!("hashing {} at {chunk}", path.display()))?;
            if buf[..size].iter().any(|&b| b != 0) {
                hasher.update(chunk.to_le_bytes());
                hasher.update(&buf[..size]);
            }
            chunk += size as u64;
        }
        next = chunk;
    }
    Ok(crate::digest::hex(&hasher.finalize()))
}

#[cfg(test)]
mod tests;
