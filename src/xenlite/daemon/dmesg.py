"""The hypervisor's message ring that ``xl dmesg`` prints: ``(XEN) ...`` lines, bounded.

xl.1 "dmesg [-c]": read (and with -c clear) the Xen message buffer. A QEMU host has no
hypervisor log, so xenlited keeps one: a boot banner in Xen's words (version, command line,
RAM, CPUs, the accelerator that stands in for Xen's HVM support and why, the scheduler), then
what the host does that Xen would report: ignored boot options, domain crashes. The ring holds
at most ``max_lines`` lines, as Xen's console ring (conring_size) is bounded.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass

DEFAULT_MAX_LINES = 4096
_SCHEDULER_NAMES = {
    "credit": "SMP Credit Scheduler (credit)",
    "credit2": "SMP Credit Scheduler rev2 (credit2)",
    "rtds": "SMP RTDS Scheduler (rtds)",
    "arinc653": "ARINC 653 Scheduler (arinc653)",
    "null": "null Scheduler (null)",
}


@dataclass(frozen=True, slots=True)
class BootFacts:
    """What the banner tells."""

    version: str  # e.g. "4.17.0-xenlite-0.1.0"
    compiler: str
    cmdline: str
    total_kib: int
    nr_cpus: int
    accel: str  # "kvm" or "tcg"
    accel_reason: str
    scheduler: str
    ignored_options: tuple[tuple[str, str], ...] = ()  # (option, why), config.settings


class HypervisorLog:
    """A bounded ring of ``(XEN)`` lines."""

    def __init__(self, max_lines: int = DEFAULT_MAX_LINES) -> None:
        self._lines: deque[str] = deque(maxlen=max_lines)

    def write(self, message: str) -> None:
        """Add ``message`` (one or more lines), each with the ``(XEN)`` prefix."""
        for line in message.splitlines() or [""]:
            self._lines.append(f"(XEN) {line}".rstrip())

    def text(self) -> str:
        """Everything in the ring, one line each, ending with a newline when not empty."""
        return "".join(f"{line}\n" for line in self._lines)

    def clear(self) -> None:
        self._lines.clear()

    def __len__(self) -> int:
        return len(self._lines)


def boot_banner(facts: BootFacts) -> list[str]:
    """The lines a Xen boot would start its log with, for this host."""
    mib = facts.total_kib // 1024
    scheduler = _SCHEDULER_NAMES.get(facts.scheduler, facts.scheduler)
    accel = "KVM" if facts.accel == "kvm" else "TCG"
    lines = [
        f"Xen version {facts.version} ({facts.compiler}) debug=n {time.strftime('%c')}",
        "Bootloader: xenlite (domains run on QEMU)",
        f"Command line: {facts.cmdline}",
        f"System RAM: {mib}MB ({facts.total_kib}kB)",
        f"Using scheduler: {scheduler}",
        f"Brought up {facts.nr_cpus} CPUs",
        f"HVM: accelerator {accel}: {facts.accel_reason}",
    ]
    lines += [f"Ignored option: {option} (no effect on a QEMU host: {why})"
              for option, why in facts.ignored_options]  # fmt: skip
    return lines
