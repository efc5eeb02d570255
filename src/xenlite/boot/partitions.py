"""Where a guest disk's filesystems start, in the order pygrub tries them.

The layouts are two fixed structures (the MBR's four 16-byte entries with their chain of
extended boot records, and GPT's header and entry array), read here with ``struct``: the
point is pygrub's order and fallbacks, which no partition library reproduces.

- No MBR signature: the whole disk is one filesystem (offset 0).
- An MBR: its partitions in table order (Debian's pygrub, on Python 3, never moves the
  active one first: its byte comparison never matches), then, beyond pygrub, the logical
  partitions of an extended one. A protective MBR (type 0xee) means GPT: its used entries.
- A hybrid ISO (an ISO 9660 image with an MBR for USB sticks) is also tried at 0 first; pygrub
  means to, but its str/bytes comparison on Python 3 never sees it.
- An MBR with no usable entry (GRUB's boot code carries the signature too): offset 0.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from xenlite.boot.disk import Disk

SECTOR = 512
_EXTENDED = {0x05, 0x0F, 0x85}
_GPT_PROTECTIVE = 0xEE
# Linux swap (also Solaris x86's old id, which pygrub probes for a VTOC and then skips).
_SKIPPED = {0x82}


@dataclass(frozen=True, slots=True)
class Partition:
    """A place a filesystem may start: ``number`` as Linux names it (1 for xvda1), 0 for the
    whole disk; ``offset`` in bytes."""

    number: int
    offset: int
    size: int | None = None
    table: str = ""

    def describe(self) -> str:
        if self.number == 0:
            return "the whole disk" if not self.table else "offset 0 (ISO 9660)"
        return f"partition {self.number} ({self.table}, at byte {self.offset})"


def _entries(sector: bytes) -> list[tuple[int, int, int]]:
    """(type, first LBA, sector count) of an MBR/EBR's four entries."""
    found = []
    for slot in range(4):
        entry = sector[446 + 16 * slot : 462 + 16 * slot]
        kind = entry[4]
        first, count = struct.unpack("<II", entry[8:16])
        found.append((kind, first, count))
    return found


def _logical(disk: Disk, extended_start: int) -> list[Partition]:
    found: list[Partition] = []
    ebr = extended_start
    seen = set()
    number = 5
    while ebr not in seen and len(found) < 128:
        seen.add(ebr)
        sector = disk.read(ebr * SECTOR, SECTOR)
        if len(sector) < SECTOR or sector[510:512] != b"\x55\xaa":
            break
        (kind, first, count), (next_kind, next_first, _), *_ = _entries(sector)
        if first and kind and kind not in _SKIPPED:
            found.append(Partition(number, (ebr + first) * SECTOR, count * SECTOR, "msdos"))
        number += 1
        if next_kind not in _EXTENDED or not next_first:
            break
        ebr = extended_start + next_first
    return found


def _gpt(disk: Disk) -> list[Partition]:
    header = disk.read(SECTOR, SECTOR)
    if header[:8] != b"EFI PART":
        return []
    entries_lba, count, entry_size = struct.unpack("<QII", header[72:88])
    if not 0 < count <= 1024 or not 128 <= entry_size <= 4096:
        return []
    table = disk.read(entries_lba * SECTOR, count * entry_size)
    found = []
    for index in range(count):
        entry = table[index * entry_size : (index + 1) * entry_size]
        if len(entry) < 48 or entry[:16] == bytes(16):
            continue
        first, last = struct.unpack("<QQ", entry[32:48])
        found.append(Partition(index + 1, first * SECTOR, (last - first + 1) * SECTOR, "gpt"))
    return found


def partitions(disk: Disk) -> list[Partition]:
    """The places to look for a boot filesystem, in pygrub's order."""
    head = disk.read(0, 0x8006)
    if len(head) < SECTOR or head[510:512] != b"\x55\xaa":
        return [Partition(0, 0)]
    found: list[Partition] = []
    if head[0x8001:0x8006] == b"CD001":
        found.append(Partition(0, 0, table="hybrid"))
    extended = []
    for slot, (kind, first, count) in enumerate(_entries(head), start=1):
        if first == 0:
            continue
        if kind == _GPT_PROTECTIVE:
            found.extend(_gpt(disk))
            break
        if kind in _EXTENDED:
            extended.append(first)
            continue
        if kind in _SKIPPED:
            continue
        found.append(Partition(slot, first * SECTOR, count * SECTOR, "msdos"))
    for start in extended:
        found.extend(_logical(disk, start))
    return found or [Partition(0, 0)]
