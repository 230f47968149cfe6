"""A set of integers kept as sorted, merged, half-open ``[start, stop)`` ranges."""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator


class RangeSet:
    """Sorted, merged, half-open integer ranges.

    Used for received packet numbers (the source of selective acks), acknowledged stream
    ranges and ranges waiting for retransmission. The common case is adding at or past the
    end (packet numbers and offsets mostly grow), which is O(1) amortised; anything else is a
    binary search plus a list splice.

    The ranges are stored as one flat list ``[start0, stop0, start1, stop1, ...]``: with that
    layout ``bisect`` works without a key function and the parity of an insertion point says
    whether a value falls inside a range (odd) or in a gap (even). Adjacent ranges are merged,
    so ``[0, 3)`` plus ``[3, 5)`` is the single range ``[0, 5)``. Callers bound the number of
    ranges with :meth:`trim_below`.
    """

    __slots__ = ("_r",)

    def __init__(self, ranges: Iterable[tuple[int, int]] = ()) -> None:
        self._r: list[int] = []
        if ranges:
            for start, stop in ranges:
                self.add(start, stop)

    def add(self, start: int, stop: int) -> None:
        """Add ``[start, stop)``; an empty range (``start >= stop``) is ignored."""
        if start >= stop:
            return
        r = self._r
        # Fast path: at or past the last range.
        if not r or start > r[-1]:
            r.append(start)
            r.append(stop)
            return
        if start >= r[-2]:
            if stop > r[-1]:
                r[-1] = stop
            return
        i = bisect_left(r, start)  # boundaries < start
        if i & 1:  # start is inside (or touches the end of) range (i-1)//2
            i -= 1
            start = r[i]
        j = bisect_right(r, stop)  # boundaries <= stop
        if j & 1:  # stop is inside (or touches the start of) range j//2
            stop = r[j]
            j += 1
        r[i:j] = (start, stop)

    def subtract(self, start: int, stop: int) -> None:
        """Remove ``[start, stop)``."""
        if start >= stop:
            return
        r = self._r
        i = bisect_left(r, start)  # odd: a range begins before start and must keep its head
        j = bisect_right(r, stop)  # odd: a range ends after stop and must keep its tail
        if i & 1:
            r[i:j] = (start, stop) if j & 1 else (start,)
        else:
            r[i:j] = (stop,) if j & 1 else ()

    def __contains__(self, value: int) -> bool:
        return bool(bisect_right(self._r, value) & 1)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        r = self._r
        return zip(r[::2], r[1::2], strict=True)

    def __reversed__(self) -> Iterator[tuple[int, int]]:
        r = self._r
        return zip(r[-2::-2], r[::-2], strict=True)

    def inclusive_descending(self) -> list[tuple[int, int]]:
        """The ranges as inclusive ``(first, last)`` pairs, highest first (an ACK's order)."""
        r = self._r
        if len(r) == 2:  # the usual case: everything received so far is contiguous
            return [(r[0], r[1] - 1)]
        return [(r[i], r[i + 1] - 1) for i in range(len(r) - 2, -1, -2)]

    def __len__(self) -> int:
        return len(self._r) >> 1

    def __bool__(self) -> bool:
        return bool(self._r)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RangeSet):
            return NotImplemented
        return self._r == other._r

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"RangeSet({list(self)!r})"

    def bounds(self) -> tuple[int, int]:
        """``(first start, last stop)``; ``ValueError`` if the set is empty."""
        r = self._r
        if not r:
            raise ValueError("empty RangeSet has no bounds")
        return r[0], r[-1]

    def shift(self, max_length: int | None = None) -> tuple[int, int]:
        """Remove and return the first range, or only its first ``max_length`` integers.

        ``IndexError`` if the set is empty.
        """
        r = self._r
        if not r:
            raise IndexError("shift from an empty RangeSet")
        start = r[0]
        stop = r[1]
        if max_length is not None and stop - start > max_length:
            stop = start + max_length
            r[0] = stop
            return start, stop
        del r[:2]
        return start, stop

    def trim_below(self, value: int) -> None:
        """Drop every integer below ``value``."""
        r = self._r
        i = bisect_right(r, value)
        if i & 1:
            r[i - 1] = value
            del r[: i - 1]
        elif i:
            del r[:i]

    def first_gap_from(self, value: int) -> int:
        """The smallest integer ``>= value`` that is not in the set."""
        r = self._r
        i = bisect_right(r, value)
        return r[i] if i & 1 else value

    def gaps_in(self, start: int, stop: int) -> list[tuple[int, int]]:
        """The parts of ``[start, stop)`` that are not in the set, ascending."""
        r = self._r
        n = len(r)
        i = bisect_right(r, start)
        if i & 1:
            pos = r[i]
            i += 1
        else:
            pos = start
        gaps = []
        while i < n and r[i] < stop:
            if r[i] > pos:
                gaps.append((pos, r[i]))
            pos = r[i + 1]
            i += 2
        if pos < stop:
            gaps.append((pos, stop))
        return gaps

    def covers(self, start: int, stop: int) -> bool:
        """True if every integer of ``[start, stop)`` is in the set (an empty range is)."""
        if start >= stop:
            return True
        r = self._r
        i = bisect_right(r, start)
        return bool(i & 1) and r[i] >= stop
