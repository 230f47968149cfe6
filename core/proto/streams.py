"""Per-connection stream buffers: what we sent until it is acked, what we got until it is read."""

from __future__ import annotations

from bisect import bisect_right

from .errors import FinalSizeError, LocalProtocolError
from .rangeset import RangeSet

#: What a stream (or a datagram) accepts to send: any bytes-like object.
BytesLike = bytes | bytearray | memoryview

# Writes smaller than this are coalesced into one buffer, so an application writing many tiny
# messages does not leave one Python object per message (and a Python-level join per packet).
_SMALL_WRITE = 512
# The coalescing buffer is sealed into a chunk once it reaches this size.
_TAIL_SEAL = 65536
# A partly acked chunk at least this large is cut down to its unacked part once the acked
# part is at least as large as the rest: memory follows the acked prefix even when the
# application wrote one huge buffer, and the copying stays linear in the bytes written.
_TRIM_MIN = 65536
# The list of released chunk slots is compacted once this many (and half the list) are dead.
_COMPACT_MIN = 32


class SendBuffer:
    """Bytes the application wrote to one connection, until the peer acknowledges them.

    Written data is kept as the caller's ``bytes`` objects (no copy) in offset order; small
    writes are coalesced. :meth:`next_chunk` hands out what to put in the next frame: lost
    ranges first, then new data within the peer's flow-control limit, then a bare FIN.
    The tunnel reports the fate of each frame with :meth:`on_acked` / :meth:`on_lost`.

    Hot paths (new data in order, acks in order) touch no :class:`RangeSet` method: they
    test the sets' lists directly, since even ``bool()`` on a Python object is a call.
    """

    __slots__ = (
        "_acked",
        "_chunks",
        "_cur",
        "_cur_pos",
        "_fin_acked",
        "_fin_sent",
        "_head",
        "_lost",
        "_release_at",
        "_starts",
        "_tail",
        "_tail_start",
        "acked_offset",
        "finished",
        "sent_offset",
        "write_offset",
    )

    def __init__(self) -> None:
        # Sealed chunks and the stream offset each starts at; slots before _head are released.
        self._chunks: list[bytes] = []
        self._starts: list[int] = []
        self._head = 0
        # Where sent_offset lies: chunk index and position in it (index == len when every
        # sealed byte was sent).
        self._cur = 0
        self._cur_pos = 0
        # Once acked_offset reaches this, _release has work to do.
        self._release_at = 0
        # Small writes not sealed into a chunk yet; they start at _tail_start.
        self._tail = bytearray()
        self._tail_start = 0
        #: Total bytes ever written; the final size once :attr:`finished`.
        self.write_offset = 0
        #: Highest offset ever handed out by :meth:`next_chunk`.
        self.sent_offset = 0
        #: Every byte below this offset is acknowledged (and released).
        self.acked_offset = 0
        # Acked ranges above acked_offset (selective acks past a hole).
        self._acked = RangeSet()
        # Ranges below sent_offset reported lost and not acked since: retransmit these first.
        self._lost = RangeSet()
        #: :meth:`finish` was called: no more writes, a FIN follows the last byte.
        self.finished = False
        self._fin_sent = False  # in flight or acked
        self._fin_acked = False

    # -- application side -------------------------------------------------------------------

    def write(self, data: BytesLike) -> None:
        """Queue ``data`` (any bytes-like object); ``LocalProtocolError`` after :meth:`finish`."""
        if self.finished:
            raise LocalProtocolError("write after end of stream")
        n = len(data)
        if not n:
            return
        if n < _SMALL_WRITE:
            tail = self._tail
            if not tail:
                self._tail_start = self.write_offset
            tail += data
            self.write_offset += n
            if len(tail) >= _TAIL_SEAL:
                self._seal()
            return
        if self._tail:
            self._seal()
        if type(data) is not bytes:
            data = bytes(data)  # the caller may reuse a mutable buffer
        self._chunks.append(data)
        self._starts.append(self.write_offset)
        self.write_offset += n

    def finish(self) -> None:
        """Half-close: a FIN follows the last byte written. Idempotent."""
        self.finished = True

    @property
    def buffered(self) -> int:
        """Bytes written and still held, i.e. from the acked prefix on.

        Bytes selectively acked above a hole count until the hole is acked too, because that
        is when their memory is released; this is the figure backpressure should watch.
        """
        return self.write_offset - self.acked_offset

    @property
    def fin_pending(self) -> bool:
        """The stream is finished and its FIN is not in flight nor acked."""
        return self.finished and not self._fin_sent

    @property
    def all_acked(self) -> bool:
        """Finished, and every byte and the FIN acknowledged."""
        return self._fin_acked and self.acked_offset == self.write_offset

    # -- tunnel side ------------------------------------------------------------------------

    def has_data_to_send(self, limit: int) -> bool:
        """Something is sendable: a retransmission, new data below ``limit``, or a FIN."""
        if self._lost._r:
            return True
        sent = self.sent_offset
        if sent < self.write_offset:
            return sent < limit
        return self.finished and not self._fin_sent

    def next_chunk(self, max_size: int, limit: int) -> tuple[int, bytes, bool] | None:
        """The next ``(offset, data, fin)`` to send, or None if nothing is sendable.

        Lost ranges come first, lowest offset first (they are below :attr:`sent_offset`, so
        ``limit`` does not apply); then new data from :attr:`sent_offset`, never past offset
        ``limit``; then a bare FIN (empty ``data``) once all data went out. ``fin`` is True
        when the chunk ends at the final size and the FIN is not already in flight.
        ``len(data) <= max_size``; with ``max_size == 0`` only a bare FIN can come out.
        """
        if max_size <= 0:
            return self._bare_fin()
        if self._lost._r:
            offset, end = self._lost.shift(max_size)
            data = self._slice(offset, end - offset)
        else:
            offset = self.sent_offset
            end = self.write_offset
            if offset >= end or offset >= limit:
                return self._bare_fin()
            if end > limit:
                end = limit
            n = end - offset
            if n > max_size:
                n = max_size
                end = offset + n
            if self._tail and end > self._tail_start:
                self._seal()
            i = self._cur
            pos = self._cur_pos
            chunk = self._chunks[i]
            stop = pos + n
            size = len(chunk)
            if stop < size:
                data = chunk[pos:stop]
                self._cur_pos = stop
            elif stop == size:
                data = chunk[pos:] if pos else chunk
                self._cur = i + 1
                self._cur_pos = 0
            else:
                data = self._take_across(i, pos, n)
            self.sent_offset = end
        if end == self.write_offset and self.finished and not self._fin_sent:
            self._fin_sent = True
            return offset, data, True
        return offset, data, False

    def _bare_fin(self) -> tuple[int, bytes, bool] | None:
        if self.finished and not self._fin_sent and self.sent_offset == self.write_offset:
            self._fin_sent = True
            return self.write_offset, b"", True
        return None

    def on_acked(self, offset: int, length: int, fin: bool) -> None:
        """The frame ``(offset, length, fin)`` was acknowledged. Duplicates are harmless."""
        if fin and self.finished:
            self._fin_acked = self._fin_sent = True
        end = offset + length
        if end > self.sent_offset:
            end = self.sent_offset  # never acknowledge what was never sent
        prefix = self.acked_offset
        if end <= prefix or end <= offset:
            return
        if self._lost._r:
            self._lost.subtract(offset, end)
        acked = self._acked
        if offset <= prefix and not acked._r:
            prefix = self.acked_offset = end  # in-order ack: the common case
        else:
            acked.add(offset, end)
            if acked._r[0] > prefix:
                return  # past a hole
            prefix = self.acked_offset = acked.shift()[1]
        if prefix >= self._release_at:
            self._release()

    def on_lost(self, offset: int, length: int, fin: bool) -> None:
        """The frame ``(offset, length, fin)`` was lost: queue its unacked parts again."""
        if fin and self.finished and not self._fin_acked:
            self._fin_sent = False
        end = offset + length
        if end > self.sent_offset:
            end = self.sent_offset
        if offset < self.acked_offset:
            offset = self.acked_offset
        if offset >= end:
            return
        acked = self._acked
        if not acked._r:
            self._lost.add(offset, end)
        else:
            for start, stop in acked.gaps_in(offset, end):
                self._lost.add(start, stop)

    # -- internals --------------------------------------------------------------------------

    def _seal(self) -> None:
        self._chunks.append(bytes(self._tail))
        self._starts.append(self._tail_start)
        self._tail.clear()

    def _take_across(self, i: int, pos: int, n: int) -> bytes:
        """New data spanning chunks from the send cursor: join views, one copy in all."""
        chunks = self._chunks
        chunk = chunks[i]
        parts: list[bytes | memoryview] = [memoryview(chunk)[pos:]]
        n -= len(chunk) - pos
        while n:
            i += 1
            chunk = chunks[i]
            size = len(chunk)
            if size <= n:
                parts.append(chunk)
                n -= size
                pos = 0
                if not n:
                    i += 1
            else:
                parts.append(memoryview(chunk)[:n])
                pos = n
                n = 0
        self._cur = i
        self._cur_pos = pos
        return b"".join(parts)

    def _slice(self, offset: int, n: int) -> bytes:
        """``n`` bytes at any unacked ``offset`` (retransmissions)."""
        starts = self._starts
        chunks = self._chunks
        i = bisect_right(starts, offset, self._head) - 1
        chunk = chunks[i]
        pos = offset - starts[i]
        end = pos + n
        size = len(chunk)
        if end <= size:
            if pos == 0 and end == size:
                return chunk
            return chunk[pos:end]
        parts: list[bytes | memoryview] = [memoryview(chunk)[pos:]]
        n -= size - pos
        while n > 0:
            i += 1
            chunk = chunks[i]
            if len(chunk) <= n:
                parts.append(chunk)
                n -= len(chunk)
            else:
                parts.append(memoryview(chunk)[:n])
                n = 0
        return b"".join(parts)

    def _release(self) -> None:
        """Drop chunks wholly below the acked prefix; cut a large partly acked one."""
        prefix = self.acked_offset
        chunks = self._chunks
        starts = self._starts
        h = self._head
        n = len(chunks)
        while h < n:
            chunk = chunks[h]
            start = starts[h]
            size = len(chunk)
            if start + size <= prefix:
                chunks[h] = b""
                h += 1
                continue
            done = prefix - start
            if size >= _TRIM_MIN and done * 2 >= size:
                chunks[h] = chunk[done:]
                starts[h] = prefix
                if self._cur == h:
                    self._cur_pos -= done
            break
        if h >= _COMPACT_MIN and h * 2 >= n:
            del chunks[:h]
            del starts[:h]
            self._cur -= h
            h = 0
        self._head = h
        if h < len(chunks):
            size = len(chunks[h])
            start = starts[h]
            self._release_at = start + (size + 1) // 2 if size >= _TRIM_MIN else start + size
        else:
            self._release_at = prefix + 1  # the next chunk is not sealed yet


class RecvBuffer:
    """Out-of-order stream data reassembled into an ordered byte stream.

    Data at the contiguous end goes straight to the ready queue (no copy; the common case).
    Data past a hole is stored piecewise, only the parts not already held (the first copy
    wins), and moves to the ready queue when the hole fills. The caller bounds memory with
    flow control, charging the count :meth:`add` returns.
    """

    __slots__ = (
        "_contig",
        "_ooo",
        "_pieces",
        "_ready",
        "final_size",
        "highest",
        "read_offset",
        "readable",
    )

    def __init__(self) -> None:
        #: Highest offset received + 1 (a FIN's final size counts); 0 if none.
        self.highest = 0
        #: Bytes delivered to the application so far.
        self.read_offset = 0
        #: Contiguous bytes ready at :attr:`read_offset`.
        self.readable = 0
        #: The final size once a FIN arrived, else None.
        self.final_size: int | None = None
        # A list, not a deque: it rarely holds more than a piece or two, and an empty deque
        # costs ~600 bytes per connection.
        self._ready: list[bytes | memoryview] = []
        self._contig = 0  # read_offset + readable
        self._ooo = RangeSet()  # ranges held past the contiguous end
        self._pieces: dict[int, bytes | memoryview] = {}  # start -> data, tiling _ooo exactly

    def add(self, offset: int, data: bytes | memoryview, fin: bool) -> int:
        """Take a frame; return how many bytes it adds past the previous :attr:`highest`.

        ``FinalSizeError`` if data goes past a known final size, a FIN gives a different
        final size, or a FIN's final size is below data already received.
        """
        n = len(data)
        end = offset + n
        final = self.final_size
        if fin:
            if final is not None and end != final:
                raise FinalSizeError(f"final size changed from {final} to {end}")
            if end < self.highest:
                raise FinalSizeError(f"final size {end} below data received up to {self.highest}")
            self.final_size = end
        elif final is not None and end > final:
            raise FinalSizeError(f"data up to {end} past final size {final}")
        highest = self.highest
        if end > highest:
            self.highest = end
            new = end - highest
        else:
            new = 0
        contig = self._contig
        if end <= contig or not n:
            return new  # duplicate, or no data
        if offset == contig and not self._ooo._r:
            self._ready.append(data)  # in order, nothing held past it: the common case
            self.readable += n
            self._contig = end
            return new
        if offset >= highest and offset > contig:
            # Past everything held (the usual case after a loss): nothing to overlap, and
            # the hole before it stays open.
            self._pieces[offset] = data
            self._ooo.add(offset, end)
            return new
        if offset < contig:
            data = memoryview(data)[contig - offset :]
            offset = contig
        ooo = self._ooo
        pieces = self._pieces
        for start, stop in ooo.gaps_in(offset, end):
            if start == offset and stop == end:
                pieces[start] = data
            else:
                pieces[start] = memoryview(data)[start - offset : stop - offset]
        ooo.add(offset, end)
        if ooo.bounds()[0] == contig:
            ready = self._ready
            stop = ooo.shift()[1]
            self.readable += stop - contig
            while contig < stop:
                piece = pieces.pop(contig)
                ready.append(piece)
                contig += len(piece)
            self._contig = contig
        return new

    def read(self, max_bytes: int = -1) -> bytes:
        """Up to ``max_bytes`` contiguous bytes (all of them if negative); b"" if none."""
        readable = self.readable
        if not readable or not max_bytes:
            return b""
        ready = self._ready
        if max_bytes < 0 or max_bytes >= readable:
            if len(ready) == 1:
                out = ready.pop(0)
                out = out if type(out) is bytes else bytes(out)
            else:
                out = b"".join(ready)
                ready.clear()
            self.readable = 0
            self.read_offset += readable
            return out
        parts = []
        left = max_bytes
        while left:
            piece = ready[0]
            size = len(piece)
            if size <= left:
                parts.append(ready.pop(0))
                left -= size
            else:
                # Keep the rest as a view: re-slicing bytes would copy it on every small read.
                view = memoryview(piece)
                parts.append(view[:left])
                ready[0] = view[left:]
                left = 0
        self.readable = readable - max_bytes
        self.read_offset += max_bytes
        return b"".join(parts)

    @property
    def eof(self) -> bool:
        """A FIN arrived and every byte up to it has been read."""
        return self.final_size is not None and self.read_offset == self.final_size
