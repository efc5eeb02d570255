"""The device lists of an xl.cfg file -> the libxl device structures, as xl_parse.c reads them.

Implements xl.cfg(5) "Devices": disk, vif, pci, dtdev, vfb, vkb, vsnd, vdispl, channel,
usbctrl, usbdev, p9, pvcalls and vtpm (the disk, vif and pci spec grammars are their own
modules, one man page each).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import Any

from xenlite.base.errors import ConfigError
from xenlite.config.domain.hvm import sdl_info, vnc_info
from xenlite.config.domain.model import (
    BuildInfo,
    ChannelConnection,
    ChannelPty,
    ChannelSocket,
    ConnectorParam,
    CreateInfo,
    DeviceChannel,
    DeviceDtdev,
    DeviceNic,
    DeviceP9,
    DevicePci,
    DevicePvcallsif,
    DeviceUsbctrl,
    DeviceUsbdev,
    DeviceVdispl,
    DeviceVfb,
    DeviceVkb,
    DeviceVsnd,
    DeviceVtpm,
    DomainConfig,
    DomainType,
    PvBuildInfo,
    RdmPolicy,
    SdlInfo,
    UsbctrlType,
    UsbHostdev,
    VkbBackend,
    VncInfo,
    VsndParams,
    VsndPcm,
    VsndPcmFormat,
    VsndStream,
    VsndStreamType,
)
from xenlite.config.domain.reader import KeyReader, atoi, split, strtoul, valid_uuid
from xenlite.config.hostconf.xlconf import XlConf
from xenlite.config.specs.disk import parse_disk_spec
from xenlite.config.specs.pci import parse_pci_spec
from xenlite.config.specs.vif import parse_vif_spec
from xenlite.config.xlcfg.values import Atom, ListValue, Pos


def devices(r: KeyReader, c_info: CreateInfo, b_info: BuildInfo) -> DomainConfig:
    """Every device list, in xl's order, on top of ``c_info`` and ``b_info``.

    The on_* actions are left at their defaults. PCI devices on a PV guest turn on
    ``e820_host`` in the returned b_info, as xl does.
    """
    pv = c_info.type == DomainType.PV
    pcidevs = _pcis(r, c_info, b_info)
    if pcidevs and pv and isinstance(b_info.u, PvBuildInfo):
        b_info = replace(b_info, u=replace(b_info.u, e820_host=True))

    dtdevs = tuple(DeviceDtdev(path=a.text) for a in r.list_or_empty("dtdev"))
    disks = tuple(parse_disk_spec(a.text, where=a.pos).to_device() for a in r.list_or_empty("disk"))
    p9s = tuple(_p9(r, a) for a in r.list_or_empty("p9"))
    vtpms = tuple(_vtpm(r, i, a) for i, a in enumerate(r.list_or_empty("vtpm")))
    vdispls = tuple(_vdispl(r, i, a) for i, a in enumerate(r.list_or_empty("vdispl")))
    pvcallsifs = tuple(_pvcalls(r, i, a) for i, a in enumerate(r.list_or_empty("pvcalls")))
    vsnds = _vsnds(r)
    channels = tuple(_channel(r, i, a) for i, a in enumerate(r.list_or_empty("channel")))
    nics = tuple(_nic(r, i, a) for i, a in enumerate(r.list_or_empty("vif")))
    if r.setting("vif2") is not None:
        r.warn.add(
            r.pos("vif2"), "WARNING: vif2: netchannel2 is deprecated and not supported by xl"
        )
    vfbs: list[DeviceVfb] = []
    vkbs: list[DeviceVkb] = []
    for atom in r.list_or_empty("vfb"):
        vfbs.append(_vfb(r, len(vfbs), atom))
        vkbs.append(DeviceVkb(devid=len(vkbs)))
    usbctrls = tuple(_usbctrl(r, i, a) for i, a in enumerate(r.list_or_empty("usbctrl")))
    usbdevs = tuple(_usbdev(r, a) for a in r.list_or_empty("usbdev"))

    if pv and not vfbs and r.long("vnc"):
        keymap = r.string("keymap")
        vfbs.append(DeviceVfb(devid=0, vnc=vnc_info(r), sdl=sdl_info(r), keymap=keymap))
        vkbs.append(DeviceVkb(devid=len(vkbs)))
    for atom in r.list_or_empty("vkb"):
        vkbs.append(_vkb(r, len(vkbs), atom))
    return DomainConfig(
        c_info=c_info,
        b_info=b_info,
        disks=disks,
        nics=nics,
        pcidevs=pcidevs,
        dtdevs=dtdevs,
        vfbs=tuple(vfbs),
        vkbs=tuple(vkbs),
        vtpms=vtpms,
        p9s=p9s,
        pvcallsifs=pvcallsifs,
        vdispls=vdispls,
        vsnds=vsnds,
        channels=channels,
        usbctrls=usbctrls,
        usbdevs=usbdevs,
    )


def _pcis(r: KeyReader, c_info: CreateInfo, b_info: BuildInfo) -> tuple[DevicePci, ...]:
    # xl starts each device from the pci_* globals and b_info->u.hvm.rdm.policy. For
    # PV/PVH that union member overlaps zeroed PV fields, so their devices read 0, i.e.
    # "strict"; HVM devices get the rdm= policy (unset: omitted).
    rdm_policy = b_info.hvm.rdm.policy if c_info.type == DomainType.HVM else RdmPolicy.STRICT
    pcis = []
    for atom in r.list_or_empty("pci"):
        spec = parse_pci_spec(atom.text, where=atom.pos)
        device = spec.to_device(
            msitranslate=bool(r.long("pci_msitranslate") or 0),
            power_mgmt=bool(r.long("pci_power_mgmt") or 0),
            permissive=bool(r.long("pci_permissive") or 0),
            seize=bool(r.long("pci_seize") or 0),
            rdm_policy=rdm_policy,
        )
        pcis.append(device)
    return tuple(pcis)


def _spec_items(atom: Atom) -> Iterator[tuple[str, str, str, str]]:
    """xl's loop over a device spec: strtok on ',', leading blanks dropped, each item as
    (item, key, "=" or "", value) split at its first '='."""
    for token in split(atom.text, ","):
        token = token.lstrip(" ")
        key, sep, value = token.partition("=")
        yield token, key, sep, value


def _nic(r: KeyReader, devid: int, atom: Atom) -> DeviceNic:
    spec, warnings = parse_vif_spec(atom.text, devid, where=atom.pos)
    for text in warnings:
        r.warn.add(atom.pos, text)
    return nic_with_defaults(spec.to_device(), r.xlconf)


def nic_with_defaults(nic: DeviceNic, xlconf: XlConf) -> DeviceNic:
    """``nic`` with xl.conf's vif.default.* filling what its spec left unset, as xl's
    set_default_nic_values does for ``vif=`` and for network-attach."""
    return replace(
        nic,
        script=xlconf.vif_default_script if nic.script is None else nic.script,
        bridge=xlconf.vif_default_bridge if nic.bridge is None else nic.bridge,
        backend_domname=(
            xlconf.vif_default_backend if nic.backend_domname is None else nic.backend_domname
        ),
        gatewaydev=xlconf.vif_default_gatewaydev if nic.gatewaydev is None else nic.gatewaydev,
    )


def _pairs(r: KeyReader, key: str, atom: Atom, allowed: Sequence[str]) -> dict[str, str]:
    """``k=v,k=v`` as xl's p9/vtpm/pvcalls loops read it (a token without '=' ends it)."""
    out: dict[str, str] = {}
    for token in split(atom.text, ","):
        name, sep, value = token.lstrip(" ").partition("=")
        if not sep:
            break
        if name not in allowed:
            raise r.fail(
                key,
                f"Unknown string `{name}' in {key} spec",
                "known keys: " + ", ".join(allowed),
                atom.pos,
            )
        out[name] = value
    return out


def _p9(r: KeyReader, atom: Atom) -> DeviceP9:
    kv = _pairs(r, "9pfs", atom, ("security_model", "path", "tag", "backend"))
    if not all(k in kv for k in ("path", "security_model", "tag")):
        raise r.fail(
            "p9",
            "9pfs spec missing required field!",
            "give tag=, path= and security_model=",
            atom.pos,
        )
    return DeviceP9(
        backend_domname=kv.get("backend"),
        tag=kv["tag"],
        path=kv["path"],
        security_model=kv["security_model"],
        # xl numbers the p9 device, then re-initialises it: its devid stays -1 (auto).
    )


def _vtpm(r: KeyReader, devid: int, atom: Atom) -> DeviceVtpm:
    kv = _pairs(r, "vtpm", atom, ("backend", "uuid"))
    uuid = None
    if "uuid" in kv:
        uuid = valid_uuid(kv["uuid"])
        if uuid is None:
            raise r.fail(
                "vtpm",
                f"Failed to parse vtpm UUID: {kv['uuid']}",
                "give a valid UUID",
                atom.pos,
            )
    if "backend" not in kv:
        raise r.fail(
            "vtpm",
            "vtpm spec missing required backend field!",
            "add backend=<domain name>",
            atom.pos,
        )
    return DeviceVtpm(backend_domname=kv["backend"], devid=devid, uuid=uuid)


def _pvcalls(r: KeyReader, devid: int, atom: Atom) -> DevicePvcallsif:
    kv = _pairs(r, "pvcalls", atom, ("backend",))
    return DevicePvcallsif(backend_domname=kv.get("backend"), devid=devid)


def _vdispl(r: KeyReader, devid: int, atom: Atom) -> DeviceVdispl:
    backend = None
    be_alloc = False
    connectors: list[ConnectorParam] = []
    for token in split(atom.text, ","):
        token = token.lstrip(" ")
        if token.startswith("backend="):
            backend = token[len("backend=") :]
        elif token.startswith("be-alloc="):
            be_alloc = strtoul(token[len("be-alloc=") :], 0)[0] != 0
        elif token.startswith("connectors="):
            connectors = []
            for conn in split(token[len("connectors=") :], ";"):
                parts = split(conn, ":")
                m = re.match(r"\s*(\d+)x\s*(\d+)", parts[1]) if len(parts) >= 2 else None
                if m is None:
                    raise r.fail(
                        "vdispl",
                        "Can't parse connector resolution",
                        "write connectors=ID:WIDTHxHEIGHT;ID:WIDTHxHEIGHT",
                        atom.pos,
                    )
                connectors.append(
                    ConnectorParam(unique_id=parts[0], width=int(m[1]), height=int(m[2]))
                )
        else:
            raise r.fail(
                "vdispl",
                f'Unknown string "{token}" in vdispl spec',
                "known keys: backend=, be-alloc=, connectors=",
                atom.pos,
            )
    if not connectors:
        raise r.fail(
            "vdispl",
            "At least one connector should be specified.",
            "add connectors=ID:WIDTHxHEIGHT",
            atom.pos,
        )
    return DeviceVdispl(
        backend_domname=backend,
        devid=devid,
        be_alloc=be_alloc,
        connectors=tuple(connectors),
    )


def _vsnds(r: KeyReader) -> tuple[DeviceVsnd, ...]:
    s = r.setting("vsnd")
    if s is None:
        return ()
    if isinstance(s.value, Atom):
        raise s.pos.error("should be a list of cards", key="vsnd", fix="see xl.cfg(5) vsnd=")
    cards = []
    for devid, card in enumerate(s.value.items):
        if isinstance(card, Atom):
            raise card.pos.error(
                "Failed to get vsnd card list: each card is a list of items",
                key="vsnd",
                fix="write vsnd = [ [ 'card, ...', 'pcm, ...' ] ]",
            )
        cards.append(_VsndBuilder(devid).card(card))
    return tuple(cards)


def _channel(r: KeyReader, devid: int, atom: Atom) -> DeviceChannel:
    backend = name = path = None
    connection = ChannelConnection.UNKNOWN
    for pair in split(atom.text, ","):
        parts = split(pair, "=")
        if len(parts) < 2:
            raise r.fail(
                "channel",
                f"failed to parse channel configuration: {pair}",
                "write key=value pairs",
                atom.pos,
            )
        key, value = parts[0].strip(), parts[1].strip()
        if key == "backend":
            backend = value
        elif key == "name":
            name = value
        elif key == "path":
            path = value
        elif key == "connection":
            if value not in ("pty", "socket"):
                raise r.fail(
                    "channel",
                    f"unknown channel connection '{value}'",
                    "use connection=pty or connection=socket",
                    atom.pos,
                )
            connection = ChannelConnection(value)
        else:
            r.warn.add(atom.pos, f"unknown channel parameter '{key}', ignoring")
    u: ChannelPty | ChannelSocket
    if connection == ChannelConnection.UNKNOWN:
        raise r.fail("channel", "channel has unknown 'connection'", "add connection=pty", atom.pos)
    if connection == ChannelConnection.SOCKET:
        if path is None:
            raise r.fail(
                "channel",
                "channel connection 'socket' requires path=..",
                "add path=/run/...sock",
                atom.pos,
            )
        u = ChannelSocket(path=path)
    else:
        u = ChannelPty()
    return DeviceChannel(backend_domname=backend, devid=devid, name=name, u=u)


def _vfb(r: KeyReader, devid: int, atom: Atom) -> DeviceVfb:
    vnc: dict[str, Any] = {}
    sdl: dict[str, Any] = {}
    keymap = None
    for token in split(atom.text, ","):
        key, sep, value = token.lstrip(" ").partition("=")
        if not sep:
            break
        if key == "vnc":
            vnc["enable"] = atoi(value) != 0
        elif key == "vnclisten":
            vnc["listen"] = value
        elif key == "vncpasswd":
            vnc["passwd"] = value
        elif key == "vncdisplay":
            vnc["display"] = atoi(value)
        elif key == "vncunused":
            vnc["findunused"] = atoi(value) != 0
        elif key == "keymap":
            keymap = value
        elif key == "sdl":
            sdl["enable"] = atoi(value) != 0
        elif key == "opengl":
            sdl["opengl"] = atoi(value) != 0
        elif key == "display":
            sdl["display"] = value
        elif key == "xauthority":
            sdl["xauthority"] = value
        else:
            r.warn.add(atom.pos, f"vfb: unknown option '{key}' ignored by xl")
    return DeviceVfb(devid=devid, vnc=VncInfo(**vnc), sdl=SdlInfo(**sdl), keymap=keymap)


def _vkb(r: KeyReader, devid: int, atom: Atom) -> DeviceVkb:
    v: dict[str, Any] = {"devid": devid}
    numeric = {
        "feature-disable-keyboard": "feature_disable_keyboard",
        "feature-disable-pointer": "feature_disable_pointer",
        "feature-abs-pointer": "feature_abs_pointer",
        "feature-raw-pointer": "feature_raw_pointer",
        "feature-multi-touch": "feature_multi_touch",
        "multi-touch-width": "multi_touch_width",
        "multi-touch-height": "multi_touch_height",
        "multi-touch-num-contacts": "multi_touch_num_contacts",
        "width": "width",
        "height": "height",
    }
    for token, key, sep, value in _spec_items(atom):
        if sep and key == "backend":
            v["backend_domname"] = value
        elif sep and key == "backend-type":
            v["backend_type"] = r.enum_value(
                "vkb",
                VkbBackend,
                value,
                atom.pos,
                cause=f'Unknown backend_type "{value}" in vkb spec',
                fix="use backend-type=qemu or backend-type=linux",
            )
        elif sep and key == "unique-id":
            v["unique_id"] = value
        elif sep and key in numeric:
            number = strtoul(value, 0)[0]
            fname = numeric[key]
            v[fname] = (number != 0) if fname.startswith("feature") else number
        else:
            raise r.fail(
                "vkb", f'Unknown string "{token}" in vkb spec', "see xl.cfg(5) vkb=", atom.pos
            )
    if v.get("backend_type", VkbBackend.UNKNOWN) == VkbBackend.UNKNOWN:
        raise r.fail(
            "vkb", "backend-type should be set in vkb spec", "add backend-type=linux", atom.pos
        )
    touch = ("multi_touch_height", "multi_touch_width", "multi_touch_num_contacts")
    if any(v.get(k) for k in touch):
        v["feature_multi_touch"] = True
    if v.get("feature_multi_touch") and not any(v.get(k) for k in touch):
        raise r.fail(
            "vkb",
            "multi-touch-width, multi-touch-height, multi-touch-num-contacts should be set "
            "for multi touch in vkb spec",
            "give the multi-touch sizes",
            atom.pos,
        )
    return DeviceVkb(**v)


def _usbctrl(r: KeyReader, devid: int, atom: Atom) -> DeviceUsbctrl:
    u: dict[str, Any] = {"devid": devid}
    for token, key, sep, value in _spec_items(atom):
        if sep and key == "type":
            u["type"] = r.enum_value(
                "usbctrl",
                UsbctrlType,
                value,
                atom.pos,
                cause=f"Invalid usb controller type '{value}'",
                fix="use type=auto, pv, devicemodel or qusb",
            )
        elif sep and key in ("version", "ports"):
            u[key] = atoi(value)
        else:
            raise r.fail(
                "usbctrl",
                f"Unknown string `{token}' in usbctrl spec",
                "known keys: type=, version=, ports=",
                atom.pos,
            )
    return DeviceUsbctrl(**u)


def _usbdev(r: KeyReader, atom: Atom) -> DeviceUsbdev:
    ctrl = -1
    port = 0
    typed = False
    hostbus = hostaddr = 0
    for token, key, sep, value in _spec_items(atom):
        if sep and key == "type":
            if value != "hostdev":
                raise r.fail(
                    "usbdev",
                    f"Invalid usb device type: {value}",
                    "use type=hostdev",
                    atom.pos,
                )
            typed = True
        elif sep and key == "hostbus":
            hostbus = strtoul(value, 0)[0] & 0xFF
        elif sep and key == "hostaddr":
            hostaddr = strtoul(value, 0)[0] & 0xFF
        elif sep and key == "controller":
            ctrl = atoi(value)
        elif sep and key == "port":
            port = atoi(value)
        else:
            raise r.fail(
                "usbdev",
                f"Unknown string `{token}' in usbdev spec",
                "known keys: type=, hostbus=, hostaddr=, controller=, port=",
                atom.pos,
            )
    # Without an explicit type=hostdev xl's union stays unkeyed and libxl drops
    # hostbus/hostaddr from the config; xenlite keeps xl's result.
    u = UsbHostdev(hostbus=hostbus, hostaddr=hostaddr) if typed else None
    return DeviceUsbdev(ctrl=ctrl, port=port, u=u)


# XENSND_FIELD_* names (xen/include/public/io/sndif.h).
_SND_PARAMS = ("sample-rates", "sample-formats", "channels-min", "channels-max", "buffer-size")


class _VsndBuilder:
    """One ``vsnd=`` card: items "card, ...", "pcm, ...", "stream, ..." as xl reads them."""

    def __init__(self, devid: int) -> None:
        self.devid = devid
        self.card_kv: dict[str, Any] = {"params": VsndParams()}
        self.pcms: list[dict[str, Any]] = []

    def error(self, cause: str, pos: Pos) -> ConfigError:
        return pos.error(cause, key="vsnd", fix="see xl.cfg(5) vsnd= for the item syntax")

    def params(self, params: VsndParams, token: str, pos: Pos) -> VsndParams | None:
        key, sep, value = token.partition("=")
        if not sep or key not in _SND_PARAMS:
            return None
        if key == "sample-rates":
            rates = tuple(strtoul(r, 0)[0] for r in split(value, ";"))
            return replace(params, sample_rates=rates)
        if key == "sample-formats":
            formats = []
            for name in split(value, ";"):
                try:
                    formats.append(VsndPcmFormat(name.lower()))
                except ValueError:
                    raise self.error(f"Invalid pcm format: {name}", pos) from None
            return replace(params, sample_formats=tuple(formats))
        changes: dict[str, Any] = {key.replace("-", "_"): strtoul(value, 0)[0]}
        return replace(params, **changes)

    def card(self, items: ListValue) -> DeviceVsnd:
        for item in items.items:
            if isinstance(item, ListValue):
                raise self.error("a vsnd item must be a string", item.pos)
            self.item(item)
        pcms = []
        for pcm in self.pcms:
            streams = tuple(VsndStream(**s) for s in pcm.pop("streams"))
            pcms.append(VsndPcm(streams=streams, **pcm))
        return DeviceVsnd(devid=self.devid, pcms=tuple(pcms), **self.card_kv)

    def item(self, atom: Atom) -> None:
        tokens = [t.lstrip(" ") for t in split(atom.text, ",")]
        if not tokens:
            return
        kind = tokens[0].lower()
        if kind == "pcm":
            self.pcms.append({"params": VsndParams(), "streams": []})
        elif kind == "stream":
            if not self.pcms:
                self.pcms.append({"params": VsndParams(), "streams": []})
            self.pcms[-1]["streams"].append({"params": VsndParams()})
        elif kind != "card":
            raise self.error(f"Invalid key: {tokens[0]}", atom.pos)
        for token in tokens[1:]:
            if kind == "card":
                target = self.card_kv
                extra = {"backend": "backend_domname", "short-name": "short_name"}
                extra["long-name"] = "long_name"
            elif kind == "pcm":
                target = self.pcms[-1]
                extra = {"name": "name"}
            else:
                target = self.pcms[-1]["streams"][-1]
                extra = {"unique-id": "unique_id", "type": "type"}
            new = self.params(target["params"], token, atom.pos)
            if new is not None:
                target["params"] = new
                continue
            key, sep, value = token.partition("=")
            if not sep or key not in extra:
                raise self.error(f"Invalid parameter: {token}", atom.pos)
            if key == "type":
                try:
                    target["type"] = VsndStreamType(value.lower())
                except ValueError:
                    raise self.error(f"Invalid stream type: {value}", atom.pos) from None
            else:
                target[extra[key]] = value
