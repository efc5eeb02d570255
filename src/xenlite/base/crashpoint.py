"""Named crash points: ``kill -9`` of the running daemon at an exact step, for crash tests.

Not a Xen man page: ../shared/DESIGN.md "crash-only steps". A kill -9 sent from outside
lands wherever the daemon happens to be; to prove that recovery copes with a death at *each*
step of create and destroy, the tests set ``XENLITE_CRASH_AT=NAME`` in a daemon's environment
and the daemon sends itself SIGKILL when it reaches the step of that name: the same death as
a kill from outside, at an instant chosen instead of guessed. Unset (always, outside tests),
a crash point costs one dictionary lookup.

The names are listed in :data:`POINTS`; a name that is not there is an error at the first
crash point reached, so a test cannot silently wait for a step that never comes.
"""

from __future__ import annotations

import os
import signal

ENV = "XENLITE_CRASH_AT"

# The steps of create (domain/manager.py _build) and of destroy (_teardown), in order.
CREATE_POINTS = (
    "create:record-saved",
    "create:qemu-spawned",  # QEMU exists, its pid file does not yet (qemu/process.py)
    "create:qemu-launched",
    "create:cgroup-joined",
    "create:qmp-connected",
    "create:nodes-written",
    "create:introduced",
    "create:unpaused",
)
DESTROY_POINTS = (
    "destroy:dying-saved",
    "destroy:qemu-stopped",
    "destroy:nodes-removed",
    "destroy:run-dir-removed",
)
# An on_* restart: the old domain is gone, the new one not yet begun (its note holds it).
RESTART_POINTS = ("restart:torn-down",)
# xl block-attach before QEMU has the device (domain/devices.py), and block-detach after the
# guest let it go but before its nodes and record entry are gone.
ATTACH_POINTS = ("attach:config-kept", "attach:nodes-written", "attach:blockdev-added")
DETACH_POINTS = ("detach:device-deleted",)
# xl network-attach once the tap is on its bridge, network-detach once the guest let go.
NIC_POINTS = ("attach:tap-plugged", "detach:nic-deleted")
# Create with bootloader=: the kernel and ramdisk copied into the run directory, no QEMU yet.
BOOTLOADER_POINTS = ("create:bootloader-ran",)
# A cpupool change saved in the book, its domains' cpusets not yet following; a domain's
# move to another pool kept in its config, its cpuset not yet following.
POOL_POINTS = ("cpupool:book-saved", "cpupool:config-kept")
# xl vcpu-set: QEMU has the new vCPU, the config and XenStore do not say so yet.
VCPU_POINTS = ("vcpu-set:plugged",)
POINTS = frozenset(
    POOL_POINTS
    + VCPU_POINTS
    + CREATE_POINTS
    + DESTROY_POINTS
    + RESTART_POINTS
    + ATTACH_POINTS
    + DETACH_POINTS
    + NIC_POINTS
    + BOOTLOADER_POINTS
)


def crash_point(name: str) -> None:
    """Die here, by SIGKILL, when ``XENLITE_CRASH_AT`` names this point.

    :raise ValueError: when ``XENLITE_CRASH_AT`` names no crash point at all
    """
    wanted = os.environ.get(ENV)
    if not wanted:
        return
    if wanted not in POINTS:
        raise ValueError(f"{ENV}={wanted!r} names no crash point; known: {sorted(POINTS)}")
    if wanted == name:
        os.kill(os.getpid(), signal.SIGKILL)
