"""Packet header: layout, flags, the KEY and PUZZLE sections, and the strict parser
(docs/protocol.md §2)."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from minimalt.proto import constants as C
from minimalt.proto.packet import Header, build_header, parse_header

TID = 0x0123456789ABCDEF
TAG = bytes(C.BOX_TAG_SIZE)  # stands for the box: parse_header only needs its minimum length
TIDS = st.integers(0, C.TID_MASK)
CLIENT_NONCES = st.integers(0, 2**63 - 1).map(lambda n: 2 * n + 1)
SERVER_NONCES = st.integers(0, 2**63 - 1).map(lambda n: 2 * n)
KEYS = st.binary(min_size=C.PUBLIC_KEY_SIZE, max_size=C.PUBLIC_KEY_SIZE)
KEY_IDS = st.binary(min_size=C.KEY_ID_SIZE, max_size=C.KEY_ID_SIZE)
DIVERSIFIERS = st.binary(min_size=C.DIVERSIFIER_SIZE, max_size=C.DIVERSIFIER_SIZE)


def _parse(data: bytes) -> Header:
    header = parse_header(data)
    assert isinstance(header, Header), header
    return header


def test_plain_header_layout() -> None:
    assert build_header(TID, 5) == bytes.fromhex("0123456789abcdef0000000000000005")
    assert C.HEADER_SIZE == 16


def test_client_key_section_layout() -> None:
    key, kid = bytes(range(32)), b"\xaa\xbb\xcc\xdd"
    raw = build_header(TID, 1, client_public=key, key_id=kid)
    assert raw == bytes.fromhex("8123456789abcdef0000000000000001") + key + kid
    assert len(raw) == C.HEADER_SIZE + C.CLIENT_KEY_SECTION_SIZE == 52


def test_diversifier_section_layout() -> None:
    div = bytes(range(16))
    raw = build_header(TID, 0, diversifier=div)
    assert raw == bytes.fromhex("8123456789abcdef0000000000000000") + div
    assert len(raw) == C.HEADER_SIZE + C.DIVERSIFIER_SIZE == 32


@given(TIDS, st.integers(0, 2**64 - 1), st.binary(max_size=64))
def test_plain_header_round_trip(tid: int, nonce: int, box: bytes) -> None:
    raw = build_header(tid, nonce)
    header = _parse(raw + TAG + box)
    assert (header.tid, header.nonce, header.flags) == (tid, nonce, 0)
    assert header.client_public is header.key_id is header.diversifier is None
    assert header.box_offset == C.HEADER_SIZE
    assert header.from_client == bool(nonce & 1)


@given(TIDS, CLIENT_NONCES, KEYS, KEY_IDS)
def test_client_key_section_round_trip(tid: int, nonce: int, key: bytes, kid: bytes) -> None:
    header = _parse(build_header(tid, nonce, client_public=key, key_id=kid) + TAG)
    assert (header.tid, header.nonce, header.flags) == (tid, nonce, C.FLAG_KEY)
    assert (header.client_public, header.key_id, header.diversifier) == (key, kid, None)
    assert header.box_offset == C.HEADER_SIZE + C.CLIENT_KEY_SECTION_SIZE
    assert header.from_client


@given(TIDS, SERVER_NONCES, DIVERSIFIERS)
def test_diversifier_section_round_trip(tid: int, nonce: int, div: bytes) -> None:
    header = _parse(build_header(tid, nonce, diversifier=div) + TAG)
    assert (header.tid, header.nonce, header.flags) == (tid, nonce, C.FLAG_KEY)
    assert (header.client_public, header.key_id, header.diversifier) == (None, None, div)
    assert header.box_offset == C.HEADER_SIZE + C.DIVERSIFIER_SIZE
    assert not header.from_client


def test_nonce_parity_selects_the_key_section() -> None:
    section = bytes(range(40))
    raw_tid = (TID | C.FLAG_KEY).to_bytes(8, "big")
    client = _parse(raw_tid + (1).to_bytes(8, "big") + section + TAG)
    server = _parse(raw_tid + (2).to_bytes(8, "big") + section + TAG)
    assert client.client_public == section[:32] and client.key_id == section[32:36]
    assert server.diversifier == section[:16]
    assert (client.box_offset, server.box_offset) == (52, 32)


def test_build_header_masks_the_tid_to_62_bits() -> None:
    assert build_header(TID | C.FLAG_KEY | C.FLAG_PUZZLE, 1) == build_header(TID, 1)


PUZZLE = bytes.fromhex("0000abcd") + b"\x0c" + bytes(range(16))  # window, difficulty, challenge
ANSWER = PUZZLE + bytes.fromhex("0000000000000123")  # + solution


def test_server_puzzle_packet_layout() -> None:
    raw = build_header(TID, 0, puzzle=PUZZLE)
    assert raw == bytes.fromhex("4123456789abcdef0000000000000000") + PUZZLE
    assert len(raw) == C.HEADER_SIZE + C.PUZZLE_SECTION_SIZE == 37
    header = _parse(raw)
    assert (header.flags, header.puzzle, header.box_offset) == (C.FLAG_PUZZLE, PUZZLE, 37)
    assert header.client_public is header.diversifier is None
    assert not header.from_client


def test_client_puzzle_answer_follows_the_key_section() -> None:
    key, kid = bytes(range(32)), b"\xaa\xbb\xcc\xdd"
    raw = build_header(TID, 1, client_public=key, key_id=kid, puzzle=ANSWER)
    assert raw == bytes.fromhex("c123456789abcdef0000000000000001") + key + kid + ANSWER
    header = _parse(raw + TAG)
    assert header.flags == C.FLAG_KEY | C.FLAG_PUZZLE
    assert (header.client_public, header.key_id, header.puzzle) == (key, kid, ANSWER)
    assert header.box_offset == C.HEADER_SIZE + C.CLIENT_KEY_SECTION_SIZE + C.PUZZLE_ANSWER_SIZE


@given(TIDS, CLIENT_NONCES, KEYS, KEY_IDS, st.binary(min_size=29, max_size=29))
def test_client_puzzle_answer_round_trip(tid, nonce, key, kid, answer) -> None:
    header = _parse(build_header(tid, nonce, client_public=key, key_id=kid, puzzle=answer) + TAG)
    assert (header.tid, header.nonce, header.puzzle, header.client_public) == (
        tid,
        nonce,
        answer,
        key,
    )


def test_misplaced_puzzle_sections_are_dropped() -> None:
    # From a client, a puzzle answer only comes with the key section.
    raw = struct.pack(">QQ", TID | C.FLAG_PUZZLE, 1) + bytes(64)
    assert parse_header(raw) == "puzzle_without_key"
    # From a server, KEY+PUZZLE is a stale-key answer: the rest is its record (no box)...
    raw = struct.pack(">QQ", TID | C.FLAG_PUZZLE | C.FLAG_KEY, 2) + bytes(64)
    header = parse_header(raw)
    assert header.record == bytes(64) and header.puzzle is None
    assert parse_header(raw + bytes(C.MAX_RECORD_SIZE)) == "bad_record_size"
    # ...and a puzzle packet is exactly header + puzzle section (no box).
    puzzle = build_header(TID, 0, puzzle=PUZZLE)
    assert parse_header(puzzle + b"\x00") == "bad_puzzle_size"
    assert parse_header(puzzle[:-1]) == "bad_puzzle_size"
    # A client answer needs the whole 29-byte section and a tag after it.
    answer = build_header(TID, 1, client_public=bytes(32), key_id=bytes(4), puzzle=ANSWER)
    assert parse_header(answer + TAG[:-1]) == "short"


@pytest.mark.parametrize(
    ("header", "minimum"),
    [
        (build_header(TID, 3), C.HEADER_SIZE + C.BOX_TAG_SIZE),
        (
            build_header(TID, 1, client_public=bytes(32), key_id=bytes(4)),
            C.HEADER_SIZE + C.CLIENT_KEY_SECTION_SIZE + C.BOX_TAG_SIZE,
        ),
        (
            build_header(TID, 2, diversifier=bytes(16)),
            C.HEADER_SIZE + C.DIVERSIFIER_SIZE + C.BOX_TAG_SIZE,
        ),
    ],
)
def test_packets_shorter_than_header_and_tag_are_short(header: bytes, minimum: int) -> None:
    packet = header + TAG
    assert len(packet) == minimum
    assert isinstance(parse_header(packet), Header)
    for cut in range(minimum):
        assert parse_header(packet[:cut]) == "short"


@given(st.binary(max_size=200))
def test_random_bytes_never_raise(data: bytes) -> None:
    result = parse_header(data)
    if isinstance(result, Header):
        assert 0 <= result.tid <= C.TID_MASK
        if result.puzzle is not None and not result.from_client:
            assert result.box_offset == len(data) == 37  # a server puzzle has no box
        elif result.record is not None:
            assert result.box_offset == len(data)  # nor has a server's record answer
        else:
            assert result.box_offset + C.BOX_TAG_SIZE <= len(data)
    else:
        assert result in ("short", "puzzle_without_key", "puzzle_with_key", "bad_puzzle_size")


@given(TIDS, CLIENT_NONCES, KEYS, KEY_IDS, st.binary(min_size=16, max_size=80), st.data())
def test_truncated_and_flipped_packets_never_raise(
    tid: int, nonce: int, key: bytes, kid: bytes, box: bytes, data
) -> None:
    packet = bytearray(build_header(tid, nonce, client_public=key, key_id=kid) + box)
    for cut in range(len(packet) + 1):
        parse_header(bytes(packet[:cut]))
    pos = data.draw(st.integers(0, len(packet) - 1))
    packet[pos] ^= data.draw(st.integers(1, 255))
    parse_header(bytes(packet))
