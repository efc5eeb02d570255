"""libxl's XenStore layout: paths, permissions, and the nodes of a domU and of dom0."""

from __future__ import annotations

from xenlite.domain import xspaths
from xenlite.domain.xspaths import DomainFacts


def facts(**changes: object) -> DomainFacts:
    base: dict[str, object] = {
        "domid": 7,
        "name": "web01",
        "uuid": "8a4c0cba-5b6f-4d39-9e80-2d6f0b0c7d21",
        "target_memkb": 262144,
        "max_memkb": 524288,
        "max_vcpus": 4,
        "online_vcpus": frozenset({0, 1}),
    }
    base.update(changes)
    return DomainFacts(**base)  # type: ignore[arg-type]


def test_paths() -> None:
    assert xspaths.dom_path(7) == "/local/domain/7"
    assert xspaths.vm_path("u") == "/vm/u"
    assert xspaths.libxl_path(7) == "/libxl/7"
    assert xspaths.control_shutdown_path(7) == "/local/domain/7/control/shutdown"
    assert xspaths.domain_roots(7, "u") == (
        "/local/domain/7",
        "/vm/u",
        "/libxl/7",
        "/local/domain/0/backend/vbd/7",
        "/local/domain/0/backend/qdisk/7",
        "/local/domain/0/backend/vif/7",
    )
    assert xspaths.backend_path("qdisk", 7, 51712) == "/local/domain/0/backend/qdisk/7/51712"
    assert xspaths.frontend_path("vbd", 7, 51712) == "/local/domain/7/device/vbd/51712"
    assert xspaths.libxl_device_path(7, "vbd", 51712) == "/libxl/7/device/vbd/51712"


def test_domain_nodes_have_libxls_values() -> None:
    nodes = {n.path: n for n in xspaths.domain_nodes(facts())}
    d = "/local/domain/7"
    vm = "/vm/8a4c0cba-5b6f-4d39-9e80-2d6f0b0c7d21"
    assert nodes[f"{d}/name"].value == "web01"
    assert nodes[f"{d}/domid"].value == "7"
    assert nodes[f"{d}/vm"].value == vm
    assert nodes[f"{d}/memory/target"].value == "262144"
    assert nodes[f"{d}/memory/static-max"].value == "524288"
    assert nodes[f"{vm}/name"].value == "web01"
    assert nodes[f"{vm}/uuid"].value == "8a4c0cba-5b6f-4d39-9e80-2d6f0b0c7d21"
    assert [nodes[f"{d}/cpu/{n}/availability"].value for n in range(4)] == [
        "online",
        "online",
        "offline",
        "offline",
    ]
    assert f"{d}/cpu/4/availability" not in nodes


def test_permissions_follow_libxl_domain_make() -> None:
    nodes = {n.path: n for n in xspaths.domain_nodes(facts())}
    d = "/local/domain/7"
    assert nodes[d].perms == ("n0", "r7")  # roperm
    assert nodes["/vm/8a4c0cba-5b6f-4d39-9e80-2d6f0b0c7d21"].perms == ("n0", "r7")
    assert nodes[f"{d}/control/shutdown"].perms == ("n7",)  # rwperm: the guest answers here
    assert nodes[f"{d}/data"].perms == ("n7",)
    assert nodes["/libxl/7"].perms == ("n0",)  # noperm
    # Values that carry no permissions of their own inherit the parent's.
    assert nodes[f"{d}/name"].perms is None


def test_parents_come_before_children() -> None:
    paths = [n.path for n in xspaths.domain_nodes(facts())]
    for index, path in enumerate(paths):
        for earlier in paths[index + 1 :]:
            assert not path.startswith(earlier + "/"), (earlier, path)


def test_dom0_nodes() -> None:
    nodes = {n.path: n.value for n in xspaths.dom0_nodes(memory_kib=1048576, nr_cpus=2)}
    assert nodes["/local/domain/0/name"] == "Domain-0"
    assert nodes["/local/domain/0/domid"] == "0"
    assert nodes["/local/domain/0/vm"] == "/vm/00000000-0000-0000-0000-000000000000"
    assert nodes["/local/domain/0/memory/target"] == "1048576"
    assert nodes["/local/domain/0/cpu/1/availability"] == "online"
