"""Detach a daemon (xenstored, xenlited) as an init script expects: the command returns only
once the daemon serves, or fails with the daemon's own reason, so ``xenlite xenstored &&
xenstore-read ...`` needs no sleep.

The parent forks; the child starts a new session and forks again (so it can never regain a
controlling terminal), and the grandchild serves. A pipe carries ``ready`` or the error text
back to the parent; the daemon's standard streams go to /dev/null once it is ready, so
nothing it prints afterwards reaches (or blocks on) the terminal that started it.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable

from xenlite.base.errors import XenliteError

_READY = b"ready"

Serve = Callable[[Callable[[], None]], int]


def daemonise(
    name: str,
    serve: Serve,
    *,
    setup_logging: Callable[[], None],
    logger: logging.Logger,
    fix: str | None = None,
) -> int:
    """Run ``serve(ready)`` in a detached grandchild; return 0 once it calls ``ready()``.

    :param name: the daemon's name, for its error and its log
    :param setup_logging: called in the grandchild before ``serve``
    :param logger: where the grandchild logs why it could not start
    :param fix: the fix a start-up failure names (for example, where the log is)
    :raise XenliteError: when the daemon ends before it is ready, with its reason
    """
    rfd, wfd = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid:
        os.close(wfd)
        with os.fdopen(rfd, "rb") as pipe:
            message = pipe.read()
        os.waitpid(pid, 0)  # the middle child, which exits at once
        if message == _READY:
            return 0
        raise XenliteError(name, message.decode(errors="replace") or "failed to start", fix)
    os.close(rfd)
    os.setsid()
    if os.fork():
        os._exit(0)
    status = 1
    try:
        setup_logging()

        def ready() -> None:
            devnull = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(devnull, fd)
            os.close(devnull)
            os.write(wfd, _READY)
            os.close(wfd)

        status = serve(ready)
    except XenliteError as err:
        logger.error("%s cannot start: %s", name, err)
        with contextlib.suppress(OSError):
            os.write(wfd, str(err).encode())
    except BaseException:
        logger.exception("%s failed", name)
    finally:
        logging.shutdown()
        os._exit(status)
