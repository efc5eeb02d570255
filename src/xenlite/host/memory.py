"""The hypervisor's memory book: total, dom0's reservation, every domain's share, what is free.

xl.1 "info" (total_memory, free_memory), xen-command-line "dom0_mem", xl.conf(5)
"autoballoon", and xl's ``freemem()`` (tools/xl/xl_vmcontrol.c): a domain that does not fit
in free memory is refused, unless autoballoon is on, in which case dom0 gives up memory first,
but never below libxl's floor for dom0 (LIBXL_MIN_DOM0_MEM, 128 MiB). Nothing is overcommitted:
every KiB handed to a domain is taken from free memory or from dom0, and given back when the
domain shrinks its balloon or goes away.

On a xenlite host, dom0 is the host itself: its reservation is the memory the host keeps for
its own processes, and what it gives up goes to domains' QEMU processes.
"""

from __future__ import annotations

from dataclasses import dataclass

from xenlite.base.errors import InsufficientMemory

DOM0_FLOOR_KIB = 128 * 1024  # libxl_mem.c: LIBXL_MIN_DOM0_MEM


def _mib(kib: int) -> str:
    return f"{kib / 1024:.1f} MiB" if kib % 1024 else f"{kib // 1024} MiB"


@dataclass(slots=True)
class HostMemory:
    """The memory of one host, in KiB.

    ``dom0_kib`` is dom0's current reservation (what ``dom0_mem`` gave it, lowered by
    autoballooning); ``allocated_kib`` is what domains hold. ``free = total - dom0 - allocated``.
    """

    total_kib: int
    dom0_kib: int
    autoballoon: bool
    dom0_floor_kib: int = DOM0_FLOOR_KIB
    allocated_kib: int = 0

    @property
    def free_kib(self) -> int:
        return max(0, self.total_kib - self.dom0_kib - self.allocated_kib)

    def claimable_kib(self) -> int:
        """Free memory plus what dom0 could still give up by autoballooning."""
        spare = max(0, self.dom0_kib - self.dom0_floor_kib) if self.autoballoon else 0
        return self.free_kib + spare

    def claim(self, kib: int, what: str) -> int:
        """Take ``kib`` for ``what``, autoballooning dom0 down first when free memory is short.

        :return: how much dom0 gave up (0 when free memory sufficed)
        :raise InsufficientMemory: naming the shortfall, with nothing taken
        """
        if kib <= 0:
            return 0
        free = self.free_kib
        if kib > self.claimable_kib():
            raise InsufficientMemory(what, self._shortfall(kib), self._fix(kib))
        from_dom0 = max(0, kib - free)
        self.dom0_kib -= from_dom0
        self.allocated_kib += kib
        return from_dom0

    def restore(self, kib: int) -> None:
        """Count a domain that already holds ``kib`` (taken over after a daemon restart): it
        is never refused; dom0 is what must have given the memory up."""
        self.allocated_kib += max(kib, 0)
        over = self.total_kib - self.dom0_kib - self.allocated_kib
        if over < 0:
            self.dom0_kib = max(0, self.dom0_kib + over)

    def release(self, kib: int) -> None:
        """A domain gave ``kib`` back (balloon down, destroy): it is free memory again.

        As under Xen, dom0 does not grow back by itself; ``xl mem-set 0`` would do that.
        """
        self.allocated_kib = max(0, self.allocated_kib - max(kib, 0))

    def set_dom0(self, kib: int) -> None:
        """``xl mem-set 0``: dom0's reservation, within free memory and above its floor.

        :raise InsufficientMemory: when growing dom0 does not fit, or below the floor
        """
        if kib < self.dom0_floor_kib:
            raise InsufficientMemory(
                "Domain-0's memory target",
                f"{_mib(kib)} is below the minimum threshold of {_mib(self.dom0_floor_kib)}",
                f"give Domain-0 at least {_mib(self.dom0_floor_kib)}",
            )
        grow = kib - self.dom0_kib
        if grow > self.free_kib:
            raise InsufficientMemory(
                "Domain-0's memory target",
                f"growing it by {_mib(grow)} needs that much free memory; "
                f"{_mib(self.free_kib)} is free: {_mib(grow - self.free_kib)} short",
                f"ask for at most {_mib(self.dom0_kib + self.free_kib)}",
            )
        self.dom0_kib = kib

    def _shortfall(self, kib: int) -> str:
        have = self.claimable_kib()
        text = f"needs {_mib(kib)} but only {_mib(have)} can be had ({_mib(self.free_kib)} free"
        if self.autoballoon:
            text += f", dom0 can give up {_mib(have - self.free_kib)} more down to its floor "
            text += f"of {_mib(self.dom0_floor_kib)}"
        else:
            text += ", autoballoon is off so dom0 keeps its "
            text += f"{_mib(self.dom0_kib)}"
        return text + f"): {_mib(kib - have)} short"

    def _fix(self, kib: int) -> str:
        fixes = [f"ask for at most {_mib(self.claimable_kib())}", "free memory by shrinking "
                 "or destroying other domains (xl mem-set, xl destroy)"]  # fmt: skip
        if not self.autoballoon:
            fixes.append('let dom0 give memory up (autoballoon="on" in xl.conf, or a smaller '
                         "dom0_mem=)")  # fmt: skip
        return "; ".join(fixes)
