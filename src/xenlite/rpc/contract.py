"""What xenlited answers to: every method the CLI may call, and the typed answers both ends
share, so that a method or a field exists once and a mismatch is a test failure, not a
surprise at run time.

``Method`` is the one list of method names: xenlited's operations are keyed by it (a test
checks that every member has a handler and no handler lacks a member) and ``xl`` calls
through it. ``DomainInfo`` is one domain as ``domain.list`` answers it; the daemon builds it,
the protocol sends it as a JSON object, and ``domain_info_from_json`` checks every field on
the CLI's side. The ``*_field`` readers check the other answers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from xenlite.base.errors import RpcError


class Method(StrEnum):
    HOST_INFO = "host.info"
    HOST_DMESG = "host.dmesg"
    HOST_XENSTORE_WAIT = "host.xenstore_wait"
    HOST_NETWORK_BRIDGE = "host.network_bridge"
    HOST_CPUPOOL_LIST = "host.cpupool_list"
    HOST_CPUPOOL_CREATE = "host.cpupool_create"
    HOST_CPUPOOL_DESTROY = "host.cpupool_destroy"
    HOST_CPUPOOL_RENAME = "host.cpupool_rename"
    HOST_CPUPOOL_CPU_ADD = "host.cpupool_cpu_add"
    HOST_CPUPOOL_CPU_REMOVE = "host.cpupool_cpu_remove"
    HOST_CPUPOOL_NUMA_SPLIT = "host.cpupool_numa_split"
    DOMAIN_LIST = "domain.list"
    DOMAIN_CREATE = "domain.create"
    DOMAIN_DESTROY = "domain.destroy"
    DOMAIN_PAUSE = "domain.pause"
    DOMAIN_UNPAUSE = "domain.unpause"
    DOMAIN_RENAME = "domain.rename"
    DOMAIN_SHUTDOWN = "domain.shutdown"
    DOMAIN_WAIT_GONE = "domain.wait_gone"
    DOMAIN_ENDED = "domain.ended"
    DOMAIN_CONSOLE = "domain.console"
    DOMAIN_CONSOLE_ATTACH = "domain.console_attach"
    DOMAIN_MEM_SET = "domain.mem_set"
    DOMAIN_MEM_MAX = "domain.mem_max"
    DOMAIN_VCPU_LIST = "domain.vcpu_list"
    DOMAIN_BLOCK_LIST = "domain.block_list"
    DOMAIN_BLOCK_ATTACH = "domain.block_attach"
    DOMAIN_BLOCK_DETACH = "domain.block_detach"
    DOMAIN_CDROM_INSERT = "domain.cdrom_insert"
    DOMAIN_NETWORK_LIST = "domain.network_list"
    DOMAIN_NETWORK_ATTACH = "domain.network_attach"
    DOMAIN_NETWORK_DETACH = "domain.network_detach"
    DOMAIN_VCPU_PIN = "domain.vcpu_pin"
    DOMAIN_VCPU_SET = "domain.vcpu_set"
    DOMAIN_SCHED_GET = "domain.sched_get"
    DOMAIN_SCHED_SET = "domain.sched_set"
    DOMAIN_CPUPOOL_MIGRATE = "domain.cpupool_migrate"
    DOMAIN_SYSRQ = "domain.sysrq"
    DOMAIN_TRIGGER = "domain.trigger"


class ShutdownReason(StrEnum):
    """libxl_shutdown_reason as ``xl list -l`` spells it, in its IDL order."""

    POWEROFF = "poweroff"
    REBOOT = "reboot"
    SUSPEND = "suspend"
    CRASH = "crash"
    WATCHDOG = "watchdog"
    SOFT_RESET = "soft_reset"

    @property
    def code(self) -> int:
        """libxl's number for the reason (what ``xl list -v`` prints in hex)."""
        return list(ShutdownReason).index(self)


@dataclass(frozen=True, slots=True)
class DomainInfo:
    """One domain as ``domain.list`` reports it.

    ``config`` is the libxl JSON of the domain config exactly as the daemon stored it (a JSON
    object, key order kept), or None when it is not asked for or there is none (Domain-0).
    """

    domid: int
    name: str
    uuid: str
    current_memkb: int
    outstanding_memkb: int
    max_memkb: int
    vcpu_online: int
    max_vcpus: int
    running: bool
    blocked: bool
    paused: bool
    shutdown: bool
    dying: bool
    shutdown_reason: ShutdownReason | None
    cpu_time_ns: int
    start_time: float
    cpupool: str = "Pool-0"  # the name of the cpupool it runs in (xl list -c)
    config: Mapping[str, object] | None = None
    # What the bootloader chose when the domain last booted through one (beyond xl: libxl
    # keeps it in its build state only): disk, partition, config, entry, kernel, ramdisk, args.
    bootloader: Mapping[str, object] | None = None


# The fix of every error that means xl and xenlited disagree on this contract.
VERSION_SKEW_FIX = (
    "xl and xenlited may come from different xenlite versions; restart the host services "
    "(xenlite stop; xenlite start)"
)


def bad_field(name: str, cause: str, source: str = "domain.list") -> RpcError:
    """The error of an answer that breaks this contract (xl and xenlited of two versions)."""
    return RpcError(
        f"xenlited {source}",
        f"answer field '{name}' {cause}",
        VERSION_SKEW_FIX,
        code="protocol",
    )


def int_field(obj: Mapping[str, object], name: str, source: str = "domain.list") -> int:
    """``obj[name]`` as an integer. :raise RpcError: ``protocol`` for anything else."""
    value = obj.get(name)
    if not isinstance(value, int) or isinstance(value, bool):
        raise bad_field(name, f"is {value!r}, not an integer", source)
    return value


def bool_field(obj: Mapping[str, object], name: str, source: str = "domain.list") -> bool:
    """``obj[name]`` as true/false. :raise RpcError: ``protocol`` for anything else."""
    value = obj.get(name)
    if not isinstance(value, bool):
        raise bad_field(name, f"is {value!r}, not true/false", source)
    return value


def str_field(obj: Mapping[str, object], name: str, source: str = "domain.list") -> str:
    """``obj[name]`` as a string. :raise RpcError: ``protocol`` for anything else."""
    value = obj.get(name)
    if not isinstance(value, str):
        raise bad_field(name, f"is {value!r}, not a string", source)
    return value


def objects(value: object, name: str, source: str) -> list[Mapping[str, object]]:
    """``value`` as a list of JSON objects. :raise RpcError: ``protocol`` for anything else."""
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise bad_field(name, f"is {value!r}, not a list of objects", source)
    return list(value)


def int_list(obj: Mapping[str, object], name: str, source: str) -> list[int]:
    """``obj[name]`` as a list of integers. :raise RpcError: ``protocol`` otherwise."""
    value = obj.get(name)
    if not isinstance(value, list) or not all(
        isinstance(v, int) and not isinstance(v, bool) for v in value
    ):
        raise bad_field(name, f"is {value!r}, not a list of integers", source)
    return list(value)


def domain_info_from_json(obj: object) -> DomainInfo:
    """A DomainInfo from one element of ``domain.list``'s answer.

    :raise RpcError: ``protocol`` when a field is missing or of the wrong type.
    """
    if not isinstance(obj, dict):
        raise bad_field("[]", f"holds {type(obj).__name__}, not a domain object")
    reason_raw = obj.get("shutdown_reason")
    reason: ShutdownReason | None = None
    if reason_raw is not None:
        try:
            reason = ShutdownReason(str(reason_raw))
        except ValueError:
            raise bad_field("shutdown_reason", f"is {reason_raw!r}, no libxl reason") from None
    start = obj.get("start_time", 0)
    if not isinstance(start, int | float) or isinstance(start, bool):
        raise bad_field("start_time", f"is {start!r}, not a number")
    config = obj.get("config")
    if config is not None and not isinstance(config, dict):
        raise bad_field("config", "is not a JSON object")
    bootloader = obj.get("bootloader")
    if bootloader is not None and not isinstance(bootloader, dict):
        raise bad_field("bootloader", "is not a JSON object")
    return DomainInfo(
        domid=int_field(obj, "domid"),
        name=str_field(obj, "name"),
        uuid=str_field(obj, "uuid"),
        current_memkb=int_field(obj, "current_memkb"),
        outstanding_memkb=int_field(obj, "outstanding_memkb"),
        max_memkb=int_field(obj, "max_memkb"),
        vcpu_online=int_field(obj, "vcpu_online"),
        max_vcpus=int_field(obj, "max_vcpus"),
        running=bool_field(obj, "running"),
        blocked=bool_field(obj, "blocked"),
        paused=bool_field(obj, "paused"),
        shutdown=bool_field(obj, "shutdown"),
        dying=bool_field(obj, "dying"),
        shutdown_reason=reason,
        cpu_time_ns=int_field(obj, "cpu_time_ns"),
        start_time=float(start),
        cpupool=str_field(obj, "cpupool"),
        config=config,
        bootloader=bootloader,
    )
