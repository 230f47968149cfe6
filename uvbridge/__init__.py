"""minimalt.uvbridge: the host process Node's ``require('minimalt')`` spawns.

``python -m minimalt.uvbridge --fd 3`` speaks length-prefixed msgpack frames on file descriptor 3
(a Unix stream socket the parent passes) and maps them onto the asyncio API of ``minimalt``:
servers, client connections with per-stream credit in both directions, and each connection's
unreliable datagram channel. It exits when the pipe closes. The protocol is ``docs/bridge.md``.
"""

from .codec import MAX_FRAME, FrameDecoder, FrameError, encode, encode_data
from .host import PROTOCOL_VERSION, BridgeHost, serve_fd

__all__ = [
    "MAX_FRAME",
    "PROTOCOL_VERSION",
    "BridgeHost",
    "FrameDecoder",
    "FrameError",
    "encode",
    "encode_data",
    "serve_fd",
]
