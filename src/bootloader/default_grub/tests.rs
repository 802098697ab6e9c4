//! /etc/default/grub and os-release parsing: Debian's real shapes, quoting,
//! expansion, and the must-fail cases.

use super::{parse_default_grub, parse_os_release};

/// The shape of Debian trixie's /etc/default/grub (grub2-common).
const DEBIAN_TRIXIE: &str = r#"# If you change this file or any /etc/default/grub.d/*.cfg file,
# run 'update-grub' afterwards to update /boot/grub/grub.cfg.

GRUB_DEFAULT=0
GRUB_TIMEOUT=5
GRUB_DISTRIBUTOR=`( . /etc/os-release; echo ${NAME:-Debian} ) 2>/dev/null || echo Debian`
GRUB_CMDLINE_LINUX_DEFAULT="quiet"
GRUB_CMDLINE_LINUX=""

# Uncomment to disable graphical terminal
#GRUB_TERMINAL=console
"#;

const TRIXIE_OS_RELEASE: &str = r#"PRETTY_NAME="Debian GNU/Linux 13 (trixie)"
NAME="Debian GNU/Linux"
VERSION_ID="13"
VERSION="13 (trixie)"
VERSION_CODENAME=trixie
DEBIAN_VERSION_FULL=13.1
ID=debian
HOME_URL="https://www.debian.org/"
"#;

#[test]
fn debian_trixie_with_os_release() {
    let grub = parse_default_grub(DEBIAN_TRIXIE, Some(TRIXIE_OS_RELEASE)).unwrap();
    assert_eq!(grub.default.as_deref(), Some("0"));
    assert_eq!(grub.timeout, Some(5));
    assert_eq!(grub.distributor.as_deref(), Some("Debian GNU/Linux"));
    assert_eq!(grub.cmdline_linux_default, "quiet");
    assert_eq!(grub.cmdline_linux, "");
    assert!(grub.warnings.is_empty(), "{:?}", grub.warnings);
}

#[test]
fn debian_distributor_falls_back_without_os_release() {
    let grub = parse_default_grub(DEBIAN_TRIXIE, None).unwrap();
    assert_eq!(grub.distributor.as_deref(), Some("Debian"));
    // bookworm's form
    let text = "GRUB_DISTRIBUTOR=`lsb_release -i -s 2> /dev/null || echo Debian`\n";
    let grub = parse_default_grub(text, Some(TRIXIE_OS_RELEASE)).unwrap();
    assert_eq!(grub.distributor.as_deref(), Some("Debian"));
}

#[test]
fn quotes_exports_comments_and_expansion() {
    let text = r#"
export GRUB_CMDLINE_LINUX='console=ttyS0 "x"' # trailing comment
GRUB_CMDLINE_LINUX_DEFAULT="$GRUB_CMDLINE_LINUX quiet \"q\" \$HOME"; GRUB_TIMEOUT=-1
GRUB_DISTRIBUTOR=My\ Distro
A=1 B=${A}2 C=${UNSET:-dflt} D=${A-no} E=$(uname -r)
GRUB_DEFAULT="multi
line"
GRUB_GFXMODE=a'b'"c"\
d
"#;
    let grub = parse_default_grub(text, None).unwrap();
    assert_eq!(grub.cmdline_linux, r#"console=ttyS0 "x""#);
    assert_eq!(
        grub.cmdline_linux_default,
        r#"console=ttyS0 "x" quiet "q" $HOME"#
    );
    assert_eq!(grub.timeout, Some(-1));
    assert_eq!(grub.distributor.as_deref(), Some("My Distro"));
    assert_eq!(grub.default.as_deref(), Some("multi\nline"));
    let v = |k: &str| grub.vars.get(k).map(String::as_str);
    assert_eq!(
        (v("A"), v("B"), v("C"), v("D"), v("E")),
        (Some("1"), Some("12"), Some("dflt"), Some("1"), Some(""))
    );
    assert_eq!(v("GRUB_GFXMODE"), Some("abcd"));
    assert_eq!(grub.warnings.len(), 1, "{:?}", grub.warnings);
    assert!(
        grub.warnings[0].contains("line 5: command substitution `uname -r` not run"),
        "{:?}",
        grub.warnings
    );
}

/// `${A:+word}` and `${A+word}` (mkimg's own block in the image's
/// /etc/default/grub uses the first), against what `sh` makes of them.
#[test]
fn alternative_values_match_sh() {
    let text = "E= S=x A=${S:+yes} B=${E:+yes} C=${U:+yes} D=${S+set} F=${E+set} G=${U+set} \
        H=${E:-dflt} I=${E-dflt} J=\"$S${S:+ }more\" K=\"$E${E:+ }more\"\n";
    let grub = parse_default_grub(text, None).unwrap();
    let names = ["A", "B", "C", "D", "F", "G", "H", "I", "J", "K"];
    let ours: Vec<String> = names
        .iter()
        .map(|k| {
            format!(
                "{k}=[{}]",
                grub.vars.get(*k).map_or("<unset>", String::as_str)
            )
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("grub");
    std::fs::write(&file, text).unwrap();
    let script = names
        .iter()
        .map(|k| format!("printf '%s=[%s]\\n' {k} \"${{{k}-<unset>}}\""))
        .collect::<Vec<_>>()
        .join("; ");
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(". \"$1\"; {script}"))
        .arg("sh")
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let theirs: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(ours, theirs);
    assert_eq!(grub.vars["J"], "x more");
    assert_eq!(grub.vars["K"], "more");
}

#[test]
fn non_assignments_are_skipped_with_a_warning() {
    let text = "if [ -f x ]; then\n  GRUB_TIMEOUT=3\nfi\nGRUB_TIMEOUT=oops\n";
    let grub = parse_default_grub(text, None).unwrap();
    assert_eq!(grub.timeout, None);
    let joined = grub.warnings.join("\n");
    assert!(
        joined.contains("line 1: `if` is not an assignment"),
        "{joined}"
    );
    assert!(joined.contains("line 3: `fi`"), "{joined}");
    assert!(
        joined.contains("GRUB_TIMEOUT=\"oops\" is not a number"),
        "{joined}"
    );
}

#[test]
fn unterminated_quotes_fail_with_line() {
    let err = parse_default_grub("A=1\nGRUB_CMDLINE_LINUX=\"console=ttyS0\n", None).unwrap_err();
    assert_eq!(err.line, 2);
    assert_eq!(
        err.to_string(),
        "/etc/default/grub line 2: unterminated \" quote"
    );
    let err = parse_default_grub("X='a\n", None).unwrap_err();
    assert_eq!(err.line, 1);
    let err = parse_default_grub("X=`a\n", None).unwrap_err();
    assert!(err.message.contains("command substitution"), "{err}");
    let err = parse_default_grub("ok=1", Some("NAME=\"Debian\n")).unwrap_err();
    assert_eq!(err.file, "/etc/os-release");
}

#[test]
fn os_release_values() {
    let vars = parse_os_release(TRIXIE_OS_RELEASE).unwrap();
    assert_eq!(vars["NAME"], "Debian GNU/Linux");
    assert_eq!(vars["VERSION_CODENAME"], "trixie");
    assert_eq!(vars["HOME_URL"], "https://www.debian.org/");
}
