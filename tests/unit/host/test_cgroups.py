"""Domain cgroups against fake v1 and v2 trees: detection, Xen's units mapped, errors, cleanup.

A plain directory does not fill itself with control files as cgroupfs does, nor refuse rmdir
while tasks are in it; ``FakeKernel`` stands in for the kernel in exactly those two places
(``_mkdir_group`` and ``_rmdir_group``). Moving real tasks is covered by
tests/integration/test_cgroups_host.py.
"""

from __future__ import annotations

import errno
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from xenlite.base.errors import DomainError, HostError, Unsupported
from xenlite.host import cgroups
from xenlite.host.cgroups import CgroupHost, CgroupLayout, CgroupVersion, detect_layout

V1_CPU_FILES = {
    "cgroup.procs": "",
    "tasks": "",
    "cpu.shares": "1024\n",
    "cpu.cfs_period_us": "100000\n",
    "cpu.cfs_quota_us": "-1\n",
}
V1_CPUSET_FILES = {"cgroup.procs": "", "tasks": "", "cpuset.cpus": "\n", "cpuset.mems": "\n"}
V2_FILES = {
    "cgroup.procs": "",
    "cgroup.controllers": "cpu cpuset\n",
    "cgroup.subtree_control": "\n",
    "cpu.weight": "100\n",
    "cpu.max": "max 100000\n",
    "cpuset.cpus": "\n",
    "cpuset.cpus.effective": "0-3\n",
    "cpuset.mems": "\n",
}


class FakeKernel:
    """Creates and removes cgroup directories the way cgroupfs does, in a plain tree."""

    def __init__(self) -> None:
        self.templates: dict[Path, dict[str, str]] = {}

    def mount(self, root: Path, template: dict[str, str], **root_files: str) -> Path:
        root.mkdir(parents=True)
        self.templates[root] = template
        for name, text in (template | root_files).items():
            (root / name).write_text(text)
        return root

    def mkdir(self, path: Path) -> None:
        if path.exists():
            return
        path.mkdir()
        root = next(r for r in self.templates if path.is_relative_to(r))
        for name, text in self.templates[root].items():
            (path / name).write_text(text)

    def rmdir(self, path: Path) -> None:
        if not path.exists():
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), str(path))
        busy = any(p.is_dir() for p in path.iterdir()) or any(
            (path / name).read_text().strip()
            for name in ("cgroup.procs", "tasks")
            if (path / name).exists()
        )
        if busy:
            raise OSError(errno.EBUSY, os.strerror(errno.EBUSY), str(path))
        for child in path.iterdir():
            child.unlink()
        path.rmdir()


@dataclass
class Tree:
    mountinfo: Path
    base: Path
    kernel: FakeKernel

    def host(self) -> CgroupHost:
        return CgroupHost(detect_layout(self.mountinfo), parent="xenlite-test")


def _mountinfo(tmp_path: Path, lines: list[str]) -> Path:
    path = tmp_path / "mountinfo"
    path.write_text("".join(f"{n} 23 0:{n} {line}\n" for n, line in enumerate(lines, 30)))
    return path


@pytest.fixture
def kernel(monkeypatch: pytest.MonkeyPatch) -> FakeKernel:
    fake = FakeKernel()
    monkeypatch.setattr(cgroups, "_mkdir_group", fake.mkdir)
    monkeypatch.setattr(cgroups, "_rmdir_group", fake.rmdir)
    monkeypatch.setattr(cgroups, "_RETRY_DELAY", 0.0)
    return fake


@pytest.fixture
def v1(tmp_path: Path, kernel: FakeKernel) -> Tree:
    """This machine's shape: separate v1 cpu and cpuset mounts, an empty cgroup2 mount."""
    base = tmp_path / "v1" / "cgroup"
    cpu = kernel.mount(base / "cpu", V1_CPU_FILES)
    cpuset = kernel.mount(base / "cpuset", V1_CPUSET_FILES, **{"cpuset.cpus": "0-3\n"})
    (cpuset / "cpuset.mems").write_text("0\n")
    unified = base / "unified"
    unified.mkdir()
    (unified / "cgroup.controllers").write_text("\n")
    lines = [
        f"/ {base} rw,relatime - tmpfs tmpfs rw,mode=755",
        f"/ {cpu} rw,relatime - cgroup cgroup rw,cpu",
        f"/ {base}/cpuacct rw,relatime - cgroup cgroup rw,cpuacct",
        f"/ {cpuset} rw,relatime - cgroup cgroup rw,cpuset",
        f"/ {base}/memory rw,relatime shared:9 - cgroup cgroup rw,memory",
        f"/ {unified} rw,relatime - cgroup2 cgroup2 rw",
    ]
    return Tree(_mountinfo(tmp_path / "v1", lines), base, kernel)


@pytest.fixture
def v2(tmp_path: Path, kernel: FakeKernel) -> Tree:
    """A pure cgroup v2 host: /sys/fs/cgroup is cgroup2 and offers cpu and cpuset."""
    base = kernel.mount(
        tmp_path / "v2" / "cgroup",
        V2_FILES,
        **{"cgroup.controllers": "cpuset cpu io memory pids\n"},
    )
    lines = [f"/ {base} rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate"]
    return Tree(_mountinfo(tmp_path / "v2", lines), base, kernel)


def test_detects_separate_v1_controllers_and_ignores_an_empty_cgroup2(v1: Tree) -> None:
    layout = detect_layout(v1.mountinfo)
    assert layout == CgroupLayout(
        CgroupVersion.V1, v1.base / "cpu", CgroupVersion.V1, v1.base / "cpuset"
    )


def test_detects_a_pure_v2_host(v2: Tree) -> None:
    layout = detect_layout(v2.mountinfo)
    assert layout == CgroupLayout(CgroupVersion.V2, v2.base, CgroupVersion.V2, v2.base)


def test_detects_co_mounted_v1_controllers_and_unescapes_the_mount_point(tmp_path: Path) -> None:
    mountinfo = _mountinfo(
        tmp_path,
        [
            "/ /sys/fs/cgroup/cpu\\054cpuacct rw - cgroup cgroup rw,cpu,cpuacct",
            "/ /sys/fs/my\\040cpuset rw - cgroup cgroup rw,cpuset",
        ],
    )
    layout = detect_layout(mountinfo)
    assert layout.cpu_mount == Path("/sys/fs/cgroup/cpu,cpuacct")
    assert layout.cpuset_mount == Path("/sys/fs/my cpuset")


def test_prefers_the_mount_of_a_hierarchys_root_over_a_bind_mounted_subtree(
    tmp_path: Path,
) -> None:
    mountinfo = _mountinfo(
        tmp_path,
        [
            "/docker/abc /container/cpu rw - cgroup cgroup rw,cpu",
            "/ /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu",
        ],
    )
    assert detect_layout(mountinfo).cpu_mount == Path("/sys/fs/cgroup/cpu")


def test_a_cgroup2_mount_without_cpu_is_unsupported(tmp_path: Path, kernel: FakeKernel) -> None:
    base = kernel.mount(tmp_path / "cgroup", V2_FILES, **{"cgroup.controllers": "io memory\n"})
    mountinfo = _mountinfo(tmp_path, [f"/ {base} rw - cgroup2 cgroup2 rw"])
    with pytest.raises(Unsupported) as info:
        detect_layout(mountinfo)
    err = info.value
    assert "cpu cgroup controller" in str(err)
    assert f"{base} offers io memory" in str(err)
    assert err.fix is not None
    assert "mount -t cgroup -o cpu" in err.fix
    assert "echo +cpu > cgroup.subtree_control" in err.fix


def test_no_cgroup_mounts_at_all_is_unsupported(tmp_path: Path) -> None:
    mountinfo = _mountinfo(tmp_path, ["/ /proc rw - proc proc rw"])
    with pytest.raises(Unsupported, match="no cgroup2 mounts"):
        detect_layout(mountinfo)


def test_an_unreadable_mount_table_is_a_host_error(tmp_path: Path) -> None:
    with pytest.raises(HostError, match="No such file or directory"):
        detect_layout(tmp_path / "missing")


def test_v1_create_makes_both_groups_with_the_parents_cpuset(v1: Tree) -> None:
    group = v1.host().create_domain(5)
    assert group.cpu_dir == v1.base / "cpu" / "xenlite-test" / "dom5"
    assert group.cpuset_dir == v1.base / "cpuset" / "xenlite-test" / "dom5"
    for path in (group.cpuset_dir.parent, group.cpuset_dir):
        assert (path / "cpuset.cpus").read_text() == "0-3"
        assert (path / "cpuset.mems").read_text() == "0"
    assert group.cpus() == {0, 1, 2, 3}


def test_create_is_idempotent_and_keeps_what_was_set(v1: Tree) -> None:
    host = v1.host()
    group = host.create_domain(5)
    group.set_cpus({2})
    group.set_weight(512)
    assert host.create_domain(5) == group
    assert group.cpus() == {2}
    assert group.weight() == 512


@pytest.mark.parametrize(
    ("weight", "shares"), [(256, 1024), (512, 2048), (1, 4), (100, 400), (65535, 262140)]
)
def test_v1_weight_is_four_shares_per_unit_and_reads_back_exactly(
    v1: Tree, weight: int, shares: int
) -> None:
    group = v1.host().create_domain(1)
    group.set_weight(weight)
    assert (group.cpu_dir / "cpu.shares").read_text() == str(shares)
    assert group.weight() == weight


@pytest.mark.parametrize(("cap", "quota"), [(25, "25000"), (100, "100000"), (400, "400000")])
def test_v1_cap_is_a_cfs_quota_per_100ms(v1: Tree, cap: int, quota: str) -> None:
    group = v1.host().create_domain(1)
    group.set_cap(cap)
    assert (group.cpu_dir / "cpu.cfs_period_us").read_text() == "100000"
    assert (group.cpu_dir / "cpu.cfs_quota_us").read_text() == quota
    assert group.cap() == cap
    group.set_cap(0)
    assert (group.cpu_dir / "cpu.cfs_quota_us").read_text() == "-1"
    assert group.cap() == 0


def test_a_tiny_foreign_quota_still_reads_as_a_cap(v1: Tree) -> None:
    group = v1.host().create_domain(1)
    (group.cpu_dir / "cpu.cfs_quota_us").write_text("300\n")
    assert group.cap() == 1


def test_v2_create_enables_cpu_and_cpuset_for_children_once(v2: Tree) -> None:
    group = v2.host().create_domain(5)
    assert group.cpu_dir == group.cpuset_dir == v2.base / "xenlite-test" / "dom5"
    assert (v2.base / "cgroup.subtree_control").read_text() == "+cpu +cpuset"
    assert (v2.base / "xenlite-test" / "cgroup.subtree_control").read_text() == "+cpu +cpuset"
    # Already enabled (as the kernel would list them): nothing is written again.
    (v2.base / "cgroup.subtree_control").write_text("cpuset cpu io\n")
    v2.host().create_domain(6)
    assert (v2.base / "cgroup.subtree_control").read_text() == "cpuset cpu io\n"


def test_v2_needs_the_controllers_offered_by_the_parent(tmp_path: Path, kernel: FakeKernel) -> None:
    base = kernel.mount(tmp_path / "cgroup", V2_FILES, **{"cgroup.controllers": "memory\n"})
    host = CgroupHost(CgroupLayout(CgroupVersion.V2, base), parent="xenlite-test")
    with pytest.raises(Unsupported) as info:
        host.create_domain(1)
    assert "does not offer cpu" in str(info.value)
    assert info.value.fix == "enable cpu in its parent's cgroup.subtree_control"
    assert not (base / "xenlite-test").exists()


@pytest.mark.parametrize(
    ("weight", "cpu_weight", "read_back"),
    [(256, 100, 256), (512, 200, 512), (1, 1, 3), (257, 100, 256), (25600, 10000, 25600)],
)
def test_v2_weight_is_proportional_in_steps_of_2_56(
    v2: Tree, weight: int, cpu_weight: int, read_back: int
) -> None:
    group = v2.host().create_domain(1)
    group.set_weight(weight)
    assert (group.cpu_dir / "cpu.weight").read_text() == str(cpu_weight)
    assert group.weight() == read_back


def test_v2_weight_above_25600_saturates_and_says_so(
    v2: Tree, caplog: pytest.LogCaptureFixture
) -> None:
    group = v2.host().create_domain(1)
    with caplog.at_level(logging.WARNING, logger="xenlite.host"):
        group.set_weight(65535)
    assert (group.cpu_dir / "cpu.weight").read_text() == "10000"
    assert "weight 65535 acts as 25600" in caplog.text


def test_v2_cap_is_cpu_max(v2: Tree) -> None:
    group = v2.host().create_domain(1)
    group.set_cap(25)
    assert (group.cpu_dir / "cpu.max").read_text() == "25000 100000"
    assert group.cap() == 25
    group.set_cap(0)
    assert (group.cpu_dir / "cpu.max").read_text() == "max 100000"
    assert group.cap() == 0


def test_cpus_are_written_in_the_kernels_list_format(v1: Tree, v2: Tree) -> None:
    for tree in (v1, v2):
        group = tree.host().create_domain(1)
        assert group.cpus() == {0, 1, 2, 3}  # v2: empty cpuset.cpus, so the effective set
        group.set_cpus({0, 2, 3})
        assert (group.cpuset_dir or group.cpu_dir).joinpath("cpuset.cpus").read_text() == "0,2-3"
        assert group.cpus() == {0, 2, 3}
        group.set_cpus({1})
        assert group.cpus() == {1}


@pytest.mark.parametrize("cpus", [set(), {4}, {-1, 0}])
def test_cpus_outside_the_parent_are_refused_and_nothing_is_written(
    v1: Tree, cpus: set[int]
) -> None:
    group = v1.host().create_domain(1)
    with pytest.raises(DomainError) as info:
        group.set_cpus(cpus)
    assert "domain 1: cpus" in str(info.value)
    assert info.value.fix == "choose cpus from 0-3"
    assert group.cpus() == {0, 1, 2, 3}


@pytest.mark.parametrize(
    ("setter", "value", "fix"),
    [
        ("set_weight", 0, "from 1 to 65535"),
        ("set_weight", 65536, "from 1 to 65535"),
        ("set_cap", -1, "from 0 (no cap)"),
        ("set_cap", 65536, "from 0 (no cap)"),
    ],
)
def test_out_of_range_values_are_domain_errors_and_write_nothing(
    v1: Tree, v2: Tree, setter: str, value: int, fix: str
) -> None:
    for tree in (v1, v2):
        group = tree.host().create_domain(1)
        before = {p: p.read_text() for p in group.cpu_dir.iterdir()}
        with pytest.raises(DomainError) as info:
            getattr(group, setter)(value)
        assert str(value) in str(info.value)
        assert fix in str(info.value.fix)
        assert {p: p.read_text() for p in group.cpu_dir.iterdir()} == before


def test_a_failed_write_names_the_file_and_the_cause(v1: Tree) -> None:
    group = v1.host().create_domain(1)
    (group.cpu_dir / "cpu.shares").unlink()  # as if the cpu controller were not there
    with pytest.raises(HostError) as info:
        group.set_weight(512)
    assert str(info.value) == f"{group.cpu_dir / 'cpu.shares'}: No such file or directory"
    assert info.value.fix


def test_reading_a_group_that_does_not_exist_says_so(v1: Tree) -> None:
    with pytest.raises(HostError) as info:
        v1.host().domain(9).weight()
    assert "dom9/cpu.shares" in str(info.value)
    assert "create the domain's cgroup" in str(info.value.fix)


def test_add_process_writes_the_pid_to_cgroup_procs_of_every_hierarchy(v1: Tree, v2: Tree) -> None:
    group = v1.host().create_domain(1)
    group.add_process(4242)
    assert group.cpuset_dir is not None
    assert (group.cpu_dir / "cgroup.procs").read_text() == "4242"
    assert (group.cpuset_dir / "cgroup.procs").read_text() == "4242"
    assert group.pids() == [4242]
    group = v2.host().create_domain(1)
    group.add_process(4242)
    assert (group.cpu_dir / "cgroup.procs").read_text() == "4242"


def test_domain_groups_lists_only_dom_groups_in_domid_order(v1: Tree) -> None:
    host = v1.host()
    assert host.domain_groups() == []
    for domid in (12, 3):
        host.create_domain(domid)
    (v1.base / "cpu" / "xenlite-test" / "other").mkdir()
    for name in ("dom7.bak", "dom007", "dom40000"):
        (v1.base / "cpu" / "xenlite-test" / name).mkdir()
    assert [g.domid for g in host.domain_groups()] == [3, 12]


def test_remove_is_idempotent_and_remove_all_takes_the_parent(v1: Tree, v2: Tree) -> None:
    for tree in (v1, v2):
        host = tree.host()
        group = host.create_domain(3)
        host.create_domain(4)
        group.remove()
        group.remove()
        assert not group.cpu_dir.exists()
        assert group.cpuset_dir is None or not group.cpuset_dir.exists()
        assert [g.domid for g in host.domain_groups()] == [4]
        host.remove_all()
        host.remove_all()
        assert sorted(p.name for p in tree.base.rglob("xenlite-test*")) == []


def test_a_group_whose_tasks_never_leave_is_a_host_error(v1: Tree) -> None:
    group = v1.host().create_domain(3)
    # The fake kernel does not move tasks, so the group stays busy: remove() gives up.
    (group.cpu_dir / "tasks").write_text("4242\n")
    with pytest.raises(HostError) as info:
        group.remove()
    assert "still busy" in str(info.value)
    assert str(group.cpu_dir) in str(info.value)


def test_without_cpuset_cpus_are_unsupported_but_the_rest_works(
    tmp_path: Path, kernel: FakeKernel
) -> None:
    cpu = kernel.mount(tmp_path / "cpu", V1_CPU_FILES)
    host = CgroupHost(CgroupLayout(CgroupVersion.V1, cpu), parent="xenlite-test")
    group = host.create_domain(2)
    group.set_weight(128)
    assert group.weight() == 128
    with pytest.raises(Unsupported, match="no cpuset cgroup controller"):
        group.set_cpus({0})
    host.remove_all()
    assert not (cpu / "xenlite-test").exists()


@pytest.mark.parametrize("parent", ["", ".", "..", "a/b"])
def test_the_parent_is_one_directory_name(v1: Tree, parent: str) -> None:
    with pytest.raises(ValueError, match="single directory name"):
        CgroupHost(detect_layout(v1.mountinfo), parent=parent)
