"""xl's per-command option parsing: GNU getopt with permutation, errors as usage errors."""

from __future__ import annotations

import getopt as _getopt
from collections.abc import Sequence

from xenlite.base.errors import XenliteError


class UsageError(XenliteError):
    """A command line that does not fit the verb's usage."""


def parse_options(
    verb: str, args: Sequence[str], short: str, long: Sequence[str] = ()
) -> tuple[list[tuple[str, str]], list[str]]:
    """Split ``args`` into ``(option, value)`` pairs and operands.

    :raise UsageError: for an unknown option or a missing option argument
    """
    try:
        return _getopt.gnu_getopt(list(args), short, list(long))
    except _getopt.GetoptError as exc:
        raise UsageError(f"xl {verb}", exc.msg, f"see 'xl help {verb}'") from exc
