"""``xenlite list-images`` and ``delete-image``: the images in the config directory, as
xen-list-images and xen-delete-image see them.

list-images reads every ``*.cfg`` of the config directory (not xl.conf, backups or .sxp
files) with xenlite's own xl.cfg reader and shows the name, memory, the vif's ``ip=`` (or
DHCP for a config with ``dhcp = 'dhcp'``, as xen-tools writes it) with its MAC, and the file.
delete-image removes the config (and its /etc/xen/auto link), the image directory
``DIR/domains/NAME`` or the logical volumes ``NAME-disk``/``NAME-swap``, and the boot files
xenlite keeps for a volume's directly booted guest.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from xenlite.base.errors import ConfigError, ProvisionError
from xenlite.config.domain.build import build_domain_config, effective_target_memkb
from xenlite.config.xlcfg.grammar import parse
from xenlite.host import lvm
from xenlite.host.mounts import remove_tree
from xenlite.provision.request import DirStorage, LvmStorage
from xenlite.provision.workspace import partial_of, remove_stale

CONFIG_SUFFIX = ".cfg"


@dataclass(frozen=True, slots=True)
class ImageEntry:
    config: Path
    name: str
    memory_mib: int
    ip: str | None
    mac: str | None
    dhcp: bool
    disks: tuple[str, ...]

    def describe(self) -> str:
        """xen-list-images' lines for one instance."""
        mac = f" [MAC: {self.mac}]" if self.mac else ""
        lines = [f"Name: {self.name}", f"Memory: {self.memory_mib} MB"]
        if self.ip:
            lines.append(f"IP: {self.ip}{mac}")
        if self.dhcp:
            lines.append(f"DHCP{mac}")
        lines.append(f"Config: {self.config}")
        return "\n".join(lines)


def _is_instance_file(path: Path) -> bool:
    name = path.name
    return (
        path.is_file()
        and name.endswith(CONFIG_SUFFIX)
        and name != "xl.conf"
        and not name.endswith("~")
        and ".dpkg-" not in name
    )


def read_entry(path: Path) -> ImageEntry:
    """:raise ProvisionError: when the file is not a config xl would read"""
    try:
        cfg = parse(path.read_bytes(), str(path))
        config = build_domain_config(cfg).config
        dhcp = cfg.get_string("dhcp") == "dhcp"
    except (ConfigError, OSError) as exc:
        raise ProvisionError(f"config {path}", str(exc), "correct it, or move it away") from None
    nic = config.nics[0] if config.nics else None
    return ImageEntry(
        config=path,
        name=config.c_info.name or path.stem,
        memory_mib=effective_target_memkb(config.b_info) // 1024,
        ip=nic.ip if nic else None,
        mac=nic.mac if nic else None,
        dhcp=dhcp,
        disks=tuple(d.pdev_path for d in config.disks if d.pdev_path),
    )


def list_images(config_dir: Path) -> tuple[list[ImageEntry], list[ProvisionError]]:
    """Every instance config in ``config_dir``, by file name; and the ones that cannot be
    read."""
    entries: list[ImageEntry] = []
    unreadable: list[ProvisionError] = []
    if not config_dir.is_dir():
        return entries, unreadable
    for path in sorted(config_dir.iterdir()):
        if not _is_instance_file(path):
            continue
        try:
            entries.append(read_entry(path))
        except ProvisionError as exc:
            unreadable.append(exc)
    return entries, unreadable


def storage_of(entry: ImageEntry, hostname: str) -> DirStorage | LvmStorage | None:
    """Where an image's disks live, from the config's disk targets: a file in
    ``DIR/domains/NAME/`` or a volume ``/dev/VG/NAME-disk``."""
    for target in entry.disks:
        path = Path(target)
        if path.parent.name == hostname and path.parent.parent.name == "domains":
            return DirStorage(path.parent.parent.parent)
        volumes = (f"{hostname}-disk", f"{hostname}-swap")
        if path.parts[:2] == ("/", "dev") and len(path.parts) == 4 and path.name in volumes:
            return LvmStorage(path.parts[2])
    return None


def delete_image(
    hostname: str, config_dir: Path, storage: DirStorage | LvmStorage | None
) -> list[str]:
    """Remove what create-image made for ``hostname``; the lines xen-delete-image prints.

    :raise ProvisionError: when nothing of that name is there
    """
    said: list[str] = []
    config = config_dir / f"{hostname}{CONFIG_SUFFIX}"
    if storage is None and config.exists():
        storage = storage_of(read_entry(config), hostname)
    removed_any = False
    for path in (config_dir / "auto" / f"{hostname}{CONFIG_SUFFIX}", config):
        if path.exists() or path.is_symlink():
            said.append(f"Deleting: {path}")
            path.unlink()
            removed_any = True
    if isinstance(storage, LvmStorage):
        for suffix, kind in (("swap", "swap"), ("disk", "LVM disk")):
            volume = f"{hostname}-{suffix}"
            if lvm.volume_path(storage.group, volume).exists():
                said.append(f"Removing {kind} volume")
                lvm.remove_volume(storage.group, volume)
                removed_any = True
    if storage is not None:
        home = storage.home(hostname)
        if home.exists():
            said.append(f"Removing: {home}")
            remove_tree(home)
            removed_any = removed_any or isinstance(storage, DirStorage)
        partial = partial_of(home)
        if remove_stale(partial):
            said.append(f"Removing: {partial} (left by an interrupted create-image)")
            removed_any = True
    if not removed_any:
        raise ProvisionError(
            f"delete-image {hostname}",
            f"there is no image of that name (no {config}"
            + (f", no {storage.home(hostname)}" if isinstance(storage, DirStorage) else "")
            + ")",
            "see 'xenlite list-images', or give the --dir or --lvm it was made with",
        )
    return said
