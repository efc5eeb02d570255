"""Where one domain's QEMU keeps its sockets, pid file and logs.

Not a Xen man page: ../shared/DESIGN.md "Processes" (QMP and serial on unix sockets under the
host root, so a restarted xenlited re-attaches). The domain engine chooses the directories;
this module only names the files and checks what the kernel can bind.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from xenlite.base.errors import HostError

# sizeof(sockaddr_un.sun_path) on Linux, including the terminating NUL.
UNIX_PATH_MAX = 108


@dataclass(frozen=True, slots=True)
class RunPaths:
    """The files of one running domain.

    ``console_log``, when set, is written by QEMU itself (chardev ``logfile=``), so guest
    console output is kept even while no daemon is connected to the serial socket.
    """

    qmp_socket: Path
    serial_socket: Path
    pid_file: Path
    log_file: Path
    console_log: Path | None = None

    @classmethod
    def in_directory(
        cls, run_dir: Path, log_dir: Path | None = None, *, console_log: bool = False
    ) -> RunPaths:
        """The conventional names in ``run_dir`` (logs in ``log_dir``, default ``run_dir``)."""
        logs = run_dir if log_dir is None else log_dir
        return cls(
            qmp_socket=run_dir / "qmp.sock",
            serial_socket=run_dir / "serial.sock",
            pid_file=run_dir / "qemu.pid",
            log_file=logs / "qemu.log",
            console_log=logs / "console.log" if console_log else None,
        )

    @property
    def run_dir(self) -> Path:
        """The directory of the domain's sockets and run-time files."""
        return self.qmp_socket.parent

    def check_socket_paths(self) -> None:
        """:raise HostError: when a socket path is too long for a unix socket address"""
        for path in (self.qmp_socket, self.serial_socket):
            if len(os.fsencode(path)) >= UNIX_PATH_MAX:
                raise HostError(
                    f"socket path {path}",
                    f"is {len(os.fsencode(path))} bytes; unix sockets allow at most "
                    f"{UNIX_PATH_MAX - 1}",
                    "use a shorter host root or run directory",
                )
