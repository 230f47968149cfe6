"""minimalt: MinimaLT, a minimal-latency, always-encrypted transport over UDP.

0-RTT tunnels boxed with NaCl, multiplexed connections with flow control, congestion control and
asyncio-stream semantics. Quick start (see docs/guide.md)::

    import minimalt

    async def echo(conn):
        while data := await conn.read(65536):
            conn.write(data)
            await conn.drain()

    async def main():
        async with minimalt.serve(echo, service="echo") as server:
            async with minimalt.connect(server.record, "echo", retry_safe=True) as conn:
                conn.write(b"hello")
                conn.write_eof()
                print(await conn.read())

    minimalt.run(main())
"""

from .aio import (
    DEFAULT_CONNECT_TIMEOUT,
    Client,
    Connection,
    ConnectionRefused,
    ConnectionReset,
    ConnectTimeoutError,
    DirectoryClient,
    DirectoryServer,
    Identity,
    IdentityError,
    LocalProtocolError,
    MinimaLTError,
    RecordError,
    RemoteProtocolError,
    Server,
    StreamReader,
    StreamWriter,
    TunnelClosedError,
    connect,
    load_record,
    open_connection,
    run,
    serve,
    serve_directory,
)
from .directory import (
    DirectoryConfig,
    DirectoryConfigError,
    DirectoryError,
    DirectoryUnavailable,
    NameNotFound,
    RegistrationRefused,
)
from .proto.config import EndpointConfig
from .proto.records import ServerRecord

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_CONNECT_TIMEOUT",
    "Client",
    "ConnectTimeoutError",
    "Connection",
    "ConnectionRefused",
    "ConnectionReset",
    "DirectoryClient",
    "DirectoryConfig",
    "DirectoryConfigError",
    "DirectoryError",
    "DirectoryServer",
    "DirectoryUnavailable",
    "EndpointConfig",
    "Identity",
    "IdentityError",
    "LocalProtocolError",
    "MinimaLTError",
    "NameNotFound",
    "RecordError",
    "RegistrationRefused",
    "RemoteProtocolError",
    "Server",
    "ServerRecord",
    "StreamReader",
    "StreamWriter",
    "TunnelClosedError",
    "__version__",
    "connect",
    "load_record",
    "open_connection",
    "run",
    "serve",
    "serve_directory",
]
