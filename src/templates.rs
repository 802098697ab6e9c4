//! mkimg's text templates and the one place they are rendered: the
//! template sources, a minijinja environment configured the same way for
//! every generator (grub.cfg and extlinux.conf in `bootloader`, start_vm.sh
//! in `outputs`), plus the quoting filters those formats need. A module of
//! its own because both stages use it: neither imports the other for it.
//!
//! The files live in `templates/` at the crate root and are embedded here
//! with `include_str!` (rustc rebuilds when one changes), so an installed or
//! copied binary needs no source tree. A file another program must read
//! ([`MKE2FS_CONF`]) is written into the build's work directory from these
//! bytes by its stage.
//!
//! Settings, and why:
//! - strict undefined: a misspelt variable is an error naming the template
//!   and line, never an empty string in a boot loader config;
//! - no auto-escaping (these are not HTML);
//! - `trim_blocks` + `lstrip_blocks`: `{% %}` lines vanish entirely, so the
//!   template reads like the output;
//! - the trailing newline is kept.
//!
//! Filters: `sh_quote` (POSIX shell word, quoted only when needed),
//! `grub_quote` (GRUB script word, always quoted), `grub_word` (quoted only
//! when needed: GRUB's lexer treats the same characters as the shell).
//! Pure: no I/O, no clock.

use minijinja::syntax::SyntaxConfig;
use minijinja::value::Serde;
use minijinja::{AutoEscape, Environment, UndefinedBehavior, Value};
use serde::Serialize;

/// `templates/grub.cfg.j2`: grub.cfg for `--grub template`.
pub const GRUB_CFG: &str = include_str!("../templates/grub.cfg.j2");
/// `templates/extlinux.conf.j2`.
pub const EXTLINUX_CONF: &str = include_str!("../templates/extlinux.conf.j2");
/// `templates/start_vm.sh.j2`.
pub const START_VM_SH: &str = include_str!("../templates/start_vm.sh.j2");
/// `templates/mke2fs.conf`, not a template: mke2fs reads it through
/// `MKE2FS_CONFIG` (`filesystems::ext4` writes it into the work directory).
pub const MKE2FS_CONF: &str = include_str!("../templates/mke2fs.conf");
/// `templates/genimage-mke2fs.conf`: e2fsprogs' default mke2fs.conf, for
/// genimage.cfg ext images with `use-mke2fs = true`
/// (`filesystems::from_genimage`).
pub const GENIMAGE_MKE2FS_CONF: &str = include_str!("../templates/genimage-mke2fs.conf");
/// `templates/genext2fs-mke2fs.conf`: for genimage.cfg ext images made the
/// genext2fs way (`use-mke2fs = false`), by mke2fs.
pub const GENEXT2FS_MKE2FS_CONF: &str = include_str!("../templates/genext2fs-mke2fs.conf");

/// A template failed to compile or render.
#[derive(Debug, thiserror::Error)]
#[error("template {template}{}: {message}", line.map(|l| format!(" line {l}")).unwrap_or_default())]
pub struct TemplateError {
    /// The template's file name under `templates/`.
    pub template: String,
    /// 1-based line in the template, when minijinja knows it.
    pub line: Option<usize>,
    /// minijinja's description (kind and detail).
    pub message: String,
}

impl TemplateError {
    fn from_minijinja(template: &str, err: &minijinja::Error) -> Self {
        let message = match err.detail() {
            Some(detail) => format!("{}: {detail}", err.kind()),
            None => err.kind().to_string(),
        };
        TemplateError {
            template: template.to_string(),
            line: err.line(),
            message,
        }
    }
}

/// Render `source` (the template named `name`) with `ctx`.
pub fn render_template<C: Serialize>(
    name: &str,
    source: &str,
    ctx: &C,
) -> Result<String, TemplateError> {
    let env = environment().map_err(|e| TemplateError::from_minijinja(name, &e))?;
    env.render_named_str(name, source, Value::from(Serde(ctx)))
        .map_err(|e| TemplateError::from_minijinja(name, &e))
}

fn environment() -> Result<Environment<'static>, minijinja::Error> {
    let mut env = Environment::new();
    env.set_syntax(
        SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .keep_trailing_newline(true)
            .build()?,
    );
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_auto_escape_callback(|_| AutoEscape::None);
    env.add_filter("sh_quote", |s: String| sh_quote(&s));
    env.add_filter("grub_quote", |s: String| grub_quote(&s));
    env.add_filter("grub_word", |s: String| sh_quote(&s));
    Ok(env)
}

/// `text` as one POSIX shell word: unchanged when it only holds characters
/// no shell treats specially, else single-quoted (`'` as `'\''`).
pub fn sh_quote(text: &str) -> String {
    let plain = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c));
    if plain {
        text.to_string()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

/// `text` as one GRUB script word, always single-quoted (GRUB's quoting
/// rules match the shell's here: no escapes inside `'…'`).
pub fn grub_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::{render_template, sh_quote};

    #[derive(serde::Serialize)]
    struct Ctx {
        name: String,
    }

    #[test]
    fn renders_and_trims_block_lines() {
        let out = render_template(
            "t",
            "{% if true %}\n  a {{ name }}\n{% endif %}\nend\n",
            &Ctx { name: "x y".into() },
        )
        .unwrap();
        assert_eq!(out, "  a x y\nend\n");
    }

    #[test]
    fn undefined_variable_names_template_and_line() {
        let err = render_template(
            "grub.cfg.j2",
            "ok\n\n{{ nmae }}\n",
            &Ctx { name: "x".into() },
        )
        .unwrap_err();
        assert_eq!(err.template, "grub.cfg.j2");
        assert_eq!(err.line, Some(3));
        let text = err.to_string();
        assert!(text.starts_with("template grub.cfg.j2 line 3: "), "{text}");
        assert!(text.contains("undefined"), "{text}");
    }

    #[test]
    fn syntax_error_names_line() {
        let err = render_template("x.j2", "a\n{% if %}\n", &Ctx { name: "x".into() }).unwrap_err();
        assert_eq!(err.line, Some(2), "{err}");
    }

    #[test]
    fn sh_quote_quotes_only_when_needed() {
        assert_eq!(sh_quote("-snapshot"), "-snapshot");
        assert_eq!(sh_quote("virt,acpi=off"), "virt,acpi=off");
        assert_eq!(sh_quote("a b"), "'a b'");
        assert_eq!(sh_quote("it's"), r"'it'\''s'");
        assert_eq!(sh_quote("$HOME"), "'$HOME'");
        assert_eq!(sh_quote(""), "''");
    }
}
