"""SendBuffer and RecvBuffer: reassembly under loss, reordering and duplication, flow control,
memory release and final-size rules."""

from __future__ import annotations

import random
import time
import tracemalloc

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minimalt.proto.errors import FinalSizeError, LocalProtocolError
from minimalt.proto.streams import RecvBuffer, SendBuffer

BIG = 1 << 62


def drain(send: SendBuffer, max_size: int = 1200, limit: int = BIG) -> list:
    out = []
    while (chunk := send.next_chunk(max_size, limit)) is not None:
        out.append(chunk)
    return out


# -- the end-to-end property ------------------------------------------------------------------


@settings(max_examples=150, derandomize=True, deadline=None)
@given(
    writes=st.lists(
        st.one_of(st.binary(max_size=40), st.binary(min_size=2000, max_size=5000)), max_size=12
    ),
    data=st.data(),
)
def test_lossy_reordered_duplicated_delivery_reassembles_the_written_bytes(writes, data):
    send = SendBuffer()
    recv = RecvBuffer()
    for w in writes:
        send.write(w)
    send.finish()
    expected = b"".join(writes)
    limit = data.draw(st.integers(0, 200), label="initial window")
    in_flight: list[tuple[int, bytes, bool]] = []
    delivered: list[tuple[int, bytes, bool]] = []  # reached the peer, ack not processed yet
    received = bytearray()
    charged = 0
    last_buffered = send.buffered

    def deliver(frame):
        nonlocal charged
        charged += recv.add(*frame)

    for _ in range(data.draw(st.integers(0, 150), label="steps")):
        action = data.draw(
            st.sampled_from(["send", "send", "fate", "fate", "ack", "window", "read"])
        )
        if action == "send":
            max_size = data.draw(st.integers(0, 700), label="max_size")
            sendable = send.has_data_to_send(limit)
            sent_before = send.sent_offset
            chunk = send.next_chunk(max_size, limit)
            if max_size:
                assert sendable == (chunk is not None)
            if chunk is not None:
                offset, payload, fin = chunk
                assert len(payload) <= max_size
                end = offset + len(payload)
                if end > sent_before:  # new data: only ever within the flow-control window
                    assert offset == sent_before and end <= limit
                if fin:
                    assert end == len(expected)
                in_flight.append(chunk)
            assert send.sent_offset <= max(limit, sent_before)
        elif action == "fate" and in_flight:
            frame = in_flight.pop(data.draw(st.integers(0, len(in_flight) - 1)))
            fate = data.draw(st.sampled_from(["lost", "delivered", "duplicated", "spurious"]))
            if fate == "lost":
                send.on_lost(frame[0], len(frame[1]), frame[2])
            elif fate == "spurious":  # declared lost, yet it arrived and its ack comes later
                send.on_lost(frame[0], len(frame[1]), frame[2])
                deliver(frame)
                delivered.append(frame)
            else:
                deliver(frame)
                delivered.append(frame)
                if fate == "duplicated":
                    deliver(frame)
                    in_flight.append(frame)  # a copy still on the way
        elif action == "ack" and delivered:
            frame = delivered.pop(data.draw(st.integers(0, len(delivered) - 1)))
            send.on_acked(frame[0], len(frame[1]), frame[2])
            assert send.buffered <= last_buffered
        elif action == "window":
            limit += data.draw(st.integers(0, 3000), label="window increase")
        elif action == "read":
            before = recv.readable
            piece = recv.read(data.draw(st.integers(-1, 3000), label="read size"))
            assert len(piece) <= before
            received += piece
        last_buffered = send.buffered
        assert recv.highest <= len(expected)

    # Whatever is still in flight is lost; then the network becomes perfect until done.
    for frame in in_flight:
        send.on_lost(frame[0], len(frame[1]), frame[2])
    for frame in delivered:
        send.on_acked(frame[0], len(frame[1]), frame[2])
    for _ in range(1000):
        if send.all_acked:
            break
        for frame in drain(send, 500, BIG):
            deliver(frame)
            send.on_acked(frame[0], len(frame[1]), frame[2])
    received += recv.read()

    assert bytes(received) == expected
    assert recv.eof and recv.final_size == len(expected)
    assert send.all_acked and send.buffered == 0
    assert charged == recv.highest == len(expected)  # every byte charged to flow control once
    assert not send.has_data_to_send(BIG) and send.next_chunk(1200, BIG) is None


# -- SendBuffer -------------------------------------------------------------------------------


def test_new_data_stops_at_the_flow_control_limit_and_resumes_when_it_grows():
    send = SendBuffer()
    send.write(b"a" * 5000)
    assert drain(send, 1200, 2000) == [(0, b"a" * 1200, False), (1200, b"a" * 800, False)]
    assert not send.has_data_to_send(2000)
    assert send.has_data_to_send(2001)
    assert send.next_chunk(1200, 2500) == (2000, b"a" * 500, False)


def test_lost_ranges_go_first_lowest_offset_first_and_ignore_the_limit():
    send = SendBuffer()
    send.write(bytes(range(256)) * 20)
    frames = drain(send, 1000, 5120)
    send.on_lost(3000, 1000, False)
    send.on_lost(1000, 1000, False)
    send.on_acked(1500, 200, False)  # acked since: not resent
    send.write(b"new")
    assert send.has_data_to_send(0)
    out = drain(send, 400, 0)
    assert [(o, len(d)) for o, d, _ in out] == [
        (1000, 400), (1400, 100), (1700, 300), (3000, 400), (3400, 400), (3800, 200)
    ]  # fmt: skip
    for offset, payload, _ in out:
        assert payload == frames[offset // 1000][1][offset % 1000 :][: len(payload)]
    assert send.next_chunk(400, 5123) == (5120, b"new", False)


def test_fin_rides_on_the_last_chunk_then_alone_when_lost_with_no_room():
    send = SendBuffer()
    send.write(b"hello")
    send.finish()
    assert send.next_chunk(3, BIG) == (0, b"hel", False)
    assert send.next_chunk(3, BIG) == (3, b"lo", True)
    assert send.next_chunk(3, BIG) is None
    send.on_acked(0, 3, False)
    send.on_lost(3, 2, True)
    assert send.next_chunk(0, BIG) == (5, b"", True)  # only the FIN fits
    assert send.next_chunk(10, BIG) == (3, b"lo", False)  # FIN already back in flight
    send.on_acked(5, 0, True)
    assert not send.all_acked
    send.on_acked(3, 2, False)
    assert send.all_acked


def test_bare_fin_after_all_data_was_sent():
    send = SendBuffer()
    send.write(b"abc")
    assert drain(send) == [(0, b"abc", False)]
    assert not send.fin_pending
    send.finish()
    assert send.fin_pending and send.has_data_to_send(0)
    assert drain(send, 0, 0) == [(3, b"", True)]
    send.on_lost(3, 0, True)
    assert drain(send, 0, 0) == [(3, b"", True)]


def test_empty_stream_sends_only_a_fin():
    send = SendBuffer()
    assert not send.has_data_to_send(BIG)
    send.finish()
    assert drain(send) == [(0, b"", True)]
    send.on_acked(0, 0, True)
    assert send.all_acked


def test_write_after_finish_is_a_local_error():
    send = SendBuffer()
    send.finish()
    with pytest.raises(LocalProtocolError):
        send.write(b"x")


def test_buffered_drops_as_the_acked_prefix_grows():
    send = SendBuffer()
    for _ in range(10):
        send.write(b"z" * 1000)
    assert send.buffered == 10_000
    frames = drain(send, 1000)
    send.on_acked(1000, 1000, False)  # past a hole: memory cannot be released yet
    assert send.buffered == 10_000
    send.on_acked(0, 1000, False)
    assert send.buffered == 8000
    for offset, payload, fin in frames[2:]:
        send.on_acked(offset, len(payload), fin)
    assert send.buffered == 0
    send.on_acked(0, 5000, False)  # late duplicate
    assert send.buffered == 0


def test_acks_release_the_memory_of_one_huge_write():
    tracemalloc.start()
    try:
        send = SendBuffer()
        send.write(bytes(8 << 20))  # nobody else holds this object
        full = tracemalloc.get_traced_memory()[0]
        for offset, payload, fin in drain(send, 64 << 10):
            send.on_acked(offset, len(payload), fin)
            del payload
            if offset >= 6 << 20:
                break
        partly = tracemalloc.get_traced_memory()[0]
        assert full - partly > 5 << 20, (full, partly)
    finally:
        tracemalloc.stop()


def test_the_writer_may_reuse_its_buffer():
    send = SendBuffer()
    buf = bytearray(b"a" * 3000)
    send.write(buf)
    small = bytearray(b"b" * 10)
    send.write(small)
    buf[:] = b"x" * 3000
    small[:] = b"y" * 10
    assert b"".join(d for _, d, _ in drain(send)) == b"a" * 3000 + b"b" * 10


# -- RecvBuffer -------------------------------------------------------------------------------


def test_in_order_data_is_readable_at_once_and_counts_as_new():
    recv = RecvBuffer()
    assert recv.add(0, b"abc", False) == 3
    assert recv.add(3, b"de", False) == 2
    assert recv.readable == 5
    assert recv.read(2) == b"ab"
    assert recv.read() == b"cde"
    assert recv.read() == b""
    assert recv.read_offset == 5 and not recv.eof


def test_out_of_order_data_waits_for_the_hole_and_the_first_copy_wins():
    recv = RecvBuffer()
    assert recv.add(4, b"EF", True) == 6  # charges the hole too: highest moved 0 -> 6
    assert recv.readable == 0 and recv.read() == b""
    assert recv.add(2, b"xxXX", False) == 0  # 4..6 already held: keep "EF"
    assert recv.add(0, b"ab", False) == 0
    assert recv.readable == 6
    assert recv.read() == b"abxxEF"
    assert recv.eof


def test_partial_reads_leave_the_rest_in_order():
    recv = RecvBuffer()
    recv.add(0, b"0123456789", False)
    recv.add(10, b"abc", True)
    assert [recv.read(4), recv.read(4), recv.read(4), recv.read(4)] == [
        b"0123", b"4567", b"89ab", b"c"
    ]  # fmt: skip
    assert recv.eof


@pytest.mark.parametrize(
    ("frames", "bad"),
    [
        ([(0, b"abc", True)], (3, b"d", False)),  # data past the final size
        ([(0, b"abc", True)], (0, b"ab", True)),  # FIN with a smaller final size
        ([(0, b"abc", True)], (0, b"abcd", True)),  # FIN with a larger final size
        ([(5, b"xy", False)], (0, b"abc", True)),  # final size below data received
        ([(0, b"", True)], (0, b"a", False)),  # empty stream gets data
    ],
)
def test_final_size_violations_raise(frames, bad):
    recv = RecvBuffer()
    for frame in frames:
        recv.add(*frame)
    with pytest.raises(FinalSizeError):
        recv.add(*bad)


def test_repeating_the_same_fin_is_fine():
    recv = RecvBuffer()
    recv.add(3, b"", True)
    assert recv.final_size == 3 and recv.highest == 3
    recv.add(0, b"abc", True)
    recv.add(1, b"b", False)
    assert recv.read() == b"abc" and recv.eof


# -- scale ------------------------------------------------------------------------------------


def test_ten_mib_at_ten_percent_loss_is_linear():
    """Quadratic bookkeeping (rescanning buffers or range lists per packet) would take minutes
    here; the linear structures take a fraction of a second."""
    rng = random.Random(1)
    payload = rng.randbytes(1 << 20) * 10
    send = SendBuffer()
    recv = RecvBuffer()
    view = memoryview(payload)
    pos = 0
    while pos < len(payload):  # big and small writes: many chunks, some coalesced
        n = rng.choice((100, 1500, 3000, 70_000))
        send.write(view[pos : pos + n])
        pos += n
    send.finish()
    window = 1 << 20
    received = []
    started = time.perf_counter()
    while not send.all_acked:
        limit = recv.read_offset + window
        burst = []
        while len(burst) < 64 and (chunk := send.next_chunk(1200, limit)) is not None:
            burst.append(chunk)
        rng.shuffle(burst)  # reordering within a flight
        for offset, data, fin in burst:
            if rng.random() < 0.1:
                send.on_lost(offset, len(data), fin)
            else:
                recv.add(offset, data, fin)
                send.on_acked(offset, len(data), fin)
        received.append(recv.read())
    elapsed = time.perf_counter() - started
    assert b"".join(received) == payload and recv.eof
    assert elapsed < 5, elapsed


def test_many_small_writes_come_out_in_order():
    send = SendBuffer()
    pieces = [bytes([i % 251]) * (i % 37 + 1) for i in range(5000)]  # ~95 KB in tiny writes
    for piece in pieces:
        send.write(piece)
    frames = drain(send, 1200)
    assert all(len(d) == 1200 for _, d, _ in frames[:-1])
    assert b"".join(d for _, d, _ in frames) == b"".join(pieces)


def test_releasing_part_of_a_large_write_keeps_sending_and_retransmitting_right():
    payload = random.Random(3).randbytes(300_000)
    send = SendBuffer()
    send.write(payload)
    first = [send.next_chunk(1200, BIG) for _ in range(200)]  # 240 000 bytes out
    for offset, data, fin in first[:150]:  # 180 000 acked: the chunk is cut mid-send
        send.on_acked(offset, len(data), fin)
    assert send.buffered == 120_000
    send.on_lost(200_000, 1200, False)
    rest = drain(send, 1200)
    assert rest[0] == (200_000, payload[200_000:201_200], False)
    assert b"".join(d for _, d, _ in rest[1:]) == payload[240_000:]
