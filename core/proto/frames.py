"""Frames: the RPCs inside a packet's box, their QUIC-style varint codec and strict parser.

A decrypted payload is a sequence of frames. Every frame starts with a one-byte type; integers
are QUIC variable-length integers (RFC 9000 §16); byte strings are a varint length then bytes.
``decode_frames`` checks every length before use and raises ``FrameEncodingError`` on anything
malformed; the tunnel turns that into a drop, never an exception out of the endpoint.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import constants as C
from .errors import FrameEncodingError

MAX_VARINT = (1 << 62) - 1
_CREATE_AUTH = 0x2  # Create flag: a user key and signature follow the service name
_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")


# --- varints -----------------------------------------------------------------------------------


def encode_varint(value: int) -> bytes:
    """QUIC variable-length integer: 1, 2, 4 or 8 bytes, the top two bits give the length."""
    if value < 0x40:
        return bytes((value,))
    if value < 0x4000:
        return _U16.pack(value | 0x4000)
    if value < 0x40000000:
        return _U32.pack(value | 0x80000000)
    if value <= MAX_VARINT:
        return _U64.pack(value | 0xC000000000000000)
    raise ValueError(f"varint out of range: {value}")


def varint_size(value: int) -> int:
    if value < 0x40:
        return 1
    if value < 0x4000:
        return 2
    if value < 0x40000000:
        return 4
    return 8


def read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    """(value, next position). Raises IndexError or struct.error when truncated."""
    first = buf[pos]
    kind = first >> 6
    if kind == 0:
        return first, pos + 1
    if kind == 1:
        return ((first & 0x3F) << 8) | buf[pos + 1], pos + 2
    if kind == 2:
        return _U32.unpack_from(buf, pos)[0] & 0x3FFFFFFF, pos + 4
    return _U64.unpack_from(buf, pos)[0] & 0x3FFFFFFFFFFFFFFF, pos + 8


def _read_bytes(buf: bytes, pos: int, limit: int) -> tuple[bytes, int]:
    length, pos = read_varint(buf, pos)
    if length > limit:
        raise FrameEncodingError(f"string of {length} bytes exceeds the limit of {limit}")
    end = pos + length
    if end > len(buf):
        raise FrameEncodingError("string runs past the end of the payload")
    return buf[pos:end], end


def _encode_bytes(data: bytes) -> bytes:
    return encode_varint(len(data)) + data


def zigzag(value: int) -> int:
    """Signed -> unsigned (0, -1, 1, -2, ... -> 0, 1, 2, 3, ...) for a varint."""
    return (value << 1) if value >= 0 else ((-value << 1) - 1)


def unzigzag(value: int) -> int:
    return (value >> 1) if not value & 1 else -((value + 1) >> 1)


# --- frames ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Padding:
    """Zero bytes filling a packet (first packets are padded against amplification)."""

    length: int


@dataclass(frozen=True, slots=True)
class Ping:
    """Elicits an acknowledgement (keep-alive, probes, path checks)."""


@dataclass(frozen=True, slots=True)
class Ack:
    """Selective acknowledgement: ``ranges`` are inclusive (first, last) packet-number ranges,
    highest first, as the receiver builds them. ``delay`` is microseconds the largest
    acknowledged packet waited before this ack was sent."""

    ranges: tuple[tuple[int, int], ...]
    delay: int


@dataclass(frozen=True, slots=True)
class Hello:
    """First-flight frame of a client: protocol version and the client's clock (ms since the
    epoch, already corrected by any skew the server reported before)."""

    version: int
    client_time_ms: int


@dataclass(frozen=True, slots=True)
class HelloAck:
    """Server's answer to Hello: the client's clock skew (server - client, ms) and whether the
    first flight's data was accepted (0-RTT) or must be resent."""

    clock_skew_ms: int
    early_data_accepted: bool


@dataclass(frozen=True, slots=True)
class Create:
    """Open connection ``cid`` to ``service`` (an RPC on connection 0).

    With ``user`` (an Ed25519 public key) and ``signature`` the client authenticates as that
    user (the paper's createAuth): the signature covers this tunnel's binding, the server's
    identity, the connection id and the service (see ``auth_message``)."""

    cid: int
    service: bytes
    retry_safe: bool = False
    user: bytes = b""
    signature: bytes = b""


@dataclass(frozen=True, slots=True)
class Refuse:
    """The receiver will not serve connection ``cid``."""

    cid: int
    code: int
    reason: bytes = b""


@dataclass(frozen=True, slots=True)
class Reset:
    """Abort connection ``cid`` in both directions; ``final_size`` is what the sender wrote."""

    cid: int
    code: int
    final_size: int


@dataclass(frozen=True, slots=True)
class Stream:
    """Bytes ``[offset, offset + len(data))`` of connection ``cid``; ``fin`` ends the stream."""

    cid: int
    offset: int
    data: bytes
    fin: bool = False


@dataclass(frozen=True, slots=True)
class MaxData:
    """Tunnel-wide flow-control window: total stream bytes the sender may send."""

    maximum: int


@dataclass(frozen=True, slots=True)
class MaxConnData:
    """Per-connection flow-control window (the paper's windowSize RPC)."""

    cid: int
    maximum: int


@dataclass(frozen=True, slots=True)
class MaxConns:
    """How many connections in total the peer may open on this tunnel (cumulative)."""

    maximum: int


@dataclass(frozen=True, slots=True)
class Close:
    """Close the whole tunnel."""

    code: int
    reason: bytes = b""


@dataclass(frozen=True, slots=True)
class Datagram:
    """An unreliable message on connection ``cid``: never retransmitted, may be lost."""

    cid: int
    data: bytes


@dataclass(frozen=True, slots=True)
class Blocked:
    """The sender has data but the tunnel-wide window ``limit`` stops it (informative)."""

    limit: int


@dataclass(frozen=True, slots=True)
class PathChallenge:
    """Sent to a peer's new address: only the real peer there can answer it (mobility)."""

    data: bytes


@dataclass(frozen=True, slots=True)
class PathResponse:
    """Echoes a PathChallenge's data; it proves the sender receives at its address."""

    data: bytes


@dataclass(frozen=True, slots=True)
class RekeyNow:
    """Server to client: move the tunnel to its next TID and keys now (the paper's rekeyNow)."""


@dataclass(frozen=True, slots=True)
class NewRecord:
    """Server to client: the server's current signed record (in-band key rotation)."""

    record: bytes


Frame = (
    Padding
    | Ping
    | Ack
    | Hello
    | HelloAck
    | Create
    | Refuse
    | Reset
    | Stream
    | MaxData
    | MaxConnData
    | MaxConns
    | Close
    | Datagram
    | Blocked
    | PathChallenge
    | PathResponse
    | RekeyNow
    | NewRecord
)


def ack_eliciting(frame: Frame) -> bool:
    """Frames other than Ack, Padding and Close make the receiver send an acknowledgement."""
    return not isinstance(frame, (Ack, Padding, Close))


# --- encoding ----------------------------------------------------------------------------------


_STREAM_1 = struct.Struct(">BBBH")  # small cid, offset < 64, 64 <= length < 16384
_STREAM_2 = struct.Struct(">BBHH")  # small cid, offset < 16384
_STREAM_4 = struct.Struct(">BBIH")  # small cid, offset < 2^30


def stream_header(cid: int, offset: int, length: int, fin: bool) -> bytes:
    """The bytes of a Stream frame before its data (used by the sender without a frame object).

    Shortest varints, as ``encode_varint`` would write them; the common shapes of a full packet
    (small connection id, 2-byte length) are packed in one call because this runs per packet."""
    if cid < 64 and 64 <= length < 16384:
        kind = 0x09 if fin else 0x08
        if offset < 64:
            return _STREAM_1.pack(kind, cid, offset, length | 0x4000)
        if offset < 16384:
            return _STREAM_2.pack(kind, cid, offset | 0x4000, length | 0x4000)
        if offset < 0x40000000:
            return _STREAM_4.pack(kind, cid, offset | 0x80000000, length | 0x4000)
    return (
        (b"\x09" if fin else b"\x08")
        + encode_varint(cid)
        + encode_varint(offset)
        + encode_varint(length)
    )


def stream_overhead(cid: int, offset: int, length: int) -> int:
    """The size of ``stream_header(cid, offset, length, ...)``."""
    if cid < 64 and 64 <= length < 16384 and offset < 0x40000000:
        return 4 + (1 if offset < 64 else 2 if offset < 16384 else 4)
    return 1 + varint_size(cid) + varint_size(offset) + varint_size(length)


def encode_max_data(maximum: int) -> bytes:
    """MAX_DATA without a frame object (the tunnel's window updates)."""
    return b"\x0a" + encode_varint(maximum)


def encode_max_conn_data(cid: int, maximum: int) -> bytes:
    """MAX_CONN_DATA without a frame object."""
    return b"\x0b" + encode_varint(cid) + encode_varint(maximum)


def encode_max_conns(maximum: int) -> bytes:
    """MAX_CONNS without a frame object."""
    return b"\x0c" + encode_varint(maximum)


def encode_ack(ranges: list[tuple[int, int]] | tuple[tuple[int, int], ...], delay: int) -> bytes:
    """ranges: inclusive (first, last), highest first, non-overlapping, not adjacent."""
    largest_first, largest = ranges[0]
    out = [
        b"\x02",
        encode_varint(largest),
        encode_varint(delay),
        encode_varint(len(ranges) - 1),
        encode_varint(largest - largest_first),
    ]
    smallest = largest_first
    for first, last in ranges[1:]:
        out.append(encode_varint(smallest - last - 2))  # gap: unacknowledged packets - 1
        out.append(encode_varint(last - first))
        smallest = first
    return b"".join(out)


def _encode_create(frame: Create) -> bytes:
    flags = (1 if frame.retry_safe else 0) | (_CREATE_AUTH if frame.user else 0)
    out = b"\x05" + encode_varint(frame.cid) + encode_varint(flags) + _encode_bytes(frame.service)
    if frame.user:
        if len(frame.user) != C.PUBLIC_KEY_SIZE or len(frame.signature) != C.SIGNATURE_SIZE:
            raise ValueError("an authenticated Create has a 32-byte key and 64-byte signature")
        out += frame.user + frame.signature
    return out


def _encode_path(kind: bytes) -> Callable[[PathChallenge | PathResponse], bytes]:
    def encode(frame: PathChallenge | PathResponse) -> bytes:
        if len(frame.data) != C.PATH_DATA_SIZE:
            raise ValueError(f"path data is {C.PATH_DATA_SIZE} bytes")
        return kind + frame.data

    return encode


#: How each frame type is written: one entry per frame of docs/protocol.md §4.
_ENCODERS: dict[type, Callable[[Any], bytes]] = {
    Stream: lambda f: stream_header(f.cid, f.offset, len(f.data), f.fin) + f.data,
    Ack: lambda f: encode_ack(f.ranges, f.delay),
    Padding: lambda f: bytes(f.length),
    Ping: lambda f: b"\x01",
    Hello: lambda f: b"\x03" + encode_varint(f.version) + encode_varint(f.client_time_ms),
    HelloAck: lambda f: (
        b"\x04"
        + encode_varint(zigzag(f.clock_skew_ms))
        + encode_varint(1 if f.early_data_accepted else 0)
    ),
    Create: _encode_create,
    Refuse: lambda f: (
        b"\x06" + encode_varint(f.cid) + encode_varint(f.code) + _encode_bytes(f.reason)
    ),
    Reset: lambda f: (
        b"\x07" + encode_varint(f.cid) + encode_varint(f.code) + encode_varint(f.final_size)
    ),
    MaxData: lambda f: encode_max_data(f.maximum),
    MaxConnData: lambda f: encode_max_conn_data(f.cid, f.maximum),
    MaxConns: lambda f: encode_max_conns(f.maximum),
    Close: lambda f: b"\x0d" + encode_varint(f.code) + _encode_bytes(f.reason),
    Datagram: lambda f: b"\x0e" + encode_varint(f.cid) + _encode_bytes(f.data),
    Blocked: lambda f: b"\x0f" + encode_varint(f.limit),
    PathChallenge: _encode_path(b"\x10"),
    PathResponse: _encode_path(b"\x11"),
    RekeyNow: lambda f: b"\x12",
    NewRecord: lambda f: b"\x13" + _encode_bytes(f.record),
}


def encode_frame(frame: Frame) -> bytes:
    """The wire bytes of one frame."""
    encoder = _ENCODERS.get(type(frame))
    if encoder is None:
        raise TypeError(f"not a frame: {frame!r}")
    return encoder(frame)


# --- decoding ----------------------------------------------------------------------------------


def decode_ack(buf: bytes, pos: int) -> tuple[Ack, int]:
    """The ACK frame whose fields start at ``pos`` (after the type byte)."""
    largest, pos = read_varint(buf, pos)
    delay, pos = read_varint(buf, pos)
    count, pos = read_varint(buf, pos)
    if count >= C.MAX_ACK_RANGES:
        raise FrameEncodingError(f"ACK with {count + 1} ranges (limit {C.MAX_ACK_RANGES})")
    first_len, pos = read_varint(buf, pos)
    smallest = largest - first_len
    if smallest < 0:
        raise FrameEncodingError("ACK range below packet number 0")
    ranges = [(smallest, largest)]
    for _ in range(count):
        gap, pos = read_varint(buf, pos)
        length, pos = read_varint(buf, pos)
        last = smallest - gap - 2
        first = last - length
        if first < 0:
            raise FrameEncodingError("ACK range below packet number 0")
        ranges.append((first, last))
        smallest = first
    return Ack(tuple(ranges), delay), pos


_NONZERO = re.compile(rb"[^\x00]")


def skip_padding(payload: bytes, pos: int) -> int:
    """The position of the first non-zero byte at or after ``pos`` (or the end)."""
    end = len(payload)
    if payload.count(0, pos) == end - pos:
        # The usual case (a first packet padded to its end): counting zeros runs at memory
        # speed, the regular expression at a few nanoseconds a byte.
        return end
    match = _NONZERO.search(payload, pos)
    return match.start() if match is not None else end


def _decode_stream(payload: bytes, pos: int, fin: bool) -> tuple[Stream, int]:
    cid, pos = read_varint(payload, pos)
    offset, pos = read_varint(payload, pos)
    length, pos = read_varint(payload, pos)
    stop = pos + length
    if stop > len(payload):
        raise FrameEncodingError("STREAM data runs past the end of the payload")
    if offset + length > MAX_VARINT:
        raise FrameEncodingError("STREAM offset out of range")
    return Stream(cid, offset, payload[pos:stop], fin), stop


def _decode_padding(payload: bytes, pos: int) -> tuple[Padding, int]:
    stop = skip_padding(payload, pos)
    return Padding(stop - pos + 1), stop


def _decode_hello(payload: bytes, pos: int) -> tuple[Hello, int]:
    version, pos = read_varint(payload, pos)
    client_time, pos = read_varint(payload, pos)
    return Hello(version, client_time), pos


def _decode_hello_ack(payload: bytes, pos: int) -> tuple[HelloAck, int]:
    skew, pos = read_varint(payload, pos)
    flags, pos = read_varint(payload, pos)
    return HelloAck(unzigzag(skew), bool(flags & 1)), pos


def _decode_create(payload: bytes, pos: int) -> tuple[Create, int]:
    cid, pos = read_varint(payload, pos)
    flags, pos = read_varint(payload, pos)
    service, pos = _read_bytes(payload, pos, C.MAX_SERVICE_NAME)
    user = signature = b""
    if flags & _CREATE_AUTH:
        stop = pos + C.PUBLIC_KEY_SIZE + C.SIGNATURE_SIZE
        if stop > len(payload):
            raise FrameEncodingError("Create authenticator runs past the payload")
        user = payload[pos : pos + C.PUBLIC_KEY_SIZE]
        signature = payload[pos + C.PUBLIC_KEY_SIZE : stop]
        pos = stop
    return Create(cid, service, bool(flags & 1), user, signature), pos


def _decode_refuse(payload: bytes, pos: int) -> tuple[Refuse, int]:
    cid, pos = read_varint(payload, pos)
    code, pos = read_varint(payload, pos)
    reason, pos = _read_bytes(payload, pos, C.MAX_REASON_SIZE)
    return Refuse(cid, code, reason), pos


def _decode_reset(payload: bytes, pos: int) -> tuple[Reset, int]:
    cid, pos = read_varint(payload, pos)
    code, pos = read_varint(payload, pos)
    final_size, pos = read_varint(payload, pos)
    return Reset(cid, code, final_size), pos


def _decode_one_varint(kind: Callable[[int], Frame]) -> Callable[[bytes, int], tuple[Frame, int]]:
    def decode(payload: bytes, pos: int) -> tuple[Frame, int]:
        value, pos = read_varint(payload, pos)
        return kind(value), pos

    return decode


def _decode_max_conn_data(payload: bytes, pos: int) -> tuple[MaxConnData, int]:
    cid, pos = read_varint(payload, pos)
    maximum, pos = read_varint(payload, pos)
    return MaxConnData(cid, maximum), pos


def _decode_close(payload: bytes, pos: int) -> tuple[Close, int]:
    code, pos = read_varint(payload, pos)
    reason, pos = _read_bytes(payload, pos, C.MAX_REASON_SIZE)
    return Close(code, reason), pos


def _decode_datagram(payload: bytes, pos: int) -> tuple[Datagram, int]:
    cid, pos = read_varint(payload, pos)
    data, pos = _read_bytes(payload, pos, C.MAX_DATAGRAM_DATA)
    return Datagram(cid, data), pos


def _decode_new_record(payload: bytes, pos: int) -> tuple[NewRecord, int]:
    record, pos = _read_bytes(payload, pos, C.MAX_RECORD_SIZE)
    return NewRecord(record), pos


def _decode_path(
    kind: Callable[[bytes], PathChallenge | PathResponse],
) -> Callable[[bytes, int], tuple[Frame, int]]:
    def decode(payload: bytes, pos: int) -> tuple[Frame, int]:
        stop = pos + C.PATH_DATA_SIZE
        if stop > len(payload):
            raise FrameEncodingError("path data runs past the end of the payload")
        return kind(payload[pos:stop]), stop

    return decode


_PING = Ping()
_REKEY_NOW = RekeyNow()

#: How each frame type byte is read (after the type byte): one entry per frame of
#: docs/protocol.md §4. Each reader checks every length it uses.
_DECODERS: dict[int, Callable[[bytes, int], tuple[Frame, int]]] = {
    C.FRAME_PADDING: _decode_padding,
    C.FRAME_PING: lambda payload, pos: (_PING, pos),
    C.FRAME_ACK: lambda payload, pos: decode_ack(payload, pos),
    C.FRAME_HELLO: _decode_hello,
    C.FRAME_HELLO_ACK: _decode_hello_ack,
    C.FRAME_CREATE: _decode_create,
    C.FRAME_REFUSE: _decode_refuse,
    C.FRAME_RESET: _decode_reset,
    C.FRAME_STREAM: lambda payload, pos: _decode_stream(payload, pos, False),
    C.FRAME_STREAM_FIN: lambda payload, pos: _decode_stream(payload, pos, True),
    C.FRAME_MAX_DATA: _decode_one_varint(MaxData),
    C.FRAME_MAX_CONN_DATA: _decode_max_conn_data,
    C.FRAME_MAX_CONNS: _decode_one_varint(MaxConns),
    C.FRAME_CLOSE: _decode_close,
    C.FRAME_DATAGRAM: _decode_datagram,
    C.FRAME_BLOCKED: _decode_one_varint(Blocked),
    C.FRAME_PATH_CHALLENGE: _decode_path(PathChallenge),
    C.FRAME_PATH_RESPONSE: _decode_path(PathResponse),
    C.FRAME_REKEY_NOW: lambda payload, pos: (_REKEY_NOW, pos),
    C.FRAME_NEW_RECORD: _decode_new_record,
}


def decode_frame(payload: bytes, pos: int) -> tuple[Frame, int]:
    """The frame starting at ``pos`` and the position after it. Raises FrameEncodingError."""
    try:
        ftype = payload[pos]
        decoder = _DECODERS.get(ftype)
        if decoder is None:
            raise FrameEncodingError(f"unknown frame type 0x{ftype:02x}")
        return decoder(payload, pos + 1)
    except (IndexError, struct.error) as exc:
        raise FrameEncodingError("frame truncated") from exc


def decode_frames(payload: bytes) -> list[Frame]:
    """Every frame of a decrypted payload. Raises FrameEncodingError on any malformed byte."""
    frames: list[Frame] = []
    pos = 0
    end = len(payload)
    while pos < end:
        frame, pos = decode_frame(payload, pos)
        frames.append(frame)
    return frames


def auth_message(binding: bytes, server_identity: bytes, cid: int, service: bytes) -> bytes:
    """What a user signs to open connection ``cid`` to ``service`` as itself (createAuth).

    ``binding`` is secret to the tunnel's two ends (derived from their shared key), so an
    authenticator cannot be replayed on another tunnel or to another server."""
    return b"minimalt-auth\x00" + binding + server_identity + encode_varint(cid) + service
