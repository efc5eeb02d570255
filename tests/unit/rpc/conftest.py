"""Fixtures of the RPC tests: a server on its own thread at a socket under tmp_path."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from rpc_harness import ServerThread
from xenlite.rpc.server import Handler


@pytest.fixture
def sock_path(tmp_path: Path) -> Path:
    return tmp_path / "run" / "xenlite" / "xenlited.sock"


@pytest.fixture
def serve(sock_path: Path) -> Iterator[Callable[..., ServerThread]]:
    """``serve(handlers, **options)`` starts a server at ``sock_path``; all stop at teardown."""
    started: list[ServerThread] = []

    def start(
        handlers: Mapping[str, Handler], path: Path | None = None, **options: Any
    ) -> ServerThread:
        thread = ServerThread(path or sock_path, handlers, **options)
        started.append(thread)
        return thread

    yield start
    for thread in reversed(started):
        thread.close()
