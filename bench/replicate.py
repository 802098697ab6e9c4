#!/usr/bin/env python3
"""Make a K-times larger rootfs tarball from a rootfs tarball, by streaming.

Usage: bench/replicate.py IN.tar OUT.tar [K]      (K defaults to 4)

OUT holds every entry of IN once, at its own path (so it is still the same
bootable rootfs: /etc, /boot, /usr… are untouched), plus K-1 copies of every
entry under /replica1/, /replica2/, … Each copy sits right after its
original, so directories still come before what they hold and a hard link's
target before the link (links are rewritten to point inside their copy).
Owners, modes, times and pax headers (xattrs, ACLs) are kept.

One pass, constant memory but for one file's data at a time. Writes
OUT.tmp.PID and renames it, so a reader never sees half a tarball.
"""

import io
import os
import sys
import tarfile


def copy_name(name: str, k: int) -> str:
    """`./usr/bin/x` -> `./replica2/usr/bin/x`; `./` -> `./replica2/`."""
    rel = name[2:] if name.startswith("./") else name.lstrip("/")
    rel = "" if rel in (".", "./") else rel
    return f"./replica{k}/{rel}" if rel else f"./replica{k}/"


def replicate(src: str, dst: str, factor: int) -> tuple[int, int]:
    tmp = f"{dst}.tmp.{os.getpid()}"
    entries = 0
    data_bytes = 0
    try:
        with tarfile.open(src, "r|") as tin, tarfile.open(
            tmp, "w", format=tarfile.PAX_FORMAT
        ) as tout:
            for member in tin:
                data = tin.extractfile(member).read() if member.isfile() else None
                for k in range(factor):
                    m = member if k == 0 else copy_member(member, k)
                    tout.addfile(m, io.BytesIO(data) if data is not None else None)
                    entries += 1
                    data_bytes += len(data) if data is not None else 0
        os.rename(tmp, dst)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return entries, data_bytes


def copy_member(member: tarfile.TarInfo, k: int) -> tarfile.TarInfo:
    m = tarfile.TarInfo(copy_name(member.name, k))
    for attr in ("mode", "uid", "gid", "size", "mtime", "type", "uname", "gname",
                 "devmajor", "devminor", "linkname"):
        setattr(m, attr, getattr(member, attr))
    if member.islnk():
        m.linkname = copy_name(member.linkname, k)
    m.pax_headers = {
        key: value for key, value in member.pax_headers.items()
        if key not in ("path", "linkpath")
    }
    return m


def main() -> int:
    if len(sys.argv) not in (3, 4):
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    factor = int(sys.argv[3]) if len(sys.argv) == 4 else 4
    entries, data_bytes = replicate(sys.argv[1], sys.argv[2], factor)
    print(f"replicate.py: wrote {sys.argv[2]}: {entries} entries, "
          f"{data_bytes >> 20} MiB of file data ({factor}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
