"""The bridge's frame codec: length-prefixed msgpack maps, however the pipe chunks them."""

from __future__ import annotations

import struct

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minimalt.uvbridge.codec import FrameDecoder, FrameError, encode, encode_data


def test_a_frame_is_a_big_endian_length_then_a_msgpack_map() -> None:
    wire = encode({"t": "credit", "h": 3, "n": 4096})
    (length,) = struct.unpack(">I", wire[:4])
    assert length == len(wire) - 4
    assert msgpack.unpackb(wire[4:]) == {"t": "credit", "h": 3, "n": 4096}


HANDLES = [0, 1, 127, 128, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 2**40]


@pytest.mark.parametrize("handle", HANDLES)
def test_a_data_frame_header_plus_payload_is_an_ordinary_frame_with_a_bin(handle: int) -> None:
    payload = bytes(range(256)) * 3
    head, body = encode_data("data", handle, payload)
    frames = FrameDecoder().feed(head + bytes(body))
    assert frames == [{"t": "data", "h": handle, "d": payload}]


@given(
    frames=st.lists(
        st.fixed_dictionaries(
            {"t": st.sampled_from(["data", "end", "credit"]), "h": st.integers(0, 2**31)},
            optional={"d": st.binary(max_size=3000), "n": st.integers(0, 2**40)},
        ),
        max_size=8,
    ),
    cuts=st.lists(st.integers(0, 40000), max_size=10),
)
def test_frames_decode_the_same_whatever_the_chunk_boundaries(frames: list, cuts: list) -> None:
    wire = b"".join(encode(frame) for frame in frames)
    decoder = FrameDecoder()
    out = []
    last = 0
    for cut in sorted({min(c, len(wire)) for c in cuts}) + [len(wire)]:
        out.extend(decoder.feed(wire[last:cut]))
        last = cut
    assert out == frames
    assert decoder.buffered == 0


def test_a_frame_longer_than_the_limit_is_refused_before_it_is_buffered() -> None:
    decoder = FrameDecoder(max_frame=1024)
    with pytest.raises(FrameError, match="exceeds"):
        decoder.feed(struct.pack(">I", 1025))


@pytest.mark.parametrize(
    "body",
    [msgpack.packb([1, 2]), msgpack.packb({"x": 1}), msgpack.packb({"t": 5}), b"\xc1"],
    ids=["array", "no-t", "t-not-a-string", "not-msgpack"],
)
def test_a_frame_that_is_not_a_map_with_a_string_t_is_a_frame_error(body: bytes) -> None:
    with pytest.raises(FrameError):
        FrameDecoder().feed(struct.pack(">I", len(body)) + body)
