"""/etc/xen-tools/xen-tools.conf: the defaults xen-create-image takes for the options a
command line leaves out, so that the xen-tools habit works as is::

    # /etc/xen-tools/xen-tools.conf
    dir    = /srv/xen
    size   = 4G
    memory = 256M
    dist   = bookworm
    pygrub = 1

    xenlite create-image --hostname web1 --ip 192.168.1.10   # takes the rest from there

Read as xen-tools reads it: ``key = value`` lines, ``#`` starts a comment (also after a
value), blanks around key and value dropped; yes/no keys (``pygrub``, ``noswap``, ``dhcp``,
``force``) take 1 or 0. A key of xen-tools that create-image does not use, a value in
backticks (xen-tools runs it as a shell command; xenlite does not), and a key xen-tools does
not know are each said on stderr with the line, never dropped silently.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from xenlite.base.errors import ProvisionError

CONF = "/etc/xen-tools/xen-tools.conf"

# xen-tools.conf key -> create-image option that takes a value.
VALUE_KEYS = {
    "dir": "--dir",
    "lvm": "--lvm",
    "size": "--size",
    "swap": "--swap",
    "memory": "--memory",
    "vcpus": "--vcpus",
    "fs": "--fs",
    "dist": "--dist",
    "image": "--image",
    "ip": "--ip",
    "gateway": "--gateway",
    "netmask": "--netmask",
    "nameserver": "--nameserver",
    "mac": "--mac",
    "bridge": "--bridge",
    "mirror": "--mirror",
    "cache": "--cache",
    "cachedir": "--cachedir",
    "output": "--output",
    "password": "--password",
}
# xen-tools.conf key -> create-image flag, on with 1 (or yes/true).
FLAG_KEYS = {"pygrub": "--pygrub", "noswap": "--noswap", "dhcp": "--dhcp", "force": "--force"}
# Keys of xen-tools' own xen-tools.conf that mean nothing to xenlite's create-image, with why.
UNUSED_KEYS = {
    "install-method": "xenlite installs with debootstrap (Debian) or from the host's busybox",
    "install": "xenlite always installs a system",
    "maxmem": "the config's maxmem is memory; give it in the xl.cfg",
    "broadcast": "the broadcast address follows from --ip and --netmask",
    "genpass": "a Debian image's root password is made up unless --password is given",
    "genpass_len": "made-up passwords are 12 characters",
    "passwd": "xenlite does not prompt; give --password",
    "kernel": "the image boots its own kernel (pygrub, or a copy beside the image)",
    "initrd": "the image boots its own initramfs (pygrub, or a copy beside the image)",
    "modules": "the image's kernel brings its own modules",
    "arch": "the guest's architecture is the host's",
    "boot": "start it with 'xl create' afterwards",
    "serial_device": "the console is ttyS0, as on every xenlite guest",
    "disk_device": "the disk is xvda",
    "extension": "configs end in .cfg",
    "ext2_options": "the fstab options are errors=remount-ro",
    "ext3_options": "the fstab options are errors=remount-ro",
    "ext4_options": "the fstab options are errors=remount-ro",
    "mount_fs_ext2": "xenlite makes the filesystem without mounting it",
    "mount_fs_ext3": "xenlite makes the filesystem without mounting it",
    "mount_fs_ext4": "xenlite makes the filesystem without mounting it",
    "install-source": "xenlite installs with debootstrap or from the host's busybox",
    "copy-cmd": "xenlite installs with debootstrap or from the host's busybox",
    "tar-cmd": "xenlite installs with debootstrap or from the host's busybox",
    "debootstrap-cmd": "xenlite runs the host's debootstrap",
    "xfs_options": "the root filesystem is ext2, ext3 or ext4",
    "reiser_options": "the root filesystem is ext2, ext3 or ext4",
    "btrfs_options": "the root filesystem is ext2, ext3 or ext4",
    "hash_method": "passwords are hashed by the guest's own chpasswd",
    "nohosts": "the guest's /etc/hosts has its own name only",
    "accounts": "no host accounts are copied into the guest",
    "copyhosts": "the guest's /etc/hosts has its own name only",
    "role": "roles (xen-tools' post-install scripts) are not run",
    "scsi": "disks are xvd*",
    "keep": "a failed image is always removed",
}
_ON = ("1", "yes", "true", "on")
_OFF = ("0", "no", "false", "off")


@dataclass(frozen=True, slots=True)
class ToolsDefaults:
    """What a xen-tools.conf gives: (option, value) pairs as the command line writes them,
    and what it said about the lines it does not take."""

    pairs: list[tuple[str, str]]
    notes: list[str]
    # mirror_DIST: the mirror of one dist, over ``mirror`` (not over --mirror).
    mirrors: dict[str, str] = field(default_factory=dict)


def read_defaults(path: Path) -> ToolsDefaults:
    """The defaults ``path`` gives; none when it does not exist.

    :raise ProvisionError: when it cannot be read, or a yes/no key has another value
    """
    try:
        text = path.read_text()
    except FileNotFoundError:
        return ToolsDefaults([], [], {})
    except OSError as exc:
        raise ProvisionError(f"{path}", exc.strerror or str(exc), "fix its permissions") from None
    pairs: list[tuple[str, str]] = []
    notes: list[str] = []
    mirrors: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        where = f"{path}:{number}"
        key, equals, value = (part.strip() for part in line.partition("="))
        if not equals or not key:
            notes.append(f"{where}: '{raw.strip()}' is not 'key = value'; skipped")
            continue
        if "`" in value:
            notes.append(
                f"{where}: {key} = {value}: xenlite does not run commands from this file; "
                f"skipped (give the value itself)"
            )
        elif key.startswith("mirror_") and len(key) > len("mirror_"):
            mirrors[key.removeprefix("mirror_")] = value
        elif key in VALUE_KEYS:
            pairs.append((VALUE_KEYS[key], value))
        elif key in FLAG_KEYS:
            if value.lower() in _ON:
                pairs.append((FLAG_KEYS[key], ""))
            elif value.lower() not in _OFF:
                raise ProvisionError(
                    f"{where}: {key} = {value}", "is not 1 or 0", f"write {key} = 1 or {key} = 0"
                )
        elif key in UNUSED_KEYS:
            notes.append(f"{where}: {key} is not used by xenlite create-image: {UNUSED_KEYS[key]}")
        else:
            notes.append(f"{where}: {key} is not a xen-tools setting; skipped")
    return ToolsDefaults(pairs, notes, mirrors)


# Options that stand for one choice: given on the command line, the file's others give way.
_ONE_OF = ({"--dir", "--lvm"}, {"--ip", "--dhcp"}, {"--swap", "--noswap"})


def merged(
    defaults: ToolsDefaults, source: Path, given: list[tuple[str, str]]
) -> list[tuple[str, str]]:
    """The command line's pairs after the file's, less the file's that the command line
    overrides; the dist's own mirror_DIST over the file's ``mirror``.

    :raise ProvisionError: when the file alone sets both of one choice (``dir`` and ``lvm``)
    """
    named = {option for option, _ in given}
    taken: list[tuple[str, str]] = []
    for option, value in defaults.pairs:
        if option in named:
            continue
        group = next((g for g in _ONE_OF if option in g), set())
        if group & named:
            continue
        taken.append((option, value))
    file_named = {option for option, _ in taken}
    for group in _ONE_OF:
        both = sorted(group & file_named)
        if len(both) > 1:
            keys = " and ".join(o.removeprefix("--") for o in both)
            raise ProvisionError(
                f"{source}",
                f"sets both {keys}",
                "keep one, or give one of them on the command line",
            )
    options = dict(taken + given)
    own_mirror = defaults.mirrors.get(options.get("--dist", ""))
    if own_mirror is not None and "--mirror" not in named:
        taken = [(o, v) for o, v in taken if o != "--mirror"] + [("--mirror", own_mirror)]
    return taken + given
