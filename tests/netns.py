"""Network namespaces for tests: every link, address and bridge a test makes lives in a
namespace made here and removed again, never in the machine's own (its uplink carries
everything). Read with ``ip -j`` (JSON), the test's view from outside xenlite."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

_COUNTER = [0]


def ip(netns: str, *args: str, check: bool = True) -> str:
    done = subprocess.run(["ip", "-n", netns, *args], capture_output=True, text=True)
    if check:
        assert done.returncode == 0, (args, done.stderr)
    return done.stdout


def links(netns: str) -> dict[str, dict[str, Any]]:
    """name -> ``ip -d -j link`` object of every interface in ``netns``."""
    return {link["ifname"]: link for link in json.loads(ip(netns, "-d", "-j", "link", "show"))}


def master_of(netns: str, name: str) -> str | None:
    master = links(netns).get(name, {}).get("master")
    return str(master) if master is not None else None


@contextlib.contextmanager
def namespace() -> Iterator[str]:
    """A fresh network namespace with lo up; removed (with all it holds) on leaving."""
    if os.geteuid() != 0 or shutil.which("ip") is None or shutil.which("nsenter") is None:
        pytest.skip("network namespaces need root, iproute2 and nsenter (util-linux)")
    _COUNTER[0] += 1
    name = f"xlt{os.getpid()}n{_COUNTER[0]}"
    made = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"cannot make a network namespace here: {made.stderr.strip()}")
    try:
        ip(name, "link", "set", "lo", "up")
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)


def add_bridge(netns: str, name: str, address: str | None = None) -> None:
    ip(netns, "link", "add", name, "type", "bridge")
    if address is not None:
        ip(netns, "addr", "add", address, "dev", name)
    ip(netns, "link", "set", name, "up")


def run_in(netns: str, *argv: str) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` in ``netns`` (its network namespace alone)."""
    return subprocess.run(
        ["nsenter", f"--net=/run/netns/{netns}", *argv], capture_output=True, text=True
    )


def addresses(netns: str, name: str) -> list[str]:
    """``ADDRESS/PREFIX`` of ``name``'s IPv4 addresses."""
    found = json.loads(ip(netns, "-j", "-4", "addr", "show", "dev", name))
    return [f"{a['local']}/{a['prefixlen']}" for link in found for a in link["addr_info"]]


def default_route_device(netns: str) -> str | None:
    routes = json.loads(ip(netns, "-j", "-4", "route", "show", "default"))
    return str(routes[0]["dev"]) if routes else None
