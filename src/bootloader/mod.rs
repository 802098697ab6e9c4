//! Boot loader configuration generators (grub.cfg, extlinux.conf): pure
//! functions from the plan and what the rootfs holds to text. Empty until the
//! build stage lands.
