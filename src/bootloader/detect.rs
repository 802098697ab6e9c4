//! What the rootfs says about how it boots: the distro (os-release), its
//! grub EFI binary and where that binary looks for grub.cfg, its kernels
//! and initrds (Boot Loader Specification entries where it has them), its
//! grub-mkconfig and grub directory. A board describes hardware; these
//! conventions belong to the rootfs, so the stock boards name none of them
//! and every value here can still be overridden by the board.
//!
//! Flows in: [`wanted`] tells the rootfs pass what to capture (the plan's
//! one streaming pass: nothing is read twice); [`detect`] reads the
//! [`CaptureResults`]. Flows out: a [`RootfsBoot`]. Pure: no I/O.
//!
//! The grub binary, first usable of:
//! 1. `/boot/efi/EFI/<vendor>/grub<arch>.efi` whose vendor directory is
//!    the os-release ID (openEuler, Fedora, CentOS… as their grub2-efi
//!    packages install it; case-insensitive);
//! 2. Debian's `/usr/lib/grub/<target>/monolithic/grub<arch>.efi`
//!    (grub-efi-<arch>-bin);
//! 3. any other `/boot/efi/EFI/<vendor>/grub<arch>.efi`.
//!
//! Each candidate is read ([`read_grub_image`]): its PE machine must be the
//! board's, and grub.cfg goes where its prefix says ([`cfg_path`]). An
//! image with an embedded config (what `grub-install` makes: a config that
//! searches for a disk by UUID and sets its own prefix) or a prefix mkimg
//! cannot place a file at (another partition, `(memdisk)`, a variable) is
//! passed over, and the reasons are in the error when no candidate is
//! left. Shim (`shim<arch>.efi`) is reported but not booted through: the
//! images boot without Secure Boot, grub directly.

use crate::arch::Arch;
use crate::board::schema::TableKind;
use crate::bootloader::bls::{self, BlsEntry, ENTRIES_DIR};
use crate::bootloader::default_grub::parse_os_release;
use crate::bootloader::grub_image::{parse_prefix, read_grub_image, GrubImage};
use crate::bootloader::kernels::{find_kernels, KernelEntry};
use crate::plan::{BlobSource, Plan, PlannedPartition};
use crate::rootfs::{CaptureResults, Captured, Captures, NodeType};

pub const DEFAULT_GRUB: &str = "/etc/default/grub";
pub const OS_RELEASE: [&str; 2] = ["/etc/os-release", "/usr/lib/os-release"];
/// Red Hat family: `openEuler release 24.03 (LTS)`; GRUB_DISTRIBUTOR is
/// made from it.
pub const SYSTEM_RELEASE: &str = "/etc/system-release";
/// grubenv, where BLS entries' `$kernelopts` come from (Fedora ≤ 32).
const GRUBENV: [&str; 2] = ["/boot/grub2/grubenv", "/boot/grub/grubenv"];
/// The programs tried for `--grub mkconfig`, in order.
pub const MKCONFIG_CANDIDATES: [&str; 4] = [
    "/usr/sbin/grub-mkconfig",
    "/usr/sbin/grub2-mkconfig",
    "/usr/bin/grub-mkconfig",
    "/usr/bin/grub2-mkconfig",
];
const GRUB_DIRS: [&str; 2] = ["/boot/grub2", "/boot/grub"];
/// Where RPM distributions install their EFI binaries (the ESP's `EFI/`).
const ESP_EFI: &str = "/boot/efi/EFI";

/// What the rootfs pass must capture for [`detect`] and the boot stages:
/// the texts, the candidate grub binaries, BLS entries and the `/boot`
/// listing, grub's module directory (whether it exists), the board's
/// `[[efi_file]]` sources and `rootfs:` blobs.
pub fn wanted(plan: &Plan) -> Captures {
    let arch = plan.board.arch;
    let mut files: Vec<String> = [DEFAULT_GRUB, SYSTEM_RELEASE]
        .into_iter()
        .chain(OS_RELEASE)
        .chain(GRUBENV)
        .chain(MKCONFIG_CANDIDATES)
        .chain(GRUB_DIRS)
        .map(str::to_string)
        .collect();
    files.extend(monolithic_path(arch));
    files.extend(modules_dir(arch));
    files.extend(plan.boot.efi_files.iter().map(|(from, _)| from.clone()));
    files.extend(plan.layout.blobs.iter().filter_map(|b| match &b.source {
        BlobSource::Rootfs(path) => Some(path.clone()),
        BlobSource::File(_) | BlobSource::Reserved => None,
    }));
    let mut patterns = vec![format!("{ENTRIES_DIR}/*.conf")];
    if let Some(sfx) = arch.efi_suffix() {
        patterns.push(format!("{ESP_EFI}/*/grub{sfx}.efi"));
        patterns.push(format!("{ESP_EFI}/*/shim{sfx}.efi"));
    }
    Captures {
        files,
        patterns,
        dirs: vec!["/boot".to_string()],
        elf_dirs: vec![
            "/usr/bin".to_string(),
            "/bin".to_string(),
            "/usr/lib".to_string(),
        ],
        ..Captures::default()
    }
}

/// Debian's monolithic grub EFI image for `arch`.
pub fn monolithic_path(arch: Arch) -> Option<String> {
    let target = arch.grub_efi_target()?;
    let sfx = arch.efi_suffix()?;
    Some(format!("/usr/lib/grub/{target}/monolithic/grub{sfx}.efi"))
}

/// The rootfs path of grub's modules for `arch`'s EFI platform
/// (`/usr/lib/grub/riscv64-efi`), which grub-mkconfig needs.
pub fn modules_dir(arch: Arch) -> Option<String> {
    arch.grub_efi_target().map(|t| format!("/usr/lib/grub/{t}"))
}

/// The distro, from os-release (os-release(5)).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct OsInfo {
    pub id: String,
    pub id_like: Vec<String>,
    pub version_id: Option<String>,
    pub name: Option<String>,
    pub pretty_name: Option<String>,
}

impl OsInfo {
    pub fn parse(text: &str) -> Self {
        let vars = parse_os_release(text).unwrap_or_default();
        let get = |k: &str| vars.get(k).filter(|v| !v.is_empty()).cloned();
        OsInfo {
            // os-release(5): ID defaults to "linux".
            id: get("ID").unwrap_or_else(|| "linux".to_string()),
            id_like: get("ID_LIKE")
                .map(|v| v.split_whitespace().map(str::to_string).collect())
                .unwrap_or_default(),
            version_id: get("VERSION_ID"),
            name: get("NAME"),
            pretty_name: get("PRETTY_NAME"),
        }
    }

    pub fn family(&self) -> Family {
        let ids = std::iter::once(&self.id).chain(&self.id_like);
        for id in ids {
            match id.to_ascii_lowercase().as_str() {
                "debian" | "ubuntu" => return Family::Debian,
                "fedora" | "rhel" | "centos" | "openeuler" | "suse" | "opensuse" => {
                    return Family::Rpm
                }
                _ => {}
            }
        }
        Family::Other
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    /// Debian, Ubuntu and their derivatives (dpkg, grub-mkconfig, /boot/grub).
    Debian,
    /// Fedora, RHEL, openEuler, SUSE (rpm, grub2-mkconfig, /boot/grub2).
    Rpm,
    Other,
}

/// A grub EFI binary of the rootfs and where its grub.cfg goes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct GrubEfi {
    /// Rootfs path of the binary.
    pub path: String,
    /// The prefix it carries, as written.
    pub prefix: Option<String>,
    /// ESP path of grub.cfg, from the prefix.
    pub cfg: String,
    /// Whether it has the `blscfg` module (Fedora-family grub).
    pub blscfg: bool,
    #[serde(skip)]
    pub data: Vec<u8>,
}

/// How the menu's kernels were found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KernelSource {
    /// Boot Loader Specification entries in /boot/loader/entries.
    Bls,
    /// Kernel and initrd file names in /boot.
    Scan,
}

/// Everything detected, for the boot stages and `mkimg plan --rootfs`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RootfsBoot {
    pub os: Option<OsInfo>,
    pub family: Family,
    /// The menu, newest first.
    pub kernels: Vec<KernelEntry>,
    pub kernel_source: KernelSource,
    /// The grub binary to boot, if one is usable.
    pub grub: Option<GrubEfi>,
    /// Candidates passed over, each with the reason.
    pub grub_skipped: Vec<String>,
    pub shim: Option<String>,
    /// grub-mkconfig or grub2-mkconfig.
    pub mkconfig: Option<String>,
    /// /boot/grub or /boot/grub2.
    pub grub_dir: Option<String>,
    /// File names in /boot.
    #[serde(skip)]
    pub boot_names: Vec<String>,
    #[serde(skip)]
    pub default_grub: Option<String>,
    #[serde(skip)]
    pub os_release: Option<String>,
    #[serde(skip)]
    pub system_release: Option<String>,
    pub warnings: Vec<String>,
}

/// The captured file at rootfs path `path`, if it is a regular file.
pub fn captured_file<'c>(captures: &'c CaptureResults, path: &str) -> Option<&'c [u8]> {
    match captures
        .files
        .get(path)
        .or_else(|| captures.files.get(path.trim_start_matches('/')))
    {
        Some(Captured::File(data)) => Some(data),
        _ => None,
    }
}

fn exists(captures: &CaptureResults, path: &str) -> bool {
    captures.files.contains_key(path)
}

/// Read what the rootfs says about booting it. `plan` gives the
/// architecture and the ESP (a device prefix must name it).
pub fn detect(plan: &Plan, captures: &CaptureResults) -> RootfsBoot {
    let arch = plan.board.arch;
    let text =
        |path: &str| captured_file(captures, path).map(|d| String::from_utf8_lossy(d).into_owned());
    let os_release = OS_RELEASE.iter().find_map(|p| text(p));
    let os = os_release.as_deref().map(OsInfo::parse);
    let family = os.as_ref().map_or(Family::Other, OsInfo::family);
    let mut warnings = Vec::new();

    let boot_names: Vec<String> = captures
        .dirs
        .get("/boot")
        .map(|children| children.iter().map(|c| c.name.clone()).collect())
        .unwrap_or_default();
    let (kernels, kernel_source) = menu(captures, &boot_names, arch, &mut warnings);

    let esp = plan.esp_partition();
    let (grub, grub_skipped) = choose_grub(captures, os.as_ref(), arch, esp, plan.table());

    let shim = arch.efi_suffix().and_then(|sfx| {
        let name = format!("shim{sfx}.efi");
        captures
            .files
            .keys()
            .find(|k| k.starts_with(ESP_EFI) && k.ends_with(&format!("/{name}")))
            .cloned()
    });
    if let Some(shim) = &shim {
        warnings.push(format!(
            "the rootfs has {shim}; mkimg boots grub directly (no Secure Boot), not through shim"
        ));
    }
    RootfsBoot {
        os,
        family,
        kernels,
        kernel_source,
        grub,
        grub_skipped,
        shim,
        mkconfig: MKCONFIG_CANDIDATES
            .iter()
            .find(|p| exists(captures, p))
            .map(|p| p.to_string()),
        grub_dir: GRUB_DIRS
            .iter()
            .find(|p| matches!(captures.files.get(**p), Some(Captured::Other(_))))
            .map(|p| p.to_string()),
        boot_names,
        default_grub: text(DEFAULT_GRUB),
        os_release,
        system_release: text(SYSTEM_RELEASE),
        warnings,
    }
}

/// The menu: BLS entries when the rootfs has usable ones, else the
/// kernels in /boot.
fn menu(
    captures: &CaptureResults,
    boot_names: &[String],
    arch: Arch,
    warnings: &mut Vec<String>,
) -> (Vec<KernelEntry>, KernelSource) {
    let prefix = format!("{ENTRIES_DIR}/");
    let files: Vec<(String, Vec<u8>)> = captures
        .files
        .iter()
        .filter_map(|(path, captured)| {
            let name = path.strip_prefix(&prefix)?;
            match captured {
                Captured::File(data) => Some((name.to_string(), data.clone())),
                _ => {
                    warnings.push(format!("{path}: not a regular file; skipped"));
                    None
                }
            }
        })
        .collect();
    if !files.is_empty() {
        // What grub can load: files, and symlinks (it follows them); not
        // the directories (`loader`, `efi`, `grub2`) or device nodes.
        let loadable: Vec<String> = captures
            .dirs
            .get("/boot")
            .into_iter()
            .flatten()
            .filter(|c| {
                matches!(
                    c.node,
                    NodeType::File | NodeType::Symlink | NodeType::HardLink
                )
            })
            .map(|c| c.name.clone())
            .collect();
        let grubenv = GRUBENV.iter().find_map(|p| captured_file(captures, p));
        let (entries, notes) = bls::parse_entries(&files, grubenv, arch);
        warnings.extend(notes);
        let kernels: Vec<KernelEntry> = entries
            .into_iter()
            .filter_map(|e| match bls_kernel(&e, &loadable) {
                Ok(k) => Some(k),
                Err(why) => {
                    warnings.push(format!("{ENTRIES_DIR}/{}: skipped: {why}", e.file));
                    None
                }
            })
            .collect();
        if !kernels.is_empty() {
            return (kernels, KernelSource::Bls);
        }
        warnings.push(format!(
            "no usable entry in {ENTRIES_DIR}; the menu lists the kernels in /boot instead"
        ));
    }
    (find_kernels(boot_names), KernelSource::Scan)
}

/// A BLS entry as a menu entry: its kernel and initrds must be files (or
/// symlinks; `boot_files` lists them) at the top of /boot (entries name them from the filesystem holding /boot:
/// `/vmlinuz-<v>` or, with /boot on the root filesystem, `/boot/vmlinuz-<v>`).
fn bls_kernel(entry: &BlsEntry, boot_names: &[String]) -> Result<KernelEntry, String> {
    let in_boot = |path: &str| -> Result<String, String> {
        let name = path
            .strip_prefix("/boot/")
            .or_else(|| path.strip_prefix('/'))
            .unwrap_or(path);
        if name.contains('/') || !boot_names.iter().any(|n| n == name) {
            return Err(format!("{path} is not a file at the top of /boot"));
        }
        Ok(name.to_string())
    };
    let kernel = in_boot(&entry.linux)?;
    let initrds = entry
        .initrds
        .iter()
        .map(|i| in_boot(i))
        .collect::<Result<Vec<_>, _>>()?;
    let version = entry.version.clone().unwrap_or_else(|| {
        kernel
            .split_once('-')
            .map_or_else(|| kernel.clone(), |(_, v)| v.to_string())
    });
    Ok(KernelEntry {
        version,
        kernel,
        initrd: initrds.first().cloned(),
        bls: Some(crate::bootloader::kernels::BlsDetails {
            file: entry.file.clone(),
            title: entry.title.clone(),
            more_initrds: initrds.iter().skip(1).cloned().collect(),
            options: entry.options.clone(),
            class: entry.class.clone(),
        }),
    })
}

/// The grub binaries of the rootfs in the order of the module doc; the
/// first usable one, and why the others before it were passed over.
fn choose_grub(
    captures: &CaptureResults,
    os: Option<&OsInfo>,
    arch: Arch,
    esp: Option<&PlannedPartition>,
    table: TableKind,
) -> (Option<GrubEfi>, Vec<String>) {
    let Some(sfx) = arch.efi_suffix() else {
        return (None, Vec::new());
    };
    let name = format!("grub{sfx}.efi");
    let vendor_of = |path: &str| -> Option<String> {
        let rest = path.strip_prefix(ESP_EFI)?.strip_prefix('/')?;
        let (vendor, file) = rest.split_once('/')?;
        (file == name).then(|| vendor.to_string())
    };
    let id = os.map(|o| o.id.to_ascii_lowercase()).unwrap_or_default();
    let mut vendored: Vec<(bool, String)> = captures
        .files
        .keys()
        .filter_map(|k| vendor_of(k).map(|v| (v.to_ascii_lowercase() == id, k.clone())))
        .collect();
    // The os-release ID's own directory first, then by name.
    vendored.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    let mut candidates: Vec<String> = Vec::new();
    let (own, others): (Vec<_>, Vec<_>) = vendored.into_iter().partition(|(own, _)| *own);
    candidates.extend(own.into_iter().map(|(_, p)| p));
    candidates.extend(monolithic_path(arch));
    candidates.extend(others.into_iter().map(|(_, p)| p));

    let mut skipped = Vec::new();
    for path in candidates {
        let data = match captures.files.get(&path) {
            None => continue,
            Some(Captured::File(data)) => data,
            Some(Captured::Symlink(target)) => {
                skipped.push(format!("{path}: a symlink to {target} (not followed)"));
                continue;
            }
            Some(other) => {
                skipped.push(format!("{path}: not a regular file ({other:?})"));
                continue;
            }
        };
        match usable_grub(data, arch, esp, table, "EFI/BOOT") {
            Ok((image, cfg)) => {
                return (
                    Some(GrubEfi {
                        path,
                        prefix: image.prefix.clone(),
                        cfg,
                        blscfg: image.has_module("blscfg"),
                        data: data.clone(),
                    }),
                    skipped,
                )
            }
            Err(why) => skipped.push(format!("{path}: {why}")),
        }
    }
    (None, skipped)
}

/// Reads a grub EFI image and says where its grub.cfg goes (`loaded_from`
/// is the ESP directory the image is copied to, used when it has no
/// prefix), or why mkimg cannot use it.
pub fn usable_grub(
    data: &[u8],
    arch: Arch,
    esp: Option<&PlannedPartition>,
    table: TableKind,
    loaded_from: &str,
) -> Result<(GrubImage, String), String> {
    let image =
        read_grub_image(data).map_err(|e| format!("not a grub EFI image mkimg can read: {e}"))?;
    if let Some(want) = pe_machine(arch) {
        if image.machine != want {
            return Err(format!(
                "built for PE machine {:#06x}, not {arch} ({want:#06x})",
                image.machine
            ));
        }
    }
    if let Some(config) = &image.config {
        let head: Vec<&str> = config.lines().take(3).collect();
        return Err(format!(
            "it carries an embedded config (it decides itself where to read grub.cfg; starts: {:?}); \
             give the board [boot] grub_cfg and [[efi_file]] to use it",
            head.join(" ⏎ ")
        ));
    }
    let cfg = cfg_path(image.prefix.as_deref(), esp, table, loaded_from)?;
    Ok((image, cfg))
}

/// The ESP path where a grub with `prefix` reads grub.cfg. No prefix: the
/// directory it was loaded from. A device must be the ESP itself
/// (`(hd0,gpt1)`, `(hd0,msdos1)`, `(hd0,1)` for ESP number 1); another
/// partition, `(memdisk)` or a variable is refused: mkimg writes grub.cfg
/// only into the ESP.
pub fn cfg_path(
    prefix: Option<&str>,
    esp: Option<&PlannedPartition>,
    table: TableKind,
    loaded_from: &str,
) -> Result<String, String> {
    let Some(prefix) = prefix.filter(|p| !p.is_empty()) else {
        return Ok(format!("{}/grub.cfg", loaded_from.trim_matches('/')));
    };
    let parsed = parse_prefix(prefix);
    if let Some(device) = &parsed.device {
        let device = device.trim_start_matches('(').trim_end_matches(')');
        let number = esp.map(|p| p.number);
        if device == "memdisk" {
            return Err(format!(
                "its prefix {prefix:?} is inside the image's own memdisk: its grub.cfg is built \
                 in, and mkimg cannot place one there"
            ));
        }
        if !device_is_esp(device, number, table) {
            return Err(format!(
                "its prefix {prefix:?} names device ({device}), which is not the ESP{}: \
                 mkimg puts grub.cfg only in the ESP",
                number
                    .map(|n| format!(" (partition {n})"))
                    .unwrap_or_default()
            ));
        }
    }
    let path = parsed.path.trim_matches('/');
    if path.is_empty() && (parsed.path.starts_with('/') || parsed.device.is_some()) {
        // `/` or a device alone: the top of the ESP.
        return Ok("grub.cfg".to_string());
    }
    let plain = path.split('/').all(|c| {
        !c.is_empty()
            && c != "."
            && c != ".."
            && c.chars()
                .all(|ch| ch.is_ascii_alphanumeric() || "._+~-".contains(ch))
    });
    if !plain {
        return Err(format!(
            "its prefix {prefix:?} is not a plain directory path mkimg can put grub.cfg in"
        ));
    }
    Ok(format!("{path}/grub.cfg"))
}

/// `hd0,gpt1` / `hd0,msdos1` / `hd0,1` naming partition `number` of the
/// first disk (the image booted; another disk's numbering is unknown). A
/// hybrid table's MBR numbers need not match the GPT's: only `gptN` there.
fn device_is_esp(inner: &str, number: Option<u32>, table: TableKind) -> bool {
    let Some(number) = number else { return false };
    let Some(("hd0", part)) = inner.split_once(',') else {
        return false;
    };
    let digits = match (part.strip_prefix("gpt"), part.strip_prefix("msdos")) {
        (Some(n), _) if table != TableKind::Mbr => n,
        (_, Some(n)) if table == TableKind::Mbr => n,
        (None, None) if table != TableKind::Hybrid => part,
        _ => return false,
    };
    digits.parse::<u32>().is_ok_and(|n| n == number)
}

/// The PE/COFF machine of EFI binaries for `arch`.
fn pe_machine(arch: Arch) -> Option<u16> {
    match arch {
        Arch::Riscv64 => Some(0x5064),
        Arch::Aarch64 => Some(0xaa64),
        Arch::X86_64 => Some(0x8664),
        Arch::Arm => Some(0x01c2),
        Arch::Loongarch64 => Some(0x6264),
        Arch::Ppc64le | Arch::S390x | Arch::Mips64el => None,
    }
}

/// The lines `mkimg plan --rootfs` and the build log show.
pub fn describe(boot: &RootfsBoot) -> Vec<String> {
    let mut out = Vec::new();
    let os = match &boot.os {
        Some(os) => format!(
            "{} (ID={}{}{}), {}",
            os.pretty_name
                .as_deref()
                .or(os.name.as_deref())
                .unwrap_or(&os.id),
            os.id,
            os.version_id
                .as_deref()
                .map(|v| format!(", VERSION_ID={v}"))
                .unwrap_or_default(),
            if os.id_like.is_empty() {
                String::new()
            } else {
                format!(", ID_LIKE={}", os.id_like.join(" "))
            },
            match boot.family {
                Family::Debian => "Debian family",
                Family::Rpm => "RPM family",
                Family::Other => "family unknown",
            }
        ),
        None => "no os-release".to_string(),
    };
    out.push(format!("distro: {os}"));
    out.push(match &boot.grub {
        Some(g) => format!(
            "grub EFI: {} (prefix {}{}) → grub.cfg at ESP:/{}",
            g.path,
            g.prefix
                .as_deref()
                .map_or("none".to_string(), |p| format!("{p:?}")),
            if g.blscfg { ", has blscfg" } else { "" },
            g.cfg
        ),
        None => "grub EFI: none usable".to_string(),
    });
    for skipped in &boot.grub_skipped {
        out.push(format!("  passed over {skipped}"));
    }
    if let Some(shim) = &boot.shim {
        out.push(format!("shim: {shim} (not used: no Secure Boot)"));
    }
    let source = match boot.kernel_source {
        KernelSource::Bls => format!("from {ENTRIES_DIR}"),
        KernelSource::Scan => "from /boot".to_string(),
    };
    if boot.kernels.is_empty() {
        out.push(format!("kernels: none {source}"));
    }
    for k in &boot.kernels {
        out.push(format!(
            "kernel {source}: {}{}",
            k.kernel,
            k.initrd
                .as_deref()
                .map(|i| format!(" + {i}"))
                .unwrap_or_default()
        ));
    }
    out.push(format!(
        "grub-mkconfig: {}; grub directory: {}",
        boot.mkconfig.as_deref().unwrap_or("none"),
        boot.grub_dir.as_deref().unwrap_or("none")
    ));
    out.extend(boot.warnings.iter().map(|w| format!("warning: {w}")));
    out
}

#[cfg(test)]
mod tests;
