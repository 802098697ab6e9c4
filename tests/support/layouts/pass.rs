//! The streaming pass of [`super`]: the Debian tarball in, the layout's
//! tarball out, member by member. Extension members (GNU long names, PAX
//! records) are held until the member they describe is decided, then
//! copied as they were; a kept member's header is copied byte for byte,
//! an edited one is a copy of it with the name, link or size changed.

use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::Path;

use tar::{EntryType, Header};

use super::super::run::run_tool;
use super::{bls_entry, grub_efi_path, grub_target, Layout, FEDORA_MACHINE_ID, GRUB_MODULES};

/// What happens to one member.
enum Edit {
    Keep,
    Drop,
    /// Copied with these bytes as its data.
    Replace(Vec<u8>),
    /// Copied, and saved to the module directory for grub-mkimage.
    Capture(String),
    /// Fedora's /etc/machine-id: copied, or replaced when empty.
    MachineId,
}

/// The state of the pass.
struct Pass {
    layout: Layout,
    arch: String,
    /// `usr/lib/grub/<target>/`.
    grub_dir: String,
    modules: tempfile::TempDir,
    /// The header of `/boot`: the template of every new member.
    template: Option<Header>,
    /// `./` when the tarball's names start with it.
    dot: &'static str,
    kernels: Vec<String>,
    have_boot_efi: bool,
    machine_id: Option<String>,
}

pub(super) fn convert(
    debian: &Path,
    arch: &str,
    layout: Layout,
    out: &File,
    grub_mkimage: &Path,
) -> io::Result<()> {
    let input = BufReader::with_capacity(1 << 20, File::open(debian)?);
    let mut archive = tar::Archive::new(input);
    let mut builder = tar::Builder::new(BufWriter::with_capacity(1 << 20, out));
    let mut pass = Pass {
        layout,
        arch: arch.to_string(),
        grub_dir: format!("usr/lib/grub/{}/", grub_target(arch).0),
        modules: tempfile::tempdir()?,
        template: None,
        dot: "",
        kernels: Vec::new(),
        have_boot_efi: false,
        machine_id: None,
    };
    // GNU long names and PAX records come as members of their own before
    // the member they describe: held back until its fate is known.
    let mut pending: Vec<(Header, Vec<u8>)> = Vec::new();
    for entry in archive.entries()?.raw(true) {
        let mut entry = entry?;
        let mut header = entry.header().clone();
        let kind = header.entry_type();
        if matches!(
            kind,
            EntryType::GNULongName | EntryType::GNULongLink | EntryType::XHeader
        ) {
            let mut data = Vec::new();
            entry.read_to_end(&mut data)?;
            pending.push((header, data));
            continue;
        }
        let name = effective_name(&header, &pending);
        if name.starts_with("./") {
            pass.dot = "./";
        }
        let rel = name.trim_start_matches("./").trim_end_matches('/');
        let slash = if name.ends_with('/') { "/" } else { "" };
        let edit = pass.edit(rel, &header);
        if matches!(edit, Edit::Drop) {
            pending.clear();
            continue;
        }
        if let Some(new) = pass.rename(rel) {
            assert!(
                !carries(&pending, "path", EntryType::GNULongName),
                "{name}: a renamed member with a long name"
            );
            set_raw_name(&mut header, &format!("{}{new}{slash}", pass.dot));
        }
        if kind == EntryType::Link {
            let target = header.link_name_bytes().unwrap_or_default();
            let target = String::from_utf8_lossy(&target).into_owned();
            let target_rel = target.trim_start_matches("./");
            if let Some(new) = pass.rename(target_rel) {
                assert!(
                    !carries(&pending, "linkpath", EntryType::GNULongLink),
                    "{name}: a hard link to a renamed member with a long link name"
                );
                set_raw_link(&mut header, &format!("{}{new}", pass.dot));
            }
        }
        for (h, data) in pending.drain(..) {
            builder.append(&h, data.as_slice())?;
        }
        match edit {
            Edit::Drop => unreachable!(),
            Edit::Keep => builder.append(&header, &mut entry)?,
            Edit::Replace(data) => {
                header.set_size(data.len() as u64);
                header.set_cksum();
                builder.append(&header, data.as_slice())?;
            }
            Edit::Capture(file) => {
                let mut data = Vec::new();
                entry.read_to_end(&mut data)?;
                fs::write(pass.modules.path().join(file), &data)?;
                builder.append(&header, data.as_slice())?;
            }
            Edit::MachineId => {
                let mut data = Vec::new();
                entry.read_to_end(&mut data)?;
                let id = String::from_utf8_lossy(&data).trim().to_string();
                if id.is_empty() {
                    let data = format!("{FEDORA_MACHINE_ID}\n");
                    header.set_size(data.len() as u64);
                    header.set_cksum();
                    builder.append(&header, data.as_bytes())?;
                    pass.machine_id = Some(FEDORA_MACHINE_ID.to_string());
                } else {
                    builder.append(&header, data.as_slice())?;
                    pass.machine_id = Some(id);
                }
            }
        }
    }
    pass.append_new_members(&mut builder, grub_mkimage)?;
    builder.into_inner()?.flush()
}

/// The member's name: a GNU long name or PAX `path` before it, else the
/// header's own.
fn effective_name(header: &Header, pending: &[(Header, Vec<u8>)]) -> String {
    let mut name = header.path_bytes().into_owned();
    for (h, data) in pending {
        match h.entry_type() {
            EntryType::GNULongName => {
                name = data.split(|&b| b == 0).next().unwrap_or_default().to_vec();
            }
            EntryType::XHeader => {
                for ext in tar::PaxExtensions::new(data).flatten() {
                    if ext.key() == Ok("path") {
                        name = ext.value_bytes().to_vec();
                    }
                }
            }
            _ => {}
        }
    }
    String::from_utf8_lossy(&name).into_owned()
}

/// Whether a pending member sets `pax_key` (or is of kind `gnu`).
fn carries(pending: &[(Header, Vec<u8>)], pax_key: &str, gnu: EntryType) -> bool {
    pending.iter().any(|(h, data)| {
        h.entry_type() == gnu
            || (h.entry_type() == EntryType::XHeader
                && tar::PaxExtensions::new(data)
                    .flatten()
                    .any(|e| e.key() == Ok(pax_key)))
    })
}

/// Write `name` into the header's name field as is (keeping `./`, which
/// the tar crate's `set_path` would drop).
fn set_raw_name(header: &mut Header, name: &str) {
    assert!(name.len() <= 100, "{name}: longer than a tar name field");
    if let Some(ustar) = header.as_ustar_mut() {
        ustar.prefix = [0; 155];
    }
    let old = header.as_old_mut();
    old.name = [0; 100];
    old.name[..name.len()].copy_from_slice(name.as_bytes());
    header.set_cksum();
}

fn set_raw_link(header: &mut Header, target: &str) {
    assert!(
        target.len() <= 100,
        "{target}: longer than a tar link field"
    );
    let old = header.as_old_mut();
    old.linkname = [0; 100];
    old.linkname[..target.len()].copy_from_slice(target.as_bytes());
    header.set_cksum();
}

impl Pass {
    /// What happens to the member `rel` (its name without `./` and a
    /// trailing `/`); notes what the new members need.
    fn edit(&mut self, rel: &str, header: &Header) -> Edit {
        let kind = header.entry_type();
        let monolithic = format!("{}monolithic", self.grub_dir);
        if !rel.contains('/') && (rel.starts_with("vmlinu") || rel.starts_with("initrd.img")) {
            return Edit::Drop;
        }
        if rel == monolithic || rel.starts_with(&format!("{monolithic}/")) {
            return Edit::Drop;
        }
        // Debian's own menu theme, which works in /boot/grub only: RPM
        // distros' /etc/grub.d has no such script.
        if rel == "etc/grub.d/05_debian_theme" {
            return Edit::Drop;
        }
        match rel {
            "boot" => self.template = Some(header.clone()),
            "boot/efi" => self.have_boot_efi = true,
            "usr/lib/os-release" => return Edit::Replace(self.layout.os_release().into()),
            "etc/os-release" if kind == EntryType::Regular => {
                return Edit::Replace(self.layout.os_release().into())
            }
            "etc/default/grub" => return Edit::Replace(self.layout.default_grub().into()),
            "etc/machine-id" if self.layout == Layout::Fedora => return Edit::MachineId,
            _ => {}
        }
        if let Some(version) = kernel_version(rel) {
            if kind == EntryType::Regular {
                self.kernels.push(version.to_string());
            }
        }
        if let Some(file) = rel.strip_prefix(&self.grub_dir) {
            if kind == EntryType::Regular && !file.contains('/') {
                return Edit::Capture(file.to_string());
            }
        }
        Edit::Keep
    }

    /// The member's new name, if it moves.
    fn rename(&self, rel: &str) -> Option<String> {
        if rel == "usr/sbin/grub-mkconfig" {
            return Some("usr/sbin/grub2-mkconfig".into());
        }
        if rel == "boot/grub" {
            return Some("boot/grub2".into());
        }
        if let Some(rest) = rel.strip_prefix("boot/grub/") {
            return Some(format!("boot/grub2/{rest}"));
        }
        if rel.starts_with("boot/vmlinux-") {
            return kernel_version(rel).map(|v| format!("boot/vmlinuz-{v}"));
        }
        if let Some(version) = rel.strip_prefix("boot/initrd.img-") {
            return Some(format!("boot/initramfs-{version}.img"));
        }
        None
    }

    fn append_new_members<W: Write>(
        &mut self,
        builder: &mut tar::Builder<W>,
        grub_mkimage: &Path,
    ) -> io::Result<()> {
        let template = self.template.clone().expect("the tarball has no /boot");
        assert!(!self.kernels.is_empty(), "no /boot/vmlinu[xz]-<v> kernel");
        self.kernels.sort();
        let vendor = self.layout.vendor();
        let efi = self.make_grub_efi(grub_mkimage);
        let mut new = NewMembers {
            builder,
            template,
            dot: self.dot,
        };
        if !self.have_boot_efi {
            new.dir("boot/efi", 0o700)?;
        }
        new.dir("boot/efi/EFI", 0o700)?;
        new.dir(&format!("boot/efi/EFI/{vendor}"), 0o700)?;
        new.file(&grub_efi_path(self.layout, &self.arch), 0o700, &efi)?;
        let release = self.layout.release().as_bytes();
        new.file("etc/system-release", 0o644, release)?;
        new.file(&format!("etc/{vendor}-release"), 0o644, release)?;
        if self.layout == Layout::Fedora {
            let machine_id = match &self.machine_id {
                Some(id) => id.clone(),
                None => {
                    let data = format!("{FEDORA_MACHINE_ID}\n");
                    new.file("etc/machine-id", 0o444, data.as_bytes())?;
                    FEDORA_MACHINE_ID.to_string()
                }
            };
            new.dir("boot/loader", 0o755)?;
            new.dir("boot/loader/entries", 0o755)?;
            for version in &self.kernels {
                let path = format!("boot/loader/entries/{machine_id}-{version}.conf");
                new.file(&path, 0o644, bls_entry(version).as_bytes())?;
            }
        }
        Ok(())
    }

    /// The grub EFI image from the captured module directory.
    fn make_grub_efi(&self, grub_mkimage: &Path) -> Vec<u8> {
        let dir = self.modules.path();
        for module in GRUB_MODULES {
            let file = dir.join(format!("{module}.mod"));
            assert!(file.is_file(), "{}: missing", file.display());
        }
        assert!(dir.join("kernel.img").is_file(), "no grub kernel.img");
        let out = dir.join("grub.efi");
        let prefix = format!("/EFI/{}", self.layout.vendor());
        let mut args = vec![
            "-O",
            grub_target(&self.arch).0,
            "-d",
            dir.to_str().unwrap(),
            "-p",
            &prefix,
            "-o",
            out.to_str().unwrap(),
        ];
        args.extend(GRUB_MODULES);
        run_tool(grub_mkimage, &args);
        fs::read(&out).unwrap()
    }
}

/// `<v>` of `boot/vmlinux-<v>` or `boot/vmlinuz-<v>`.
fn kernel_version(rel: &str) -> Option<&str> {
    rel.strip_prefix("boot/vmlinux-")
        .or_else(|| rel.strip_prefix("boot/vmlinuz-"))
        .filter(|v| !v.is_empty() && !v.contains('/'))
}

/// Members appended after the stream, each a copy of `/boot`'s header.
struct NewMembers<'a, W: Write> {
    builder: &'a mut tar::Builder<W>,
    template: Header,
    dot: &'static str,
}

impl<W: Write> NewMembers<'_, W> {
    fn header(&self, kind: EntryType, rel: &str, mode: u32, size: u64) -> Header {
        let mut h = self.template.clone();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_size(size);
        h.as_old_mut().linkname = [0; 100];
        let slash = if kind == EntryType::Directory {
            "/"
        } else {
            ""
        };
        set_raw_name(&mut h, &format!("{}{rel}{slash}", self.dot));
        h
    }

    fn dir(&mut self, rel: &str, mode: u32) -> io::Result<()> {
        let h = self.header(EntryType::Directory, rel, mode, 0);
        self.builder.append(&h, io::empty())
    }

    fn file(&mut self, rel: &str, mode: u32, data: &[u8]) -> io::Result<()> {
        let h = self.header(EntryType::Regular, rel, mode, data.len() as u64);
        self.builder.append(&h, data)
    }
}
