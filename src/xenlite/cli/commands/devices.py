"""``xl block-list``, ``xl block-attach``, ``xl block-detach``, ``xl cd-insert``,
``xl cd-eject``: a domain's virtual block devices and the media of its cdrom drives.

block-attach takes the disk spec as xl does, in one or more components
(xl-disk-configuration(5)), prints nothing on success and, with the global ``-N``, the
disk as libxl's JSON instead; block-detach takes a vdev (xvdb) or a vbd number and says
"Error: Device X not connected." for one the domain does not have, as xl does.

xl(1) "block-list" (tools/xl/xl_block.c): a header, then for each vbd
``"%-5d %-3d %-6d %-5d %-6d %-8d %-30s"``: the vbd number, the backend's domid, the domain's
domid (the "handle"), the frontend's state, its event channel and ring reference (-1 until a
Xen frontend writes them; QEMU's virtio-blk has neither) and the backend's XenStore path.
A name no domain has is "an invalid domain identifier" and the others are still listed.

cd-insert and cd-eject make the medium as xl does, by parsing
``vdev=VDEV,access=r,devtype=cdrom,target=TARGET`` (an empty target ejects), so the target
is any xl-disk-configuration(5) target; a relative path is made absolute as for block-attach.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING

from xenlite.base.errors import DeviceNotFound, DomainNotFound
from xenlite.cli.commands.domains import connect, find_domain, show_help, want_args
from xenlite.cli.getopt import parse_options
from xenlite.cli.main import EXIT_FAILURE, EXIT_SUCCESS, GlobalOptions, VerbExit
from xenlite.rpc.contract import Method, int_field, objects, str_field

if TYPE_CHECKING:
    from xenlite.config.domain.model import DeviceDisk

_SOURCE = Method.DOMAIN_BLOCK_LIST
BLOCK_HEADER = (
    f"{'Vdev':<5} {'BE':<3} {'handle':<6} {'state':<5} {'evt-ch':<6} {'ring-ref':<8} "
    f"{'BE-path':<30}\n"
)


def main_block_list(opts: GlobalOptions, args: list[str]) -> int:
    """``xl block-list <Domain(s)>``."""
    pairs, operands = parse_options("block-list", args, "h", ["help"])
    if pairs:
        return show_help(opts, "block-list")
    want_args("block-list", operands, 1, "at least one domain")
    status, rows = device_rows(operands, _SOURCE)
    out = [BLOCK_HEADER]
    for row in rows:
        out.append(
            f"{int_field(row, 'devid', _SOURCE):<5d} "
            f"{int_field(row, 'backend_id', _SOURCE):<3d} "
            f"{int_field(row, 'frontend_id', _SOURCE):<6d} "
            f"{int_field(row, 'state', _SOURCE):<5d} "
            f"{int_field(row, 'evtch', _SOURCE):<6d} "
            f"{int_field(row, 'rref', _SOURCE):<8d} "
            f"{str_field(row, 'backend', _SOURCE):<30}\n"
        )
    sys.stdout.write("".join(out))
    return status


def device_rows(operands: list[str], source: str) -> tuple[int, list[Mapping[str, object]]]:
    """The rows ``source`` (a list method) gives for each domain of ``operands``, in order,
    and the exit status: a name no domain has is "an invalid domain identifier" on stderr
    and a failure, and the others are still listed; a domid no domain has lists nothing."""
    status = EXIT_SUCCESS
    rows: list[Mapping[str, object]] = []
    with connect() as client:
        for operand in operands:
            try:
                domid, _ = find_domain(client, operand)
            except VerbExit:
                sys.stderr.write(f"{operand} is an invalid domain identifier\n")
                status = EXIT_FAILURE
                continue
            try:
                rows += objects(client.call(source, dom=str(domid)), "[]", source)
            except DomainNotFound:
                continue
    return status, rows


def main_block_attach(opts: GlobalOptions, args: list[str]) -> int:
    """``xl block-attach <Domain> <disk-spec-component(s)>...``."""
    pairs, operands = parse_options("block-attach", args, "h", ["help"])
    if pairs:
        return show_help(opts, "block-attach")
    want_args("block-attach", operands, 2, "a domain and a disk spec")
    from xenlite.config.domain.libxl_json import dumps_libxl_json, struct_to_json
    from xenlite.config.specs.disk import parse_disk_spec

    disk = local_disk_path(parse_disk_spec(",".join(operands[1:])).to_device())
    if opts.dryrun:
        sys.stdout.write(dumps_libxl_json(struct_to_json(disk)) + "\n")
        return EXIT_SUCCESS
    with connect() as client:
        domid, _ = find_domain(client, operands[0])
        client.call(Method.DOMAIN_BLOCK_ATTACH, dom=str(domid), disk=struct_to_json(disk))
    return EXIT_SUCCESS


def main_block_detach(opts: GlobalOptions, args: list[str]) -> int:
    """``xl block-detach [-f|--force] <Domain> <DevId>``."""
    pairs, operands = parse_options("block-detach", args, "fh", ["force", "help"])
    force = False
    for flag, _ in pairs:
        if flag in ("-h", "--help"):
            return show_help(opts, "block-detach")
        force = True
    want_args("block-detach", operands, 2, "a domain and a device")
    with connect() as client:
        domid, _ = find_domain(client, operands[0])
        try:
            client.call(Method.DOMAIN_BLOCK_DETACH, dom=str(domid), disk=operands[1], force=force)
        except DeviceNotFound:
            raise VerbExit(f"Error: Device {operands[1]} not connected.\n") from None
    return EXIT_SUCCESS


def main_cd_insert(opts: GlobalOptions, args: list[str]) -> int:
    """``xl cd-insert <Domain> <VirtualDevice> <path-to-cdrom-image>``."""
    pairs, operands = parse_options("cd-insert", args, "h", ["help"])
    if pairs:
        return show_help(opts, "cd-insert")
    want_args("cd-insert", operands, 3, "a domain, a virtual device and an image")
    return _cd_insert(operands[0], operands[1], operands[2])


def main_cd_eject(opts: GlobalOptions, args: list[str]) -> int:
    """``xl cd-eject <Domain> <VirtualDevice>``."""
    pairs, operands = parse_options("cd-eject", args, "h", ["help"])
    if pairs:
        return show_help(opts, "cd-eject")
    want_args("cd-eject", operands, 2, "a domain and a virtual device")
    return _cd_insert(operands[0], operands[1], "")


def _cd_insert(dom: str, vdev: str, target: str) -> int:
    from xenlite.config.domain.libxl_json import struct_to_json
    from xenlite.config.specs.disk import parse_disk_spec

    spec = f"vdev={vdev},access=r,devtype=cdrom,target={target}"
    disk = local_disk_path(parse_disk_spec(spec).to_device())
    with connect() as client:
        domid, _ = find_domain(client, dom)
        client.call(Method.DOMAIN_CDROM_INSERT, dom=str(domid), disk=struct_to_json(disk))
    return EXIT_SUCCESS


def local_disk_path(disk: DeviceDisk) -> DeviceDisk:
    """``disk`` with a target relative to the directory xl runs in made absolute: libxl,
    inside xl, opens it from there, and xenlited runs elsewhere. A relative target that is
    no file here is left alone (a device under /dev, as Xen's block script reads it)."""
    path = disk.pdev_path
    if path and not path.startswith("/") and os.path.isfile(path):
        return dataclasses.replace(disk, pdev_path=os.path.abspath(path))
    return disk
