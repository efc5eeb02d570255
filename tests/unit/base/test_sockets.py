"""base/sockets.py, which the RPC and XenStore sockets share: long paths, errors, closing."""

from __future__ import annotations

import asyncio
import os
import socket
from pathlib import Path

import pytest

from xenlite.base.sockets import (
    SUN_PATH_MAX,
    AsyncClosing,
    Closing,
    address_for,
    bind_unix,
    connect_unix,
)


def _open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


@pytest.fixture
def deep_dir(tmp_path: Path) -> Path:
    deep = tmp_path / ("d" * 150)
    deep.mkdir()
    return deep


def test_address_for_a_short_path_is_the_path(tmp_path: Path) -> None:
    with address_for(tmp_path / "s") as address:
        assert address == str(tmp_path / "s")


def test_address_for_a_long_path_closes_its_directory_descriptor(deep_dir: Path) -> None:
    before = _open_fds()
    with address_for(deep_dir / "s") as address:
        assert len(os.fsencode(str(deep_dir / "s"))) > SUN_PATH_MAX
        assert address.startswith("/proc/self/fd/")
        assert address.endswith("/s")
        assert _open_fds() - before
    assert _open_fds() == before


def test_bind_and_connect_at_a_long_path(deep_dir: Path) -> None:
    path = deep_dir / "s.sock"
    before = _open_fds()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        bind_unix(listener, path)
        listener.listen(1)
        assert path.exists()
        client = connect_unix(path, 5.0)
        try:
            peer, _ = listener.accept()
            with peer:
                client.sendall(b"ping")
                assert peer.recv(4) == b"ping"
            assert client.gettimeout() == 5.0
        finally:
            client.close()
    assert _open_fds() == before


@pytest.mark.parametrize("long", [False, True])
def test_connect_errors_are_the_os_errors_and_leak_nothing(
    tmp_path: Path, deep_dir: Path, long: bool
) -> None:
    base = deep_dir if long else tmp_path
    stale = base / "stale.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as gone:
        bind_unix(gone, stale)  # bound, never listening: a stale socket
    before = _open_fds()
    with pytest.raises(FileNotFoundError):
        connect_unix(base / "missing.sock", 1.0)
    with pytest.raises(FileNotFoundError):
        connect_unix(base / "no-dir" / "s.sock", 1.0)
    with pytest.raises(ConnectionRefusedError):
        connect_unix(stale, 1.0)
    assert _open_fds() == before


def test_closing_closes_on_the_way_out_also_on_errors() -> None:
    class Thing(Closing):
        def __init__(self) -> None:
            self.closed = 0

        def close(self) -> None:
            self.closed += 1

    thing = Thing()
    with thing as same:
        assert same is thing
    assert thing.closed == 1
    with pytest.raises(ValueError, match="inside"), thing:
        raise ValueError("inside")
    assert thing.closed == 2
    with pytest.raises(TypeError):
        Closing()  # type: ignore[abstract]


def test_async_closing_awaits_close_on_the_way_out() -> None:
    class Thing(AsyncClosing):
        def __init__(self) -> None:
            self.closed = 0

        async def close(self) -> None:
            await asyncio.sleep(0)
            self.closed += 1

    async def go() -> Thing:
        thing = Thing()
        async with thing as same:
            assert same is thing
        with pytest.raises(ValueError, match="inside"):
            async with thing:
                raise ValueError("inside")
        return thing

    assert asyncio.run(go()).closed == 2
