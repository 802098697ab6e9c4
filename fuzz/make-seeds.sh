#!/bin/bash
# Rebuilds the seed corpora under fuzz/corpus/<target>/ from scratch,
# byte-for-byte reproducibly, and writes fuzz/corpus/SEEDS.txt: one line per
# seed saying what it is for.
#   board_plan        the real boards/*/board.toml
#   rootfs_pass       small tars from examples/make_seeds.rs (tar crate) and
#                     GNU tar (sparse files, which the tar crate cannot write)
#   partition_tables  GPT / MBR / hybrid images from mkimg's own writers
#   ebr_chain         MBR images with an extended partition (python3 below)
#   qcow2_inspect     those images through mkimg's qcow2 writer
#   genimage_config   the genimage.cfg files under fuzz/seeds/genimage_config/
#   grub_image        a grub-mkimage x86_64-efi image, whole and cut down to
#                     its headers and mods section
#   bmap_read         mkimg's own .bmap (2.0 and as 1.4), and bmaptool
#                     create's of a small sparse file
#   ld_so_cache       glibc's cache layouts, written by python3 below
# Needs: cargo (stable is enough), GNU tar, truncate, python3, grub-mkimage
# with /usr/lib/grub/x86_64-efi (grub-common, grub-efi-amd64-bin),
# bmaptool (bmap-tools).
set -euo pipefail
cd "$(dirname "$0")"
corpus=$PWD/corpus
rm -rf "$corpus"
mkdir -p "$corpus"/{board_plan,rootfs_pass,partition_tables,ebr_chain,qcow2_inspect,grub_image,genimage_config,bmap_read,ld_so_cache}
list=$corpus/SEEDS.txt
: >"$list"

for board in ../boards/*/board.toml; do
    name=$(basename "$(dirname "$board")")
    cp "$board" "$corpus/board_plan/$name.toml"
    echo "board_plan/$name.toml: the shipped board $name" >>"$list"
done

for cfg in seeds/genimage_config/*.cfg; do
    name=$(basename "$cfg")
    cp "$cfg" "$corpus/genimage_config/$name"
    echo "genimage_config/$name: $(sed -n '1s/^# //p' "$cfg")" >>"$list"
done

cargo run --quiet --locked --example make_seeds -- "$corpus" >>"$list"

# Sparse members: GNU tar writes them (old GNU 'S' headers and PAX 0.1/1.0).
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/root/var"
printf 'head' >"$work/root/var/sparse"
truncate -s 64K "$work/root/var/sparse"
printf 'tail' >>"$work/root/var/sparse"
touch -d @1600000000 "$work/root/var/sparse" "$work/root/var"
sparse() { # NAME FORMAT [TAR OPTIONS...]
    local name=$1 format=$2
    shift 2
    tar -C "$work/root" -b1 --sparse --format="$format" "$@" \
        --sort=name --owner=0 --group=0 --numeric-owner --mtime=@1600000000 \
        -cf "$work/$name.tar" var
    # GNU tar names PAX sparse members GNUSparseFile.<its PID>: fix it to 0.
    python3 - "$work/$name.tar" <<'PY'
import re, sys
data = bytearray(open(sys.argv[1], "rb").read())
for off in range(0, len(data), 512):
    block = data[off:off + 512]
    name = bytes(block[:100])
    new = re.sub(rb"GNUSparseFile\.[0-9]+", b"GNUSparseFile.0", name.rstrip(b"\0")).ljust(100, b"\0")
    if new != name and block[257:262] == b"ustar":
        block[:100] = new
        block[148:156] = b" " * 8
        block[148:156] = b"%06o\0 " % sum(block)
        data[off:off + 512] = block
open(sys.argv[1], "wb").write(data)
PY
    { printf '\0'; cat "$work/$name.tar"; } >"$corpus/rootfs_pass/$name.tar"
}
sparse sparse-gnu gnu
echo "rootfs_pass/sparse-gnu.tar: GNU tar sparse member, old GNU 'S' header" >>"$list"
pax=--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime
sparse sparse-pax-0.1 pax --sparse-version=0.1 "$pax"
echo "rootfs_pass/sparse-pax-0.1.tar: PAX sparse 0.1 (GNU.sparse.map in the header)" >>"$list"
sparse sparse-pax-1.0 pax --sparse-version=1.0 "$pax"
echo "rootfs_pass/sparse-pax-1.0.tar: PAX sparse 1.0 (map at the start of the data)" >>"$list"

# EBR chains: three logical partitions (as mkimg writes them), and a chain
# whose last link points back to the first EBR.
ebr_seed() { # NAME LOOP(0|1)
    python3 - "$corpus/ebr_chain/$1" "$2" <<'PY'
import struct, sys
d = bytearray(64 * 512)
def entry(lba, slot, typ, start, n):
    struct.pack_into("<B3sB3sII", d, lba * 512 + 446 + 16 * slot, 0, b"\0" * 3, typ, b"\0" * 3, start, n)
    d[lba * 512 + 510:lba * 512 + 512] = b"\x55\xaa"
entry(0, 0, 0x83, 2, 6)
entry(0, 1, 0x0F, 8, 56)
ebrs = [8, 24, 40]
for i, e in enumerate(ebrs):
    entry(e, 0, 0x83, 2, 8)
    if i + 1 < len(ebrs):
        entry(e, 1, 0x0F, ebrs[i + 1] - 8, 10)
if sys.argv[2] == "1":
    entry(40, 1, 0x05, 0, 10)
open(sys.argv[1], "wb").write(d)
PY
}
ebr_seed three-logical 0
echo "ebr_chain/three-logical: MBR, one primary + extended (0x0F) with three logical partitions" >>"$list"
ebr_seed loop 1
echo "ebr_chain/loop: the same chain with the last EBR linking back to the first" >>"$list"

# GRUB images: grub-mkimage output is reproducible (no timestamps).
printf 'set timeout=1\n' >"$work/seed.cfg"
grub-mkimage -O x86_64-efi -p '(hd0,gpt1)/EFI/x' -c "$work/seed.cfg" \
    -o "$corpus/grub_image/x86_64-fat.efi" fat
echo "grub_image/x86_64-fat.efi: grub-mkimage x86_64-efi: prefix (hd0,gpt1)/EFI/x, embedded config, module fat (+ fshelp)" >>"$list"
# The same image with .text/.data dropped: only the PE headers and the mods
# section (moved to follow them), so mutations hit what the parser reads.
python3 - "$corpus/grub_image/x86_64-fat.efi" "$corpus/grub_image/x86_64-fat-mods-only.efi" <<'PY'
import struct, sys
d = open(sys.argv[1], "rb").read()
pe = struct.unpack_from("<I", d, 0x3c)[0]
count = struct.unpack_from("<H", d, pe + 6)[0]
table = pe + 24 + struct.unpack_from("<H", d, pe + 20)[0]
head = bytearray(d[:0x400])
for i in range(count):
    sh = table + 40 * i
    if d[sh:sh + 8] == b"mods\0\0\0\0":
        size, ptr = struct.unpack_from("<II", d, sh + 16)
        struct.pack_into("<I", head, sh + 20, len(head))
        open(sys.argv[2], "wb").write(bytes(head) + d[ptr:ptr + size])
PY
echo "grub_image/x86_64-fat-mods-only.efi: that image's PE headers + mods section only (module info, ELF module, config, prefix)" >>"$list"

# bmaptool's own output: a 64 KiB sparse file with two data extents.
# bmaptool writes no time or path into the map, so the seed is reproducible
# (on a file system with 4 KiB blocks).
truncate -s 64K "$work/sparse.img"
printf 'head' | dd of="$work/sparse.img" conv=notrunc status=none
printf 'tail' | dd of="$work/sparse.img" bs=1 seek=40000 conv=notrunc status=none
bmaptool create "$work/sparse.img" >"$corpus/bmap_read/bmaptool-create.bmap"
echo "bmap_read/bmaptool-create.bmap: bmaptool create of a 64 KiB sparse file with data in blocks 0 and 9" >>"$list"

# ld.so.cache in glibc's two layouts (dl-cache.h), entries of three
# architectures (flags: riscv64 lp64d 0x1003, aarch64 0x0a03, x86-64 0x0303).
python3 - "$corpus/ld_so_cache" <<'PY'
import struct, sys
def new(entries):
    strings, keys = b"", []
    base = 48 + 24 * len(entries)
    for _, name in entries:
        keys.append(base + len(strings))
        strings += name + b"\0"
    head = b"glibc-ld.so.cache1.1" + struct.pack("<II", len(entries), len(strings)) + bytes(20)
    body = b"".join(struct.pack("<iIIIQ", f, k, k, 0, 0) for (f, _), k in zip(entries, keys))
    return head + body + strings
three = new([(0x1003, b"libc.so.6"), (0x0a03, b"libc.so.6"), (0x0303, b"libc.so.6")])
open(sys.argv[1] + "/new-three-arches", "wb").write(three)
old = b"ld.so-1.7.0\0" + struct.pack("<I", 1) + struct.pack("<iII", 0x1003, 0, 0)
compat = old + bytes(4) + new([(0x1003, b"libm.so.6"), (0x0303, b"libz.so.1")])
open(sys.argv[1] + "/compat-old-then-new", "wb").write(compat)
PY
echo "ld_so_cache/new-three-arches: glibc-ld.so.cache1.1 with libc.so.6 for riscv64, aarch64 and x86-64" >>"$list"
echo "ld_so_cache/compat-old-then-new: ld.so-1.7.0 with one riscv64 entry, then the new layout (riscv64, x86-64)" >>"$list"

echo "wrote $(grep -c . "$list") seeds under $corpus"
