//! `mkimg binfmt status|register|unregister`: see and fix the kernel's
//! binfmt_misc entries that let target programs run in a chroot.

use std::path::Path;

use anyhow::{bail, Result};

use crate::arch::Arch;
use crate::cli::{BinfmtAction, BinfmtArgs};
use crate::host::binfmt::persist::persist_outcome;
use crate::host::binfmt::{
    ensure_mounted, register, status_in, unregister, KernelBinfmt, RegisterOutcome,
    DEBIAN_CONF_DIR, DEFAULT_DIR,
};

pub fn run(args: &BinfmtArgs) -> Result<()> {
    let dir = Path::new(DEFAULT_DIR);
    match &args.action {
        BinfmtAction::Status { arches, json } => {
            let asked: Vec<Arch> = if arches.is_empty() {
                Arch::all().to_vec()
            } else {
                arches.clone()
            };
            let report = status_in(dir, &args.sysroot, &asked)?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                println!(
                    "binfmt_misc at {}: {}",
                    dir.display(),
                    if report.mounted {
                        "mounted"
                    } else {
                        "NOT mounted"
                    }
                );
                for arch in &report.arches {
                    let usable = if arch.usable_in_chroot() {
                        "usable"
                    } else if is_native(arch.arch) {
                        "native"
                    } else {
                        "NOT usable"
                    };
                    println!(
                        "{:<12} {:<10} entry={} flags={} F={} interpreter={} exists={} static={} reboot={}",
                        arch.arch.as_str(),
                        usable,
                        arch.entry.as_deref().unwrap_or("-"),
                        arch.flags.as_deref().unwrap_or("-"),
                        if arch.has_f { "yes" } else { "no" },
                        arch.interpreter
                            .as_ref()
                            .map(|p| p.display().to_string())
                            .unwrap_or("-".into()),
                        if arch.interpreter_exists { "yes" } else { "no" },
                        match arch.interpreter_static {
                            Some(true) => "yes",
                            Some(false) => "no",
                            None => "-",
                        },
                        match (&arch.entry, &arch.persistent) {
                            (None, _) => "-".to_string(),
                            (Some(_), Some(file)) => file.display().to_string(),
                            (Some(_), None) => "lost".to_string(),
                        },
                    );
                }
            }
            // Only explicitly asked architectures decide the exit status.
            let failing: Vec<&str> = report
                .arches
                .iter()
                .filter(|a| !arches.is_empty() && !a.usable_in_chroot() && !is_native(a.arch))
                .map(|a| a.arch.as_str())
                .collect();
            if !failing.is_empty() {
                bail!(
                    "cannot run {} programs in a chroot; fix: `sudo mkimg binfmt register {}`",
                    failing.join(", "),
                    failing.join(" ")
                );
            }
        }
        BinfmtAction::Register {
            arches,
            persist,
            interpreter,
            force,
        } => {
            ensure_mounted(dir)?;
            let fs = KernelBinfmt::new(dir);
            for &arch in arches {
                let outcome = register(
                    &fs,
                    arch,
                    interpreter.as_deref(),
                    *force,
                    Path::new(DEBIAN_CONF_DIR),
                )?;
                match &outcome {
                    RegisterOutcome::AlreadyRegistered { entry } => {
                        println!("{arch}: already registered as {entry} (flags include F)")
                    }
                    RegisterOutcome::Registered {
                        entry,
                        line,
                        removed,
                    } => {
                        for old in removed {
                            println!("{arch}: removed {old}");
                        }
                        println!("{arch}: registered {entry}: {line}");
                    }
                }
                if *persist {
                    let file = persist_outcome(dir, &args.sysroot, &outcome)?;
                    println!("{arch}: registered again at boot by {}", file.display());
                }
            }
        }
        BinfmtAction::Unregister { arches } => {
            let fs = KernelBinfmt::new(dir);
            for &arch in arches {
                if unregister(&fs, arch)? {
                    println!("{arch}: unregistered");
                } else {
                    println!("{arch}: no entry");
                }
            }
        }
    }
    Ok(())
}

/// The host runs its own architecture's programs without emulation.
fn is_native(arch: Arch) -> bool {
    arch.as_str() == std::env::consts::ARCH
}
