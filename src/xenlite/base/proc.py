"""The one subprocess helper: no shell, C locale, stdin closed, typed failures; and whether a
pid still runs."""

from __future__ import annotations

import logging
import os
import shlex
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from xenlite.base.errors import CommandFailed, HostError

log = logging.getLogger(__name__)

_TAIL = 2000


def which(name: str) -> str | None:
    """Find ``name`` on PATH, also looking in the sbin directories root uses."""
    found = shutil.which(name)
    if found:
        return found
    extra = os.pathsep.join(["/usr/local/sbin", "/usr/sbin", "/sbin"])
    return shutil.which(name, path=extra)


def run_sync(
    argv: Sequence[str | os.PathLike[str]],
    *,
    timeout: float,
    input: bytes | None = None,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    check: bool = True,
    fix: str | None = None,
) -> subprocess.CompletedProcess[bytes]:
    """Run ``argv`` to completion and return its result.

    :raise HostError: when the program is missing or the timeout passes
    :raise CommandFailed: when ``check`` and it exits non-zero
    """
    args = [os.fspath(a) for a in argv]
    full_env = dict(os.environ)
    full_env["LANG"] = "C.UTF-8"
    full_env["LC_ALL"] = "C.UTF-8"
    if env:
        full_env.update(env)
    log.debug("+ %s", shlex.join(args))
    try:
        result = subprocess.run(
            args,
            input=input,
            stdin=None if input is not None else subprocess.DEVNULL,
            capture_output=True,
            env=full_env,
            cwd=cwd,
            timeout=timeout,
            check=False,
        )
    except FileNotFoundError as exc:
        raise HostError(
            f"command '{args[0]}'", "not found", fix or f"install the package providing {args[0]}"
        ) from exc
    except subprocess.TimeoutExpired as exc:
        raise HostError(f"command '{shlex.join(args)}'", f"timed out after {timeout:g} s") from exc
    if check and result.returncode != 0:
        tail = result.stderr.decode(errors="replace")[-_TAIL:]
        raise CommandFailed(args, result.returncode, tail, fix)
    return result


def require_program(name: str, package: str) -> Path:
    """Return the path of ``name`` or raise a HostError naming the Debian package."""
    found = which(name)
    if found is None:
        raise HostError(
            f"program '{name}'", "not found on PATH", f"install it: apt-get install {package}"
        )
    return Path(found)


def pid_alive(pid: int) -> bool:
    """The process ``pid`` exists and is not a zombie (an exited child not yet reaped)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stream:
            stat = stream.read()
    except OSError:
        return False
    return stat[stat.rfind(b")") + 2 : stat.rfind(b")") + 3] != b"Z"
