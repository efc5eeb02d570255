"""``xenlite xenlited``: the toolstack daemon's options, daemonising, logging and event loop.

Not a Xen man page: xenlited plays libxl's and xl's background parts (the domain builder, the
``xl create`` monitor that applies on_* actions, xenconsoled's logging). It detaches and
writes a pid file unless ``--no-fork``; the parent returns once the RPC socket serves, so
``xenlite start && xl list`` needs no sleep. SIGTERM or SIGINT stop it; guests keep running.
Start-up: host facts and the accelerator probe, the boot banner in the hypervisor log, the
XenStore connection, dom0's nodes, the rebuild of every domain from its record, then the
RPC socket.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import platform
import signal
import sys
from collections.abc import Callable
from pathlib import Path

from xenlite.base.daemonise import daemonise
from xenlite.base.errors import ConfigError, XenliteError
from xenlite.base.files import write_atomic
from xenlite.base.paths import host_root, under_root
from xenlite.config.hostconf.bootopts import (
    XenBootOptions,
    dom0_pinned_cpus,
    parse_xen_cmdline,
    read_grub_default,
    resolve_dom0_mem,
    resolve_dom0_vcpus,
)
from xenlite.config.hostconf.xend import DEFAULT_XEND_CONFIG_PATH, XendConfig, load_xend_config
from xenlite.config.hostconf.xlconf import (
    Autoballoon,
    XlConf,
    load_xlconf_with_warnings,
    resolve_autoballoon,
)
from xenlite.config.settings import boot_reports, xlconf_reports
from xenlite.daemon.dmesg import BootFacts, HypervisorLog, boot_banner
from xenlite.daemon.ops import HostFacts, Operations, xen_version
from xenlite.daemon.rpc_server import build_server
from xenlite.daemon.services import (
    XENLITED_LOG,
    write_dom0_nodes,
)
from xenlite.daemon.xenstore_link import XenStoreLink
from xenlite.domain.live import EngineHost
from xenlite.domain.manager import DomainManager
from xenlite.host import facts as host_info
from xenlite.host.cgroups import CgroupHost, detect_layout, parent_for_root
from xenlite.host.memory import DOM0_FLOOR_KIB, HostMemory
from xenlite.qemu.accel import probe_accel
from xenlite.rpc.protocol import socket_path
from xenlite.xenstore.client import XenStoreClient
from xenlite.xenstore.location import socket_candidates

log = logging.getLogger("xenlite")

GRUB_DEFAULT = "/etc/default/grub"
CGROUP_PROBE_DOMID = 0x7FEF  # the last domid before DOMID_FIRST_RESERVED: never a domain's
XENSTORE_WAIT = 15.0


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise XenliteError("xenlited", message, "see 'xenlite xenlited --help'")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="xenlite xenlited", description="The xenlite toolstack daemon.")
    p.add_argument("--no-fork", action="store_true", help="stay in the foreground")
    p.add_argument("--pid-file", metavar="FILE", help="write the daemon's pid here")
    p.add_argument("--log-file", metavar="FILE", help="log here (default: stderr with --no-fork)")
    p.add_argument("--socket", metavar="PATH", help="RPC socket (default under the host root)")
    p.add_argument("-v", "--verbose", action="store_true", help="log at debug level")
    return p


def main_xenlited(opts: object, args: list[str]) -> int:
    """``xenlite xenlited [--no-fork] [--pid-file FILE] [--log-file FILE]``.

    ``opts`` is the CLI's GlobalOptions; it is not named here because the daemon (L4) must not
    import the CLI (L5), not even for typing.
    """
    return run(args)


def run(argv: list[str]) -> int:
    """Run xenlited; returns its exit status.

    :raise XenliteError: for bad options, or (in the foreground) when it cannot start
    """
    opts = build_parser().parse_args(argv)
    if opts.no_fork:
        _setup_logging(opts.log_file, opts.verbose, foreground=True)
        return asyncio.run(_serve(opts, None))
    return daemonise(
        "xenlited",
        lambda ready: asyncio.run(_serve(opts, ready)),
        setup_logging=lambda: _setup_logging(opts.log_file, opts.verbose, foreground=False),
        logger=log,
        fix=f"read its log: {opts.log_file or under_root(XENLITED_LOG)}",
    )


def _setup_logging(log_file: str | None, verbose: bool, *, foreground: bool) -> None:
    handler: logging.Handler
    if log_file is None and foreground:
        handler = logging.StreamHandler(sys.stderr)
    else:
        path = Path(log_file) if log_file else under_root(XENLITED_LOG)
        path.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s xenlited[%(process)d]: %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.DEBUG if verbose else logging.INFO)
    log.propagate = False


def host_facts(accel: str, scheduler: str, cmdline: str) -> HostFacts:
    nr_cpus = host_info.nr_cpus()
    threads = host_info.threads_per_core()
    return HostFacts(
        nr_cpus=nr_cpus,
        nr_nodes=host_info.nr_nodes(),
        cores_per_socket=nr_cpus // threads,
        threads_per_core=threads,
        cpu_mhz=host_info.cpu_mhz(),
        total_kib=host_info.memory_total_kib(),
        accel=accel,
        scheduler=scheduler,
        cmdline=cmdline,
        boot_time=host_info.boot_time(),
    )


def host_memory_book(
    boot: XenBootOptions,
    conf: XlConf,
    host_kib: int,
    say: Callable[[str], None],
    xend: XendConfig | None = None,
) -> HostMemory:
    """The hypervisor's memory book: total (``mem=`` lowers it), dom0's reservation from
    ``dom0_mem=``, and xl.conf's autoballoon (``auto``: on unless dom0_mem was given).

    A host moved from xend keeps its xend-config.sxp, and the seeds bound ballooning there:
    where it sets ``dom0-min-mem`` or ``enable-dom0-ballooning`` and xl.conf leaves
    autoballoon at ``auto``, xend's rule decides (on when enable-dom0-ballooning says so,
    by default when dom0-min-mem is not 0), and dom0 balloons no lower than dom0-min-mem
    (nor libxl's own floor).
    """
    total = host_kib
    if boot.mem is not None:
        total = min(total, boot.mem // 1024)
    dom0 = resolve_dom0_mem(boot, total)
    autoballoon = resolve_autoballoon(conf, boot.dom0_mem_set)
    floor = DOM0_FLOOR_KIB
    sets = [] if xend is None else [n for n in _XEND_MEMORY_KEYS if xend.find(n) is not None]
    if xend is not None and sets:
        source = xend.path
        if conf.autoballoon is Autoballoon.AUTO:
            autoballoon = xend.enable_dom0_ballooning
            say(f"{source}: {' and '.join(sets)}: autoballoon {'on' if autoballoon else 'off'} "
                "(xend's rule; xl.conf's autoballoon is auto)")  # fmt: skip
        else:
            say(f"{source}: {' and '.join(sets)} give way to xl.conf's autoballoon="
                f"{conf.autoballoon.value}")  # fmt: skip
        if autoballoon and xend.dom0_min_mem * 1024 > floor:
            floor = xend.dom0_min_mem * 1024
            say(f"{source}: dom0-min-mem {xend.dom0_min_mem}: dom0 balloons no lower than "
                f"{xend.dom0_min_mem} MB")  # fmt: skip
    say(f"Dom0 has {dom0 // 1024} MB of {total // 1024} MB; autoballoon "
        f"{'on' if autoballoon else 'off'}")  # fmt: skip
    return HostMemory(total_kib=total, dom0_kib=dom0, autoballoon=autoballoon,
                      dom0_floor_kib=floor)  # fmt: skip


_XEND_MEMORY_KEYS = ("dom0-min-mem", "enable-dom0-ballooning")


def load_host_xend(say: Callable[[str], None]) -> XendConfig | None:
    """The host's /etc/xen/xend-config.sxp, when a host moved from xend kept it; one that
    does not parse is said in ``xl dmesg`` and not used (xl itself never reads it)."""
    path = under_root(DEFAULT_XEND_CONFIG_PATH)
    if not path.is_file():
        return None
    try:
        return load_xend_config(path)
    except ConfigError as exc:
        say(f"{path}: not used: {exc}")
        log.warning("%s: not used: %s", path, exc)
        return None


def host_cgroups(root: Path, say: Callable[[str], None]) -> tuple[CgroupHost | None, str]:
    """Where the domains' cgroups go: under ``xenlite`` for the real host root, under
    ``xenlite-<hash>`` for another root, so hosts side by side on one machine never share a
    ``dom<N>`` group. Without a cpu controller: None and why (weights and caps are refused)."""
    try:
        layout = detect_layout()
    except XenliteError as err:
        say(f"Scheduler: no cgroup cpu controller ({err.cause}); weights and caps are refused")
        return None, err.cause
    parent = parent_for_root(root)
    cgroups = CgroupHost(layout, parent)
    try:  # a mounted controller may still refuse us (read-only in a container): probe it
        cgroups.create_domain(CGROUP_PROBE_DOMID).remove()
    except XenliteError as err:
        say(f"Scheduler: cannot create cgroups ({err.cause}); weights and caps are refused")
        return None, f"cannot create cgroups: {err.cause}"
    say(f"Scheduler: domain weights and caps on cgroup {layout.cpu_version} "
        f"({layout.cpu_mount}/{parent})")  # fmt: skip
    return cgroups, ""


def dom0_placement(
    boot: XenBootOptions, nr_cpus: int, say: Callable[[str], None]
) -> tuple[int, tuple[int, ...]]:
    """dom0_max_vcpus and dom0_vcpus_pin: dom0's vCPU count and the host CPUs it keeps.

    Dom0 is the host's own Linux. With dom0_vcpus_pin its vCPUs are pinned to the first host
    CPUs, as Xen pins vCPU i to pCPU i, and domains without cpus= leave those CPUs to it;
    without it no CPU is kept from domains, and ``xl dmesg`` says how to keep some.
    """
    from xenlite.config.specs.cpus import format_cpumap

    given = boot.dom0_max_vcpus is not None or boot.dom0_vcpus_pin
    if not given:
        return 0, ()
    count = resolve_dom0_vcpus(boot, nr_cpus)
    offered = os.sched_getaffinity(0)
    pinned = dom0_pinned_cpus(boot, sorted(offered))
    if not pinned:
        say(f"Dom0 has {count} vCPUs (dom0_max_vcpus); dom0 is the host's Linux, which runs "
            "on every CPU, and no CPU is kept from domains: add dom0_vcpus_pin to keep "
            f"CPUs for dom0")  # fmt: skip
        return count, ()
    kept = format_cpumap(list(pinned), nr_cpus)
    left = sorted(offered - set(pinned))
    if not left:
        say(f"Dom0 has {count} vCPUs pinned to CPUs {kept} (dom0_vcpus_pin), every host "
            "CPU: domains share them with dom0")  # fmt: skip
        return count, pinned
    say(f"Dom0 has {count} vCPUs pinned to CPUs {kept} (dom0_vcpus_pin); domains without "
        f"cpus= run on CPUs {format_cpumap(left, nr_cpus)} and leave {kept} to dom0 (the "
        "host's own tasks are not confined to them)")  # fmt: skip
    return count, pinned


def _tidy_cgroups(manager: DomainManager) -> None:
    """With no domain left, xenlite's parent cgroup goes too (domains that run on keep it)."""
    cgroups = manager.host.cgroups
    if cgroups is not None and not manager.domains():
        with contextlib.suppress(XenliteError):
            if not cgroups.domain_groups():
                cgroups.remove_all()


def read_cmdline() -> str:
    """The Xen command line of this host: GRUB_CMDLINE_XEN(_DEFAULT) from /etc/default/grub
    under the host root, or empty."""
    path = under_root(GRUB_DEFAULT)
    if not path.is_file():
        return ""
    return read_grub_default(path)


async def _serve(opts: argparse.Namespace, ready: Callable[[], None] | None) -> int:
    root = host_root()
    cmdline = read_cmdline()
    boot = parse_xen_cmdline(cmdline, source=os.fspath(under_root(GRUB_DEFAULT)))
    probe = await asyncio.to_thread(probe_accel)
    facts = host_facts(str(probe.accel), str(boot.sched), cmdline)
    dmesg = HypervisorLog()
    ignored = tuple((row.name, row.explanation) for row in boot_reports(boot.given)) + tuple(
        (name if value is None else f"{name}={value}", "not an option xenlite knows")
        for name, value in boot.unrecognised
    )
    banner = BootFacts(
        version=xen_version(),
        compiler=f"Python {platform.python_version()}",
        cmdline=cmdline,
        total_kib=facts.total_kib,
        nr_cpus=facts.nr_cpus,
        accel=str(probe.accel),
        accel_reason=probe.reason,
        scheduler=str(boot.sched),
        ignored_options=ignored,
    )
    for line in boot_banner(banner):
        dmesg.write(line)
    conf, warnings = load_xlconf_with_warnings()
    for warning in warnings:
        log.warning("%s", warning)
    for row in xlconf_reports(conf):
        dmesg.write(f"xl.conf: {row.name}: no effect on a QEMU host: {row.explanation}")
    xend = load_host_xend(dmesg.write)
    memory = host_memory_book(boot, conf, facts.total_kib, dmesg.write, xend)
    xs = await _connect_xenstore()
    manager: DomainManager | None = None
    link: asyncio.Task[None] | None = None
    try:
        await write_dom0_nodes(xs, memory_kib=memory.dom0_kib, nr_cpus=facts.nr_cpus)
        cgroups, missing = host_cgroups(root, dmesg.write)
        dom0_vcpus, dom0_cpus = dom0_placement(boot, facts.nr_cpus, dmesg.write)
        host = EngineHost(root, probe.accel, facts.nr_cpus, memory, str(boot.sched), cgroups,
                          missing, dom0_cpus=dom0_cpus, dom0_vcpus=dom0_vcpus)  # fmt: skip
        manager = DomainManager(host, xs, hypervisor_log=dmesg.write)
        await manager.rebuild()

        async def xenstore_back() -> None:
            await write_dom0_nodes(xs, memory_kib=memory.dom0_kib, nr_cpus=facts.nr_cpus)
            assert manager is not None
            await manager.xenstore_back()

        xs_link = XenStoreLink(xs, xenstore_back, dmesg.write)
        link = asyncio.get_running_loop().create_task(xs_link.run(), name="xenstore link")
        path = Path(opts.socket) if opts.socket else socket_path()
        server = build_server(path, Operations(manager, dmesg, facts, xs_link))
        await server.start()
        try:
            if opts.pid_file:
                write_atomic(Path(opts.pid_file), f"{os.getpid()}\n".encode(), 0o644)
            log.info("xenlited ready (pid %d, root %s, %s)", os.getpid(), root, probe.reason)
            if ready is not None:
                ready()
            await _wait_for_signal()
        finally:
            log.info("xenlited stopping; domains keep running")
            await server.stop()
            if opts.pid_file:
                with contextlib.suppress(OSError):
                    os.unlink(opts.pid_file)
    finally:
        if manager is not None:
            await manager.close()
            await asyncio.to_thread(_tidy_cgroups, manager)
        await xs.close()
        if link is not None:
            await link
    return 0


async def _connect_xenstore() -> XenStoreClient:
    """Connect to xenstored, waiting a little for one that is still starting."""
    candidates = socket_candidates()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + XENSTORE_WAIT
    while True:
        for candidate in candidates:
            with contextlib.suppress(XenliteError):
                return await XenStoreClient.connect(candidate)
        if loop.time() > deadline:
            # One more try for the error message that names every candidate.
            return await XenStoreClient.connect(None)
        await asyncio.sleep(0.1)


async def _wait_for_signal() -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
