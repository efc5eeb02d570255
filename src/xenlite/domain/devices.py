"""A running domain's devices: listing (and, next, hot-plugging) its disks.

xl.1 "block-list" (and block-attach, block-detach, cd-insert, cd-eject to come). A mixin of
``DomainManager``: the manager brings the registry (``lookup``) and the XenStore client.
"""

from __future__ import annotations

from abc import abstractmethod

from xenlite.domain.disks import VbdRow, vbd_rows
from xenlite.domain.live import Domain
from xenlite.xenstore.client import XenStoreClient


class DomainDevices:
    """Device operations on the manager's domains."""

    xs: XenStoreClient

    @abstractmethod
    def lookup(self, dom: str) -> Domain:
        """The domain named ``dom`` (a name or a domid); the manager provides it."""

    async def block_list(self, dom: str) -> list[VbdRow]:
        """xl block-list: the domain's vbds as its XenStore nodes describe them."""
        domain = self.lookup(dom)
        return await vbd_rows(self.xs, domain.domid)
