"""Node permissions: an owner plus per-domain n/r/w/b entries, their wire strings and checks.

Implements xenstore.txt "Permissions": the first entry names the owner and the access of every
domain not listed; each later entry grants one domain exactly its letters. The owner, a
privileged connection (dom0) and a domain's device model (SET_TARGET) get full access.
"""

from __future__ import annotations

from functools import lru_cache

from xenlite.xenstore.path import StoreError

PERM_NONE = 0
PERM_READ = 1
PERM_WRITE = 2
PERM_OWNER = 4
PERM_ALL = PERM_READ | PERM_WRITE | PERM_OWNER

DOMID_FIRST_RESERVED = 0x7FF0  # xen.h: domids from here on are special

_LETTER_BITS = {ord("n"): PERM_NONE, ord("r"): PERM_READ, ord("w"): PERM_WRITE, ord("b"): 3}
_BITS_LETTER = {PERM_NONE: b"n", PERM_READ: b"r", PERM_WRITE: b"w", 3: b"b"}


class Perms:
    """An immutable permission list; nodes share these objects, so keep it small."""

    __slots__ = ("entries", "owner", "wire")

    entries: tuple[tuple[int, int], ...]
    owner: int
    wire: bytes

    def __init__(self, entries: tuple[tuple[int, int], ...]) -> None:
        self.entries = entries
        self.owner = entries[0][0]
        self.wire = b"".join(_BITS_LETTER[bits] + b"%d\0" % domid for domid, bits in entries)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Perms) and other.entries == self.entries

    def __hash__(self) -> int:
        return hash(self.entries)

    def __repr__(self) -> str:
        return "Perms(" + " ".join(self.strings()) + ")"

    def strings(self) -> list[str]:
        """The entries as xenstore-chmod writes them, e.g. ``["n0", "r5"]``."""
        return [_BITS_LETTER[bits].decode() + str(domid) for domid, bits in self.entries]

    def for_domain(self, domid: int, target: int | None = None) -> int:
        """What an unprivileged ``domid`` (acting for ``target``, if set) may do: PERM_* bits.

        Mirrors C xenstored's ``perm_for_conn``: the owner gets everything, else the first
        matching entry, else the default in the owner's entry.
        """
        entries = self.entries
        owner = entries[0][0]
        if owner == domid or (target is not None and owner == target):
            return PERM_ALL
        for other, bits in entries[1:]:
            if other == domid or (target is not None and other == target):
                return bits
        return entries[0][1]


ROOT_PERMS = Perms(((0, PERM_NONE),))


def parse_perms(fields: list[bytes]) -> Perms:
    """Perms from their wire strings (``b"n0"``, ``b"r5"``, ...).

    The domid is read as C's ``strtol(s, &end, 0)`` reads it (sign, 0x and 0 prefixes), and
    stored as the unsigned 32-bit value C xenstored keeps: ``r-1`` names domain 4294967295,
    which does not exist (see ``domid_exists``).

    :raise StoreError: EINVAL when a string is not a letter n/r/w/b followed by a number.
    """
    if not fields:
        raise StoreError("EINVAL", "XenStore permissions (none given)")
    entries: list[tuple[int, int]] = []
    for field in fields:
        bits = _LETTER_BITS.get(field[0]) if field else None
        domid = _strtol(field[1:])
        if bits is None or domid is None:
            raise StoreError("EINVAL", f"XenStore permission {field!r} (want n/r/w/b + domid)")
        entries.append((domid & 0xFFFFFFFF, bits))
    return intern_perms(tuple(entries))


def domid_exists(domid: int) -> bool:
    """Whether a permission's domid can name a domain (the rest are ignored, as in C)."""
    return 0 <= domid < DOMID_FIRST_RESERVED


def _strtol(text: bytes) -> int | None:
    """C ``strtol(text, &end, 0)`` that must consume all of ``text``; None otherwise."""
    s = text.decode("ascii", errors="replace")
    body = s.lstrip("+-")
    if not body or len(s) - len(body) > 1 or len(body) > 24:
        return None
    try:
        if body[:2].lower() == "0x":
            value = int(body[2:], 16)
        elif body[0] == "0" and len(body) > 1:
            value = int(body[1:], 8)
        else:
            value = int(body, 10) if body.isdigit() else int("x")
    except ValueError:
        return None
    return -value if s[0] == "-" else value


@lru_cache(maxsize=4096)
def intern_perms(entries: tuple[tuple[int, int], ...]) -> Perms:
    """One shared Perms object per distinct list (saves memory across many nodes)."""
    return Perms(entries)


@lru_cache(maxsize=4096)
def with_owner(perms: Perms, owner: int) -> Perms:
    """``perms`` with the owner replaced (unprivileged domains own what they create)."""
    if perms.owner == owner:
        return perms
    return intern_perms(((owner, perms.entries[0][1]), *perms.entries[1:]))
