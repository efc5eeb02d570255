"""L1: XenStore, the wire protocol and the daemon (xenstore.txt, xs_wire.h).

- ``wire``         Op, error names, header, incremental Decoder (pure)
- ``path``         path syntax, limits, relative paths, watch path matching
- ``perms``        node permissions (owner + n/r/w/b per domain), their wire text
- ``tree``         the persistent (immutable) node tree, O(1) snapshots
- ``quota``        xenstored's limits and their command-line names
- ``transaction``  snapshot isolation, conflict detection by node identity
- ``watch``        watch registrations and event matching
- ``domains``      introduced domains, domain paths, release bookkeeping
- ``ops``          request dispatch; the only exception -> error-name mapping
- ``persist``      snapshot + append-only journal for ``--persist``
- ``server``       the epoll unix-socket server (no asyncio), per-connection bounded queues
- ``main``         ``xenlite xenstored`` option parsing, logging, signals (daemonising is
                   ``base.daemonise``)
- ``location``     where the dom0 socket is, for the daemon and every client
- ``client``       the async client and its sync wrapper
"""
