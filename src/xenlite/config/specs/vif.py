"""Network interface specs (``vif=[...]`` items and ``xl network-attach``) -> VifSpec.

xl-network-configuration(5), read exactly as Xen 4.17's xl does: the item loop of
xl_parse.c (strtok on ',', leading blanks dropped), parse_nic_config() per token and
libxlu_vif.c for ``rate=``.

As in 4.17, a bad token is a warning and parsing goes on (unknown key, bad ``type=`` or
``mac=``, ``accel=``, ``netdev=``); only ``rate=``, ``devid=`` and ``mtu=`` errors stop it.
4.17 has no ``vlan=`` key (the newer man page in ../shared documents one): it is an
"unrecognized argument" warning here too. Defaults from xl.conf (vif.default.*) are the
domain builder's job; fields the spec leaves unset stay None.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any

from xenlite.base.errors import ConfigError
from xenlite.config.cnum import ULONG_MAX, c_int, simple_strtoull, strtoul
from xenlite.config.domain.model import DeviceNic, NicType
from xenlite.config.xlcfg.values import Pos

# The COLO keys of parse_nic_config, each stored under the libxl field of the same name,
# in libxl_device_nic (IDL) order.
COLO_FIELDS: tuple[str, ...] = (
    "colo_sock_mirror_id",
    "colo_sock_mirror_ip",
    "colo_sock_mirror_port",
    "colo_sock_compare_pri_in_id",
    "colo_sock_compare_pri_in_ip",
    "colo_sock_compare_pri_in_port",
    "colo_sock_compare_sec_in_id",
    "colo_sock_compare_sec_in_ip",
    "colo_sock_compare_sec_in_port",
    "colo_sock_compare_notify_id",
    "colo_sock_compare_notify_ip",
    "colo_sock_compare_notify_port",
    "colo_sock_redirector0_id",
    "colo_sock_redirector0_ip",
    "colo_sock_redirector0_port",
    "colo_sock_redirector1_id",
    "colo_sock_redirector1_ip",
    "colo_sock_redirector1_port",
    "colo_sock_redirector2_id",
    "colo_sock_redirector2_ip",
    "colo_sock_redirector2_port",
    "colo_filter_mirror_queue",
    "colo_filter_mirror_outdev",
    "colo_filter_redirector0_queue",
    "colo_filter_redirector0_indev",
    "colo_filter_redirector0_outdev",
    "colo_filter_redirector1_queue",
    "colo_filter_redirector1_indev",
    "colo_filter_redirector1_outdev",
    "colo_compare_pri_in",
    "colo_compare_sec_in",
    "colo_compare_out",
    "colo_compare_notify_dev",
    "colo_sock_sec_redirector0_id",
    "colo_sock_sec_redirector0_ip",
    "colo_sock_sec_redirector0_port",
    "colo_sock_sec_redirector1_id",
    "colo_sock_sec_redirector1_ip",
    "colo_sock_sec_redirector1_port",
    "colo_filter_sec_redirector0_queue",
    "colo_filter_sec_redirector0_indev",
    "colo_filter_sec_redirector0_outdev",
    "colo_filter_sec_redirector1_queue",
    "colo_filter_sec_redirector1_indev",
    "colo_filter_sec_redirector1_outdev",
    "colo_filter_sec_rewriter0_queue",
    "colo_checkpoint_host",
    "colo_checkpoint_port",
)
_COLO_SET = frozenset(COLO_FIELDS)


@dataclass(frozen=True, slots=True)
class VifSpec:
    """The libxl_device_nic fields a vif spec can set.

    ``mac`` is ``"xx:xx:xx:xx:xx:xx"`` (lower case) or None when unset or all zero (libxl
    then picks one in 00:16:3e). ``ifname`` is the ``vifname=`` key. ``mtu`` and the rate
    fields are 0 when unset. ``colo`` holds the COLO keys given, as (field, value) pairs in
    COLO_FIELDS order.
    """

    devid: int
    mac: str | None = None
    bridge: str | None = None
    ip: str | None = None
    script: str | None = None
    ifname: str | None = None
    model: str | None = None
    nictype: NicType | None = None
    rate_bytes_per_interval: int = 0
    rate_interval_usecs: int = 0
    mtu: int = 0
    backend_domname: str | None = None
    gatewaydev: str | None = None
    coloft_forwarddev: str | None = None
    trusted: bool | None = None
    colo: tuple[tuple[str, str], ...] = field(default=())

    def to_device(self) -> DeviceNic:
        """The libxl_device_nic this spec makes; xl.conf's vif.default.* are the caller's."""
        nic = DeviceNic(
            backend_domname=self.backend_domname,
            devid=self.devid,
            mtu=self.mtu,
            model=self.model,
            mac=self.mac,
            ip=self.ip,
            bridge=self.bridge,
            ifname=self.ifname,
            script=self.script,
            nictype=NicType.UNKNOWN if self.nictype is None else self.nictype,
            rate_bytes_per_interval=self.rate_bytes_per_interval,
            rate_interval_usecs=self.rate_interval_usecs,
            gatewaydev=self.gatewaydev,
            coloft_forwarddev=self.coloft_forwarddev,
            trusted=self.trusted,
        )
        # Every COLO_FIELDS name is a string field of libxl_device_nic.
        colo: dict[str, Any] = dict(self.colo)
        return replace(nic, **colo)

    def to_spec_string(self) -> str:
        """A spec that parses back to this VifSpec (with ``devid=`` spelled out).

        The rate is written as ``rate=N<unit>/s@<usecs>us`` with a per-second figure that
        gives exactly the same libxl numbers. Values cannot hold a comma (no vif spec can
        say that).

        :raise ValueError: for the rare rates no rate= text can give (libxl numbers that
            did not come from a spec).
        """
        items = [f"devid={self.devid}"]
        for key, str_value in (
            ("mac", self.mac),
            ("bridge", self.bridge),
            ("ip", self.ip),
            ("script", self.script),
            ("vifname", self.ifname),
            ("model", self.model),
            ("backend", self.backend_domname),
            ("gatewaydev", self.gatewaydev),
            ("forwarddev", self.coloft_forwarddev),
        ):
            if str_value is not None:
                items.append(f"{key}={str_value}")
        if self.nictype is not None:
            items.append("type=ioemu" if self.nictype is NicType.VIF_IOEMU else "type=vif")
        if self.rate_interval_usecs:
            items.append(f"rate={_rate_text(self)}")
        if self.mtu:
            items.append(f"mtu={self.mtu}")
        if self.trusted is not None:
            items.append("trusted" if self.trusted else "untrusted")
        items.extend(f"{key}={value}" for key, value in self.colo)
        return ",".join(items)

    render = to_spec_string


def _rate_text(spec: VifSpec) -> str:
    """A ``rate=`` value giving exactly these two libxl numbers.

    libxl keeps floor(bytes_per_sec * usecs / 10^6), so any bytes_per_sec in a small window
    does; pick one that B/s, b/s, KB/s, Kb/s ... Gb/s can spell with a 32-bit number.
    """
    usecs = spec.rate_interval_usecs
    per_interval = spec.rate_bytes_per_interval
    lowest = max(1, -(-per_interval * 1_000_000 // usecs))
    highest = -(-(per_interval + 1) * 1_000_000 // usecs) - 1
    for prefix, multiplier in (("", 1), ("K", 1000), ("M", 1000**2), ("G", 1000**3)):
        for unit, divisor in (("B", 1), ("b", 8)):
            # Bits are bytes * 8, rounded down after the multiplier, as libxlu does.
            count = -(-lowest * divisor // multiplier)
            if count * multiplier // divisor <= highest and count <= _UINT32_MAX:
                return f"{count}{prefix}{unit}/s@{usecs}us"
    raise ValueError(
        f"vif rate of {per_interval} bytes per {usecs} us cannot be written as a rate= value"
    )


# --- rate= (libxlu_vif.c) --------------------------------------------------------------

_RATE_RE = re.compile(r"[0-9]+[GMK]?[Bb]/s")
_INTERVAL_RE = re.compile(r"[0-9]+[mu]?s?")
_UINT32_MAX = (1 << 32) - 1
_UINT64_MAX = (1 << 64) - 1
_RATE_FIX = (
    "write rate=N{B,b}/s with an optional K, M or G before the B/b and an optional "
    "@INTERVAL in s, ms or us, e.g. 10Mb/s, 250KB/s, 1MB/s@20ms"
)


def _rate_error(message: str, text: str, where: Pos | None) -> ConfigError:
    cause = f"{message} in `{text}'"
    if where is None:
        return ConfigError(cause, key="vif", fix=_RATE_FIX)
    return where.error(cause, key="vif", fix=_RATE_FIX)


def _bytes_per_sec(text: str, where: Pos | None) -> int:
    if not text.isascii() or _RATE_RE.fullmatch(text) is None:
        raise _rate_error("invalid rate", text, where)
    value, end = simple_strtoull(text, 0)
    if value == 0 or value > _UINT32_MAX:
        raise _rate_error("rate overflow", text, where)
    unit = text[end : end + 2]
    if unit[:1] == "G":
        value *= 1000 * 1000 * 1000
    elif unit[:1] == "M":
        value *= 1000 * 1000
    elif unit[:1] == "K":
        value *= 1000
    # libxlu looks at the unit letter and the one after it for a lower-case b (bits).
    if "b" in unit:
        value //= 8
    return value


def _interval_usecs(text: str, where: Pos | None) -> int:
    if not text.isascii() or _INTERVAL_RE.fullmatch(text) is None:
        raise _rate_error("invalid replenishment interval", text, where)
    value, end = simple_strtoull(text, 0)
    if value == 0 or value > _UINT32_MAX:
        raise _rate_error("replenishment interval overflow", text, where)
    unit = text[end : end + 1]
    if unit in ("s", ""):
        value *= 1000 * 1000
    elif unit == "m":
        value *= 1000
    if value > _UINT32_MAX:
        raise _rate_error("replenishment interval overflow", text, where)
    return value


def parse_rate(text: str, *, where: Pos | None = None) -> tuple[int, int]:
    """``rate=`` as libxl keeps it: (bytes per interval, interval in microseconds).

    ``RATE/s[@INTERVAL]``: RATE is a number with an optional K, M or G (powers of 1000) and
    B (bytes) or b (bits); INTERVAL is a number with s (default), ms or us; the interval
    defaults to 50 ms. Numbers with a leading 0 are octal, as in C.

    :raise ConfigError: with libxlu's words (invalid rate, rate overflow, invalid
        replenishment interval, replenishment interval overflow, no rate specified).
    """
    rate, sep, interval = text.partition("@")
    if rate == "":
        raise _rate_error("no rate specified", text, where)
    per_sec = _bytes_per_sec(rate, where)
    usecs = 50_000
    if sep:
        usecs = _interval_usecs(interval, where)
    if per_sec > _UINT64_MAX // usecs:
        raise _rate_error("rate overflow", text, where)
    return per_sec * usecs // 1_000_000, usecs


# --- the vif spec ----------------------------------------------------------------------


class _NicState:
    """The libxl_device_nic being filled, mutable while the tokens are read."""

    def __init__(self, devid: int) -> None:
        self.devid = devid
        self.mac = [0, 0, 0, 0, 0, 0]
        self.strings: dict[str, str] = {}
        self.nictype: NicType | None = None
        self.rate: tuple[int, int] = (0, 0)
        self.mtu = 0
        self.trusted: bool | None = None


# key= prefixes that simply replace a string field: key -> libxl field.
_STRING_KEYS: dict[str, str] = {
    "bridge": "bridge",
    "gatewaydev": "gatewaydev",
    "ip": "ip",
    "script": "script",
    "backend": "backend_domname",
    "vifname": "ifname",
    "model": "model",
    "forwarddev": "coloft_forwarddev",
}


def _located(where: Pos | None, offset: int) -> Pos | None:
    if where is None:
        return None
    return Pos(where.path, where.line, where.col + offset)


def _number_error(value: str, key: str, spec: str, where: Pos | None) -> ConfigError:
    cause = f'failed to convert "{value}" to number in `{spec}\''
    fix = f"{key}= takes a decimal number"
    if where is None:
        return ConfigError(cause, key="vif", fix=fix)
    return where.error(cause, key="vif", fix=fix)


def _parse_ulong(value: str, key: str, spec: str, where: Pos | None) -> int:
    number, end = strtoul(value, 0, 10)
    if end == 0 or number == ULONG_MAX:
        raise _number_error(value, key, spec, where)
    return number


def _parse_mac(nic: _NicState, buf: str, start: int) -> bool:
    """xl's mac loop over the strtok'd buffer: False (and the bytes so far) on error.

    Like xl, each byte ends at any character and the next is read after it, so a short
    MAC reads on into the following token; the buffer holds strtok's NUL cuts so the
    result is the same as xl's.
    """
    pos = start
    for index in range(6):
        value, end = strtoul(buf, pos, 16)
        value &= 0xFFFFFFFF  # xl keeps the unsigned long in an unsigned int
        if end == pos or value > 255:
            return False
        nic.mac[index] = value
        pos = end + 1
        if pos > len(buf):
            pos = len(buf)
    return True


def _token_spans(spec: str) -> list[tuple[int, int]]:
    """strtok(spec, ","): (start, end) of each non-empty token."""
    spans = []
    for match in re.finditer(r"[^,]+", spec):
        spans.append((match.start(), match.end()))
    return spans


def parse_vif_spec(spec: str, devid: int, *, where: Pos | None = None) -> tuple[VifSpec, list[str]]:
    """One vif spec as xl reads a ``vif=[...]`` item, and xl's warnings for it.

    ``devid`` is the item's index in the list (``devid=`` overrides it). ``where`` is the
    position of the spec's first character. Warnings carry xl's exact words, e.g.
    "unrecognized argument `bogus=1'".

    :raise ConfigError: for a bad ``rate=`` (libxlu's words) or a ``devid=``/``mtu=`` that
        is not a number, the cases where xl stops.
    """
    if "\0" in spec:
        raise ConfigError(
            f"vif spec {spec!r} contains a NUL character",
            key="vif",
            fix="remove the NUL character from the vif spec",
        )
    nic = _NicState(devid)
    warnings: list[str] = []
    # strtok writes a NUL over the delimiter that ends each token, as it goes.
    buf = list(spec)
    for start, end in _token_spans(spec):
        if end < len(buf):
            buf[end] = "\0"
        while start < end and spec[start] == " ":
            start += 1
        token = spec[start:end]
        key, eq, value = token.partition("=")
        value_where = _located(where, start + len(key) + 1)
        if eq and key == "type":
            if value == "vif":
                nic.nictype = NicType.VIF
            elif value == "ioemu":
                nic.nictype = NicType.VIF_IOEMU
            else:
                warnings.append("Invalid parameter `type'.")
        elif eq and key == "mac":
            if not _parse_mac(nic, "".join(buf), start + 4):
                warnings.append("Invalid parameter `mac'.")
        elif eq and key == "netdev":
            warnings.append("the netdev parameter is deprecated, please use gatewaydev instead")
            nic.strings["gatewaydev"] = value
        elif eq and key in _STRING_KEYS:
            nic.strings[_STRING_KEYS[key]] = value
        elif eq and key == "rate":
            nic.rate = parse_rate(value, where=value_where)
        elif eq and key in _COLO_SET:
            nic.strings[key] = value
        elif eq and key == "accel":
            warnings.append("the accel parameter for vifs is currently not supported")
        elif eq and key == "devid":
            nic.devid = c_int(_parse_ulong(value, key, spec, value_where))
        elif eq and key == "mtu":
            nic.mtu = c_int(_parse_ulong(value, key, spec, value_where))
        elif token == "trusted":
            nic.trusted = True
        elif token == "untrusted":
            nic.trusted = False
        else:
            warnings.append(f"unrecognized argument `{token}'")
    mac = None
    if any(nic.mac):
        mac = ":".join(f"{byte:02x}" for byte in nic.mac)
    strings = nic.strings
    return (
        VifSpec(
            devid=nic.devid,
            mac=mac,
            bridge=strings.get("bridge"),
            ip=strings.get("ip"),
            script=strings.get("script"),
            ifname=strings.get("ifname"),
            model=strings.get("model"),
            nictype=nic.nictype,
            rate_bytes_per_interval=nic.rate[0],
            rate_interval_usecs=nic.rate[1],
            mtu=nic.mtu,
            backend_domname=strings.get("backend_domname"),
            gatewaydev=strings.get("gatewaydev"),
            coloft_forwarddev=strings.get("coloft_forwarddev"),
            trusted=nic.trusted,
            colo=tuple((name, strings[name]) for name in COLO_FIELDS if name in strings),
        ),
        warnings,
    )
