"""libxl's XenStore layout for a domain: the only place xenlite builds XenStore path strings.

Implements xenstore-paths.pandoc ("Domain Pathnames", "/vm/$UUID", "/libxl/$DOMID") as
libxl 4.17 writes them (``libxl__domain_make`` and ``libxl__build_post``): the domain's home
is readable by the domain and owned by dom0 (roperm ``n0 rN``), the nodes the guest answers
through (control/shutdown, data, ...) are owned by the domain (rwperm ``nN``), and /libxl/N is
dom0's alone (noperm ``n0``). Pure: it returns paths and nodes; the engine writes them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from xenlite.xenstore.client import PermList, Transaction, XenStoreClient

INTRODUCE_DOMAIN = "@introduceDomain"
RELEASE_DOMAIN = "@releaseDomain"
DOM0_NAME = "Domain-0"
DOM0_UUID = "00000000-0000-0000-0000-000000000000"
# No ring page or event channel exists without a hypervisor; xenstored records these values
# for INTRODUCE (and requires a non-zero port), and store/* shows the same values.
STORE_MFN = 1
STORE_PORT = 1
# LIBXL_XENCONSOLE_LIMIT: bytes of console output xenconsoled buffers for a domain.
CONSOLE_LIMIT = 1048576


def dom_path(domid: int) -> str:
    """``/local/domain/N``: the domain's home (GET_DOMAIN_PATH)."""
    return f"/local/domain/{domid}"


def vm_path(uuid: str) -> str:
    """``/vm/UUID``: toolstack information about the domain's VM."""
    return f"/vm/{uuid}"


def libxl_path(domid: int) -> str:
    """``/libxl/N``: the toolstack's private nodes."""
    return f"/libxl/{domid}"


def name_path(domid: int) -> str:
    return f"{dom_path(domid)}/name"


def vm_name_path(uuid: str) -> str:
    return f"{vm_path(uuid)}/name"


def vm_pool_name_path(uuid: str) -> str:
    """``/vm/UUID/pool_name``: the cpupool the domain runs in, as libxl writes it."""
    return f"{vm_path(uuid)}/pool_name"


def control_shutdown_path(domid: int) -> str:
    """``control/shutdown``: where the toolstack asks a PV guest to power off or reboot."""
    return f"{dom_path(domid)}/control/shutdown"


def memory_target_path(domid: int) -> str:
    return f"{dom_path(domid)}/memory/target"


def static_max_path(domid: int) -> str:
    return f"{dom_path(domid)}/memory/static-max"


def roperm(domid: int) -> tuple[str, ...]:
    """Owned by dom0, readable by the domain (libxl's ``roperm``)."""
    return ("n0", f"r{domid}")


def rwperm(domid: int) -> tuple[str, ...]:
    """Owned by the domain (libxl's ``rwperm``)."""
    return (f"n{domid}",)


NOPERM: tuple[str, ...] = ("n0",)


@dataclass(frozen=True, slots=True)
class Node:
    """One XenStore node to write: its value, and its permissions when it gets its own
    (None: a new node inherits its parent's)."""

    path: str
    value: str = ""
    perms: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class DomainFacts:
    """What the layout needs to know about one domU."""

    domid: int
    name: str
    uuid: str
    target_memkb: int
    max_memkb: int
    max_vcpus: int
    online_vcpus: frozenset[int]
    domain_type: str = "pvh"
    ostype: str = "linux"
    console_type: str = "ioemu"
    pool_name: str = "Pool-0"


def domain_nodes(facts: DomainFacts) -> list[Node]:
    """Every node libxl writes for a domU at create time, parents before children."""
    d = dom_path(facts.domid)
    vm = vm_path(facts.uuid)
    ro = roperm(facts.domid)
    rw = rwperm(facts.domid)
    nodes = [
        Node(d, "", ro),
        Node(vm, "", ro),
        Node(libxl_path(facts.domid), "", NOPERM),
        Node(f"{libxl_path(facts.domid)}/device", "", NOPERM),
        Node(f"{libxl_path(facts.domid)}/type", facts.domain_type),
        Node(f"{d}/vm", vm),
        Node(f"{d}/name", facts.name),
        Node(f"{d}/domid", str(facts.domid)),
        Node(f"{d}/device", "", ro),
        Node(f"{d}/control", "", ro),
        Node(f"{d}/control/shutdown", "", rw),
        Node(f"{d}/control/feature-poweroff", "", rw),
        Node(f"{d}/control/feature-reboot", "", rw),
        Node(f"{d}/control/feature-suspend", "", rw),
        Node(f"{d}/control/sysrq", "", rw),
        Node(f"{d}/data", "", rw),
        Node(f"{d}/drivers", "", rw),
        Node(f"{d}/feature", "", rw),
        Node(f"{d}/attr", "", rw),
        Node(f"{d}/error", "", rw),
        Node(f"{d}/memory/static-max", str(facts.max_memkb)),
        Node(f"{d}/memory/target", str(facts.target_memkb)),
        Node(f"{d}/memory/videoram", "0"),
        Node(f"{d}/store/port", str(STORE_PORT)),
        Node(f"{d}/store/ring-ref", str(STORE_MFN)),
        Node(f"{d}/console/type", facts.console_type),
        Node(f"{d}/console/limit", str(CONSOLE_LIMIT)),
        Node(f"{d}/console/output", "pty"),
        Node(f"{vm}/uuid", facts.uuid),
        Node(f"{vm}/name", facts.name),
        Node(f"{vm}/pool_name", facts.pool_name),
        Node(f"{vm}/image/ostype", facts.ostype),
    ]
    nodes += cpu_nodes(facts.domid, facts.max_vcpus, facts.online_vcpus)
    return nodes


def cpu_nodes(domid: int, max_vcpus: int, online: Iterable[int]) -> list[Node]:
    """``cpu/N/availability`` = online | offline for every vCPU up to the maximum."""
    up = set(online)
    d = dom_path(domid)
    return [
        Node(f"{d}/cpu/{n}/availability", "online" if n in up else "offline")
        for n in range(max(1, max_vcpus))
    ]


# The backend directories of dom0 that hold a domain's devices (backend/KIND/DOMID).
BACKEND_KINDS = ("vbd", "qdisk", "vif")


def backend_kind_path(kind: str) -> str:
    """Where dom0 keeps the backends of one kind: ``/local/domain/0/backend/KIND``."""
    return f"{dom_path(0)}/backend/{kind}"


def backend_path(kind: str, domid: int, devid: int) -> str:
    """A device's backend directory in dom0: ``/local/domain/0/backend/KIND/DOMID/DEVID``."""
    return f"{backend_kind_path(kind)}/{domid}/{devid}"


def frontend_path(kind: str, domid: int, devid: int) -> str:
    """A device's frontend directory: ``/local/domain/DOMID/device/KIND/DEVID``."""
    return f"{dom_path(domid)}/device/{kind}/{devid}"


def libxl_device_path(domid: int, kind: str, devid: int) -> str:
    """libxl's own record of a device: ``/libxl/DOMID/device/KIND/DEVID``."""
    return f"{libxl_path(domid)}/device/{kind}/{devid}"


async def remove_device_dir(xs: XenStoreClient, path: str, *, above: str) -> None:
    """Remove a device's directory and then each parent it leaves empty, up to but not
    including ``above``, as libxl__xs_path_cleanup does; a missing one counts as removed."""
    await xs.rm_if_exists(path)
    parent = path.rpartition("/")[0]
    while parent.startswith(f"{above}/") and not await xs.directory_if_exists(parent):
        await xs.rm_if_exists(parent)
        parent = parent.rpartition("/")[0]


XENBUS_CONNECTED = "4"  # xenbus state Connected
DOM0_NAMES = (None, "0", DOM0_NAME)  # what a device spec's backend= may say for dom0


def device_nodes(
    domid: int,
    roots: tuple[str, str, str],
    back: Sequence[tuple[str, str]],
    front: Sequence[Node],
) -> list[Node]:
    """One device's nodes as libxl__device_generic_add writes them, already Connected: the
    backend directory (dom0's, readable by the domain) with ``back``, the frontend (the
    domain's) with ``front`` (paths relative to it), and the /libxl record holding its
    copy of the backend's nodes. ``roots`` are (backend, frontend, record)."""
    backend, frontend, record = roots
    return [
        Node(backend, "", roperm(domid)),
        Node(f"{backend}/frontend", frontend),
        *(Node(f"{backend}/{key}", value) for key, value in back),
        Node(frontend, "", (f"n{domid}", "r0")),
        Node(f"{frontend}/backend", backend),
        Node(f"{frontend}/backend-id", "0"),
        Node(f"{frontend}/state", XENBUS_CONNECTED),
        *(replace(n, path=f"{frontend}/{n.path}") for n in front),
        Node(record, "", NOPERM),
        Node(f"{record}/frontend", frontend),
        Node(f"{record}/backend", backend),
        *(Node(f"{record}/{key}", value) for key, value in back),
    ]


async def remove_device(xs: XenStoreClient, domid: int, roots: tuple[str, str, str]) -> None:
    """Remove one device's backend, frontend and /libxl directories, and the parents they
    leave empty (libxl__device_destroy with libxl__xs_path_cleanup)."""
    backend, frontend, record = roots
    kind = backend.split("/")[5]  # /local/domain/0/backend/KIND/...
    await remove_device_dir(xs, backend, above=backend_kind_path(kind))
    await remove_device_dir(xs, frontend, above=dom_path(domid))
    await remove_device_dir(xs, record, above=libxl_path(domid))


def domain_roots(domid: int, uuid: str) -> tuple[str, ...]:
    """The subtrees that removing a domain deletes (libxl__domain_destroy's xs_rm calls,
    and the backend directories its devices' removal empties)."""
    backends = tuple(f"{backend_kind_path(kind)}/{domid}" for kind in BACKEND_KINDS)
    return (dom_path(domid), vm_path(uuid), libxl_path(domid), *backends)


def dom0_nodes(*, memory_kib: int, nr_cpus: int) -> list[Node]:
    """The nodes xencommons (``xen-init-dom0``) writes for dom0."""
    d = dom_path(0)
    vm = vm_path(DOM0_UUID)
    nodes = [
        Node(d, "", NOPERM),
        Node(f"{d}/name", DOM0_NAME),
        Node(f"{d}/domid", "0"),
        Node(f"{d}/vm", vm),
        Node(f"{d}/memory/target", str(memory_kib)),
        Node(f"{d}/memory/static-max", str(memory_kib)),
        Node(vm, "", NOPERM),
        Node(f"{vm}/name", DOM0_NAME),
        Node(f"{vm}/uuid", DOM0_UUID),
        Node(libxl_path(0), "", NOPERM),
        Node(f"{libxl_path(0)}/type", "pvh"),
    ]
    nodes += cpu_nodes(0, nr_cpus, range(nr_cpus))
    return nodes


async def write_nodes(xs: XenStoreClient, nodes: Sequence[Node]) -> None:
    """Write ``nodes`` (values, and permissions where given) in one transaction."""

    async def body(tx: Transaction) -> None:
        for node in nodes:
            await tx.write(node.path, node.value)
            if node.perms is not None:
                await tx.set_perms(node.path, PermList.parse(node.perms))

    await xs.transact(body)


async def read_str(xs: XenStoreClient, path: str) -> str | None:
    """The text of ``path``, or None when there is no such node."""
    value = await xs.read_if_exists(path)
    return None if value is None else value.decode()


def int_or_unset(text: str | None) -> int:
    """A node's integer, or -1 (xl's unset) when it is missing or not a number."""
    return int(text) if text is not None and text.lstrip("-").isdigit() else -1


def numeric_order(name: str) -> tuple[int, str]:
    """Sort key of device directory names: numbers by value, anything else first."""
    return (int(name), "") if name.isdigit() else (-1, name)
