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


def error_code(exc: BaseException) -> str:
    """The ``code`` Node's ``Error`` gets for ``exc``."""
    if isinstance(exc, ConnectTimeoutError):
        return "ETIMEDOUT"
    if isinstance(exc, ConnectionRefused):
        return "ECONNREFUSED"
    if isinstance(exc, ConnectionReset):
        return "ECONNRESET"
    if isinstance(exc, TunnelClosedError):
        return "ETIMEDOUT" if exc.code == C.ERR_IDLE_TIMEOUT else "EMLTCLOSED"
    if isinstance(exc, NameNotFound):
        return "ENOTFOUND"  # as Node's dns for a name nobody has
    if isinstance(exc, DirectoryError):
        return "EMLTDIRECTORY"
    if isinstance(exc, RecordError):
        return "EMLTRECORD"
    if isinstance(exc, IdentityError):
        return "EMLTIDENTITY"
    if isinstance(exc, RemoteProtocolError):
        return "EMLTPROTO"
    if isinstance(exc, LocalProtocolError):
        return "EMLTLOCAL"
    if isinstance(exc, TimeoutError):
        return "ETIMEDOUT"
    if isinstance(exc, OSError):
        # uvloop re-raises bind errors without an errno; the original is their cause.
        cause: BaseException | None = exc
        while isinstance(cause, OSError):
            if cause.errno is not None and cause.errno in errno.errorcode:
                return errno.errorcode[cause.errno]
            cause = cause.__cause__
        if str(exc).startswith("cannot resolve"):
            return "ENOTFOUND"  # what Node's dns reports for a name that does not resolve
        return "EMLTOS"
    if isinstance(exc, (ValueError, TypeError)):
        return "ERR_INVALID_ARG_VALUE"
    return INTERNAL


def error_fields(exc: BaseException) -> dict[str, Any]:
    """``code``, ``message`` and, when the protocol gave one, ``mlt`` (its numeric code)."""
    fields: dict[str, Any] = {"code": error_code(exc), "message": str(exc) or type(exc).__name__}
    mlt = getattr(exc, "code", None)
    if isinstance(mlt, int) and isinstance(exc, MinimaLTError):
        fields["mlt"] = mlt
    if isinstance(exc, DirectoryError):
        fields["directory"] = exc.code  # the directory's own code: not_found, config, ...
    return fields
