"""PCI passthrough specs (``pci=[...]`` items and ``xl pci-attach``) -> PciSpec.

xl-pci-configuration(5), read exactly as Xen 4.17's libxlu_pci.c
``xlu_pci_parse_spec_string`` does: an optional positional ``[DDDD:]BB:DD.F[@VSLOT]``
(``*`` for every function), then ``key=value`` items (bdf, vslot, permissive,
msitranslate, seize, power_mgmt, rdm_policy, name); exactly one of BDF and ``name=``.
"""

from __future__ import annotations

from dataclasses import dataclass

from xenlite.base.errors import ConfigError
from xenlite.config.cnum import HEX_DIGITS, c_atoi, scan_hex
from xenlite.config.domain.model import DevicePci, RdmPolicy
from xenlite.config.xlcfg.values import Pos

# LIBXL_PCI_FUNC_ALL (~0U): every function of the device.
PCI_FUNC_ALL = 0xFFFFFFFF


@dataclass(frozen=True, slots=True)
class PciSpec:
    """The libxl_device_pci fields a PCI spec can set.

    ``func`` is 0 and ``vfunc_mask`` PCI_FUNC_ALL for ``*``, otherwise ``vfunc_mask`` is 1.
    A spec given by ``name=`` alone has no BDF (all zero, ``vfunc_mask`` 0). ``vdevfn`` is
    the virtual slot shifted left by 3. The four flags and ``rdm_policy`` are None when the
    spec does not set them: xl then uses the global ``pci_*`` settings (see
    to_device).
    """

    domain: int = 0
    bus: int = 0
    dev: int = 0
    func: int = 0
    vdevfn: int = 0
    vfunc_mask: int = 0
    msitranslate: bool | None = None
    power_mgmt: bool | None = None
    permissive: bool | None = None
    seize: bool | None = None
    rdm_policy: RdmPolicy | None = None
    name: str | None = None

    @property
    def has_bdf(self) -> bool:
        """True when the device was named by its address, False for ``name=``."""
        return self.vfunc_mask != 0

    @property
    def bdf(self) -> str:
        """``DDDD:BB:DD.F`` (``*`` as the function for every function)."""
        func = "*" if self.vfunc_mask == PCI_FUNC_ALL else f"{self.func:x}"
        return f"{self.domain:04x}:{self.bus:02x}:{self.dev:02x}.{func}"

    def to_device(
        self,
        *,
        msitranslate: bool = False,
        power_mgmt: bool = False,
        permissive: bool = False,
        seize: bool = False,
        rdm_policy: RdmPolicy = RdmPolicy.STRICT,
    ) -> DevicePci:
        """The libxl_device_pci this spec makes.

        The keyword arguments are the values xl starts each device with: the top-level
        ``pci_msitranslate``, ``pci_power_mgmt``, ``pci_permissive``, ``pci_seize`` (all
        off by default) and the domain's RDM policy (strict by default); what the spec
        sets wins.
        """
        return DevicePci(
            func=self.func,
            dev=self.dev,
            bus=self.bus,
            domain=self.domain,
            vdevfn=self.vdevfn,
            vfunc_mask=self.vfunc_mask,
            msitranslate=msitranslate if self.msitranslate is None else self.msitranslate,
            power_mgmt=power_mgmt if self.power_mgmt is None else self.power_mgmt,
            permissive=permissive if self.permissive is None else self.permissive,
            seize=seize if self.seize is None else self.seize,
            rdm_policy=rdm_policy if self.rdm_policy is None else self.rdm_policy,
            name=self.name,
        )

    def to_spec_string(self) -> str:
        """A spec that parses back to this PciSpec: ``BDF[@VSLOT][,key=value...]``."""
        items = []
        if self.has_bdf:
            head = self.bdf
            if self.vdevfn:
                head += f"@{self.vdevfn >> 3:02x}"
            items.append(head)
        elif self.vdevfn:
            items.append(f"vslot={self.vdevfn >> 3:02x}")
        for key, flag in (
            ("permissive", self.permissive),
            ("msitranslate", self.msitranslate),
            ("seize", self.seize),
            ("power_mgmt", self.power_mgmt),
        ):
            if flag is not None:
                items.append(f"{key}={int(flag)}")
        if self.rdm_policy is not None:
            items.append(f"rdm_policy={self.rdm_policy.value}")
        if self.name is not None:
            items.append(f"name={self.name}")
        return ",".join(items)

    render = to_spec_string


class _Bdf:
    __slots__ = ("bus", "dev", "domain", "func", "vfunc_mask")

    def __init__(self, domain: int, bus: int, dev: int, func: int, vfunc_mask: int) -> None:
        self.domain = domain
        self.bus = bus
        self.dev = dev
        self.func = func
        self.vfunc_mask = vfunc_mask


def _parse_bdf(text: str) -> tuple[_Bdf, int] | None:
    """libxlu's parse_bdf: the address at the start of text and where it ends, or None."""
    colons = 0
    for char in text:
        if char == ":":
            colons += 1
        elif char not in HEX_DIGITS:
            break
    numbers: list[int] = []
    pos = 0
    wanted = {1: 2, 2: 3}.get(colons)
    if wanted is None:
        return None
    for index in range(wanted):
        scanned = scan_hex(text, pos)
        if scanned is None:
            return None
        value, pos = scanned
        numbers.append(value)
        separator = ":" if index < wanted - 1 else "."
        if text[pos : pos + 1] != separator:
            return None
        pos += 1
    if wanted == 2:
        numbers.insert(0, 0)
    domain, bus, dev = numbers
    if domain > 0xFFFF or bus > 0xFF or dev > 0x1F:
        return None
    if text[pos : pos + 1] == "*":
        return _Bdf(domain, bus, dev, 0, PCI_FUNC_ALL), pos + 1
    scanned = scan_hex(text, pos)
    if scanned is None or scanned[0] > 7:
        return None
    return _Bdf(domain, bus, dev, scanned[0], 1), scanned[1]


def _parse_vslot(text: str, pos: int) -> tuple[int, int] | None:
    scanned = scan_hex(text, pos)
    if scanned is None or scanned[0] > 0x1F:
        return None
    return scanned[0] << 3, scanned[1]


_FIX = (
    "write [DDDD:]BB:DD.F[@VSLOT] (F may be *) and/or key=value items: bdf=, vslot=, "
    "permissive=, msitranslate=, seize=, power_mgmt=, rdm_policy=strict|relaxed, name="
)


def parse_pci_spec(spec: str, *, where: Pos | None = None) -> PciSpec:
    """One PCI_SPEC_STRING as xl reads a ``pci=[...]`` item.

    ``where`` is the position of the spec's first character; error columns add the offset
    of the bad part.

    :raise ConfigError: naming the spec and its bad part, wherever Xen 4.17 rejects it
        (xl says only ``unable to parse PCI_SPEC_STRING``; xenlite says why).
    """

    def fail(cause: str, offset: int) -> ConfigError:
        message = f"unable to parse PCI_SPEC_STRING `{spec}' for passthrough: {cause}"
        if where is None:
            return ConfigError(message, key="pci", fix=_FIX)
        return ConfigError(
            message,
            path=where.path,
            line=where.line,
            col=where.col + offset,
            key="pci",
            fix=_FIX,
        )

    if "\0" in spec:
        raise fail("it contains a NUL character", spec.index("\0"))
    bdf: _Bdf | None = None
    vdevfn = 0
    flags: dict[str, bool] = {}
    rdm_policy: RdmPolicy | None = None
    name: str | None = None
    pos = 0
    positional = _parse_bdf(spec)
    if positional is not None:
        bdf, pos = positional
        if spec[pos : pos + 1] == "@":
            vslot = _parse_vslot(spec, pos + 1)
            if vslot is None:
                raise fail("the virtual slot after '@' is not a hex number up to 1f", pos + 1)
            vdevfn, pos = vslot
        if spec[pos : pos + 1] == ",":
            pos += 1
        elif pos != len(spec):
            raise fail(f"unexpected {spec[pos:]!r} after the device address", pos)
    while pos < len(spec):
        equals = spec.find("=", pos)
        if equals < 0:
            raise fail(f"{spec[pos:]!r} is not a key=value item", pos)
        key = spec[pos:equals]
        comma = spec.find(",", equals + 1)
        value_end = len(spec) if comma < 0 else comma
        value = spec[equals + 1 : value_end]
        item_pos = pos
        pos = value_end + 1 if comma >= 0 else value_end
        if key == "bdf":
            parsed = _parse_bdf(value)
            if parsed is None:
                raise fail(f"bdf={value} is not a [DDDD:]BB:DD.F address", item_pos)
            # As in xl, text after the address in bdf= is not looked at.
            bdf = parsed[0]
        elif key == "vslot":
            vslot = _parse_vslot(value, 0)
            if vslot is None:
                raise fail(f"vslot={value} is not a hex number up to 1f", item_pos)
            vdevfn = vslot[0]
        elif key in ("permissive", "msitranslate", "seize", "power_mgmt"):
            flags[key] = c_atoi(value) != 0
        elif key == "rdm_policy":
            try:
                # libxl compares enum names ignoring ASCII case.
                rdm_policy = RdmPolicy(value.lower() if value.isascii() else value)
            except ValueError:
                raise fail(
                    f"Unknown RDM policy: {value} (use strict or relaxed)", item_pos
                ) from None
        elif key == "name":
            name = value
        else:
            raise fail(f"Unknown PCI_SPEC_STRING option: {key}", item_pos)
    if bdf is None and name is None:
        raise fail("neither a device address nor name= is given", 0)
    if bdf is not None and name is not None:
        raise fail("both a device address and name= are given; use one", 0)
    return PciSpec(
        domain=bdf.domain if bdf else 0,
        bus=bdf.bus if bdf else 0,
        dev=bdf.dev if bdf else 0,
        func=bdf.func if bdf else 0,
        vdevfn=vdevfn,
        vfunc_mask=bdf.vfunc_mask if bdf else 0,
        msitranslate=flags.get("msitranslate"),
        power_mgmt=flags.get("power_mgmt"),
        permissive=flags.get("permissive"),
        seize=flags.get("seize"),
        rdm_policy=rdm_policy,
        name=name,
    )
