"""The one exception hierarchy of xenlite.

::

    XenliteError            .what .cause .fix; str() = "what: cause"
    ├── ConfigError         .path .line .col .key -> "web01.cfg:12:8: vif: ..."
    ├── XenStoreError       .wire_name (ENOENT EACCES EEXIST EINVAL EAGAIN E2BIG ENOSPC ...)
    ├── XenStoreConnectionError  .wire_name; no daemon answered (none, lost, timed out)
    ├── HostError
    │   ├── CommandFailed   .argv .returncode .stderr_tail
    │   └── Unsupported     the host cannot do this; said honestly
    ├── QemuError
    │   ├── QemuLaunchError .argv .exitcode .log_tail (QEMU's own message)
    │   └── QemuCommandError .error_class (a QMP error reply)
    ├── DomainError         a domain operation failed or was refused
    │   ├── DomainNotFound  no domain has that name or domid
    │   ├── DomainStateError .state .required (the domain is in the wrong state)
    │   └── InsufficientMemory
    ├── RpcError            .code; the CLI <-> xenlited contract
    │   └── DaemonNotRunning
    └── GuestKitError       building or booting the test/demo guest failed

Every message a user sees names the thing, the cause and the fix. Bugs are not
XenliteErrors: they propagate with a traceback.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypedDict


class XenliteError(Exception):
    """Root of every error a user can cause or the host can refuse."""

    def __init__(self, what: str, cause: str, fix: str | None = None) -> None:
        self.what = what
        self.cause = cause
        self.fix = fix
        super().__init__(f"{what}: {cause}")


class ConfigError(XenliteError):
    """A configuration file or spec that cannot be read, located precisely.

    ``str()`` is ``path:line:col: key: cause`` (parts that are unknown are left out).
    """

    def __init__(
        self,
        cause: str,
        *,
        path: str | None = None,
        line: int | None = None,
        col: int | None = None,
        key: str | None = None,
        fix: str | None = None,
    ) -> None:
        self.path = path
        self.line = line
        self.col = col
        self.key = key
        location = ""
        if path is not None:
            location = path
            if line is not None:
                location += f":{line}"
                if col is not None:
                    location += f":{col}"
        what = ": ".join(p for p in (location, key) if p) or "configuration"
        super().__init__(what, cause, fix)


class ConfigLocation(TypedDict, total=False):
    """ConfigError's keyword arguments, for subclasses that pass them through unchanged."""

    path: str | None
    line: int | None
    col: int | None
    key: str | None
    fix: str | None


class XenStoreError(XenliteError):
    """A XenStore request failed; ``wire_name`` is the xs_wire.h error name (e.g. ENOENT)."""

    def __init__(self, what: str, wire_name: str, fix: str | None = None) -> None:
        self.wire_name = wire_name
        super().__init__(what, wire_name, fix)


class XenStoreConnectionError(XenliteError):
    """No XenStore to talk to: no daemon, a lost connection, a timeout, a lagging watch.

    Not a XenStoreError: no daemon replied, so ``except XenStoreError`` (a request xenstored
    refused) never catches it by accident. ``wire_name`` is the errno name libxenstore would
    leave in ``errno`` (ENOENT, ECONNREFUSED, ETIMEDOUT, EIO, ENOSPC).
    """

    def __init__(self, what: str, cause: str, wire_name: str, fix: str | None = None) -> None:
        self.wire_name = wire_name
        super().__init__(what, cause, fix)


class HostError(XenliteError):
    """The host refused or failed an operation."""


class CommandFailed(HostError):
    """A child process exited non-zero or was killed."""

    def __init__(
        self, argv: Sequence[str], returncode: int, stderr_tail: str, fix: str | None = None
    ) -> None:
        self.argv = list(argv)
        self.returncode = returncode
        self.stderr_tail = stderr_tail
        if returncode < 0:
            how = f"killed by signal {-returncode}"
        else:
            how = f"exited with status {returncode}"
        cause = how + (f": {stderr_tail.strip()}" if stderr_tail.strip() else "")
        super().__init__(f"command '{argv[0]}'", cause, fix)


class Unsupported(HostError):
    """Something xenlite cannot honour on this host (said, never silently ignored)."""


class QemuError(XenliteError):
    """A domain's QEMU failed, refused or went away (its monitor disconnected)."""


class QemuLaunchError(QemuError):
    """QEMU exited (or never answered on QMP) while starting; carries its own last words.

    ``exitcode`` is None when QEMU was still running but did not answer in time (it is then
    killed); negative when a signal ended it, as in :mod:`subprocess`.
    """

    def __init__(
        self,
        what: str,
        cause: str,
        *,
        argv: Sequence[str],
        exitcode: int | None,
        log_tail: str,
        fix: str | None = None,
    ) -> None:
        self.argv = list(argv)
        self.exitcode = exitcode
        self.log_tail = log_tail
        super().__init__(what, cause, fix)


class QemuCommandError(QemuError):
    """QEMU answered a QMP command with an error; ``error_class`` is QMP's (e.g. GenericError)."""

    def __init__(self, what: str, error_class: str, desc: str, fix: str | None = None) -> None:
        self.error_class = error_class
        self.desc = desc
        super().__init__(what, f"{error_class}: {desc}", fix)


class DomainError(XenliteError):
    """A domain operation failed or was refused (create, destroy, pause, shutdown, ...)."""


class DomainNotFound(DomainError):
    """No domain has the name or domid the user gave."""


class DeviceNotFound(DomainError):
    """The domain has no device by the name or number the user gave."""


class DomainStateError(DomainError):
    """The domain is not in a state the operation accepts.

    ``state`` is the domain's state, ``required`` the states the operation needs.
    """

    def __init__(
        self, what: str, state: str, required: Sequence[str], fix: str | None = None
    ) -> None:
        self.state = state
        self.required = list(required)
        wanted = " or ".join(self.required)
        super().__init__(what, f"is {state}; the operation needs it {wanted}", fix)


class InsufficientMemory(DomainError):
    """The host has not enough free memory for the domain."""


class GuestKitError(XenliteError):
    """Building or booting the guest kit failed."""


class ProvisionError(XenliteError):
    """Making, listing or deleting a guest image (xenlite create-image and its kin) failed."""


class RpcError(XenliteError):
    """The CLI <-> xenlited conversation failed; ``code`` names the failure."""

    def __init__(self, what: str, cause: str, fix: str | None = None, code: str = "rpc") -> None:
        self.code = code
        super().__init__(what, cause, fix)


class DaemonNotRunning(RpcError):
    """xenlited is not listening on its socket."""

    def __init__(self, what: str, cause: str, fix: str | None = None) -> None:
        super().__init__(what, cause, fix, code="not-running")
