"""``--dist bookworm|trixie``: a Debian system made by debootstrap, as xen-tools makes it.

debootstrap ``--variant=minbase`` from the request's mirror, with what a guest needs to boot
and be reached: systemd as init, udev, dbus (logind turns the ACPI power button of
``xl shutdown`` into a clean poweroff), Debian's cloud kernel (virtio drivers, small) with an
initramfs-tools initramfs, ifupdown with udhcpc for /etc/network/interfaces. Then the files
every dist takes from the request (:func:`xenlite.provision.system.write_identity`), root's
password, a GRUB 2 menu for pygrub, and one unit of xenlite's own, ``xenlite-ready``, which
prints "xenlite-guest: ready" on the console once the system is up, as a busybox image does.

debootstrap's output goes to ``/var/log/xenlite/create-image/NAME.log`` (xen-tools keeps
``/var/log/xen-tools/NAME.log``); a failure names the step and that log.
"""

from __future__ import annotations

import os
import platform
import secrets
import shutil
import string
import uuid
from pathlib import Path

from xenlite.base.errors import ProvisionError
from xenlite.base.files import write_atomic
from xenlite.base.paths import under_root
from xenlite.base.proc import require_program, run_sync
from xenlite.provision.request import ImageRequest
from xenlite.provision.system import BootFiles, grub_menu, kernel_cmdline, write_identity

LOG_DIR = "/var/log/xenlite/create-image"
_DEBOOTSTRAP_TIMEOUT = 1800.0
_TOOL_TIMEOUT = 60.0
_READY_UNIT = "xenlite-ready.service"
# Debian's architecture names of the host machines QEMU guests run on here.
_ARCH = {"x86_64": "amd64", "aarch64": "arm64"}
_PASSWORD_LENGTH = 12
CPU_ONLINE_RULE = (
    "# Written by xenlite create-image: online the vCPUs xl vcpu-set plugs.\n"
    'SUBSYSTEM=="cpu", ACTION=="add", TEST=="online", ATTR{online}=="0", ATTR{online}="1"\n'
)


def packages(arch: str) -> list[str]:
    """What goes in beside minbase."""
    return [
        "systemd-sysv",
        "udev",
        "dbus",
        f"linux-image-cloud-{arch}",
        "initramfs-tools",
        "ifupdown",
        "udhcpc",
        "iproute2",
    ]


def host_arch() -> str:
    machine = platform.machine()
    if machine not in _ARCH:
        raise ProvisionError(
            f"create-image on a {machine} host",
            "Debian's cloud kernel is built for amd64 and arm64 only",
            "use --dist busybox",
        )
    return _ARCH[machine]


def log_path(hostname: str) -> Path:
    return under_root(LOG_DIR) / f"{hostname}.log"


def debootstrap(tree: Path, request: ImageRequest) -> Path:
    """Install Debian into ``tree`` (an empty directory); return the log.

    :raise ProvisionError: when debootstrap is missing or fails, with its last error line
    """
    program = require_program("debootstrap", "debootstrap")
    arch = host_arch()
    argv: list[str | os.PathLike[str]] = [
        program,
        "--variant=minbase",
        "--components=main",
        f"--arch={arch}",
        "--include=" + ",".join(packages(arch)),
    ]
    if request.cache_dir is not None:
        request.cache_dir.mkdir(parents=True, exist_ok=True)
        argv.append(f"--cache-dir={request.cache_dir.resolve()}")
    argv += [request.dist.value, tree, request.mirror]
    result = run_sync(argv, timeout=_DEBOOTSTRAP_TIMEOUT, check=False)
    log = log_path(request.hostname)
    log.parent.mkdir(parents=True, exist_ok=True)
    said = result.stdout + result.stderr
    inner = tree / "debootstrap/debootstrap.log"
    if result.returncode != 0 and inner.is_file():
        said += b"\n--- debootstrap/debootstrap.log ---\n" + inner.read_bytes()
    write_atomic(log, said)
    if result.returncode != 0:
        # debootstrap prints its "E: ..." lines on stdout.
        lines = (result.stdout + result.stderr).decode(errors="replace").strip().splitlines()
        errors = [line for line in lines if line.startswith("E:")]
        last = (errors or lines or [f"exit status {result.returncode}"])[-1]
        raise ProvisionError(
            f"debootstrap {request.dist.value} from {request.mirror}",
            last.removeprefix("E: "),
            f"see {log}; check --mirror and that the host reaches it",
        )
    return log


def make_password() -> str:
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(_PASSWORD_LENGTH))


def ready_unit() -> str:
    return (
        "# Written by xenlite create-image: says on the console that the system is up.\n"
        "[Unit]\n"
        "Description=Say on the console that the system is up (xenlite create-image)\n"
        "Wants=network-online.target\n"
        "After=network-online.target systemd-user-sessions.service getty.target\n"
        "\n"
        "[Service]\n"
        "Type=oneshot\n"
        'ExecStart=/bin/echo "xenlite-guest: ready"\n'
        "StandardOutput=journal+console\n"
        "\n"
        "[Install]\n"
        "WantedBy=multi-user.target\n"
    )


def find_kernel(tree: Path, root_uuid: uuid.UUID) -> BootFiles:
    """The kernel and initramfs the kernel package installed in /boot.

    :raise ProvisionError: when there is not exactly one of each
    """
    kernels = sorted((tree / "boot").glob("vmlinuz-*"))
    if len(kernels) != 1:
        raise ProvisionError(
            "the Debian system's /boot",
            f"holds {len(kernels)} kernels (vmlinuz-*), not one",
            "see the create-image log for the kernel package's installation",
        )
    release = kernels[0].name.removeprefix("vmlinuz-")
    if not (tree / f"boot/initrd.img-{release}").is_file():
        raise ProvisionError(
            f"the Debian system's /boot/initrd.img-{release}",
            "was not made",
            "see the create-image log for initramfs-tools' output",
        )
    return BootFiles(
        release=release,
        kernel=f"/boot/vmlinuz-{release}",
        initrd=f"/boot/initrd.img-{release}",
        # net.ifnames=0: the interface is eth0, as /etc/network/interfaces says, and as a
        # Xen guest's first vif is named.
        cmdline=f"{kernel_cmdline(root_uuid)} net.ifnames=0",
    )


def configure(
    tree: Path,
    request: ImageRequest,
    *,
    root_uuid: uuid.UUID,
    swap_uuid: uuid.UUID | None,
    password: str,
) -> BootFiles:
    """Make the installed tree this guest: identity, password, boot menu, ready unit."""
    write_identity(tree, request, root_uuid, swap_uuid, api_mounts=False)
    # Each guest makes its own machine id on its first boot (systemd's "first boot").
    (tree / "etc/machine-id").unlink(missing_ok=True)
    (tree / "etc/machine-id").write_text("")
    # The system's own chpasswd, with its own PAM: the host's (chpasswd --root) loads the
    # guest's PAM modules into the host's libpam, which fails across Debian releases.
    run_sync(
        ["chroot", tree, "/usr/sbin/chpasswd"],
        input=f"root:{password}\n".encode(),
        timeout=_TOOL_TIMEOUT,
    )
    # xl vcpu-set plugs vCPUs offline; udev onlines each one the kernel adds, as a Xen guest's
    # kernel onlines the vCPUs its toolstack makes available.
    rules = tree / "etc/udev/rules.d"
    rules.mkdir(parents=True, exist_ok=True)
    (rules / "80-xenlite-cpu-online.rules").write_text(CPU_ONLINE_RULE)
    unit = tree / "etc/systemd/system" / _READY_UNIT
    unit.write_text(ready_unit())
    wants = tree / "etc/systemd/system/multi-user.target.wants"
    wants.mkdir(parents=True, exist_ok=True)
    (wants / _READY_UNIT).unlink(missing_ok=True)
    (wants / _READY_UNIT).symlink_to(f"/etc/systemd/system/{_READY_UNIT}")
    # The packages debootstrap fetched are in its cache (or gone); the image need not
    # carry them.
    for deb in (tree / "var/cache/apt/archives").glob("*.deb"):
        deb.unlink()
    shutil.rmtree(tree / "debootstrap", ignore_errors=True)
    boot = find_kernel(tree, root_uuid)
    title = f"Debian GNU/Linux {request.dist.value}"
    (tree / "boot/grub").mkdir(parents=True, exist_ok=True)
    (tree / "boot/grub/grub.cfg").write_text(grub_menu(request, boot, root_uuid, title))
    return boot
