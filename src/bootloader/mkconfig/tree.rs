//! `--grub mkconfig` without root (the default path, `--mkconfig-via
//! tree`): the distro's grub-mkconfig run in the rootless sandbox
//! (`host::sandbox::tree`) over the part of the root filesystem it reads,
//! captured during the one rootfs pass (`rootfs::tree`) — no loop device,
//! no kernel ext4 mount, no finished ext4 image needed. mkimg as root runs
//! the same sandbox, mapped to the unprivileged `SANDBOX_ID`.
//!
//! Flows in: the plan, what detection found ([`RootfsBoot`]) and the
//! captured tree; nothing else, so this can run beside the filesystem
//! stages. Flows out: the linted grub.cfg ([`MkconfigReport`]), the same
//! bytes the mount path gives (a slow test compares them).
//!
//! What the tree holds ([`tree_spec`]): the root filesystem as the image
//! gets it, minus subtrees grub-mkconfig never reads ([`LEFT_OUT`]: kernel
//! modules, firmware, documentation, locales, /var, /home, …), with kernel
//! and initrd images reduced to sparse files of their size ([`SIZE_ONLY`]:
//! the scripts list and stat them, never open them). Found by tracing
//! Debian trixie's grub-mkconfig (every file it opens, stats or runs:
//! programs and their libraries in /usr, /etc, /boot's names and its
//! config-*, /usr/share/grub) and by reading the Fedora/openEuler
//! grub2-mkconfig, 10_linux and BLS code paths: same directories.
//!
//! Before the run ([`prepare_tree`]): the mount points the sandbox needs
//! (/dev, /proc, /tmp, /run/mkimg), grub-probe and grub-mkrelpath replaced
//! by the shim with its answers from the plan (`bootloader::probe`),
//! and /etc/default/grub left as the pass wrote it (the board's kernel
//! arguments already merged in, `bootloader::board_args`), as the mount path
//! sees it; for a foreign rootfs, native tools (`host::native_tools`, as in
//! the mount path: the host's dash, sed, grep and coreutils bound read-only
//! over the rootfs's own inside the sandbox, [`native_tools_for`]).
//! The run: `grub-mkconfig -o /tmp/grub.cfg`, environment `PATH`,
//! `LC_ALL=C`, `TMPDIR=/tmp`, `GRUB_DISABLE_OS_PROBER=true` only; the
//! sandbox hands back /tmp/grub.cfg and the shim's log of unanswered
//! questions — any entry there fails the build, naming the question.
//!
//! Must not: write outside the tree (every write goes through
//! `host::treedir`), guess an answer, or give the rootfs's programs more
//! than the sandbox allows.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};

use super::{finish, root_partition, MkconfigReport, MkconfigVia, Ran, CANDIDATES, OUTPUT};
use crate::bootloader::detect::RootfsBoot;
use crate::bootloader::probe::{
    unanswered_questions, ProbeAnswers, ANSWERS, SHIM, SHIM_DIRS, SHIM_NAMES, UNANSWERED,
};
use crate::host::chroot::{CHROOT_PATH, ROOT_NODE};
use crate::host::cmd::Cmd;
use crate::host::interrupt::InterruptGuard;
use crate::host::native_tools::{self, NativeTools, Outcome};
use crate::host::sandbox::{parse_handed_back, HostFile, Sandbox, Tmpfs, TreeSandbox};
use crate::host::treedir::{Node, TreeDir};
use crate::plan::{Plan, PlannedFs};
use crate::rootfs::{CapturedTree, TreeSpec};

/// The stage directory in the work dir; the tree is its `root`.
pub const STAGE: &str = "mkconfig";

/// Subtrees of the root filesystem grub-mkconfig never reads.
pub const LEFT_OUT: [&str; 33] = [
    "/dev",
    "/proc",
    "/sys",
    "/run",
    "/tmp",
    "/var",
    "/home",
    "/root",
    "/srv",
    "/opt",
    "/mnt",
    "/media",
    "/lost+found",
    "/usr/lib/modules",
    "/lib/modules",
    "/usr/lib/firmware",
    "/lib/firmware",
    "/usr/lib/udev/hwdb.bin",
    "/usr/lib/udev/hwdb.d",
    "/lib/udev/hwdb.bin",
    "/lib/udev/hwdb.d",
    "/etc/udev/hwdb.bin",
    "/usr/lib/debug",
    "/usr/src",
    "/usr/include",
    "/usr/share/doc",
    "/usr/share/man",
    "/usr/share/info",
    "/usr/share/locale",
    "/usr/share/i18n",
    "/usr/share/zoneinfo",
    "/usr/share/help",
    "/usr/share/gtk-doc",
];

/// Kernel and initrd images (the names `bootloader::kernels` knows):
/// grub-mkconfig lists and stats them, never reads them.
pub const SIZE_ONLY: [&str; 6] = [
    "/boot/vmlinuz-*",
    "/boot/vmlinux-*",
    "/boot/Image-*",
    "/boot/initrd.img-*",
    "/boot/initramfs-*",
    "/boot/initrd-*",
];

/// The most file data the tree may hold (Debian's is about 130 MiB).
pub const MAX_TREE_BYTES: u64 = 1 << 30;

/// A hand-back file: where grub-mkconfig writes (see [`OUTPUT`]).
const OUTPUT_NAME: &str = "grub.cfg";

/// What the rootfs pass writes for this path: the stage directory is made
/// now (owned by the sandbox's root), the tree goes in it.
pub fn tree_spec(workdir: &Path) -> Result<TreeSpec> {
    let stage = workdir.join(STAGE);
    TreeSandbox::create_stage(&stage)
        .with_context(|| format!("creating the mkconfig stage {}", stage.display()))?;
    Ok(TreeSpec {
        dir: stage.join(crate::host::sandbox::tree::ROOT),
        owner: TreeSandbox::host_ids(),
        exclude: LEFT_OUT.iter().map(|p| p.to_string()).collect(),
        placeholders: SIZE_ONLY.iter().map(|p| p.to_string()).collect(),
        max_bytes: MAX_TREE_BYTES,
    })
}

/// Run grub-mkconfig over `tree` (made by the pass from [`tree_spec`]) and
/// return the linted grub.cfg.
pub fn grub_cfg_from_tree(
    plan: &Plan,
    boot: &RootfsBoot,
    tree: &CapturedTree,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<MkconfigReport> {
    let started = Instant::now();
    let (_, fs_uuid) = root_partition(plan)?;
    let dir = &tree.dir;
    let stage = dir
        .path()
        .parent()
        .context("the mkconfig tree has no stage directory")?
        .to_path_buf();
    check_exec(&stage)?;
    let shims = prepare_tree(plan, dir)?;
    let program = find_program(
        dir,
        plan.boot.mkconfig.as_deref().or(boot.mkconfig.as_deref()),
    )?;
    let (host_files, native) = native_tools_for(plan, dir)?;
    progress(&format!("mkconfig: {}", native.describe()));
    let sandbox = TreeSandbox {
        host_files,
        ..sandbox_for(plan, &stage, &fs_uuid)
    };
    progress(&format!(
        "mkconfig: grub-probe answered from the plan: {}",
        match shims.is_empty() {
            true => "the rootfs has no grub-probe".to_string(),
            false => shims.join(", "),
        }
    ));
    let interrupt = InterruptGuard::arm().context("catching SIGINT/SIGTERM")?;
    let cmd = Cmd::new(
        format!("running {program} over the mkconfig tree"),
        &program,
    )
    .args(["-o", OUTPUT])
    .env_clear()
    .env("PATH", CHROOT_PATH)
    .env("LC_ALL", "C")
    .env("TMPDIR", "/tmp")
    .env("GRUB_DISABLE_OS_PROBER", "true")
    .sandboxed(Sandbox::Tree(sandbox.clone()));
    progress(&format!(
        "mkconfig: running {program} -o {OUTPUT} (under qemu-user this takes a while) in the {}",
        sandbox.describe()
    ));
    let ran = cmd.output_unchecked_interruptible(interrupt.flag());
    let (status, output) = match ran {
        Err(err) if interrupt.is_set() => {
            return Err(anyhow::Error::new(err).context(format!(
                "interrupted by {}: the sandbox was stopped, nothing published",
                interrupt.signal_name().unwrap_or("a signal")
            )))
        }
        other => other?,
    };
    drop(interrupt);
    let handed = parse_handed_back(&output.stdout)
        .with_context(|| format!("reading what the sandbox handed back after {program}"))?;
    let handed_file = |name: &str| {
        handed
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, data)| data.clone())
    };
    let questions = unanswered_questions(&handed_file(UNANSWERED).unwrap_or_default());
    if !questions.is_empty() {
        bail!(
            "{program} asked grub-probe what the build plan does not answer (mkimg answers \
             from the plan and never guesses): {}; use --grub template{}",
            questions
                .iter()
                .map(|q| format!("`{q}`"))
                .collect::<Vec<_>>()
                .join(", "),
            if rustix::process::geteuid().is_root() {
                ", or --mkconfig-via mount (the real grub-probe over a loop device)"
            } else {
                ""
            }
        );
    }
    cmd.check_status(status, &output.stderr)?;
    let grub_cfg = handed_file(OUTPUT_NAME)
        .with_context(|| format!("{program} exited 0 but wrote no {OUTPUT}"))?;
    let grub_cfg = String::from_utf8(grub_cfg)
        .with_context(|| format!("{program} wrote a grub.cfg that is not UTF-8"))?;
    let messages = String::from_utf8_lossy(&output.stderr)
        .lines()
        .map(str::to_string)
        .collect();
    finish(
        plan,
        boot,
        &stage,
        Ran {
            program,
            grub_cfg,
            messages,
            fs_uuid,
            started,
            via: MkconfigVia::Tree,
        },
    )
}

/// The tree made ready for the run (see the module doc); the shims
/// installed, as rootfs paths.
pub fn prepare_tree(plan: &Plan, tree: &TreeDir) -> Result<Vec<String>> {
    for dir in ["dev", "proc", "tmp", "run", "run/mkimg"] {
        tree.make_dir(dir, 0o755)
            .with_context(|| format!("making /{dir} in the mkconfig tree"))?;
    }
    for mount in esp_mounts(plan) {
        if tree.node(mount.trim_start_matches('/'))? != Some(Node::Dir) {
            bail!("{mount} is not a directory of the root filesystem");
        }
    }
    let answers = ProbeAnswers::from_plan(plan)?;
    tree.write_file(ANSWERS, answers.render().as_bytes(), 0o644)
        .context("writing grub-probe's answers into the mkconfig tree")?;
    let mut shims = Vec::new();
    for dir in SHIM_DIRS {
        for name in SHIM_NAMES {
            let path = format!("{dir}/{name}");
            if matches!(tree.node(&path)?, Some(Node::File | Node::Symlink)) {
                tree.write_file(&path, SHIM.as_bytes(), 0o755)
                    .with_context(|| format!("replacing /{path} in the mkconfig tree"))?;
                shims.push(format!("/{path}"));
            }
        }
    }
    // /etc/default/grub is the image's own, with the board's kernel
    // arguments the rootfs pass merged into it (`bootloader::board_args`),
    // as the mount path sees it.
    Ok(shims)
}

/// Native tools (`host::native_tools`) for the tree, as in the mount
/// path: planned over the tree, their missing mount points (the host's
/// loader and libraries: directories 0755, empty files) made through
/// `host::treedir` (never following a symlink), the binds handed to the
/// sandbox, which makes them read-only in its own mount namespace. A plan
/// refused leaves the tree as it is and every program emulated.
fn native_tools_for(plan: &Plan, tree: &TreeDir) -> Result<(Vec<HostFile>, Outcome)> {
    if !native_tools::wanted() {
        return Ok((Vec::new(), Outcome::Off));
    }
    let planned = match NativeTools::plan(tree.path(), plan.board.arch, CHROOT_PATH) {
        Ok(planned) => planned,
        Err(refusal) => return Ok((Vec::new(), Outcome::Refused(refusal.to_string()))),
    };
    let mut files = Vec::new();
    for bind in planned.binds() {
        let inside = bind
            .inside
            .to_str()
            .with_context(|| format!("{}: not UTF-8", bind.inside.display()))?;
        let rel = inside.trim_start_matches('/');
        if bind.create {
            let parts: Vec<&str> = rel.split('/').collect();
            for depth in 1..parts.len() {
                let dir = parts[..depth].join("/");
                match tree.node(&dir)? {
                    None => tree
                        .make_dir(&dir, 0o755)
                        .with_context(|| format!("making /{dir} in the mkconfig tree"))?,
                    Some(Node::Dir) => {}
                    Some(_) => {
                        bail!("native tools: /{dir} of the mkconfig tree is not a directory")
                    }
                }
            }
            if tree.node(rel)?.is_some() {
                bail!("native tools: {inside} appeared in the mkconfig tree");
            }
            tree.write_file(rel, b"", 0o644)
                .with_context(|| format!("making {inside} in the mkconfig tree"))?;
        }
        files.push(HostFile {
            host: bind.host.clone(),
            inside: inside.to_string(),
        });
    }
    Ok((files, Outcome::Used(planned.summary())))
}

/// The sandbox for `stage`: the ESPs' mount points as small tmpfs mounts
/// (as in the mount path), the root's `/dev/disk/by-uuid` and
/// `by-partuuid` links to a stand-in `/dev/mkimg-root` (grub's 10_linux
/// writes `root=UUID=` only when the link exists), grub.cfg and the
/// unanswered questions handed back.
fn sandbox_for(plan: &Plan, stage: &Path, fs_uuid: &str) -> TreeSandbox {
    let node = format!("../../{ROOT_NODE}");
    let mut dev_links = vec![(format!("disk/by-uuid/{fs_uuid}"), node.clone())];
    if let Some(part) = plan.root_partition().and_then(|p| p.uuid) {
        dev_links.push((format!("disk/by-partuuid/{part}"), node));
    }
    TreeSandbox {
        stage: stage.to_path_buf(),
        tmpfs: esp_mounts(plan)
            .into_iter()
            .map(|path| Tmpfs {
                path,
                options: "mode=0700,size=1m".to_string(),
            })
            .collect(),
        dev_links,
        dev_stand_ins: vec![ROOT_NODE.to_string()],
        hand_back: vec![OUTPUT_NAME.to_string(), UNANSWERED.to_string()],
        host_files: Vec::new(),
    }
}

/// Mount points of vfat partitions (built after this stage: empty in the
/// sandbox, as in the mount path).
fn esp_mounts(plan: &Plan) -> Vec<String> {
    plan.layout
        .partitions
        .iter()
        .filter(|p| matches!(p.filesystem, PlannedFs::Vfat { .. }))
        .filter_map(|p| p.mount.as_ref().map(|m| m.path.clone()))
        .collect()
}

/// The board's `[boot] mkconfig` or the detected one, else the first of
/// [`CANDIDATES`] the tree has as a file.
fn find_program(tree: &TreeDir, named: Option<&str>) -> Result<String> {
    if let Some(program) = named {
        return Ok(program.to_string());
    }
    for candidate in CANDIDATES {
        if tree.node(candidate.trim_start_matches('/'))? == Some(Node::File) {
            return Ok(candidate.to_string());
        }
    }
    bail!(
        "the rootfs has no grub-mkconfig or grub2-mkconfig (looked for {}): install it \
         (Debian: add grub-efi-<arch> to the rootfs packages; Fedora: grub2-tools), name it \
         with [boot] mkconfig, or use --grub template",
        CANDIDATES.join(", ")
    )
}

/// The rootfs's programs run from the tree: its filesystem must allow it.
fn check_exec(stage: &Path) -> Result<()> {
    let stat = rustix::fs::statvfs(stage)
        .with_context(|| format!("checking the filesystem of {}", stage.display()))?;
    if stat.f_flag.contains(rustix::fs::StatVfsMountFlags::NOEXEC) {
        bail!(
            "the work directory {} is on a filesystem mounted noexec, where the rootfs's \
             grub-mkconfig cannot run; set MKIMG_WORKDIR to a directory on another filesystem",
            stage
                .parent()
                .map_or_else(PathBuf::new, Path::to_path_buf)
                .display()
        );
    }
    Ok(())
}
