"""Build and cache the guest kit: Debian's cloud kernel plus a busybox initramfs.

Not a Xen man page: this is xenlite's own test/demo guest (../shared/DESIGN.md "Testing").
The kernel comes from Debian's ``linux-image-cloud-<arch>`` meta-package, resolved to the real
``linux-image-<release>-cloud-<arch>`` package with ``apt-cache``, fetched with
``apt-get download`` and unpacked with ``dpkg-deb -x`` (nothing is installed on the host). The
initramfs holds the host's static busybox, the virtio and ACPI button modules with their
dependencies, and ``init.sh`` as ``/init``; it is written by :mod:`xenlite.guestkit.cpio`.

A kit lives in ``user_cache_dir()/guest-kit/<key>`` where the key hashes every input
(:class:`KitInputs`); an entry appears by renaming a finished temporary directory, so an
interrupted build never leaves half an entry behind.

Compressed modules: ``.ko.xz`` and ``.ko.gz`` are decompressed in Python (lzma, gzip);
``.ko.zst`` with the ``zstd`` program (Debian package zstd), as Python 3.11 has no zstd codec.
"""

from __future__ import annotations

import contextlib
import fcntl
import gzip
import hashlib
import json
import lzma
import os
import shutil
import struct
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from xenlite.base.errors import CommandFailed, GuestKitError, HostError
from xenlite.base.files import fsync_path
from xenlite.base.paths import user_cache_dir
from xenlite.base.proc import run_sync
from xenlite.guestkit.cpio import CPIO_WRITER_VERSION, CpioArchive, EntryKind

BUSYBOX = Path("/bin/busybox")
BUSYBOX_PACKAGE = "busybox-static"

# Modules the guest needs, by module name: virtio transport and devices, the ACPI power button
# and evdev (busybox acpid reads the button's key press from /dev/input/event*), and the SCSI
# cdrom driver.
GUEST_MODULES: tuple[str, ...] = (
    "virtio_pci",
    "virtio_blk",
    "virtio_net",
    "virtio_balloon",
    "virtio_console",
    "button",
    "evdev",
    # QEMU's pvpanic device reports a guest panic as QMP GUEST_PANICKED (on_crash).
    "pvpanic_mmio",
    # cdroms: scsi-cd drives on a virtio-scsi controller are /dev/sr0, /dev/sr1, ...
    "virtio_scsi",
    "sr_mod",
)

KERNEL_FILE = "vmlinuz"
INITRD_FILE = "initrd.img"
MANIFEST_FILE = "manifest.json"

_MODULE_SUFFIXES = (".ko", ".ko.xz", ".ko.zst", ".ko.gz")
_MODULE_LIST = "xenlite-modules"
_APT_TIMEOUT = 120.0
_DOWNLOAD_TIMEOUT = 900.0
# Temporary build directories older than this are leftovers of killed builds.
_STALE_SECONDS = 6 * 3600
_APT_FIX = "run 'apt-get update' (as root) and check that the Debian mirror is reachable"


@dataclass(frozen=True, slots=True)
class GuestKit:
    """A built kit: the kernel and initramfs to boot, and where they came from."""

    kernel: Path
    initrd: Path
    kernel_version: str
    key: str
    cached: bool


@dataclass(frozen=True, slots=True)
class KitInputs:
    """Everything a kit is built from; its hash is the cache key."""

    kernel_package: str
    kernel_package_version: str
    busybox_version: str
    init_script: bytes
    modules: tuple[str, ...]
    cpio_writer_version: str = CPIO_WRITER_VERSION
    # The scripts of guestkit/etc/, installed as /etc/NAME: (name, content).
    helpers: tuple[tuple[str, bytes], ...] = ()


@dataclass(frozen=True, slots=True)
class ModuleFile:
    """One module to load in the guest, in load order."""

    name: str
    path: Path


@dataclass(frozen=True, slots=True)
class ModulePlan:
    """The modules to insmod (dependencies first) and those the kernel has built in."""

    load_order: tuple[ModuleFile, ...]
    builtin: tuple[str, ...]


# Fetches the kernel package for ``inputs`` and unpacks it below the given directory,
# returning the unpacked tree's root. Tests replace it with a local tree.
KernelFetcher = Callable[[KitInputs, Path], Path]


def guest_kit_key(inputs: KitInputs) -> str:
    """The cache key: sha256 over a canonical encoding of every input."""
    canonical = json.dumps(
        {
            "kernel_package": inputs.kernel_package,
            "kernel_package_version": inputs.kernel_package_version,
            "busybox_version": inputs.busybox_version,
            "init_sha256": hashlib.sha256(inputs.init_script).hexdigest(),
            "helpers_sha256": {
                name: hashlib.sha256(content).hexdigest() for name, content in inputs.helpers
            },
            "modules": list(inputs.modules),
            "cpio_writer_version": inputs.cpio_writer_version,
        },
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def init_script() -> bytes:
    """The guest's ``/init`` as shipped in this package."""
    return resources.files("xenlite.guestkit").joinpath("init.sh").read_bytes()


def helper_scripts() -> tuple[tuple[str, bytes], ...]:
    """The scripts of ``guestkit/etc/`` (the DHCP lease hook, the vCPU onliner): the kit's
    /etc/NAME, and what create-image's busybox systems install too."""
    folder = resources.files("xenlite.guestkit").joinpath("etc")
    return tuple(
        sorted((entry.name, entry.read_bytes()) for entry in folder.iterdir() if entry.is_file())
    )


def helper_script(name: str) -> bytes:
    return dict(helper_scripts())[name]


def guest_kit_cache_root() -> Path:
    """Where kits are cached: ``user_cache_dir()/guest-kit``."""
    return user_cache_dir() / "guest-kit"


def resolve_inputs(*, modules: Sequence[str] = GUEST_MODULES) -> KitInputs:
    """Ask apt and dpkg which kernel package and busybox version a build would use now.

    :raise GuestKitError: when apt or dpkg are missing, or a package is unknown
    """
    arch = _dpkg_architecture()
    if arch != "amd64":
        raise GuestKitError(
            "guest kit",
            f"host architecture {arch} is not supported (the kit boots on qemu-system-x86_64)",
            "build the guest kit on an amd64 Debian host",
        )
    kernel_package, kernel_version = resolve_kernel_package(f"linux-image-cloud-{arch}")
    return KitInputs(
        kernel_package=kernel_package,
        kernel_package_version=kernel_version,
        busybox_version=busybox_version(),
        init_script=init_script(),
        modules=tuple(modules),
        helpers=helper_scripts(),
    )


def build_guest_kit(out: Path | None = None, *, force: bool = False) -> GuestKit:
    """Build the guest kit, or reuse the cached one whose inputs are unchanged.

    :param out: when given, the kernel and initrd are also placed in this directory
        (hard-linked when possible) and the returned paths point there
    :param force: rebuild even when a cached kit with the same key exists
    :raise GuestKitError: when a package cannot be resolved, downloaded or unpacked
    :raise HostError: when a needed program is missing or times out
    """
    return build_from_inputs(resolve_inputs(), out=out, force=force)


def build_from_inputs(
    inputs: KitInputs,
    *,
    out: Path | None = None,
    force: bool = False,
    cache_root: Path | None = None,
    fetch_kernel: KernelFetcher | None = None,
    busybox: Path = BUSYBOX,
) -> GuestKit:
    """Build (or reuse) the kit for ``inputs``; :func:`build_guest_kit` without the apt lookup.

    :raise GuestKitError: when the kernel package, a module or busybox cannot be used
    """
    root = cache_root if cache_root is not None else guest_kit_cache_root()
    key = guest_kit_key(inputs)
    fetch = fetch_kernel if fetch_kernel is not None else download_kernel_package
    root.mkdir(parents=True, exist_ok=True)
    with _locked(root / ".lock"):
        _remove_stale_temporaries(root)
        entry = root / key
        kit = None if force else _load_entry(entry, key)
        if kit is None:
            _build_entry(inputs, key, root, fetch, busybox)
            loaded = _load_entry(entry, key)
            if loaded is None:
                raise GuestKitError(
                    f"guest kit cache entry {entry}",
                    "is incomplete right after it was built",
                    f"remove {root} and build again",
                )
            kit = GuestKit(loaded.kernel, loaded.initrd, loaded.kernel_version, key, cached=False)
    if out is not None:
        kit = _export(kit, out)
    return kit


def resolve_kernel_package(meta_package: str) -> tuple[str, str]:
    """Resolve ``linux-image-cloud-amd64`` to the real image package and its version.

    :raise GuestKitError: when apt does not know the package or it has no kernel dependency
    """
    record = _apt_show(meta_package)
    depends = record.get("Depends", "")
    for alternative in depends.split(","):
        first = alternative.split("|")[0].strip()
        name, _, constraint = first.partition(" ")
        if not name.startswith("linux-image-"):
            continue
        version = ""
        constraint = constraint.strip()
        if constraint.startswith("(=") and constraint.endswith(")"):
            version = constraint[2:-1].strip()
        if not version:
            version = _apt_show(name).get("Version", "")
        if not version:
            raise GuestKitError(f"package {name}", "apt reports no installable version", _APT_FIX)
        return name, version
    raise GuestKitError(
        f"package {meta_package}",
        f"depends on no linux-image package (Depends: {depends or 'nothing'})",
        _APT_FIX,
    )


def busybox_version() -> str:
    """The installed busybox-static version, from dpkg-query.

    :raise GuestKitError: when busybox-static is not installed
    """
    argv = ["dpkg-query", "-W", "-f=${Version}", BUSYBOX_PACKAGE]
    try:
        result = run_sync(argv, timeout=_APT_TIMEOUT)
    except CommandFailed as exc:
        raise GuestKitError(
            f"package {BUSYBOX_PACKAGE}",
            "is not installed (the guest's userland is its static busybox)",
            f"apt-get install {BUSYBOX_PACKAGE}",
        ) from exc
    except HostError as exc:
        raise GuestKitError(
            "program 'dpkg-query'", exc.cause, "build the guest kit on a Debian-based host"
        ) from exc
    version = result.stdout.decode().strip()
    if not version:
        raise GuestKitError(
            f"package {BUSYBOX_PACKAGE}",
            "is known to dpkg but not installed",
            f"apt-get install {BUSYBOX_PACKAGE}",
        )
    return version


def download_kernel_package(inputs: KitInputs, workdir: Path) -> Path:
    """``apt-get download`` the kernel package into ``workdir`` and ``dpkg-deb -x`` it.

    :return: the root of the unpacked tree
    :raise GuestKitError: when the download or the unpacking fails
    """
    spec = f"{inputs.kernel_package}={inputs.kernel_package_version}"
    download_dir = workdir / "download"
    download_dir.mkdir()
    try:
        run_sync(["apt-get", "download", spec], timeout=_DOWNLOAD_TIMEOUT, cwd=download_dir)
    except CommandFailed as exc:
        raise GuestKitError(
            f"package {spec}", f"download failed: {exc.stderr_tail.strip()}", _APT_FIX
        ) from exc
    except HostError as exc:
        raise GuestKitError(
            "apt-get download", exc.cause, "build the guest kit on a Debian-based host with apt"
        ) from exc
    debs = sorted(download_dir.glob("*.deb"))
    if len(debs) != 1:
        raise GuestKitError(
            f"package {spec}",
            f"apt-get download produced {len(debs)} .deb files instead of one",
            _APT_FIX,
        )
    tree = workdir / "tree"
    try:
        run_sync(["dpkg-deb", "-x", debs[0], tree], timeout=_DOWNLOAD_TIMEOUT)
    except CommandFailed as exc:
        raise GuestKitError(
            f"package file {debs[0].name}",
            f"dpkg-deb could not unpack it: {exc.stderr_tail.strip()}",
            "remove the download and build again; if it persists, run apt-get update",
        ) from exc
    return tree


def find_kernel(tree: Path) -> tuple[str, Path, Path]:
    """Find the kernel release, its image and its modules directory in an unpacked package.

    :raise GuestKitError: when the tree holds no kernel or more than one
    """
    candidates: list[Path] = []
    for base in (tree / "lib" / "modules", tree / "usr" / "lib" / "modules"):
        if base.is_dir():
            candidates.extend(p for p in sorted(base.iterdir()) if p.is_dir())
    if len(candidates) != 1:
        raise GuestKitError(
            f"kernel package tree {tree}",
            f"has {len(candidates)} module directories, expected exactly one",
            "check that the package is a Debian linux-image package",
        )
    modules_dir = candidates[0]
    release = modules_dir.name
    image = tree / "boot" / f"vmlinuz-{release}"
    if image.is_file():
        return release, image, modules_dir
    raise GuestKitError(
        f"kernel package tree {tree}",
        f"has no boot/vmlinuz-{release}",
        "check that the package is a Debian linux-image package",
    )


def module_name(path: Path | str) -> str:
    """The kernel's name for a module file: the file name without suffix, '-' as '_'."""
    name = Path(path).name
    for suffix in _MODULE_SUFFIXES:
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    return name.replace("-", "_")


def resolve_modules(modules_dir: Path, wanted: Sequence[str]) -> ModulePlan:
    """Work out which module files to load, dependencies first, skipping built-ins.

    Dependencies come from ``modules.dep`` when the package has one; Debian's packages do not
    (depmod runs at install time), so otherwise from each module's ``.modinfo`` ``depends=``.

    :raise GuestKitError: when a wanted module is neither built in nor shipped
    """
    files: dict[str, Path] = {}
    for suffix in _MODULE_SUFFIXES:
        for path in sorted(modules_dir.rglob(f"*{suffix}")):
            if path.is_file() and module_name(path) not in files:
                files[module_name(path)] = path
    builtin = _read_module_names(modules_dir / "modules.builtin")
    dep_table = _read_modules_dep(modules_dir)

    def dependencies(name: str) -> list[str]:
        if dep_table is not None:
            return dep_table.get(name, [])
        info = modinfo(read_module(files[name]))
        return [d.replace("-", "_") for d in info.get("depends", "").split(",") if d]

    order: list[ModuleFile] = []
    builtin_used: list[str] = []
    done: set[str] = set()

    def visit(name: str, chain: tuple[str, ...]) -> None:
        if name in done:
            return
        if name in chain:
            raise GuestKitError(
                f"kernel module {name}",
                f"has a dependency cycle: {' -> '.join((*chain, name))}",
                "use a different kernel package",
            )
        if name in builtin and name not in files:
            done.add(name)
            builtin_used.append(name)
            return
        if name not in files:
            needed_by = f" (needed by {chain[-1]})" if chain else ""
            raise GuestKitError(
                f"kernel module {name}{needed_by}",
                f"is neither built into the kernel nor shipped in {modules_dir}",
                "use a kernel package that provides it, or remove it from the module list",
            )
        for dep in dependencies(name):
            visit(dep, (*chain, name))
        done.add(name)
        order.append(ModuleFile(name, files[name]))

    for wanted_name in wanted:
        visit(wanted_name.replace("-", "_"), ())
    return ModulePlan(tuple(order), tuple(builtin_used))


def read_module(path: Path) -> bytes:
    """The uncompressed bytes of a module file (.ko, .ko.xz, .ko.gz or .ko.zst).

    :raise GuestKitError: when the file cannot be decompressed
    """
    name = path.name
    try:
        if name.endswith(".ko.xz"):
            return lzma.decompress(path.read_bytes())
        if name.endswith(".ko.gz"):
            return gzip.decompress(path.read_bytes())
    except (lzma.LZMAError, OSError, EOFError) as exc:
        raise GuestKitError(
            f"kernel module {path}", f"cannot be decompressed: {exc}", "build the kit again"
        ) from exc
    if name.endswith(".ko.zst"):
        fix = "install the zstd package (apt-get install zstd)"
        try:
            result = run_sync(["zstd", "-dc", path], timeout=_APT_TIMEOUT, fix=fix)
        except HostError as exc:
            raise GuestKitError(f"kernel module {path}", exc.cause, exc.fix or fix) from exc
        return result.stdout
    return path.read_bytes()


def modinfo(module: bytes) -> dict[str, str]:
    """The ``key=value`` pairs of an ELF module's ``.modinfo`` section (first value wins).

    :raise GuestKitError: when the bytes are not an ELF file with a .modinfo section
    """
    section = _elf_section(module, b".modinfo")
    info: dict[str, str] = {}
    for item in section.split(b"\0"):
        key, sep, value = item.partition(b"=")
        if sep:
            info.setdefault(key.decode(errors="replace"), value.decode(errors="replace"))
    return info


def busybox_applets(busybox: Path) -> list[str]:
    """The install paths of every applet (``busybox --list-full``), e.g. ``sbin/acpid``.

    :raise GuestKitError: when busybox cannot be run
    """
    fix = f"apt-get install {BUSYBOX_PACKAGE}"
    try:
        result = run_sync([busybox, "--list-full"], timeout=30.0, fix=fix)
    except HostError as exc:
        raise GuestKitError(f"busybox {busybox}", exc.cause, fix) from exc
    return [line.strip().lstrip("/") for line in result.stdout.decode().splitlines() if line]


def assemble_initramfs(
    *,
    busybox: Path,
    applets: Sequence[str],
    init: bytes,
    release: str,
    modules: Sequence[tuple[ModuleFile, bytes]],
    helpers: Sequence[tuple[str, bytes]] = (),
) -> CpioArchive:
    """Lay out the guest's root filesystem as a cpio archive."""
    archive = CpioArchive()
    for directory in ("bin", "sbin", "usr/bin", "usr/sbin", "etc", "proc", "sys", "dev",
                      "run", "mnt", "var", "lib"):  # fmt: skip
        archive.add_directory(directory)
    archive.add_directory("root", 0o700)
    archive.add_directory("tmp", 0o1777)
    # The kernel opens /dev/console for /init's stdio before /init can mount devtmpfs.
    archive.add_device("dev/console", EntryKind.CHAR_DEVICE, 5, 1, 0o600)
    archive.add_device("dev/null", EntryKind.CHAR_DEVICE, 1, 3, 0o666)
    archive.add_device("dev/ttyS0", EntryKind.CHAR_DEVICE, 4, 64, 0o660)
    archive.add_file("bin/busybox", busybox.read_bytes(), 0o755)
    for applet in sorted(set(applets)):
        if applet and applet != "bin/busybox" and "/" in applet and applet not in archive:
            archive.add_symlink(applet, "/bin/busybox")
    archive.add_file("init", init, 0o755)
    for name, content in helpers:
        archive.add_file(f"etc/{name}", content, 0o755)
    lines: list[str] = []
    for module, data in modules:
        relative = f"{release}/kernel/{module.name}.ko"
        archive.add_file(f"lib/modules/{relative}", data, 0o644)
        lines.append(f"{module.name} {relative}\n")
    archive.add_file(f"lib/modules/{release}/{_MODULE_LIST}", "".join(lines).encode(), 0o644)
    archive.add_file("etc/xenlite-guest-release", f"{release}\n".encode(), 0o644)
    return archive


def _build_entry(
    inputs: KitInputs, key: str, root: Path, fetch: KernelFetcher, busybox: Path
) -> None:
    if not busybox.is_file():
        raise GuestKitError(
            f"busybox {busybox}", "does not exist", f"apt-get install {BUSYBOX_PACKAGE}"
        )
    with tempfile.TemporaryDirectory(prefix=".tmp-work-", dir=root) as work:
        tree = fetch(inputs, Path(work))
        release, image, modules_dir = find_kernel(tree)
        plan = resolve_modules(modules_dir, inputs.modules)
        module_data = [(m, read_module(m.path)) for m in plan.load_order]
        archive = assemble_initramfs(
            busybox=busybox,
            applets=busybox_applets(busybox),
            init=inputs.init_script,
            helpers=inputs.helpers,
            release=release,
            modules=module_data,
        )
        staging = Path(tempfile.mkdtemp(prefix=".tmp-entry-", dir=root))
        try:
            shutil.copyfile(image, staging / KERNEL_FILE)
            (staging / INITRD_FILE).write_bytes(archive.to_gzip())
            manifest = {
                "key": key,
                "kernel_release": release,
                "kernel_package": inputs.kernel_package,
                "kernel_package_version": inputs.kernel_package_version,
                "busybox_version": inputs.busybox_version,
                "modules_loaded": [m.name for m in plan.load_order],
                "modules_builtin": list(plan.builtin),
                "cpio_writer_version": inputs.cpio_writer_version,
            }
            (staging / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n")
            for name in (KERNEL_FILE, INITRD_FILE, MANIFEST_FILE):
                fsync_path(staging / name)
            staging.chmod(0o755)  # mkdtemp's 0700 is for the unfinished entry only
            fsync_path(staging)
            _install_entry(staging, root / key)
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)


def _install_entry(staging: Path, entry: Path) -> None:
    # Replace an existing entry (force=True) by moving it aside first: rename cannot replace
    # a non-empty directory, and the lock keeps other builders out in between.
    old: Path | None = None
    if entry.exists():
        old = entry.with_name(f".tmp-old-{entry.name}-{os.getpid()}")
        os.rename(entry, old)
    os.rename(staging, entry)
    fsync_path(entry.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _load_entry(entry: Path, key: str) -> GuestKit | None:
    manifest_path = entry / MANIFEST_FILE
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(manifest, dict) or manifest.get("key") != key:
        return None
    release = manifest.get("kernel_release")
    kernel, initrd = entry / KERNEL_FILE, entry / INITRD_FILE
    if not isinstance(release, str) or not kernel.is_file() or not initrd.is_file():
        return None
    return GuestKit(kernel, initrd, release, key, cached=True)


def _export(kit: GuestKit, out: Path) -> GuestKit:
    out.mkdir(parents=True, exist_ok=True)
    targets = []
    for source, name in ((kit.kernel, KERNEL_FILE), (kit.initrd, INITRD_FILE)):
        target = out / name
        temporary = out / f".{name}.tmp-{os.getpid()}"
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        try:
            os.link(source, temporary)
        except OSError:
            shutil.copyfile(source, temporary)
        os.replace(temporary, target)
        targets.append(target)
    return GuestKit(targets[0], targets[1], kit.kernel_version, kit.key, kit.cached)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _remove_stale_temporaries(root: Path) -> None:
    now = time.time()
    for path in root.glob(".tmp-*"):
        with contextlib.suppress(OSError):
            if now - path.stat().st_mtime > _STALE_SECONDS:
                shutil.rmtree(path, ignore_errors=True)


def _dpkg_architecture() -> str:
    try:
        result = run_sync(["dpkg", "--print-architecture"], timeout=_APT_TIMEOUT)
    except HostError as exc:
        raise GuestKitError(
            "program 'dpkg'", exc.cause, "build the guest kit on a Debian-based host"
        ) from exc
    return result.stdout.decode().strip()


def _apt_show(package: str) -> dict[str, str]:
    argv = ["apt-cache", "show", "--no-all-versions", package]
    try:
        result = run_sync(argv, timeout=_APT_TIMEOUT)
    except CommandFailed as exc:
        raise GuestKitError(
            f"package {package}",
            f"apt-cache does not know it ({exc.stderr_tail.strip()})",
            _APT_FIX,
        ) from exc
    except HostError as exc:
        raise GuestKitError(
            "program 'apt-cache'", exc.cause, "build the guest kit on a Debian-based host with apt"
        ) from exc
    return _parse_control(result.stdout.decode(errors="replace"))


def _parse_control(text: str) -> dict[str, str]:
    """The first stanza of deb822 control text as field -> value (continuations joined)."""
    fields: dict[str, str] = {}
    last: str | None = None
    for line in text.splitlines():
        if not line.strip():
            if fields:
                break
            continue
        if line[0] in " \t" and last is not None:
            fields[last] += "\n" + line.strip()
            continue
        name, sep, value = line.partition(":")
        if sep:
            last = name.strip()
            fields[last] = value.strip()
    return fields


def _read_module_names(path: Path) -> set[str]:
    try:
        text = path.read_text()
    except FileNotFoundError:
        return set()
    return {module_name(line.strip()) for line in text.splitlines() if line.strip()}


def _read_modules_dep(modules_dir: Path) -> dict[str, list[str]] | None:
    try:
        text = (modules_dir / "modules.dep").read_text()
    except FileNotFoundError:
        return None
    table: dict[str, list[str]] = {}
    for line in text.splitlines():
        module, sep, deps = line.partition(":")
        if sep:
            table[module_name(module.strip())] = [module_name(d) for d in deps.split()]
    return table


def _elf_section(image: bytes, wanted: bytes) -> bytes:
    def bad(cause: str) -> GuestKitError:
        return GuestKitError("kernel module", cause, "use an unmodified Debian kernel package")

    if len(image) < 64 or image[:4] != b"\x7fELF":
        raise bad("is not an ELF file")
    elf_class, data = image[4], image[5]
    if elf_class not in (1, 2) or data not in (1, 2):
        raise bad(f"has an unknown ELF class/encoding ({elf_class}, {data})")
    order = "<" if data == 1 else ">"
    wide = elf_class == 2
    try:
        if wide:
            (shoff,) = struct.unpack_from(order + "Q", image, 0x28)
            shentsize, shnum, shstrndx = struct.unpack_from(order + "HHH", image, 0x3A)
            layout = order + "IIQQQQ"
        else:
            (shoff,) = struct.unpack_from(order + "I", image, 0x20)
            shentsize, shnum, shstrndx = struct.unpack_from(order + "HHH", image, 0x2E)
            layout = order + "IIIIII"
        headers: list[tuple[int, int, int]] = []
        for index in range(shnum):
            fields = struct.unpack_from(layout, image, shoff + index * shentsize)
            headers.append((fields[0], fields[4], fields[5]))  # name, offset, size
        _, names_offset, names_size = headers[shstrndx]
        names = image[names_offset : names_offset + names_size]
    except (struct.error, IndexError) as exc:
        raise bad(f"has a truncated ELF header ({exc})") from exc
    for name_offset, offset, size in headers:
        end = names.find(b"\0", name_offset)
        if names[name_offset:end] == wanted:
            return image[offset : offset + size]
    raise bad(f"has no {wanted.decode()} section")
