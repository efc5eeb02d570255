"""``xenlite network-bridge start|stop|status``: what Xen's network-bridge script does, made
reversible: a bridge, up; with ``netdev=``, that interface enslaved to it and its IPv4
addresses and routes moved onto the bridge, and given back exactly on ``stop``.

Not a Xen man page: Xen's tools/hotplug/Linux/network-bridge (xen-network-bridge(8) in some
distributions). Choices, and why:

- Without ``netdev=`` the bridge has no uplink (a private network, as the seeds' xenbr1 on
  dummy0 is): Xen's script guesses the interface of the default route, which on a machine
  reached over that interface cuts the connection while it moves the addresses. Here the
  uplink is always named, and the interface of the default route is refused unless
  ``force`` says the operator knows.
- What ``start`` changed is written to a state file under the host root's run directory
  (``network-bridge/BRIDGE.json``) before the change; ``stop`` reads it and undoes exactly
  that, so an address or route added by hand since stays, and a bridge that existed before
  ``start`` stays too.
- Idempotent: ``start`` on a bridge that is up with its netdev enslaved changes nothing;
  ``stop`` of a bridge with no state file is refused, naming what it would have to guess.
"""

from __future__ import annotations

import contextlib
import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path

from xenlite.base.errors import HostError
from xenlite.base.files import write_atomic
from xenlite.host import net

log = logging.getLogger(__name__)

STATE_DIR = "network-bridge"


@dataclass(frozen=True, slots=True)
class BridgeState:
    """What ``start`` changed, for ``stop`` to undo."""

    bridge: str
    made: bool  # the bridge did not exist before start
    netdev: str | None = None
    addresses: list[net.Address] = field(default_factory=list)
    routes: list[net.Route] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class BridgeStatus:
    """``status``: the bridge, its ports, its addresses, and its uplink if start gave one."""

    bridge: str
    up: bool
    ports: list[str]
    addresses: list[str]
    netdev: str | None


def _state_path(run_root: Path, bridge: str) -> Path:
    return run_root / STATE_DIR / f"{bridge}.json"


def _load(run_root: Path, bridge: str) -> BridgeState | None:
    path = _state_path(run_root, bridge)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise HostError(
            str(path), f"cannot be read: {exc}", f"remove it by hand: rm {path}"
        ) from None
    return BridgeState(
        bridge=data["bridge"],
        made=bool(data["made"]),
        netdev=data.get("netdev"),
        addresses=[net.Address(**a) for a in data.get("addresses", [])],
        routes=[net.Route(**r) for r in data.get("routes", [])],
    )


def _save(run_root: Path, state: BridgeState) -> None:
    path = _state_path(run_root, state.bridge)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, (json.dumps(asdict(state), indent=1) + "\n").encode())


def start(run_root: Path, bridge: str, netdev: str | None, *, force: bool = False) -> BridgeStatus:
    """Make ``bridge`` (if missing), up; with ``netdev``, enslave it and move its addresses
    and routes to the bridge. Nothing changes when that is done already.

    :raise HostError: for a name that is not a bridge, a netdev that is missing, a bridge or
        another bridge's port, the default route's interface without ``force``, or netlink
        refusing a step (the steps done are undone)
    """
    what = f"network-bridge start bridge={bridge}"
    net.check_name(bridge, what)
    existing = net.find(bridge)
    if existing is not None and existing.kind != "bridge":
        raise HostError(what, f"{bridge} exists and is not a bridge", "give another bridge=")
    previous = _load(run_root, bridge)
    uplink = None
    if netdev is not None:
        uplink = net.find(netdev)
        if uplink is None:
            raise HostError(
                what, f"netdev {netdev} does not exist", "name an interface of: ip link"
            )
        if uplink.kind == "bridge":
            raise HostError(what, f"netdev {netdev} is a bridge", "name the uplink interface")
        if existing is not None and uplink.master == existing.index:
            return status(run_root, bridge)  # started already
        if uplink.master is not None:
            raise HostError(
                what, f"netdev {netdev} is a port of another bridge", "take it off that bridge"
            )
        if not force and netdev in net.default_route_devices():
            raise HostError(
                what,
                f"netdev {netdev} carries the default route: moving its addresses onto the "
                "bridge cuts this host's connections over it while they move",
                "run it from a console that does not use that interface, with --force",
            )
    if previous is not None and previous.netdev is not None and previous.netdev != netdev:
        raise HostError(
            what,
            f"bridge {bridge} has netdev {previous.netdev} from an earlier start",
            f"stop it first: xenlite network-bridge stop bridge={bridge}",
        )
    if previous is not None and existing is not None and netdev is None:
        return status(run_root, bridge)  # started already
    state = BridgeState(
        bridge=bridge,
        made=existing is None,
        netdev=netdev,
        addresses=net.addresses(netdev) if netdev else [],
        routes=net.routes(netdev) if netdev else [],
    )
    _save(run_root, state)  # before the change: a stop after a crash undoes what was done
    try:
        if existing is None:
            net.add_bridge(bridge, mac=uplink.mac if uplink is not None else None)
        else:
            net.set_up(bridge)
        if netdev is not None:
            net.set_master(netdev, bridge)
            _move(state, frm=netdev, to=bridge)
    except HostError:
        with contextlib.suppress(HostError):
            _undo(state)
        _state_path(run_root, bridge).unlink(missing_ok=True)
        raise
    log.info("network-bridge: %s up%s", bridge, f" with {netdev}" if netdev else "")
    return status(run_root, bridge)


def _move(state: BridgeState, *, frm: str, to: str) -> None:
    """The netdev's routes and addresses from interface ``frm`` to ``to``: the routes leave
    first and come back last, as they need the addresses."""
    for route in state.routes:
        net.change_route(frm, route, add=False)
    for address in state.addresses:
        net.change_address(frm, address, add=False)
        net.change_address(to, address, add=True)
    for route in state.routes:
        net.change_route(to, route, add=True)


def stop(run_root: Path, bridge: str) -> None:
    """Undo what ``start`` did for ``bridge``: the netdev off the bridge with its addresses
    and routes back on it, and the bridge removed if start made it.

    :raise HostError: when no start of this bridge is known, or netlink refuses
    """
    state = _load(run_root, bridge)
    if state is None:
        raise HostError(
            f"network-bridge stop bridge={bridge}",
            "xenlite did not start this bridge (no state of an earlier start)",
            f"remove it by hand if it is yours to remove: ip link del {bridge}",
        )
    _undo(state)
    _state_path(run_root, bridge).unlink(missing_ok=True)
    log.info("network-bridge: %s stopped", bridge)


def _undo(state: BridgeState) -> None:
    if state.netdev is not None and net.find(state.netdev) is not None:
        if net.find(state.bridge) is not None:
            _move(state, frm=state.bridge, to=state.netdev)
            net.set_master(state.netdev, None)
        net.set_up(state.netdev)
        for address in state.addresses:  # a bridge already gone took them along
            net.change_address(state.netdev, address, add=True)
        for route in state.routes:
            net.change_route(state.netdev, route, add=True)
    if state.made:
        net.delete(state.bridge)


def status(run_root: Path, bridge: str) -> BridgeStatus:
    """The bridge as it is now.

    :raise HostError: when there is no such bridge
    """
    found = net.require_bridge(bridge, f"network-bridge status bridge={bridge}")
    state = _load(run_root, bridge)
    return BridgeStatus(
        bridge=bridge,
        up=found.up,
        ports=sorted(link.name for link in net.links() if link.master == found.index),
        addresses=[f"{a.address}/{a.prefixlen}" for a in net.addresses(bridge)],
        netdev=state.netdev if state is not None else None,
    )
