"""Introduced domains: INTRODUCE/RELEASE/RESUME/SET_TARGET bookkeeping and the special nodes.

Implements xenstore.txt "INTRODUCE", "RELEASE", "IS_DOMAIN_INTRODUCED", "RESUME", "SET_TARGET"
and the ``@introduceDomain``/``@releaseDomain`` watch paths. Without a hypervisor there is no
ring page or event channel to map: the mfn and port are recorded and checked as C xenstored
checks them, and a domain talks to the daemon through a socket bound to its domid instead.
"""

from __future__ import annotations

from dataclasses import dataclass

from xenlite.xenstore.path import StoreError
from xenlite.xenstore.perms import DOMID_FIRST_RESERVED, ROOT_PERMS, Perms

INTRODUCE_DOMAIN = b"@introduceDomain"
RELEASE_DOMAIN = b"@releaseDomain"
SPECIAL_PATHS = (INTRODUCE_DOMAIN, RELEASE_DOMAIN)


@dataclass(slots=True)
class Domain:
    """One introduced domain."""

    domid: int
    mfn: int
    port: int
    target: int | None = None
    shutdown: bool = False


def parse_domid(raw: bytes, *, allow_zero: bool = True) -> int:
    """A domid as C xenstored reads it with ``atoi`` (digits only here, no sign or spaces).

    :raise StoreError: EINVAL for a non-number, a reserved domid or 0 where it is refused.
    """
    if not raw.isdigit() or len(raw) > 10:
        raise StoreError("EINVAL", f"domid {raw[:16]!r} (not a number)")
    domid = int(raw)
    if domid >= DOMID_FIRST_RESERVED or (domid == 0 and not allow_zero):
        raise StoreError("EINVAL", f"domid {domid} (reserved or not allowed here)")
    return domid


class Domains:
    """The registry of introduced domains; dom0 is introduced from the start."""

    __slots__ = ("by_id", "special_perms")

    def __init__(self) -> None:
        self.by_id: dict[int, Domain] = {0: Domain(0, 0, 0)}
        self.special_perms: dict[bytes, Perms] = dict.fromkeys(SPECIAL_PATHS, ROOT_PERMS)

    def introduce(self, domid: int, mfn: int, port: int) -> bool:
        """Record a domain; returns True when it is new (so @introduceDomain fires).

        :raise StoreError: EINVAL for a bad port, or an already introduced domain whose ring
            (mfn) differs, as C xenstored's ``do_introduce``.
        """
        if port <= 0:
            raise StoreError("EINVAL", f"domain {domid} event channel port {port}")
        dom = self.by_id.get(domid)
        if dom is None:
            self.by_id[domid] = Domain(domid, mfn, port)
            return True
        if domid != 0 and dom.mfn != mfn:
            raise StoreError("EINVAL", f"domain {domid} (already introduced with another ring)")
        dom.port = port
        return False

    def get(self, domid: int) -> Domain:
        """:raise StoreError: ENOENT when ``domid`` is not introduced."""
        dom = self.by_id.get(domid)
        if dom is None:
            raise StoreError("ENOENT", f"domain {domid} (not introduced)")
        return dom

    def release(self, domid: int) -> Domain:
        """Forget a domain; domains targeting it lose their target.

        :raise StoreError: ENOENT when it is not introduced.
        """
        dom = self.get(domid)
        del self.by_id[domid]
        for other in self.by_id.values():
            if other.target == domid:
                other.target = None
        return dom

    def is_introduced(self, domid: int) -> bool:
        return domid in self.by_id

    def target_of(self, domid: int) -> int | None:
        dom = self.by_id.get(domid)
        return dom.target if dom is not None else None
