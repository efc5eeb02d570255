"""A disk image read through QEMU's own block layer: qemu-storage-daemon serves it read-only
over NBD on a private socket, and a small NBD client here reads it.

This is how the bootloader reads qcow2 (compressed clusters, backing chains) and every other
format QEMU knows, without the kernel's nbd module (``qemu-nbd -c`` needs /dev/nbdN, which a
host may lack) and without a second qcow2 reader that could disagree with the guest's.

The listening socket is made here, bound to an abstract address (no file to clean up), and
handed to the daemon as a file descriptor, so the connection is made as soon as the daemon
runs, with no wait for a socket to appear.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import struct
import subprocess
from pathlib import Path
from types import TracebackType

from xenlite.base.errors import QemuError
from xenlite.base.proc import which

log = logging.getLogger(__name__)

_NBDMAGIC = b"NBDMAGIC"
_IHAVEOPT = b"IHAVEOPT"
_FLAG_FIXED_NEWSTYLE = 1
_FLAG_NO_ZEROES = 2
_OPT_EXPORT_NAME = 1
_REQUEST_MAGIC = 0x25609513
_SIMPLE_REPLY_MAGIC = 0x67446698
_CMD_READ = 0
_CMD_DISC = 2
# QEMU's NBD server refuses requests above 32 MiB.
_MAX_REQUEST = 32 << 20
_EXPORT = "disk0"


class NbdExport:
    """One image served read-only by qemu-storage-daemon; ``read`` returns its bytes as the
    guest would see them. Use as a context manager: the daemon is stopped on exit."""

    def __init__(
        self, image: Path, fmt: str, *, protocol: str = "file", timeout: float = 15.0
    ) -> None:
        daemon = which("qemu-storage-daemon")
        if daemon is None:
            raise QemuError(
                str(image),
                f"reading a {fmt} image needs qemu-storage-daemon, which is not installed",
                fix="apt-get install qemu-system-common (it ships qemu-storage-daemon)",
            )
        self.image = image
        self.fmt = fmt
        self._cookie = 0
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            listener.bind("")  # an abstract address chosen by the kernel
            listener.listen(1)
            node = {
                "driver": fmt,
                "node-name": _EXPORT,
                "read-only": True,
                "file": {"driver": protocol, "filename": str(image), "read-only": True},
            }
            # The daemon dies with the thread that started it (a killed xenlited leaves no
            # reader of a guest's disk behind): setpriv sets its parent-death signal.
            setpriv = which("setpriv")
            argv = [
                *([setpriv, "--pdeathsig", "KILL", "--"] if setpriv else []),
                daemon,
                "--blockdev",
                json.dumps(node),
                "--nbd-server",
                f"addr.type=fd,addr.str={listener.fileno()}",
                "--export",
                f"type=nbd,id=export0,node-name={_EXPORT},name={_EXPORT}",
            ]
            log.debug("reading %s through %s", image, " ".join(argv))
            self._process = subprocess.Popen(
                argv,
                pass_fds=(listener.fileno(),),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                env={"LC_ALL": "C", "PATH": "/usr/bin:/bin"},
            )
            address = listener.getsockname()
        finally:
            listener.close()
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.settimeout(timeout)
        try:
            self._sock.connect(address)
            self.size = self._handshake()
        except (OSError, QemuError) as error:
            self._sock.close()
            said = self._stop_daemon().strip()
            reason = said.splitlines()[-1] if said else str(error)
            raise QemuError(
                str(image),
                f"qemu-storage-daemon could not open it as {fmt}: {reason}",
                fix="check the disk's format and that the file is a readable image",
            ) from error

    def _stop_daemon(self) -> str:
        """End the daemon (this process started it; it is ended by pid): what it said."""
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        said = b""
        if self._process.stderr is not None:
            said = self._process.stderr.read()
            self._process.stderr.close()
        return said.decode("utf-8", "replace")

    def _recv(self, length: int) -> bytes:
        chunks = []
        while length:
            chunk = self._sock.recv(min(length, 1 << 20))
            if not chunk:
                raise QemuError(str(self.image), "the NBD server closed the connection")
            chunks.append(chunk)
            length -= len(chunk)
        return b"".join(chunks)

    def _handshake(self) -> int:
        greeting = self._recv(18)
        if greeting[:16] != _NBDMAGIC + _IHAVEOPT:
            raise QemuError(str(self.image), "the NBD server does not speak fixed newstyle")
        (flags,) = struct.unpack(">H", greeting[16:])
        client = _FLAG_FIXED_NEWSTYLE | (flags & _FLAG_NO_ZEROES)
        name = _EXPORT.encode()
        self._sock.sendall(
            struct.pack(">I", client)
            + _IHAVEOPT
            + struct.pack(">II", _OPT_EXPORT_NAME, len(name))
            + name
        )
        size, _transmission = struct.unpack(">QH", self._recv(10))
        if not flags & _FLAG_NO_ZEROES:
            self._recv(124)
        return int(size)

    def read(self, offset: int, length: int) -> bytes:
        """``length`` bytes at ``offset`` (fewer at the end of the image)."""
        length = max(0, min(length, self.size - offset))
        parts = []
        while length:
            step = min(length, _MAX_REQUEST)
            self._cookie += 1
            self._sock.sendall(
                struct.pack(">IHHQQI", _REQUEST_MAGIC, 0, _CMD_READ, self._cookie, offset, step)
            )
            magic, error, cookie = struct.unpack(">IIQ", self._recv(16))
            if magic != _SIMPLE_REPLY_MAGIC or cookie != self._cookie:
                raise QemuError(str(self.image), "the NBD server sent a malformed reply")
            if error:
                raise QemuError(
                    str(self.image), f"reading {step} bytes at {offset} failed (errno {error})"
                )
            parts.append(self._recv(step))
            offset += step
            length -= step
        return b"".join(parts)

    def close(self) -> None:
        """Disconnect and stop the daemon."""
        with contextlib.suppress(OSError):
            self._sock.sendall(struct.pack(">IHHQQI", _REQUEST_MAGIC, 0, _CMD_DISC, 0, 0, 0))
        self._sock.close()
        self._stop_daemon()

    def __enter__(self) -> NbdExport:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
