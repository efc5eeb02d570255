"""The hypervisor log: (XEN) prefix, bounded ring, clear, and the boot banner."""

from __future__ import annotations

from xenlite.daemon.dmesg import BootFacts, HypervisorLog, boot_banner


def test_lines_get_the_xen_prefix_and_the_ring_is_bounded() -> None:
    ring = HypervisorLog(max_lines=3)
    ring.write("one\ntwo")
    ring.write("three")
    ring.write("four")
    assert ring.text() == "(XEN) two\n(XEN) three\n(XEN) four\n"
    assert len(ring) == 3
    ring.clear()
    assert ring.text() == ""


def test_banner_names_version_cmdline_ram_cpus_accel_and_scheduler() -> None:
    facts = BootFacts(
        version="4.17.0-xenlite-0.1.0",
        compiler="Python 3.11",
        cmdline="dom0_mem=1024M sched=credit iommu=on",
        total_kib=8 * 1024 * 1024,
        nr_cpus=4,
        accel="tcg",
        accel_reason="/dev/kvm is missing",
        scheduler="credit",
        ignored_options=(("iommu=on", "not an option xenlite knows"),),
    )
    text = "\n".join(boot_banner(facts))
    assert "Xen version 4.17.0-xenlite-0.1.0" in text
    assert "Command line: dom0_mem=1024M sched=credit iommu=on" in text
    assert "System RAM: 8192MB (8388608kB)" in text
    assert "Brought up 4 CPUs" in text
    assert "TCG: /dev/kvm is missing" in text
    assert "Using scheduler: SMP Credit Scheduler (credit)" in text
    assert (
        "Ignored option: iommu=on (no effect on a QEMU host: not an option xenlite knows)" in text
    )
