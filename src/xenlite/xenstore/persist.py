"""``--persist FILE``: the tree, permissions and introduced domains kept on disk.

Beyond Xen (whose xenstored keeps everything in memory). Two files:

- ``FILE``: a snapshot, a complete dump of the store. It is only ever replaced atomically
  (``base.files.write_atomic``: a temporary file beside it, fsync, rename, fsync of the
  directory).
- ``FILE.journal``: an append-only journal of every change since that snapshot. Each record
  carries a CRC32, so a record torn by a crash is recognised and ignored with everything after
  it. Both files start with the snapshot's generation number; a journal whose generation does
  not match the snapshot's is stale (a crash hit between the two steps of a compaction) and is
  ignored, because the snapshot already holds its changes.

fsync policy: the records of a request are written to the journal (``write(2)``) before the
daemon sends its reply, so a reply the client has seen is in the kernel's page cache and
survives ``kill -9`` of the daemon at any moment. The journal is fdatasync'd at most once per
second (group commit) when it has changed, and at shutdown; after a power failure or kernel
crash up to the last second of acknowledged changes may be lost, never the consistency of the
files. At start-up the daemon loads snapshot + journal and compacts them into a new snapshot;
it compacts again whenever the journal outgrows 16 MiB and twice the snapshot.
"""

from __future__ import annotations

import logging
import os
import struct
import zlib
from pathlib import Path

from xenlite.base.errors import XenStoreError
from xenlite.base.files import fsync_directory, write_atomic, write_synced
from xenlite.xenstore.domains import Domain, Domains
from xenlite.xenstore.perms import ROOT_PERMS, parse_perms
from xenlite.xenstore.tree import Node, Record, Tree, next_gen, walk
from xenlite.xenstore.wire import split_strings

log = logging.getLogger("xenlite.xenstore")

MAGIC = b"XLXSTOR1"
_FILE_HEADER = struct.Struct("<8sQ")  # magic, generation
_REC_HEADER = struct.Struct("<BHII")  # kind, path length, value length, perms length
_CRC = struct.Struct("<I")

KIND_SET = 1  # path, value, perms: a node with this content exists
KIND_DEL = 2  # path: the subtree is gone
KIND_DOMAINS = 3  # value: the whole table of introduced domains, one "domid mfn port target" line

COMPACT_MIN = 16 * 1024 * 1024


def encode_record(kind: int, path: bytes, value: bytes = b"", perms: bytes = b"") -> bytes:
    body = _REC_HEADER.pack(kind, len(path), len(value), len(perms)) + path + value + perms
    return body + _CRC.pack(zlib.crc32(body))


def encode_records(records: list[Record]) -> bytes:
    parts = []
    for path, node in records:
        if node is None:
            parts.append(encode_record(KIND_DEL, path))
        else:
            parts.append(encode_record(KIND_SET, path, node.value, node.perms.wire))
    return b"".join(parts)


def encode_domains(domains: Domains) -> bytes:
    lines = [
        f"{d.domid} {d.mfn} {d.port} {'' if d.target is None else d.target}".strip()
        for d in domains.by_id.values()
        if d.domid != 0
    ]
    return encode_record(KIND_DOMAINS, b"", "\n".join(lines).encode())


def decode_records(data: bytes, start: int) -> tuple[list[tuple[int, bytes, bytes, bytes]], int]:
    """Records from ``data[start:]`` up to the first torn or corrupt one; returns them and the
    offset where valid data ends."""
    out = []
    pos = start
    hsize = _REC_HEADER.size
    while pos + hsize <= len(data):
        kind, plen, vlen, permlen = _REC_HEADER.unpack_from(data, pos)
        end = pos + hsize + plen + vlen + permlen
        if end + 4 > len(data) or kind not in (KIND_SET, KIND_DEL, KIND_DOMAINS):
            break
        (crc,) = _CRC.unpack_from(data, end)
        if crc != zlib.crc32(data[pos:end]):
            break
        body = pos + hsize
        out.append(
            (
                kind,
                data[body : body + plen],
                data[body + plen : body + plen + vlen],
                data[body + plen + vlen : end],
            )
        )
        pos = end + 4
    return out, pos


class Persistence:
    """Snapshot + journal for one ``--persist FILE``."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.journal_path = Path(f"{self.path}.journal")
        self.generation = 0
        self.snapshot_size = 0
        self.journal_size = 0
        self._fd: int | None = None
        self._buffer: list[bytes] = []
        self._unsynced = False

    # -- loading ---------------------------------------------------------------------------

    def load(self) -> tuple[Tree, Domains]:
        """The store as last saved (a fresh one if there is nothing on disk).

        :raise XenStoreError: EIO when the snapshot is unreadable or corrupt.
        """
        tree = Tree()
        domains = Domains()
        if not self.path.exists():
            return tree, domains
        data = self._read(self.path)
        _magic, generation = _FILE_HEADER.unpack_from(data)
        records, end = decode_records(data, _FILE_HEADER.size)
        if end != len(data):
            raise XenStoreError(
                f"XenStore snapshot {self.path}",
                "EIO",
                fix="the file is corrupt; restore a backup or move it away to start empty",
            )
        self.generation = generation
        if records:
            _reset_root(tree)
        for kind, path, value, perms in records:
            self._apply(tree, domains, kind, path, value, perms)
        if self.journal_path.exists():
            jdata = self._read(self.journal_path)
            if len(jdata) >= _FILE_HEADER.size:
                jmagic, jgen = _FILE_HEADER.unpack_from(jdata)
                if jmagic == MAGIC and jgen == generation:
                    jrecords, jend = decode_records(jdata, _FILE_HEADER.size)
                    for kind, path, value, perms in jrecords:
                        self._apply(tree, domains, kind, path, value, perms)
                    if jend != len(jdata):
                        log.warning(
                            "%s: ignored %d bytes of a torn record at the end",
                            self.journal_path,
                            len(jdata) - jend,
                        )
                else:
                    log.info("%s: stale journal ignored", self.journal_path)
        return tree, domains

    def _read(self, path: Path) -> bytes:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise XenStoreError(f"XenStore state file {path}", "EIO", fix=str(exc)) from exc
        if len(data) < _FILE_HEADER.size or data[:8] != MAGIC:
            raise XenStoreError(
                f"XenStore state file {path}",
                "EIO",
                fix="not a xenlite --persist file; choose another path",
            )
        return data

    @staticmethod
    def _apply(
        tree: Tree, domains: Domains, kind: int, path: bytes, value: bytes, perms: bytes
    ) -> None:
        if kind == KIND_SET:
            tree.put(path, value, parse_perms(split_strings(perms)))
        elif kind == KIND_DEL:
            tree.delete(path)
        else:
            domains.by_id = {0: domains.by_id[0]}
            for line in value.decode().splitlines():
                parts = line.split()
                target = int(parts[3]) if len(parts) > 3 else None
                dom = Domain(int(parts[0]), int(parts[1]), int(parts[2]), target)
                domains.by_id[dom.domid] = dom

    # -- writing ---------------------------------------------------------------------------

    def compact(self, tree: Tree, domains: Domains) -> None:
        """Write a new snapshot of ``tree`` and start an empty journal for it."""
        self.close()
        generation = self.generation + 1
        parts = [_FILE_HEADER.pack(MAGIC, generation)]
        for path, node in walk(tree.root):
            parts.append(encode_record(KIND_SET, path, node.value, node.perms.wire))
        parts.append(encode_domains(domains))
        data = b"".join(parts)
        write_atomic(self.path, data, fix=f"check that {self.path.parent} is writable")
        self.generation = generation
        self.snapshot_size = len(data)
        header = _FILE_HEADER.pack(MAGIC, generation)
        write_synced(self.journal_path, header)
        fsync_directory(self.path.parent)
        self._fd = os.open(self.journal_path, os.O_WRONLY | os.O_APPEND)
        self.journal_size = len(header)
        self._unsynced = False

    def append(self, records: list[Record]) -> None:
        """Queue the records of one request (written by ``flush``)."""
        self._buffer.append(encode_records(records))

    def append_domains(self, domains: Domains) -> None:
        self._buffer.append(encode_domains(domains))

    def flush(self) -> None:
        """Write queued records to the journal: called before replies go out."""
        if not self._buffer:
            return
        data = b"".join(self._buffer)
        self._buffer.clear()
        if self._fd is None:
            raise XenStoreError(
                f"XenStore journal {self.journal_path}", "EIO", fix="call compact() first"
            )
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        self.journal_size += len(data)
        self._unsynced = True

    def needs_compaction(self) -> bool:
        return self.journal_size > max(COMPACT_MIN, 2 * self.snapshot_size)

    def sync(self) -> None:
        """fdatasync the journal if it changed since the last sync."""
        if self._fd is not None and self._unsynced:
            os.fdatasync(self._fd)
            self._unsynced = False

    def close(self) -> None:
        if self._fd is not None:
            self.flush()
            self.sync()
            os.close(self._fd)
            self._fd = None


def _reset_root(tree: Tree) -> None:
    """Start from an empty root (the snapshot supplies every node, including /tool)."""
    tree.root = Node(b"", ROOT_PERMS, None, next_gen(), tree.epoch)
    tree.owners = {0: 1}
