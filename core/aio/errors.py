"""The exceptions the asyncio API raises: the core's, plus the two only a runtime can see."""

from __future__ import annotations

from ..proto.errors import (
    ConnectionRefused,
    LocalProtocolError,
    MinimaLTError,
    RemoteProtocolError,
    TunnelClosedError,
)
from ..proto.records import RecordError

__all__ = [
    "ConnectTimeoutError",
    "ConnectionRefused",
    "ConnectionReset",
    "LocalProtocolError",
    "MinimaLTError",
    "RecordError",
    "RemoteProtocolError",
    "TunnelClosedError",
]


class ConnectTimeoutError(MinimaLTError, TimeoutError):
    """The server did not answer a new tunnel's first flight within the connect timeout.

    Also a ``TimeoutError``, so ``except TimeoutError`` catches it as it does for asyncio."""


class ConnectionReset(MinimaLTError, ConnectionResetError):
    """The peer aborted the connection (or it was aborted locally); unread data is lost.

    Also a ``ConnectionResetError``, as for a TCP reset."""

    def __init__(self, message: str, code: int = 0) -> None:
        super().__init__(message)
        self.code = code
