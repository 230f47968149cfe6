"""The asyncio runtime of minimalt: a UDP endpoint driving the sans-IO core, and the public API.

Runs on uvloop (``minimalt.run``) or on the stdlib loop. See ``docs/guide.md``.
"""

from .client import (
    DEFAULT_CONNECT_TIMEOUT,
    Client,
    connect,
    default_client,
    load_record,
    open_connection,
)
from .connection import Connection, StreamReader, StreamWriter
from .directory import DirectoryClient, DirectoryServer, serve_directory
from .driver import EndpointDriver
from .errors import (
    ConnectionRefused,
    ConnectionReset,
    ConnectTimeoutError,
    LocalProtocolError,
    MinimaLTError,
    RecordError,
    RemoteProtocolError,
    TunnelClosedError,
)
from .identity import Identity, IdentityError
from .runner import loop_factory, run
from .server import Server, serve

__all__ = [
    "DEFAULT_CONNECT_TIMEOUT",
    "Client",
    "ConnectTimeoutError",
    "Connection",
    "ConnectionRefused",
    "ConnectionReset",
    "DirectoryClient",
    "DirectoryServer",
    "EndpointDriver",
    "Identity",
    "IdentityError",
    "LocalProtocolError",
    "MinimaLTError",
    "RecordError",
    "RemoteProtocolError",
    "Server",
    "StreamReader",
    "StreamWriter",
    "TunnelClosedError",
    "connect",
    "default_client",
    "load_record",
    "loop_factory",
    "open_connection",
    "run",
    "serve",
    "serve_directory",
]
