"""Disk specs (``disk=[...]`` items and ``xl block-attach``) -> DiskSpec.

xl-disk-configuration(5), read exactly as Xen 4.17's libxlu_disk_l.l scanner and
xlu_disk_parse() do (flex longest-match rules, ties to the earlier rule), and
xen-vbd-interface(7) for vdev -> device number.

Xen 4.17 differs from the newer man page in ../shared: it has no ``trusted``/``untrusted``
and no ``grant_usage=`` disk keys (a bare ``trusted`` is a positional target there, and
``grant_usage=1`` is "bad disk syntax"); xenlite does what 4.17 does.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from xenlite.base.errors import ConfigError
from xenlite.config.cnum import c_atoi
from xenlite.config.domain.model import DeviceDisk, DiskBackend, DiskFormat, DiskSpecification
from xenlite.config.xlcfg.values import Pos


@dataclass(frozen=True, slots=True)
class DiskSpec:
    """The libxl_device_disk fields a disk spec can set (4.17 IDL order).

    ``pdev_path`` is None only for a removable (cdrom) disk given without a target;
    ``""`` is an empty cdrom drive. Booleans that libxl keeps as "defbool" are ``None``
    when the spec did not set them.
    """

    pdev_path: str | None
    vdev: str
    format: DiskFormat = DiskFormat.RAW
    readwrite: bool = True
    is_cdrom: bool = False
    removable: bool = False
    backend: DiskBackend = DiskBackend.UNKNOWN
    backend_domname: str | None = None
    script: str | None = None
    direct_io_safe: bool = False
    discard_enable: bool | None = None
    specification: DiskSpecification = DiskSpecification.UNKNOWN
    colo_enable: bool | None = None
    colo_host: str | None = None
    colo_port: int = 0
    colo_export: str | None = None
    active_disk: str | None = None
    hidden_disk: str | None = None

    def to_device(self) -> DeviceDisk:
        """The libxl_device_disk this spec makes (backend_domid and the rest at libxl's
        defaults, as xl leaves them)."""
        return DeviceDisk(
            backend_domname=self.backend_domname,
            pdev_path=self.pdev_path,
            vdev=self.vdev,
            backend=self.backend,
            format=self.format,
            script=self.script,
            removable=int(self.removable),
            readwrite=int(self.readwrite),
            is_cdrom=int(self.is_cdrom),
            direct_io_safe=self.direct_io_safe,
            discard_enable=self.discard_enable,
            specification=self.specification,
            colo_enable=self.colo_enable,
            colo_host=self.colo_host,
            colo_port=self.colo_port,
            colo_export=self.colo_export,
            active_disk=self.active_disk,
            hidden_disk=self.hidden_disk,
        )

    def to_spec_string(self) -> str:
        """The canonical key=value spec that parses back to this DiskSpec.

        ``target=`` comes last because it takes the rest of the string. Values of the other
        keys cannot hold a comma (no disk spec can say that).
        """
        items = [f"format={self.format.value}", f"vdev={self.vdev}"]
        items.append("access=rw" if self.readwrite else "access=ro")
        if self.is_cdrom:
            items.append("devtype=cdrom")
        if self.backend is not DiskBackend.UNKNOWN:
            items.append(f"backendtype={self.backend.value}")
        if self.backend_domname is not None:
            items.append(f"backend={self.backend_domname}")
        if self.script is not None:
            items.append(f"script={self.script}")
        if self.direct_io_safe:
            items.append("direct-io-safe")
        if self.discard_enable is not None:
            items.append("discard" if self.discard_enable else "no-discard")
        if self.specification is not DiskSpecification.UNKNOWN:
            items.append(f"specification={self.specification.value}")
        if self.colo_enable is not None:
            items.append("colo" if self.colo_enable else "no-colo")
        for key, value in (
            ("colo-host", self.colo_host),
            ("colo-port", str(self.colo_port) if self.colo_port else None),
            ("colo-export", self.colo_export),
            ("active-disk", self.active_disk),
            ("hidden-disk", self.hidden_disk),
        ):
            if value is not None:
                items.append(f"{key}={value}")
        if self.pdev_path is not None:
            items.append(f"target={self.pdev_path}")
        return ",".join(items)

    render = to_spec_string


# --- the scanner -----------------------------------------------------------------------

_FORMAT_FIX = "format is one of raw, qcow, qcow2, vhd, qed (or empty)"
_KEYS_FIX = (
    "known keys: target=, format=, vdev=, access=, devtype=, backend=, backendtype=, "
    "script=, specification=, colo-host=, colo-port=, colo-export=, active-disk=, "
    "hidden-disk=; flags: cdrom, direct-io-safe, discard, no-discard, colo, no-colo"
)
_SYNTAX_FIX = (
    "write comma-separated items: target,format,vdev,access positionally and/or key=value; "
    "a target containing ',' or ':' must be given last as target=PATH"
)


class _DiskParse:
    """Mutable parse state: libxlu's DiskParseContext with its libxl_device_disk."""

    def __init__(self, spec: str, where: Pos | None) -> None:
        self.spec = spec
        self.where = where
        self.offset = 0
        self.pdev_path: str | None = None
        self.vdev: str | None = None
        self.format: DiskFormat | None = None
        self.readwrite = True
        self.is_cdrom = False
        self.backend = DiskBackend.UNKNOWN
        self.backend_domname: str | None = None
        self.script: str | None = None
        self.direct_io_safe = False
        self.discard_enable: bool | None = None
        self.specification = DiskSpecification.UNKNOWN
        self.colo_enable: bool | None = None
        self.colo_host: str | None = None
        self.colo_port = 0
        self.colo_export: str | None = None
        self.active_disk: str | None = None
        self.hidden_disk: str | None = None
        self.had_depr_prefix = False
        self.access_set = False

    def error(self, message: str, near: str | None, fix: str) -> ConfigError:
        near_text = f": near `{near}'" if near is not None else ""
        cause = f"{message}{near_text} in `{self.spec}'"
        if self.where is None:
            return ConfigError(cause, key="disk", fix=fix)
        return ConfigError(
            cause,
            path=self.where.path,
            line=self.where.line,
            col=self.where.col + self.offset,
            key="disk",
            fix=fix,
        )

    def save_string(self, what: str, current: str | None, value: str) -> str:
        # libxlu's savestring: an empty earlier value may be overwritten, any other not.
        if current:
            raise self.error(f"{what} respecified", value, f"give {what} only once")
        return value

    def set_format(self, text: str) -> None:
        fmt = _FORMATS.get(text)
        if fmt is None:
            raise self.error("unknown value for format", text, _FORMAT_FIX)
        if self.format is not None and self.format is not fmt:
            raise self.error("format respecified", text, "give the format only once")
        self.format = fmt

    def set_access(self, text: str) -> None:
        if text in ("r", "ro"):
            self.readwrite = False
        elif text in ("rw", "w", ""):
            self.readwrite = True
        else:
            raise self.error("unknown value for access", text, "access is ro (or r) or rw (or w)")

    def set_backendtype(self, text: str) -> None:
        try:
            backend = DiskBackend(text)
        except ValueError:
            backend = DiskBackend.UNKNOWN
        if backend is DiskBackend.UNKNOWN:
            raise self.error(
                "unknown value for backendtype",
                text,
                "backendtype is phy, tap, qdisk or standalone",
            )
        if self.backend not in (DiskBackend.UNKNOWN, backend):
            raise self.error("backend respecified", text, "give backendtype only once")
        self.backend = backend

    def set_specification(self, text: str) -> None:
        try:
            spec = DiskSpecification(text)
        except ValueError:
            spec = DiskSpecification.UNKNOWN
        if spec is DiskSpecification.UNKNOWN:
            raise self.error(
                "unknown value for specification", text, "specification is xen or virtio"
            )
        if self.specification not in (DiskSpecification.UNKNOWN, spec):
            raise self.error("specification respecified", text, "give specification only once")
        self.specification = spec

    def vdev_and_devtype(self, text: str) -> bool:
        """``VDEV:cdrom`` / ``VDEV:disk`` (xm syntax); False when there is no colon."""
        colon = text.rfind(":")
        if colon < 0:
            return False
        self.vdev = self.save_string("vdev", self.vdev, text[:colon])
        devtype = text[colon + 1 :]
        if devtype == "cdrom":
            self.is_cdrom = True
        elif devtype == "disk":
            self.is_cdrom = False
        else:
            raise self.error(
                "unknown deprecated type", devtype, "write VDEV:cdrom or VDEV:disk, or devtype="
            )
        return True

    def positional(self, text: str) -> None:
        if self.pdev_path is None:
            self.pdev_path = text
        elif not self.had_depr_prefix and self.format is None:
            if self.pdev_path == "" and self.vdev_and_devtype(text):
                self.format = DiskFormat.EMPTY
            else:
                self.set_format(text)
        elif self.vdev is None:
            if not self.vdev_and_devtype(text):
                self.vdev = text
        elif not self.access_set:
            self.access_set = True
            self.set_access(text)
        else:
            raise self.error(
                "too many positional parameters",
                text,
                "give at most target,format,vdev,access positionally; "
                "a target containing ',' must be given last as target=PATH",
            )


_FORMATS = {
    "": DiskFormat.RAW,
    "raw": DiskFormat.RAW,
    "qcow": DiskFormat.QCOW,
    "qcow2": DiskFormat.QCOW2,
    "vhd": DiskFormat.VHD,
    "empty": DiskFormat.EMPTY,
    "qed": DiskFormat.QED,
}

_Action = Callable[[_DiskParse, str], None]


def _strip_comma(text: str) -> str:
    return text[:-1] if text.endswith(",") else text


def _value(text: str) -> str:
    """The value of a ``key=value[,]`` token (libxlu's STRIP(',') then FROMEQUALS)."""
    return _strip_comma(text).split("=", 1)[1]


def _act_ignore(p: _DiskParse, text: str) -> None:
    pass


def _act_format(p: _DiskParse, text: str) -> None:
    p.set_format(_value(text))


def _act_cdrom(p: _DiskParse, text: str) -> None:
    p.is_cdrom = True


def _act_disk(p: _DiskParse, text: str) -> None:
    p.is_cdrom = False


def _act_bad_devtype(p: _DiskParse, text: str) -> None:
    raise p.error("unknown value for type", text, "devtype is cdrom or disk")


def _act_access(p: _DiskParse, text: str) -> None:
    p.set_access(_value(text))


def _act_backend(p: _DiskParse, text: str) -> None:
    p.backend_domname = p.save_string("backend", p.backend_domname, _value(text))


def _act_backendtype(p: _DiskParse, text: str) -> None:
    p.set_backendtype(_value(text))


def _act_specification(p: _DiskParse, text: str) -> None:
    p.set_specification(_value(text))


def _act_vdev(p: _DiskParse, text: str) -> None:
    p.vdev = p.save_string("vdev", p.vdev, _value(text))


def _act_script(p: _DiskParse, text: str) -> None:
    p.script = p.save_string("script", p.script, _value(text))


def _act_direct_io_safe(p: _DiskParse, text: str) -> None:
    p.direct_io_safe = True


def _act_discard(p: _DiskParse, text: str) -> None:
    p.discard_enable = True


def _act_no_discard(p: _DiskParse, text: str) -> None:
    p.discard_enable = False


def _act_colo(p: _DiskParse, text: str) -> None:
    p.colo_enable = True


def _act_no_colo(p: _DiskParse, text: str) -> None:
    p.colo_enable = False


def _act_colo_host(p: _DiskParse, text: str) -> None:
    p.colo_host = p.save_string("colo-host", p.colo_host, _value(text))


def _act_colo_port(p: _DiskParse, text: str) -> None:
    value = _value(text)
    port = c_atoi(value)
    if not port:
        raise p.error("unknown value for colo_port", value, "colo-port is a non-zero port number")
    p.colo_port = port


def _act_colo_export(p: _DiskParse, text: str) -> None:
    p.colo_export = p.save_string("colo-export", p.colo_export, _value(text))


def _act_active_disk(p: _DiskParse, text: str) -> None:
    p.active_disk = p.save_string("active-disk", p.active_disk, _value(text))


def _act_hidden_disk(p: _DiskParse, text: str) -> None:
    p.hidden_disk = p.save_string("hidden-disk", p.hidden_disk, _value(text))


def _act_target(p: _DiskParse, text: str) -> None:
    p.pdev_path = p.save_string("target", p.pdev_path, _value(text))


def _act_unknown_parameter(p: _DiskParse, text: str) -> None:
    raise p.error("unknown parameter", text, _KEYS_FIX)


def _act_format_prefix(p: _DiskParse, text: str) -> None:
    p.had_depr_prefix = True
    p.set_format(text[:-1])


def _act_script_prefix(p: _DiskParse, text: str) -> None:
    p.had_depr_prefix = True
    p.script = p.save_string("script", p.script, f"block-{text[:-1]}")


def _act_ignored_prefix(p: _DiskParse, text: str) -> None:
    p.had_depr_prefix = True


def _act_bad_prefix(p: _DiskParse, text: str) -> None:
    raise p.error(
        "unknown deprecated disk prefix",
        text,
        "known prefixes are raw: qcow: qcow2: vhd: iscsi: nbd: enbd: drbd: tapdisk: tap: "
        "tap2: aio: ioemu: file: phy:; for a path containing ':' use target=PATH last",
    )


def _act_positional(p: _DiskParse, text: str) -> None:
    p.positional(_strip_comma(text))


def _act_bad_syntax(p: _DiskParse, text: str) -> None:
    # flex's LEXERR state: the offending character and the rest of its line.
    rest = re.match(r".*", p.spec[p.offset + 1 :])
    assert rest is not None
    raise p.error("bad disk syntax", text + rest.group(0), _SYNTAX_FIX)


def _kv(key: str) -> str:
    return rf"(?P<head>{key}=[^,]*,?)"


# libxlu_disk_l.l (4.17) in rule order. Each pattern's full match is what flex compares
# (trailing context included); the "head" group is what it consumes as yytext.
_RULES: tuple[tuple[re.Pattern[str], _Action], ...] = tuple(
    (re.compile(pattern), action)
    for pattern, action in (
        (r"(?P<head>[ \t\n]+)(?:[^ \t\n].*)?", _act_ignore),
        (_kv("format"), _act_format),
        (r"(?P<head>cdrom,?)", _act_cdrom),
        (r"(?P<head>devtype=cdrom,?)", _act_cdrom),
        (r"(?P<head>devtype=disk,?)", _act_disk),
        (_kv("devtype"), _act_bad_devtype),
        (_kv("access"), _act_access),
        (_kv("backend"), _act_backend),
        (_kv("backendtype"), _act_backendtype),
        (_kv("specification"), _act_specification),
        (_kv("vdev"), _act_vdev),
        (_kv("script"), _act_script),
        (r"(?P<head>direct-io-safe,?)", _act_direct_io_safe),
        (r"(?P<head>discard,?)", _act_discard),
        (r"(?P<head>no-discard,?)", _act_no_discard),
        (r"(?P<head>colo,?)", _act_colo),
        (r"(?P<head>no-colo,?)", _act_no_colo),
        (_kv("colo-host"), _act_colo_host),
        (_kv("colo-port"), _act_colo_port),
        (_kv("colo-export"), _act_colo_export),
        (_kv("active-disk"), _act_active_disk),
        (_kv("hidden-disk"), _act_hidden_disk),
        (r"(?P<head>target=.*)", _act_target),
        (r"(?P<head>[a-z][-a-z0-9]*=[^,],?)", _act_unknown_parameter),
        (r"(?P<head>(?:raw|qcow2?|vhd):).*", _act_format_prefix),
        (r"(?P<head>(?:iscsi|e?nbd|drbd):).*", _act_script_prefix),
        (r"(?P<head>(?:tapdisk|tap2?|aio|ioemu|file|phy):).*", _act_ignored_prefix),
        (r"(?P<head>[a-z][a-z0-9]*:)(?:[^a-z0-9].*)?", _act_bad_prefix),
        (r"(?P<head>[^=,]*,)", _act_positional),
        (r"(?P<head>[^=,]+,?)", _act_positional),
        (r"(?P<head>.)", _act_bad_syntax),
    )
)


def _scan(p: _DiskParse) -> None:
    spec = p.spec
    pos = 0
    while pos < len(spec):
        best: re.Match[str] | None = None
        best_action: _Action = _act_bad_syntax
        for pattern, action in _RULES:
            match = pattern.match(spec, pos)
            if match is not None and (best is None or match.end() > best.end()):
                best, best_action = match, action
        # Blanks, positional items and "." between them match every character.
        assert best is not None
        head_end = best.end("head")
        p.offset = pos
        best_action(p, spec[pos:head_end])
        pos = head_end


def parse_disk_spec(spec: str, *, where: Pos | None = None) -> DiskSpec:
    """One disk spec, as ``xl`` reads a ``disk=[...]`` item (xlu_disk_parse).

    ``where`` is the position of the spec's first character in its file; error columns
    add the offset of the bad part within the spec.

    :raise ConfigError: naming the spec, the bad part (``near `...'``) and the fix, for
        every spec Xen 4.17 rejects.
    """
    p = _DiskParse(spec, where)
    if "\0" in spec:
        p.offset = spec.index("\0")
        raise p.error("NUL character", None, "remove the NUL character from the disk spec")
    _scan(p)
    p.offset = 0
    fmt = p.format if p.format is not None else DiskFormat.RAW
    removable = False
    readwrite = p.readwrite
    if p.is_cdrom:
        removable = True
        readwrite = False
        if not p.pdev_path:
            fmt = DiskFormat.EMPTY
    if p.vdev is None:
        raise p.error(
            "no vdev specified",
            None,
            "name the guest device, e.g. vdev=xvda or a third positional item",
        )
    if p.pdev_path is None and not removable:
        raise p.error(
            "no target specified (and device not removable)",
            None,
            "give the image or device, e.g. target=/dev/vg/guest, or make it a cdrom",
        )
    return DiskSpec(
        pdev_path=p.pdev_path,
        vdev=p.vdev,
        format=fmt,
        readwrite=readwrite,
        is_cdrom=p.is_cdrom,
        removable=removable,
        backend=p.backend,
        backend_domname=p.backend_domname,
        script=p.script,
        direct_io_safe=p.direct_io_safe,
        discard_enable=p.discard_enable,
        specification=p.specification,
        colo_enable=p.colo_enable,
        colo_host=p.colo_host,
        colo_port=p.colo_port,
        colo_export=p.colo_export,
        active_disk=p.active_disk,
        hidden_disk=p.hidden_disk,
    )


# --- xen-vbd-interface(7) ----------------------------------------------------------------

_INT_MAX = (1 << 31) - 1


def _virtdisk_matches(vdev: str, prefix: str, max_index: int, max_part: int) -> tuple[int, int]:
    """(disk, partition) for PREFIX + letters + optional partition, or (-1, -1)."""
    if not vdev.startswith(prefix):
        return -1, -1
    pos = len(prefix)
    index = -1
    while pos < len(vdev) and "a" <= vdev[pos] <= "z":
        # Drive letters count like spreadsheet columns: a..z, aa..az, ...
        index = (index + 1) * 26 + (ord(vdev[pos]) - ord("a"))
        pos += 1
        if index > max_index:
            return -1, -1
    if index < 0:
        # libxl would go on with disk -1 and compute a bogus number; refuse instead.
        return -1, -1
    rest = vdev[pos:]
    if not rest:
        return index, 0
    if not rest.isascii() or not rest.isdigit() or rest.startswith("0"):
        return -1, -1
    part = int(rest)
    if part > max_part:
        return -1, -1
    return index, part


def vdev_to_devid(vdev: str) -> int:
    """The Xen device number of a virtual disk name (libxl__device_disk_dev_number).

    ``xvda`` = 51712, ``xvdq`` and beyond use the extended form ``(1<<28) | disk<<8 | part``,
    ``hda`` = 768, ``hdc`` = 5632, ``sda`` = 2048, ``d0p0`` = 51712, and a plain number is
    taken as the device number itself.

    :raise ConfigError: when the name is none of these forms.
    """
    disk, part = -1, -1
    dform = re.fullmatch(r"d([0-9]+)p([0-9]+)", vdev)
    if dform is not None and int(dform.group(1)) < (1 << 20) and int(dform.group(2)) < 256:
        disk, part = int(dform.group(1)), int(dform.group(2))
    else:
        disk, part = _virtdisk_matches(vdev, "xvd", (1 << 20) - 1, 255)
    if disk >= 0:
        if disk <= 15 and part <= 15:
            return (202 << 8) | (disk << 4) | part
        return (1 << 28) | (disk << 8) | part
    number = re.fullmatch(r"0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*", vdev)
    if number is not None:
        value = int(vdev, 0) if not re.fullmatch(r"0[0-7]+", vdev) else int(vdev, 8)
        if value <= _INT_MAX:
            return value
    disk, part = _virtdisk_matches(vdev, "hd", 3, 63)
    if disk >= 0:
        return ((3 if disk < 2 else 22) << 8) | ((disk & 1) << 6) | part
    disk, part = _virtdisk_matches(vdev, "sd", 15, 15)
    if disk >= 0:
        return (8 << 8) | (disk << 4) | part
    raise ConfigError(
        f"virtual disk name {vdev!r} is not a known form",
        key="vdev",
        fix="use xvdX[N] (e.g. xvda, xvdb1), hdX[N] (hda-hdd), sdX[N] (sda-sdp) or dNpM",
    )
