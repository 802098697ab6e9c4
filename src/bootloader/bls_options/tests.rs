//! The BLS entry rewrite: the plan's root replaces the entry's, the
//! board's arguments are added once, everything else is kept.

use super::rewrite_entry;

const ROOT: &str = "root=UUID=6d6b696d-0000-4000-8000-000000000001";

fn rewrite(entry: &str, board: &str) -> String {
    String::from_utf8(rewrite_entry(entry.as_bytes(), ROOT, board)).unwrap()
}

#[test]
fn fedora_entry_gets_the_plans_root_and_the_board_arguments() {
    let entry = "title Fedora Linux (6.12.0-1.fc41.riscv64)\n\
                 version 6.12.0-1.fc41.riscv64\n\
                 linux /vmlinuz-6.12.0-1.fc41.riscv64\n\
                 initrd /initramfs-6.12.0-1.fc41.riscv64.img\n\
                 options root=UUID=0000-build-host ro rhgb quiet\n\
                 grub_users $grub_users\n";
    assert_eq!(
        rewrite(entry, "console=ttyS0 earlycon"),
        format!(
            "title Fedora Linux (6.12.0-1.fc41.riscv64)\n\
             version 6.12.0-1.fc41.riscv64\n\
             linux /vmlinuz-6.12.0-1.fc41.riscv64\n\
             initrd /initramfs-6.12.0-1.fc41.riscv64.img\n\
             options rhgb quiet console=ttyS0 earlycon {ROOT} ro\n\
             grub_users $grub_users\n"
        )
    );
}

#[test]
fn arguments_the_entry_has_are_not_repeated_and_rewriting_twice_changes_nothing() {
    let entry = "linux /vmlinuz-6.1\noptions rw console=ttyS0 root=/dev/sda2\n";
    let once = rewrite(entry, "console=ttyS0 loglevel=7");
    assert_eq!(
        once,
        format!("linux /vmlinuz-6.1\noptions console=ttyS0 loglevel=7 {ROOT} ro\n")
    );
    assert_eq!(rewrite(&once, "console=ttyS0 loglevel=7"), once);
}

#[test]
fn variables_stay_and_the_root_comes_after_them() {
    let entry = "linux /vmlinuz-5.14\noptions $kernelopts $tuned_params\n";
    assert_eq!(
        rewrite(entry, "console=ttyS0"),
        format!("linux /vmlinuz-5.14\noptions $kernelopts $tuned_params console=ttyS0 {ROOT} ro\n")
    );
}

#[test]
fn several_options_lines_the_last_one_gets_the_root() {
    let entry =
        "options root=LABEL=x quiet\r\nlinux /vmlinuz-6.1\r\noptions ro\r\noptions splash\r\n";
    assert_eq!(
        rewrite(entry, ""),
        format!("options quiet\r\nlinux /vmlinuz-6.1\r\noptions splash {ROOT} ro\r\n")
    );
}

#[test]
fn an_entry_without_options_gets_a_line() {
    assert_eq!(
        rewrite("linux /vmlinuz-6.1", "console=ttyS0"),
        format!("linux /vmlinuz-6.1\noptions console=ttyS0 {ROOT} ro\n")
    );
    assert_eq!(rewrite("", ""), format!("options {ROOT} ro\n"));
}

#[test]
fn text_the_bls_reader_refuses_is_left_as_it_is() {
    let not_utf8 = b"linux /vmlinuz\noptions root=/dev/x \xff\n".to_vec();
    assert_eq!(rewrite_entry(&not_utf8, ROOT, "console=ttyS0"), not_utf8);
    let control = "linux /vmlinuz\noptions root=/dev/x \u{1b}[2J\n";
    assert_eq!(rewrite(control, "console=ttyS0"), control);
}

#[test]
fn only_whole_words_named_options_are_touched() {
    let entry = "optionsx root=/dev/x\n# options root=/dev/y\ntitle options root=/dev/z\n";
    assert_eq!(rewrite(entry, ""), format!("{entry}options {ROOT} ro\n"));
}
