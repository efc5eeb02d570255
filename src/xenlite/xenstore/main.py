"""``xenlite xenstored``: options, daemonising, logging, signals and the persistence timer.

Implements xenstored(8) as C xenstored 4.17 takes it (``-F --pid-file``, ``-N --no-fork``,
``-E -S -W -t -A -M -Q -K -p -T``), plus xenlite's ``--socket``, ``--persist``,
``--log-file``, ``--domain-socket`` and ``--equota``.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import logging
import os
import signal
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from xenlite.base.daemonise import daemonise
from xenlite.base.errors import XenliteError, XenStoreError
from xenlite.base.files import write_atomic
from xenlite.base.paths import under_root
from xenlite.xenstore.location import DEFAULT_SOCKET, default_socket
from xenlite.xenstore.ops import XenStore
from xenlite.xenstore.persist import Persistence
from xenlite.xenstore.quota import Quotas, set_quota
from xenlite.xenstore.server import Server

log = logging.getLogger("xenlite.xenstore")

DEFAULT_LOG = "/var/log/xen/xenstored.log"
SYNC_INTERVAL = 1.0  # seconds between journal fdatasyncs (see persist.py)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise XenliteError("xenstored", message, fix="see 'xenlite xenstored --help'")


def _uint(text: str) -> int:
    if not text.isdigit() or int(text) > 0x7FFFFFFF:
        raise argparse.ArgumentTypeError(f'invalid parameter value "{text}"')
    return int(text)


def _domain_socket(text: str) -> tuple[int, str]:
    domid, sep, path = text.partition(":")
    if not sep or not domid.isdigit() or not path:
        raise argparse.ArgumentTypeError(f"'{text}' is not DOMID:PATH")
    return int(domid), path


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="xenlite xenstored", add_help=False, description="The XenStore daemon.")
    a = p.add_argument
    a("-H", "-h", "--help", action="store_true", help="show this message")
    a("--socket", metavar="PATH", help=f"dom0 socket (default {DEFAULT_SOCKET} under the root)")
    a("-N", "--no-fork", action="store_true", help="stay in the foreground")
    a("-F", "--pid-file", metavar="FILE", help="write the daemon's pid here")
    a("--persist", metavar="FILE", help="keep the store in FILE (snapshot + journal)")
    a("--log-file", metavar="FILE", help=f"log here (default: stderr with -N, else {DEFAULT_LOG})")
    a("-T", "--trace-file", metavar="FILE", help="log every request at debug level to FILE")
    a("--domain-socket", metavar="DOMID:PATH", type=_domain_socket, action="append", default=[],
      help="also listen on PATH for clients acting as domain DOMID")  # fmt: skip
    a("-E", "--entry-nb", type=_uint, metavar="NB", help="nodes per domain (1000)")
    a("-S", "--entry-size", type=_uint, metavar="SIZE", help="bytes per node (2048)")
    a("-W", "--watch-nb", type=_uint, metavar="NB", help="watches per domain (128)")
    a("-t", "--transaction", type=_uint, metavar="NB", help="transactions per domain (10)")
    a("-A", "--perm-nb", type=_uint, metavar="NB", help="permissions per node (5)")
    a("-M", "--path-max", type=_uint, metavar="CHARS", help="path length (2048)")
    a("-Q", "--quota", action="append", default=[], metavar="WHAT=NB",
      help="nodes, node-size, watches, transactions, node-permissions, path-length, "
           "transaction-nodes, outstanding, memory")  # fmt: skip
    a("-q", "--quota-soft", action="append", default=[], metavar="WHAT=NB",
      help="accepted for compatibility and logged as not implemented")  # fmt: skip
    a("-K", "--keep-orphans", action="store_true", help="keep a released domain's nodes")
    a("-p", "--priv-domid", type=_uint, default=0, metavar="DOMID", help="privileged domain")
    a("--equota", action="store_true", help="answer quota errors with EQUOTA (oxenstored)")
    return p


def quotas_from(opts: argparse.Namespace) -> Quotas:
    q = Quotas(equota=opts.equota)
    pairs = {
        "nodes": opts.entry_nb,
        "node_size": opts.entry_size,
        "watches": opts.watch_nb,
        "transactions": opts.transaction,
        "node_permissions": opts.perm_nb,
        "path_length": opts.path_max,
    }
    for name, value in pairs.items():
        if value is not None:
            changes: dict[str, Any] = {name: value}
            q = replace(q, **changes)
    if opts.path_max is not None:
        q = replace(q, path_length=min(opts.path_max, 2048))
    for spec in opts.quota:
        try:
            q = set_quota(q, spec)
        except XenStoreError as err:
            raise XenliteError("xenstored -Q", f'unknown quota "{spec}"', err.fix) from err
    return q


def run(argv: list[str]) -> int:
    """Run the daemon; returns the exit status.

    :raise XenliteError: for bad options, a socket in use or an unreadable --persist file.
    """
    parser = build_parser()
    opts = parser.parse_args(argv)
    if opts.help:
        sys.stdout.write(parser.format_help())
        return 0
    quotas = quotas_from(opts)
    socket_path = opts.socket or os.fspath(default_socket())
    persistence = Persistence(opts.persist) if opts.persist else None
    tree, domains = persistence.load() if persistence else (None, None)
    if opts.no_fork:
        _setup_logging(opts.log_file, opts.trace_file, foreground=True)
        return _serve(opts, quotas, socket_path, persistence, tree, domains, None)
    return daemonise(
        "xenstored",
        lambda ready: _serve(opts, quotas, socket_path, persistence, tree, domains, ready),
        setup_logging=lambda: _setup_logging(opts.log_file, opts.trace_file, foreground=False),
        logger=log,
    )


def _setup_logging(log_file: str | None, trace_file: str | None, foreground: bool) -> None:
    handler: logging.Handler
    if log_file is None and foreground:
        handler = logging.StreamHandler(sys.stderr)
    else:
        path = log_file or os.fspath(under_root(DEFAULT_LOG))
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s xenstored[%(process)d]: %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    if trace_file is not None:
        trace = logging.FileHandler(trace_file)
        trace.setLevel(logging.DEBUG)
        log.addHandler(trace)
        log.setLevel(logging.DEBUG)


def _serve(
    opts: argparse.Namespace,
    quotas: Quotas,
    socket_path: str,
    persistence: Persistence | None,
    tree: object,
    domains: object,
    ready: Callable[[], None] | None,
) -> int:
    store = XenStore(
        quotas,
        tree=tree,  # type: ignore[arg-type]
        domains=domains,  # type: ignore[arg-type]
        journal=persistence.append if persistence else None,
        keep_orphans=opts.keep_orphans,
        priv_domid=opts.priv_domid,
    )
    if persistence is not None:
        persistence.compact(store.tree, store.domains)
        p = persistence
        store.on_domains_changed = lambda: p.append_domains(store.domains)
    # Nodes never form reference cycles; a full collection over 100k of them every few
    # thousand allocations would only cost time.
    gc.collect()
    gc.freeze()
    gc.set_threshold(100_000, 50, 1000)
    server = Server(store, before_reply=persistence.flush if persistence else None)
    return _run(server, opts, socket_path, persistence, ready)


def _run(
    server: Server,
    opts: argparse.Namespace,
    socket_path: str,
    persistence: Persistence | None,
    ready: Callable[[], None] | None,
) -> int:
    loop = server.loop
    # SIGTERM/SIGINT: the handler asks the loop to stop; the wakeup pipe makes epoll return
    # so that the request is seen at once (PEP 475 would otherwise retry the wait).
    wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
    loop.add_reader(wake_r, lambda: _drain(wake_r))
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda _signo, _frame: loop.stop())
    server.listen(socket_path)
    for domid, path in opts.domain_socket:
        server.add_domain_socket(domid, path)
    if opts.pid_file:
        write_atomic(Path(opts.pid_file), f"{os.getpid()}\n".encode(), 0o644)
    for spec in opts.quota_soft:
        log.warning("soft quota %s not implemented (C xenstored only logs it): ignored", spec)
    log.info("xenstored ready on %s (pid %d)", socket_path, os.getpid())
    if ready is not None:
        ready()
    if persistence is not None:
        loop.every(SYNC_INTERVAL, lambda: _sync(server, persistence))
    try:
        loop.run()
    finally:
        log.info("xenstored shutting down")
        server.close()
        loop.close()
        signal.set_wakeup_fd(-1)
        os.close(wake_r)
        os.close(wake_w)
        if persistence is not None:
            persistence.close()
        if opts.pid_file:
            with contextlib.suppress(OSError):
                os.unlink(opts.pid_file)
    return 0


def _drain(fd: int) -> None:
    with contextlib.suppress(BlockingIOError):
        while os.read(fd, 512):
            pass


def _sync(server: Server, persistence: Persistence) -> None:
    persistence.flush()
    persistence.sync()
    if persistence.needs_compaction():
        persistence.compact(server.store.tree, server.store.domains)
