#!/usr/bin/python3
"""Rewrites a torch.save zip with zip64 records throughout, as a writer does for an
archive past 4 GB (torch.save's own writer, miniz, switches to them there):

  /usr/bin/python3 scripts/zip64.py IN.bin OUT.bin

Entries keep their order (torch.save's: data.pkl, then storages sorted by key as
strings) and their data, aligned to 64 bytes as torch.save aligns them. Every 32-bit
size and offset field is all ones and the real values are in zip64 extra fields: in
the local headers (sizes; the CRC and sizes follow the data in a zip64 data
descriptor, flag bit 3, as torch.save writes them), in the central directory (sizes
and offset), then a zip64 end-of-central-directory record and its locator before
the classic end record, whose counts are 0xFFFF. Used by scripts/make_fixtures.py
and scripts/make_checkpoint.py --format bin16-zip64; Python's zipfile reads the result.
"""
import os
import struct
import sys
import zipfile

ONES32, ONES16 = 0xFFFFFFFF, 0xFFFF
ALIGN = 64


def repack_zip64(src, dst):
    with zipfile.ZipFile(src) as z:
        entries = [(i.filename, z.read(i.filename)) for i in z.infolist()]
    out, central = bytearray(), bytearray()
    for name, data in entries:
        raw = name.encode("utf-8")
        crc = zipfile.crc32(data) & ONES32
        offset = len(out)
        z64 = struct.pack("<HHQQ", 1, 16, len(data), len(data))
        # padding extra field ("FB", as torch.save) so the data starts on a 64-byte boundary
        pad = -(offset + 30 + len(raw) + len(z64) + 4) % ALIGN
        extra = z64 + struct.pack("<HH", 0x4246, pad) + b"Z" * pad
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, 45, 0x0808, 0, 0, 0, 0, ONES32, ONES32, len(raw), len(extra))
        out += raw + extra + data
        out += struct.pack("<IIQQ", 0x08074B50, crc, len(data), len(data))
        cextra = struct.pack("<HHQQQ", 1, 24, len(data), len(data), offset)
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 45, 45, 0x0808, 0, 0, 0, crc, ONES32, ONES32,
                               len(raw), len(cextra), 0, 0, 0, 0, ONES32)
        central += raw + cextra
    cd_off, n = len(out), len(entries)
    out += central
    z64_eocd = len(out)
    out += struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, n, n, len(central), cd_off)
    out += struct.pack("<IIQI", 0x07064B50, 0, z64_eocd, 1)
    out += struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, ONES16, ONES16, ONES32, ONES32, 0)
    with open(dst + ".tmp", "wb") as f:
        f.write(out)
    with zipfile.ZipFile(dst + ".tmp") as z:  # an independent reader agrees
        if [(i.filename, z.read(i.filename)) for i in z.infolist()] != entries:
            sys.exit("zip64: the rewritten archive does not read back the same")
    os.replace(dst + ".tmp", dst)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__.split("\n\n")[1])
    repack_zip64(sys.argv[1], sys.argv[2])
