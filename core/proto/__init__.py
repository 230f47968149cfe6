"""minimalt.proto: the sans-IO protocol core (no sockets, no clocks, no event loop)."""

from __future__ import annotations


def compiled() -> bool:
    """Whether this process runs the mypyc-compiled core (``python -m minimalt.compile``)."""
    from . import tunnel

    return not tunnel.__file__.endswith(".py")
