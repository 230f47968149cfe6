"""mypyc's class options (``python -m minimalt.compile``); no-ops where mypy_extensions is not
installed, as in a plain install, which runs every module as Python anyway."""

from __future__ import annotations

try:
    from mypy_extensions import mypyc_attr
except ImportError:  # pragma: no cover - only without mypy installed

    def mypyc_attr(*attrs: str, **kwattrs: object) -> object:  # type: ignore[misc]
        return lambda cls: cls


__all__ = ["mypyc_attr"]
