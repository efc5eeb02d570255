"""Quotas: C xenstored 4.17's limits, their defaults and their command-line names.

Implements xenstored's ``-E -S -W -t -A -M -Q what=nb`` options. As in C xenstored the limits
bind unprivileged domains only; dom0 is never refused. A request over a limit gets ENOSPC
(E2BIG for too many watches, as watch.c answers), or oxenstored's EQUOTA when ``--equota``
asks for it.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

from xenlite.base.errors import XenStoreError
from xenlite.xenstore.path import REL_PATH_MAX
from xenlite.xenstore.tree import Limits


@dataclass(frozen=True, slots=True)
class Quotas:
    """Every limit; 0 means unlimited, as for C xenstored's memory quota."""

    nodes: int = 1000  # -E --entry-nb, -Q nodes=: nodes owned per domain
    node_size: int = 2048  # -S --entry-size, -Q node-size=: bytes per node
    watches: int = 128  # -W --watch-nb, -Q watches=: watches per domain
    transactions: int = 10  # -t --transaction, -Q transactions=: open transactions
    node_permissions: int = 5  # -A --perm-nb, -Q node-permissions=: entries per node
    path_length: int = REL_PATH_MAX  # -M --path-max, -Q path-length=: chars after domain path
    transaction_nodes: int = 1024  # -Q transaction-nodes=: nodes touched per transaction
    outstanding: int = 20  # -Q outstanding=: requests whose replies are not yet sent
    memory: int = 2 * 1024 * 1024 + 512 * 1024  # -Q memory=: bytes queued per connection
    equota: bool = False  # answer quota failures with oxenstored's EQUOTA instead of ENOSPC

    def limits(self) -> Limits:
        return Limits(self.nodes or None, self.node_size or None)

    def error(self, default: str = "ENOSPC") -> str:
        """The error name a quota failure is answered with."""
        return "EQUOTA" if self.equota else default

    def describe(self) -> str:
        """One ``name: value`` line per limit, as CONTROL quota prints them."""
        return "".join(
            f"{QUOTA_NAMES_BY_FIELD[f.name]}: {getattr(self, f.name)}\n"
            for f in fields(self)
            if f.name in QUOTA_NAMES_BY_FIELD
        )


# -Q <what>=<nb> names of C xenstored (core.c ``hard_quotas``) -> field.
QUOTA_FIELDS = {
    "nodes": "nodes",
    "node-size": "node_size",
    "watches": "watches",
    "transactions": "transactions",
    "node-permissions": "node_permissions",
    "permissions": "node_permissions",
    "path-length": "path_length",
    "path-max": "path_length",
    "transaction-nodes": "transaction_nodes",
    "outstanding": "outstanding",
    "memory": "memory",
}
QUOTA_NAMES_BY_FIELD = {
    "nodes": "nodes",
    "node_size": "node-size",
    "watches": "watches",
    "transactions": "transactions",
    "node_permissions": "node-permissions",
    "path_length": "path-length",
    "transaction_nodes": "transaction-nodes",
    "outstanding": "outstanding",
    "memory": "memory",
}


def set_quota(quotas: Quotas, spec: str) -> Quotas:
    """``quotas`` with one ``what=nb`` assignment applied (``-Q``, CONTROL quota).

    :raise XenStoreError: EINVAL for an unknown name or a value that is not a number.
    """
    what, sep, value = spec.partition("=")
    field = QUOTA_FIELDS.get(what)
    if not sep or field is None:
        raise XenStoreError(
            f"quota '{spec}'",
            "EINVAL",
            fix="use <what>=<nb> with <what> one of " + ", ".join(sorted(QUOTA_FIELDS)),
        )
    if not value.isdigit() or int(value) > 0x7FFFFFFF:
        raise XenStoreError(f"quota '{spec}'", "EINVAL", fix="give a non-negative number")
    number = int(value)
    if field == "path_length":
        number = min(number, REL_PATH_MAX)  # as C xenstored clamps -M
    changes: dict[str, Any] = {field: number}
    return replace(quotas, **changes)
