"""pyxs, a third-party XenStore client, against xenlite's daemon (and the reference, for parity).

Reads, writes, listings, permissions, errors, transactions (commit, rollback, EAGAIN),
watches and the privileged domain requests (``client.SU = True`` on a host without Xen).
"""

from __future__ import annotations

import errno
import threading
from collections.abc import Iterator
from typing import Any

import pytest

pyxs = pytest.importorskip("pyxs", reason="pyxs is not installed (pip install pyxs)")


def _client(daemon: Any) -> Any:
    client = pyxs.Client(unix_socket_path=str(daemon.socket))
    client.SU = True  # no /proc/xen/capabilities here: allow release/resume/set_target
    return client


@pytest.fixture
def client(xenstored: Any) -> Iterator[Any]:
    with _client(xenstored) as c:
        yield c


def _next_event(monitor: Any, timeout: float = 10.0) -> tuple[bytes, bytes]:
    """The next watch event, or a test failure after ``timeout`` s (pyxs' wait() blocks)."""
    got: list[tuple[bytes, bytes]] = []
    events = monitor.wait()

    def take() -> None:
        got.append(next(events))

    thread = threading.Thread(target=take, daemon=True)
    thread.start()
    thread.join(timeout)
    assert got, f"no watch event within {timeout} s"
    return got[0]


def test_read_write_list_exists_rm(client: Any) -> None:
    client.write(b"/pyxs/a", b"hello")
    client.write(b"/pyxs/b/c", b"c")
    client.mkdir(b"/pyxs/d")
    assert client.read(b"/pyxs/a") == b"hello"
    assert sorted(client.list(b"/pyxs")) == [b"a", b"b", b"d"]
    assert client.exists(b"/pyxs/b/c")
    assert not client.exists(b"/pyxs/nope")
    assert client.read(b"/pyxs/nope", b"default") == b"default"
    client.delete(b"/pyxs/b")
    assert not client.exists(b"/pyxs/b/c")
    with pytest.raises(pyxs.PyXSError) as info:
        client.read(b"/pyxs/nope")
    assert info.value.args[0] == errno.ENOENT


def test_permissions(client: Any) -> None:
    client.write(b"/pyxs/p", b"v")
    assert client.get_perms(b"/pyxs/p") == [b"n0"]
    client.set_perms(b"/pyxs/p", [b"b0", b"r5"])
    assert client.get_perms(b"/pyxs/p") == [b"b0", b"r5"]
    with pytest.raises(pyxs.PyXSError) as info:
        client.set_perms(b"/pyxs/missing", [b"n0"])
    assert info.value.args[0] == errno.ENOENT


def test_transactions_commit_rollback_and_conflict(xenstored: Any) -> None:
    with _client(xenstored) as c, _client(xenstored) as other:
        c.write(b"/tx/n", b"0")
        c.transaction()
        c.write(b"/tx/n", b"1")
        assert other.read(b"/tx/n") == b"0"  # isolated until commit
        assert c.commit() is True
        assert other.read(b"/tx/n") == b"1"

        c.transaction()
        c.write(b"/tx/n", b"2")
        c.rollback()
        assert c.read(b"/tx/n") == b"1"

        c.transaction()
        assert c.read(b"/tx/n") == b"1"
        c.write(b"/tx/n", b"3")
        other.write(b"/tx/n", b"conflict")
        assert c.commit() is False  # EAGAIN
        assert c.read(b"/tx/n") == b"conflict"


def test_watches(client: Any) -> None:
    client.write(b"/w/x", b"0")
    with client.monitor() as monitor:
        monitor.watch(b"/w", b"tok")
        assert _next_event(monitor) == (b"/w", b"tok")  # the initial event
        client.write(b"/w/x", b"1")
        assert _next_event(monitor) == (b"/w/x", b"tok")
        client.delete(b"/w/x")
        assert _next_event(monitor) == (b"/w/x", b"tok")
        monitor.unwatch(b"/w", b"tok")


def test_domain_requests(client: Any) -> None:
    assert client.get_domain_path(7) == b"/local/domain/7"
    with client.monitor() as monitor:
        monitor.watch(b"@introduceDomain", b"intro")
        assert _next_event(monitor) == (b"@introduceDomain", b"intro")
        monitor.watch(b"@releaseDomain", b"rel")
        assert _next_event(monitor) == (b"@releaseDomain", b"rel")
        client.introduce_domain(5, 1234, 7)
        assert _next_event(monitor) == (b"@introduceDomain", b"intro")
        assert client.is_domain_introduced(5)
        client.resume_domain(5)
        client.set_target(5, 0)
        client.release_domain(5)
        assert _next_event(monitor) == (b"@releaseDomain", b"rel")
        assert not client.is_domain_introduced(5)
