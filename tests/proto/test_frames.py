"""Frame codec: varints, zigzag, every frame type, ACK ranges, limits, and the strict parser
(docs/protocol.md §5 and §6)."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from minimalt.proto import constants as C
from minimalt.proto.errors import FrameEncodingError
from minimalt.proto.frames import (
    MAX_VARINT,
    Ack,
    Blocked,
    Close,
    Create,
    Datagram,
    Hello,
    HelloAck,
    MaxConnData,
    MaxConns,
    MaxData,
    NewRecord,
    Padding,
    PathChallenge,
    PathResponse,
    Ping,
    Refuse,
    RekeyNow,
    Reset,
    Stream,
    ack_eliciting,
    decode_frames,
    encode_ack,
    encode_frame,
    encode_varint,
    read_varint,
    stream_header,
    stream_overhead,
    unzigzag,
    varint_size,
    zigzag,
)

# --- varints -----------------------------------------------------------------------------------

# (value, encoding): each length's boundaries, and RFC 9000 §A.1's examples.
VARINTS = [
    (0, "00"),
    (37, "25"),
    (63, "3f"),
    (64, "4040"),
    (15293, "7bbd"),
    (16383, "7fff"),
    (16384, "80004000"),
    (494878333, "9d7f3e7d"),
    (2**30 - 1, "bfffffff"),
    (2**30, "c000000040000000"),
    (151288809941952652, "c2197c5eff14e88c"),
    (2**62 - 1, "ffffffffffffffff"),
]


@pytest.mark.parametrize(("value", "encoding"), VARINTS)
def test_varint_encoding_table(value: int, encoding: str) -> None:
    assert encode_varint(value).hex() == encoding
    assert varint_size(value) == len(encoding) // 2
    assert read_varint(bytes.fromhex(encoding), 0) == (value, len(encoding) // 2)


@pytest.mark.parametrize("encoding", ["4025", "80000025", "c000000000000025"])
def test_varint_decoder_accepts_longer_than_minimal_encodings(encoding: str) -> None:
    # RFC 9000 §16 allows them; minimalt senders always use the shortest form.
    assert read_varint(bytes.fromhex(encoding), 0)[0] == 37


@pytest.mark.parametrize("value", [-1, MAX_VARINT + 1, 2**64])
def test_varint_out_of_range_cannot_be_encoded(value: int) -> None:
    with pytest.raises(ValueError):
        encode_varint(value)


@given(st.integers(0, MAX_VARINT), st.binary(max_size=8))
def test_varint_round_trip(value: int, tail: bytes) -> None:
    encoded = encode_varint(value)
    assert len(encoded) == varint_size(value)
    assert read_varint(b"\xaa" + encoded + tail, 1) == (value, 1 + len(encoded))


def test_zigzag_order() -> None:
    assert [zigzag(v) for v in (0, -1, 1, -2, 2)] == [0, 1, 2, 3, 4]


@given(st.integers(-(2**61), 2**61 - 1))
def test_zigzag_round_trip(value: int) -> None:
    assert zigzag(value) >= 0
    assert zigzag(value) <= MAX_VARINT
    assert unzigzag(zigzag(value)) == value


# --- strategies --------------------------------------------------------------------------------

VARINT = st.integers(0, MAX_VARINT)
SMALL = st.integers(0, 2**20)


@st.composite
def ack_ranges(draw: st.DrawFn) -> tuple[tuple[int, int], ...]:
    """Valid ACK ranges: highest first, at least one unacknowledged packet between two."""
    count = draw(st.integers(1, C.MAX_ACK_RANGES))
    shape = draw(st.lists(st.tuples(SMALL, SMALL), min_size=count, max_size=count))
    total = sum(length + gap + 2 for length, gap in shape)
    start = draw(st.integers(0, MAX_VARINT - total))
    ranges = []
    for length, gap in shape:  # built upwards, sent highest first
        ranges.append((start, start + length))
        start += length + gap + 2  # at least one unacknowledged packet in between
    ranges.reverse()
    return tuple(ranges)


def _stream(cid: int, offset: int, data: bytes, fin: bool) -> Stream:
    return Stream(cid, min(offset, MAX_VARINT - len(data)), data, fin)


FRAMES = st.one_of(
    st.builds(Padding, st.integers(1, 1500)),
    st.builds(Ping),
    st.builds(Ack, ack_ranges(), VARINT),
    st.builds(Hello, VARINT, VARINT),
    st.builds(HelloAck, st.integers(-(2**61), 2**61 - 1), st.booleans()),
    st.builds(Create, VARINT, st.binary(max_size=C.MAX_SERVICE_NAME), st.booleans()),
    st.builds(
        Create,
        VARINT,
        st.binary(max_size=C.MAX_SERVICE_NAME),
        st.booleans(),
        st.binary(min_size=C.PUBLIC_KEY_SIZE, max_size=C.PUBLIC_KEY_SIZE),
        st.binary(min_size=C.SIGNATURE_SIZE, max_size=C.SIGNATURE_SIZE),
    ),
    st.builds(Refuse, VARINT, VARINT, st.binary(max_size=C.MAX_REASON_SIZE)),
    st.builds(Reset, VARINT, VARINT, VARINT),
    st.builds(_stream, VARINT, VARINT, st.binary(max_size=300), st.booleans()),
    st.builds(MaxData, VARINT),
    st.builds(MaxConnData, VARINT, VARINT),
    st.builds(MaxConns, VARINT),
    st.builds(Close, VARINT, st.binary(max_size=C.MAX_REASON_SIZE)),
    st.builds(Datagram, VARINT, st.binary(max_size=C.MAX_DATAGRAM_DATA)),
    st.builds(Blocked, VARINT),
    st.builds(PathChallenge, st.binary(min_size=C.PATH_DATA_SIZE, max_size=C.PATH_DATA_SIZE)),
    st.builds(PathResponse, st.binary(min_size=C.PATH_DATA_SIZE, max_size=C.PATH_DATA_SIZE)),
    st.builds(RekeyNow),
    st.builds(NewRecord, st.binary(max_size=C.MAX_RECORD_SIZE)),
)


def _canonical(frames: list) -> list:
    """Adjacent Padding frames are one run of zero bytes on the wire: merge them."""
    out: list = []
    for frame in frames:
        if isinstance(frame, Padding) and out and isinstance(out[-1], Padding):
            out[-1] = Padding(out[-1].length + frame.length)
        else:
            out.append(frame)
    return out


# --- round trips -------------------------------------------------------------------------------


@given(FRAMES)
def test_every_frame_round_trips(frame) -> None:
    assert decode_frames(encode_frame(frame)) == [frame]


@given(st.lists(FRAMES, max_size=12))
def test_frame_sequences_round_trip(frames: list) -> None:
    payload = b"".join(encode_frame(f) for f in frames)
    assert decode_frames(payload) == _canonical(frames)


FRAME_TYPES = [
    (Padding(1), C.FRAME_PADDING),
    (Ping(), C.FRAME_PING),
    (Ack(((0, 0),), 0), C.FRAME_ACK),
    (Hello(1, 0), C.FRAME_HELLO),
    (HelloAck(0, False), C.FRAME_HELLO_ACK),
    (Create(1, b"s"), C.FRAME_CREATE),
    (Refuse(1, 0), C.FRAME_REFUSE),
    (Reset(1, 0, 0), C.FRAME_RESET),
    (Stream(1, 0, b""), C.FRAME_STREAM),
    (Stream(1, 0, b"", True), C.FRAME_STREAM_FIN),
    (MaxData(0), C.FRAME_MAX_DATA),
    (MaxConnData(1, 0), C.FRAME_MAX_CONN_DATA),
    (MaxConns(0), C.FRAME_MAX_CONNS),
    (Close(0), C.FRAME_CLOSE),
    (Datagram(1, b""), C.FRAME_DATAGRAM),
    (Blocked(0), C.FRAME_BLOCKED),
    (PathChallenge(bytes(8)), C.FRAME_PATH_CHALLENGE),
    (PathResponse(bytes(8)), C.FRAME_PATH_RESPONSE),
    (RekeyNow(), C.FRAME_REKEY_NOW),
    (NewRecord(b"MLTR"), C.FRAME_NEW_RECORD),
]


@pytest.mark.parametrize(("frame", "ftype"), FRAME_TYPES)
def test_each_frame_starts_with_its_type_byte(frame, ftype: int) -> None:
    assert encode_frame(frame)[0] == ftype


def test_padding_is_a_run_of_zero_bytes() -> None:
    assert encode_frame(Padding(5)) == bytes(5)
    assert decode_frames(bytes(5)) == [Padding(5)]
    assert decode_frames(b"\x01" + bytes(3) + b"\x01") == [Ping(), Padding(3), Ping()]


def test_ack_wire_layout() -> None:
    # largest 1003, delay 25000, 2 more ranges, first range 3; gap 995->990: 1003-3=1000,
    # 1000-995-2=3; length 5; gap 990->0: 990-0-2=988; length 0.
    frame = Ack(((1000, 1003), (990, 995), (0, 0)), 25_000)
    expected = (
        b"\x02"
        + encode_varint(1003)
        + encode_varint(25_000)
        + encode_varint(2)
        + encode_varint(3)
        + encode_varint(3)
        + encode_varint(5)
        + encode_varint(988)
        + encode_varint(0)
    )
    assert encode_frame(frame) == expected
    assert encode_ack(list(frame.ranges), frame.delay) == expected


def test_stream_header_and_overhead_agree() -> None:
    for cid, offset, length in [(1, 0, 0), (63, 64, 16383), (2**30, 2**40, 1200)]:
        header = stream_header(cid, offset, length, False)
        assert len(header) == stream_overhead(cid, offset, length)
        assert decode_frames(header + bytes(length)) == [Stream(cid, offset, bytes(length))]


def test_ack_eliciting_frames() -> None:
    for frame, _ in FRAME_TYPES:
        assert ack_eliciting(frame) == (not isinstance(frame, (Ack, Padding, Close)))


def test_encoding_a_non_frame_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        encode_frame("not a frame")  # type: ignore[arg-type]


def test_authenticated_create_layout() -> None:
    user, signature = bytes(range(32)), bytes(range(64))
    encoded = encode_frame(Create(3, b"echo", True, user, signature))
    assert encoded == b"\x05\x03\x03\x04echo" + user + signature  # flags: retry-safe | auth
    for cut in range(1, len(encoded)):
        with pytest.raises(FrameEncodingError):
            decode_frames(encoded[:cut])
    with pytest.raises(ValueError):
        encode_frame(Create(3, b"echo", True, user, signature[:63]))


@pytest.mark.parametrize("size", [0, 7, 9])
def test_path_data_is_exactly_eight_bytes(size: int) -> None:
    with pytest.raises(ValueError):
        encode_frame(PathChallenge(bytes(size)))
    truncated = bytes((C.FRAME_PATH_RESPONSE,)) + bytes(min(size, 7))
    with pytest.raises(FrameEncodingError):
        decode_frames(truncated)


# --- limits and malformed input ----------------------------------------------------------------


def _raw_ack(largest: int, delay: int, count: int, first: int, pairs: list[tuple[int, int]]):
    out = b"\x02" + encode_varint(largest) + encode_varint(delay) + encode_varint(count)
    out += encode_varint(first)
    for gap, length in pairs:
        out += encode_varint(gap) + encode_varint(length)
    return out


def test_ack_with_the_maximum_number_of_ranges_is_accepted() -> None:
    pairs = [(0, 0)] * (C.MAX_ACK_RANGES - 1)
    (ack,) = decode_frames(_raw_ack(1000, 0, C.MAX_ACK_RANGES - 1, 0, pairs))
    assert len(ack.ranges) == C.MAX_ACK_RANGES


def test_ack_with_too_many_ranges_is_malformed() -> None:
    pairs = [(0, 0)] * C.MAX_ACK_RANGES
    with pytest.raises(FrameEncodingError, match="ranges"):
        decode_frames(_raw_ack(1000, 0, C.MAX_ACK_RANGES, 0, pairs))


@pytest.mark.parametrize(
    "raw",
    [
        _raw_ack(5, 0, 0, 6, []),  # first range below 0
        _raw_ack(5, 0, 1, 0, [(4, 0)]),  # 5 - 4 - 2 = -1
        _raw_ack(5, 0, 1, 0, [(2, 2)]),  # last 1, first -1
    ],
)
def test_ack_range_below_zero_is_malformed(raw: bytes) -> None:
    with pytest.raises(FrameEncodingError, match="below packet number 0"):
        decode_frames(raw)


def test_string_limits() -> None:
    too_long_service = b"\x05\x01\x00" + encode_varint(C.MAX_SERVICE_NAME + 1)
    too_long_service += bytes(C.MAX_SERVICE_NAME + 1)
    with pytest.raises(FrameEncodingError, match="exceeds the limit"):
        decode_frames(too_long_service)
    with pytest.raises(FrameEncodingError, match="exceeds the limit"):
        decode_frames(encode_frame(Close(0, bytes(C.MAX_REASON_SIZE + 1))))
    with pytest.raises(FrameEncodingError, match="exceeds the limit"):
        decode_frames(encode_frame(Refuse(1, 0, bytes(C.MAX_REASON_SIZE + 1))))
    with pytest.raises(FrameEncodingError, match="exceeds the limit"):
        decode_frames(encode_frame(Datagram(1, bytes(C.MAX_DATAGRAM_DATA + 1))))
    with pytest.raises(FrameEncodingError, match="exceeds the limit"):
        decode_frames(encode_frame(NewRecord(bytes(C.MAX_RECORD_SIZE + 1))))


def test_stream_past_the_largest_offset_is_malformed() -> None:
    raw = stream_header(1, MAX_VARINT, 1, False) + b"x"
    with pytest.raises(FrameEncodingError, match="offset out of range"):
        decode_frames(raw)
    assert decode_frames(stream_header(1, MAX_VARINT - 1, 1, False) + b"x")


KNOWN_TYPES = {value for name, value in vars(C).items() if name.startswith("FRAME_")}


def test_unknown_frame_types_are_malformed() -> None:
    assert len(KNOWN_TYPES) >= 20
    for ftype in sorted(set(range(256)) - KNOWN_TYPES):
        with pytest.raises(FrameEncodingError, match="unknown frame type"):
            decode_frames(b"\x01" + bytes((ftype,)) + bytes(8))


def test_reserved_flag_bits_are_ignored() -> None:
    # Create and HelloAck carry a flags varint; bits without a meaning are ignored.
    assert decode_frames(b"\x05\x01\x05\x01s") == [Create(1, b"s", True)]
    assert decode_frames(b"\x05\x01\x04\x01s") == [Create(1, b"s", False)]
    assert decode_frames(b"\x04\x00\x02") == [HelloAck(0, False)]


def _frame_boundaries(frames: list) -> dict[int, int]:
    """Byte offset at which each frame ends -> number of frames up to there."""
    out, pos = {0: 0}, 0
    for i, frame in enumerate(frames):
        pos += len(encode_frame(frame))
        out[pos] = i + 1
    return out


@given(st.lists(FRAMES, min_size=1, max_size=6))
def test_every_truncation_is_a_prefix_or_a_frame_encoding_error(frames: list) -> None:
    frames = _canonical(frames)
    payload = b"".join(encode_frame(f) for f in frames)
    boundaries = _frame_boundaries(frames)
    starts = sorted(boundaries)
    for cut in range(len(payload)):
        truncated = payload[:cut]
        if cut in boundaries:
            assert decode_frames(truncated) == frames[: boundaries[cut]]
            continue
        index = max(i for i in starts if i < cut)  # the frame the cut falls inside
        inside = frames[boundaries[index]]
        if isinstance(inside, Padding):  # a shorter run of zeros is still padding
            assert decode_frames(truncated) == frames[: boundaries[index]] + [Padding(cut - index)]
            continue
        with pytest.raises(FrameEncodingError):
            decode_frames(truncated)


@given(st.binary(max_size=400))
@example(b"\x02\x3f\x00\x3f\x00")
@example(b"\x08\x01\x00\x7f\xff")
@example(b"\x02" + b"\xff" * 8 + b"\x00" + b"\xff" * 8)
def test_random_bytes_raise_nothing_but_frame_encoding_error(data: bytes) -> None:
    try:
        frames = decode_frames(data)
    except FrameEncodingError:
        return
    # Whatever decodes is a valid frame sequence: re-encoded, it decodes to the same frames.
    assert decode_frames(b"".join(encode_frame(f) for f in frames)) == frames


@given(st.lists(FRAMES, min_size=1, max_size=4), st.data())
def test_flipped_bytes_raise_nothing_but_frame_encoding_error(frames: list, data) -> None:
    payload = bytearray(b"".join(encode_frame(f) for f in frames))
    pos = data.draw(st.integers(0, len(payload) - 1))
    payload[pos] ^= data.draw(st.integers(1, 255))
    try:
        decode_frames(bytes(payload))
    except FrameEncodingError:
        pass


@given(st.integers(0, 200), st.integers(0, (1 << 40)), st.integers(0, 20000), st.booleans())
def test_stream_header_fast_paths_match_the_generic_encoding(cid, offset, length, fin) -> None:
    from minimalt.proto.frames import encode_varint, stream_overhead

    generic = (
        bytes((9 if fin else 8,))
        + encode_varint(cid)
        + encode_varint(offset)
        + (encode_varint(length))
    )
    assert stream_header(cid, offset, length, fin) == generic
    assert stream_overhead(cid, offset, length) == len(generic)
