"""The sliding replay window over received packet nonces (RFC 6479 / WireGuard style)."""

from __future__ import annotations

DEFAULT_WINDOW = 2048


_masks: dict[int, int] = {}


class ReplayWindow:
    """Remembers which of the last ``size`` nonce *values* were received.

    The window covers the nonces ``highest - size + 1 .. highest``: anything below is too old
    and rejected, anything inside is accepted once, anything above slides the window up. It
    works for any increasing integers. In MinimaLT each direction uses every other nonce
    (client odd, server even), so the default window of 2048 nonces spans the last 1024
    packets of one direction: a packet may arrive up to 1023 packets late.

    The bitmap is one Python int (bit ``k`` set means ``highest - k`` was received), which
    keeps the per-packet cost to a couple of C-level big-int operations rather than the word
    arithmetic of RFC 6479 that is fast in C but slow in Python.

    Use :meth:`check` before decrypting (a cheap reject of replays and stale packets) and
    :meth:`accept` only after the packet authenticated, so forged packets cannot move the
    window.
    """

    __slots__ = ("_bits", "_mask", "highest", "size")

    def __init__(self, size: int = DEFAULT_WINDOW) -> None:
        if size <= 0:
            raise ValueError("replay window size must be positive")
        self.size = size
        self._mask = _masks.setdefault(size, (1 << size) - 1)  # shared: 300 bytes per window
        self._bits = 0
        #: Highest nonce accepted so far; -1 before the first one.
        self.highest = -1

    def check(self, n: int) -> bool:
        """True if ``n`` is neither too old nor already accepted. Changes nothing."""
        highest = self.highest
        if n > highest:
            return True
        d = highest - n
        if d >= self.size or n < 0:
            return False
        return not (self._bits >> d) & 1

    def accept(self, n: int) -> bool:
        """Record ``n`` as received; False (and no change) if it was a replay or too old."""
        highest = self.highest
        if n > highest:
            d = n - highest
            # A jump past the whole window forgets everything; the shift is bounded so a
            # huge jump cannot build a huge integer.
            self._bits = ((self._bits << d) & self._mask) | 1 if d < self.size else 1
            self.highest = n
            return True
        d = highest - n
        if d >= self.size or n < 0:
            return False
        bit = 1 << d
        bits = self._bits
        if bits & bit:
            return False
        self._bits = bits | bit
        return True

    def __repr__(self) -> str:
        return f"ReplayWindow(size={self.size}, highest={self.highest})"
