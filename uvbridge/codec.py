"""Frame codec of the bridge pipe: a 4-byte big-endian length, then one msgpack map.

Every frame is a map with a string ``t`` (its type). Frames that carry bytes (``data``,
``dgram``) are ``{t, h, d}`` with ``d`` a msgpack ``bin``; ``encode_data`` builds their header
by hand so the payload is handed to the transport without being copied.
"""

from __future__ import annotations

import struct
from typing import Any

import msgpack

#: Largest msgpack body a frame may have, either direction; a longer one is a protocol error.
MAX_FRAME = 4 << 20

_LENGTH = struct.Struct(">I")
_BIN32 = struct.Struct(">BI")  # 0xc6, length


class FrameError(Exception):
    """The pipe carried something that is not a valid frame: the channel is unusable."""


def _default(value: Any) -> Any:
    # Values msgpack cannot pack (enums, addresses of odd types) travel as their text.
    return str(value)


_packer = msgpack.Packer(use_bin_type=True, default=_default)


def encode(frame: dict[str, Any]) -> bytes:
    """One frame, length prefix included."""
    body = _packer.pack(frame)
    if len(body) > MAX_FRAME:
        raise FrameError(f"frame of {len(body)} bytes exceeds {MAX_FRAME}")
    return _LENGTH.pack(len(body)) + body


_KIND_PREFIX: dict[str, bytes] = {}


def encode_data(
    kind: str, handle: int, data: bytes | memoryview
) -> tuple[bytes, bytes | memoryview]:
    """``{t: kind, h: handle, d: data}`` as (header with length prefix, payload): two buffers
    to write one after the other."""
    prefix = _KIND_PREFIX.get(kind)
    if prefix is None:
        # fixmap of 3 entries: "t" kind, "h" ...
        prefix = _KIND_PREFIX[kind] = b"\x83" + _packer.pack("t") + _packer.pack(kind) + b"\xa1h"
    head = prefix + _packer.pack(handle) + b"\xa1d" + _BIN32.pack(0xC6, len(data))
    return _LENGTH.pack(len(head) + len(data)) + head, data


class FrameDecoder:
    """Turns the bytes read from the pipe into frames (dicts), whatever their chunking."""

    __slots__ = ("_buf", "_max")

    def __init__(self, max_frame: int = MAX_FRAME) -> None:
        self._buf = bytearray()
        self._max = max_frame

    def feed(self, data: bytes) -> list[dict[str, Any]]:
        """The frames completed by ``data``. ``FrameError`` if a frame is too long, is not
        msgpack, or is not a map with a string ``t``."""
        buf = self._buf
        buf += data
        frames: list[dict[str, Any]] = []
        pos = 0
        end_of_data = len(buf)
        with memoryview(buf) as view:
            while end_of_data - pos >= 4:
                (size,) = _LENGTH.unpack_from(buf, pos)
                if size > self._max:
                    raise FrameError(f"frame of {size} bytes exceeds {self._max}")
                end = pos + 4 + size
                if end > end_of_data:
                    break
                try:
                    frame = msgpack.unpackb(view[pos + 4 : end], raw=False)
                except Exception as exc:  # msgpack raises several types for malformed input
                    raise FrameError(f"frame is not msgpack: {exc}") from None
                if not isinstance(frame, dict) or not isinstance(frame.get("t"), str):
                    raise FrameError("frame is not a map with a string 't'")
                frames.append(frame)
                pos = end
        if pos:
            del buf[:pos]
        return frames

    @property
    def buffered(self) -> int:
        """Bytes of an incomplete frame held back."""
        return len(self._buf)
