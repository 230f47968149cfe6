"""The packet header: what travels in clear before the box, and its strict parser.

    TID (8, big-endian; bit 63 = KEY flag, bit 62 = PUZZLE flag, 62 bits tunnel ID)
    nonce (8, big-endian; odd from the client, even from the server)
    [KEY, client->server]  client ephemeral public key (32) · server key id (4)
    [KEY, server->client]  server diversifier (16)
    [PUZZLE, server->client] window (4) · difficulty (1) · challenge (16); no box follows
    [PUZZLE, client->server] window (4) · difficulty (1) · challenge (16) · solution (8)
    [KEY+PUZZLE, server->client] the server's current signed record; no box follows (the
                           answer to a first packet boxed to a key the server no longer has)
    box: Poly1305 tag (16) · XSalsa20 ciphertext

The direction of a packet is the parity of its nonce, so one endpoint can be client and server.
Packet numbers, used by acknowledgements and loss recovery, are ``nonce >> 1``: contiguous in
each direction.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from . import constants as C

_HEADER = struct.Struct(">QQ")


class ProbeDatagram(bytes):
    """A path MTU probe, as ``datagrams_to_send`` hands it out: ordinary bytes to anyone
    who just sends it. A socket driver sends it on its own (never in a GSO run) and reports a
    local EMSGSIZE with ``Endpoint.datagram_too_big``, so the size is abandoned at once."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class Header:
    """The clear part of a packet, parsed. ``box_offset`` is where the box starts."""

    tid: int  # 62-bit tunnel ID (flags removed)
    flags: int
    nonce: int
    client_public: bytes | None
    key_id: bytes | None
    diversifier: bytes | None
    box_offset: int
    puzzle: bytes | None = None  # the puzzle (server) or puzzle answer (client) section
    record: bytes | None = None  # server's stale-key answer: its current record

    @property
    def from_client(self) -> bool:
        return bool(self.nonce & 1)


def parse_header(data: bytes) -> Header | str:
    """The header of ``data``, or the reason (a short string) why it is malformed."""
    size = len(data)
    if size < C.HEADER_SIZE + C.BOX_TAG_SIZE:
        return "short"
    raw_tid, nonce = _HEADER.unpack_from(data, 0)
    flags = raw_tid & C.FLAGS_MASK
    tid = raw_tid & C.TID_MASK
    from_client = nonce & 1
    pos = C.HEADER_SIZE
    if not from_client and flags == C.FLAGS_MASK:
        if size > C.HEADER_SIZE + C.MAX_RECORD_SIZE:
            return "bad_record_size"
        return Header(tid, flags, nonce, None, None, None, size, None, data[pos:])
    client_public = key_id = diversifier = puzzle = None
    if flags & C.FLAG_KEY:
        if from_client:
            end = pos + C.CLIENT_KEY_SECTION_SIZE
            if size < end + C.BOX_TAG_SIZE:
                return "short"
            client_public = data[pos : pos + C.PUBLIC_KEY_SIZE]
            key_id = data[pos + C.PUBLIC_KEY_SIZE : end]
        else:
            end = pos + C.DIVERSIFIER_SIZE
            if size < end + C.BOX_TAG_SIZE:
                return "short"
            diversifier = data[pos:end]
        pos = end
    if flags & C.FLAG_PUZZLE:
        if from_client:
            if client_public is None:
                return "puzzle_without_key"
            end = pos + C.PUZZLE_ANSWER_SIZE
            if size < end + C.BOX_TAG_SIZE:
                return "short"
        else:
            end = pos + C.PUZZLE_SECTION_SIZE
            if size != end:
                return "bad_puzzle_size"  # a puzzle packet is exactly its clear sections
        puzzle = data[pos:end]
        pos = end
    return Header(tid, flags, nonce, client_public, key_id, diversifier, pos, puzzle)


def build_header(
    tid: int,
    nonce: int,
    *,
    client_public: bytes | None = None,
    key_id: bytes | None = None,
    diversifier: bytes | None = None,
    puzzle: bytes | None = None,
    record: bytes | None = None,
) -> bytes:
    """The clear bytes of a packet; pass the key section only on packets that carry it, and
    ``puzzle`` (a client's answer, or a server's puzzle) only on puzzle packets."""
    raw = tid & C.TID_MASK
    if record is not None:
        assert not nonce & 1, "a record packet comes from the server"
        return _HEADER.pack(raw | C.FLAGS_MASK, nonce) + record
    extra = b""
    if client_public is not None:
        assert key_id is not None and nonce & 1, "a client key section goes on client packets"
        raw |= C.FLAG_KEY
        extra = client_public + key_id
    elif diversifier is not None:
        assert not nonce & 1, "a diversifier goes on server packets"
        raw |= C.FLAG_KEY
        extra = diversifier
    if puzzle is not None:
        raw |= C.FLAG_PUZZLE
        extra += puzzle
    return _HEADER.pack(raw, nonce) + extra
