"""Python exceptions as the coded errors Node sees (``code`` like ``net``'s, ``mlt`` the
protocol's numeric code when there is one). The table is in docs/bridge.md."""

from __future__ import annotations

import errno
from typing import Any

from ..aio.errors import (
    ConnectionRefused,
    ConnectionReset,
    ConnectTimeoutError,
    LocalProtocolError,
    MinimaLTError,
    RecordError,
    RemoteProtocolError,
    TunnelClosedError,
)
from ..aio.identity import IdentityError
from ..directory.errors import DirectoryError, NameNotFound
from ..proto import constants as C

#: A Python exception surfaced through the bridge with no better code.
INTERNAL = "EMLTINTERNAL"

#: Exception class -> Node ``code``: the first class ``exc`` is an instance of wins, so the order
#: matters (NameNotFound before DirectoryError, TimeoutError before OSError, OSError before
#: ValueError). Two codes are refined in ``error_code``: EMLTCLOSED and EMLTOS.
_CODES: tuple[tuple[type[BaseException] | tuple[type[BaseException], ...], str], ...] = (
    (ConnectTimeoutError, "ETIMEDOUT"),
    (ConnectionRefused, "ECONNREFUSED"),
    (ConnectionReset, "ECONNRESET"),
    (TunnelClosedError, "EMLTCLOSED"),  # ETIMEDOUT when closed by the idle timeout
    (NameNotFound, "ENOTFOUND"),  # as Node's dns for a name nobody has
    (DirectoryError, "EMLTDIRECTORY"),
    (RecordError, "EMLTRECORD"),
    (IdentityError, "EMLTIDENTITY"),
    (RemoteProtocolError, "EMLTPROTO"),
    (LocalProtocolError, "EMLTLOCAL"),
    (TimeoutError, "ETIMEDOUT"),
    (OSError, "EMLTOS"),  # unless it (or its cause) has an errno, or is a failed resolution
    ((ValueError, TypeError), "ERR_INVALID_ARG_VALUE"),
)


def error_code(exc: BaseException) -> str:
    """The ``code`` Node's ``Error`` gets for ``exc``."""
    code = next((code for cls, code in _CODES if isinstance(exc, cls)), INTERNAL)
    if code == "EMLTCLOSED" and isinstance(exc, TunnelClosedError):
        return "ETIMEDOUT" if exc.code == C.ERR_IDLE_TIMEOUT else code
    if code == "EMLTOS" and isinstance(exc, OSError):
        # uvloop re-raises bind errors without an errno; the original is their cause.
        cause: BaseException | None = exc
        while isinstance(cause, OSError):
            if cause.errno is not None and cause.errno in errno.errorcode:
                return errno.errorcode[cause.errno]
            cause = cause.__cause__
        if str(exc).startswith("cannot resolve"):
            return "ENOTFOUND"  # what Node's dns reports for a name that does not resolve
    return code


def error_fields(exc: BaseException) -> dict[str, Any]:
    """``code``, ``message`` and, when the protocol gave one, ``mlt`` (its numeric code)."""
    fields: dict[str, Any] = {"code": error_code(exc), "message": str(exc) or type(exc).__name__}
    mlt = getattr(exc, "code", None)
    if isinstance(mlt, int) and isinstance(exc, MinimaLTError):
        fields["mlt"] = mlt
    if isinstance(exc, DirectoryError):
        fields["directory"] = exc.code  # the directory's own code: not_found, config, ...
    return fields
