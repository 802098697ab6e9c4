#!/bin/bash
# Install every system package mkimg and its test suite need on Debian 12
# (bookworm), then register binfmt_misc for riscv64 and aarch64.
#
# Idempotent and non-interactive: safe to run on every CI run.  Needs root
# (CI runs as root; elsewhere it re-executes itself through sudo).
#
# Why each source:
#   bookworm-backports  e2fsprogs >= 1.47.1 (mke2fs -d file.tar, SOURCE_DATE_EPOCH),
#                       libext2fs-dev/comerr-dev of the same version (build.rs
#                       links the xattr shim against the library mke2fs uses),
#                       qemu 10 (matches the machine's qemu-utils 10.0)
#   trixie (private)    qemu-efi-riscv64 (RISCV_VIRT_CODE.fd), only in trixie;
#                       fetched with a private apt config so the host's
#                       sources stay bookworm.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
    exec sudo -E "$0" "$@"
fi
export DEBIAN_FRONTEND=noninteractive

# The mirror the machine already uses (first URIs: line of the main source).
mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
if [ -z "$mirror" ] && [ -f /etc/apt/sources.list ]; then
    mirror=$(awk '/^deb / && $0 !~ /security/ {print $2; exit}' /etc/apt/sources.list)
fi
mirror=${mirror:-http://deb.debian.org/debian}

backports=/etc/apt/sources.list.d/mkimg-bookworm-backports.sources
if [ ! -f "$backports" ]; then
    cat >"$backports" <<SRC
Types: deb
URIs: $mirror
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
    rm -f /var/lib/apt/periodic/mkimg-updated
fi

stamp=/var/lib/apt/periodic/mkimg-updated
if [ ! -f "$stamp" ] || [ -n "$(find "$stamp" -mmin +720 2>/dev/null)" ]; then
    apt-get update -qq
    mkdir -p "$(dirname "$stamp")" && touch "$stamp"
fi

base_pkgs=(
    gdisk fdisk dosfstools mtools util-linux kmod
    mmdebstrap arch-test debian-archive-keyring ca-certificates
    qemu-efi-aarch64 u-boot-qemu
    genimage genext2fs squashfs-tools zstd xz-utils gzip python3 acl attr file libarchive13
    grub-common grub-efi-amd64-bin shellcheck bc time busybox-static
    binutils procps openssl systemd g++ libcap2-bin groff-base
    bmap-tools android-sdk-libsparse-utils
)
backport_pkgs=(
    e2fsprogs libext2fs-dev comerr-dev qemu-utils qemu-system-misc qemu-system-arm qemu-user-static
)
missing=()
for p in "${base_pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
need_bpo=0
for p in "${backport_pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need_bpo=1
done
# e2fsprogs must be >= 1.47.1 (bookworm has 1.47.0).
if ! dpkg --compare-versions "$(dpkg-query -W -f='${Version}' e2fsprogs 2>/dev/null || echo 0)" ge 1.47.1; then
    need_bpo=1
fi
if [ "$need_bpo" = 1 ]; then
    apt-get install -y -q --no-install-recommends -t bookworm-backports "${backport_pkgs[@]}"
fi

# qemu-efi-riscv64 from trixie through a private apt configuration.
if [ ! -f /usr/share/qemu-efi-riscv64/RISCV_VIRT_CODE.fd ]; then
    priv=/var/cache/mkimg-apt-trixie
    mkdir -p "$priv/lists/partial" "$priv/archives/partial" "$priv/etc"
    cat >"$priv/etc/trixie.sources" <<SRC
Types: deb
URIs: $mirror
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
    opts=(-o "Dir::Etc::SourceList=/dev/null" -o "Dir::Etc::SourceParts=$priv/etc"
          -o "Dir::State::Lists=$priv/lists" -o "Dir::Cache::Archives=$priv/archives"
          -o "Dir::Cache::pkgcache=" -o "Dir::Cache::srcpkgcache=")
    apt-get "${opts[@]}" update -qq
    (cd "$priv/archives" && apt-get "${opts[@]}" download qemu-efi-riscv64)
    dpkg -i "$priv"/archives/qemu-efi-riscv64_*.deb
fi

# binfmt_misc: nothing registers it on these machines (no systemd as PID 1).
if ! mountpoint -q /proc/sys/fs/binfmt_misc; then
    mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
fi
for arch in riscv64 aarch64; do
    entry=/proc/sys/fs/binfmt_misc/qemu-$arch
    if [ -f "$entry" ] && grep -q '^flags:.*F' "$entry"; then
        continue
    fi
    [ -f "$entry" ] && echo -1 >"$entry"
    conf=/usr/lib/binfmt.d/qemu-$arch.conf
    grep -v '^#' "$conf" | grep . >/proc/sys/fs/binfmt_misc/register
    grep -q '^flags:.*F' "$entry" || { echo "qemu-$arch registered without F flag" >&2; exit 1; }
done
# An unprivileged user for the tests that build as someone who is not root
# (tests/mkconfig.rs: `--grub mkconfig` builds and boots without root). No
# home, no login, no groups of its own beyond its primary one.
if ! id mkimg-ci >/dev/null 2>&1; then
    useradd --system --user-group --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin --comment "mkimg test suite, unprivileged" mkimg-ci
fi
# cargo-fuzz for fuzz/smoke.sh (libFuzzer itself is built by libfuzzer-sys with
# g++; the nightly toolchain it needs comes preinstalled on these machines).
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi
echo "setup-debian: all packages present; binfmt riscv64+aarch64 registered (F); user mkimg-ci"
