"""0-RTT anti-replay: the freshness window and a bounded replay cache of first packets.

A first packet's early data may run only if (Zero protocol's lessons, DESIGN §7):

1. its client timestamp is within ``window`` seconds of the server's clock (clients correct
   their clock with the skew the server reported on an earlier tunnel);
2. it was sent after the cache started remembering, less the window, unless the key it is
   boxed to never left this process (so a restarted server, or a replica sharing keys,
   refuses early data it cannot vouch for instead of running it a second time);
3. its identity (the client's ephemeral public key, fresh per tunnel) is not in the cache.

The cache is a pair of Bloom filters, each covering one window: memory is fixed by the
``bits`` setting whatever the traffic. A false positive only costs the client one round trip
(its early data is refused and resent), never a lost or doubled request.

The filters are *blocked* Bloom filters (Putze, Sanders, Singler 2007): all of an identity's
bits fall in one 64-byte block, so a lookup touches one cache line per filter instead of one
per hash. With megabytes of filter that is the difference between ~2 and ~14 cache misses
per new tunnel; the price is a slightly higher false-positive rate for the same memory
(``sized_for`` adds a quarter more bits to make up for it).
"""

from __future__ import annotations

import hashlib
import math
from itertools import repeat

from .crypto import RandomSource

#: Bytes (and bits) of one block: a cache line.
BLOCK_BYTES = 64
_BLOCK_BITS = BLOCK_BYTES * 8
_POSITION_BITS = 9  # one bit position within a block
#: The most hash functions a cache takes (positions come from one BLAKE2b digest).
MAX_HASHES = 16


class ReplayCache:
    """Time-windowed blocked Bloom filters of first-packet identities."""

    __slots__ = (
        "window",
        "bits",
        "hashes",
        "_key",
        "_filters",
        "_epoch",
        "_blocks",
        "_digest_size",
        "started_at",
    )

    def __init__(
        self,
        *,
        random: RandomSource,
        now_unix: float,
        window: float = 10.0,
        bits: int = 1 << 20,
        hashes: int = 7,
    ) -> None:
        if bits < 8 or not 1 <= hashes <= MAX_HASHES:
            raise ValueError(f"a replay cache needs at least 8 bits and 1 to {MAX_HASHES} hashes")
        self.window = window
        self._blocks = -(-bits // _BLOCK_BITS)  # whole blocks
        self.bits = self._blocks * _BLOCK_BITS
        self.hashes = hashes
        # 8 bytes choose the block, then 9 bits per hash choose its bit in the block.
        self._digest_size = 8 + -(-hashes * _POSITION_BITS // 8)
        self._key = random(32)  # keyed hashing: peers cannot aim for collisions
        self._filters = [bytearray(self._blocks * BLOCK_BYTES) for _ in range(2)]
        self._epoch = int(now_unix // window)
        #: Unix time from which every first packet accepted is remembered.
        self.started_at = now_unix

    @classmethod
    def sized_for(
        cls,
        *,
        random: RandomSource,
        now_unix: float,
        window: float,
        tunnels_per_window: int,
        false_positive_rate: float = 1e-6,
    ) -> ReplayCache:
        """A cache whose false-positive rate stays below ``false_positive_rate`` with up to
        ``tunnels_per_window`` new tunnels per window."""
        n = max(1, tunnels_per_window)
        bits = int(-n * math.log(false_positive_rate) / (math.log(2) ** 2)) + 8
        hashes = min(MAX_HASHES, max(1, round(bits / n * math.log(2))))
        bits += bits // 4  # blocked filters need a little more room (module docstring)
        return cls(random=random, now_unix=now_unix, window=window, bits=bits, hashes=hashes)

    @property
    def memory_bytes(self) -> int:
        return sum(len(f) for f in self._filters)

    def _locate(self, identity: bytes) -> tuple[int, int]:
        """(byte offset of the identity's block, mask of its bits in that block)."""
        digest = hashlib.blake2b(identity, key=self._key, digest_size=self._digest_size).digest()
        offset = int.from_bytes(digest[:8], "little") % self._blocks * BLOCK_BYTES
        rest = int.from_bytes(digest[8:], "little")
        mask = 0
        for _ in repeat(None, self.hashes):
            mask |= 1 << (rest & (_BLOCK_BITS - 1))
            rest >>= _POSITION_BITS
        return offset, mask

    def _rotate(self, now_unix: float) -> None:
        epoch = int(now_unix // self.window)
        if epoch == self._epoch:
            return
        if epoch == self._epoch + 1:
            self._filters = [bytearray(len(self._filters[0])), self._filters[0]]
        elif epoch > self._epoch:
            self._filters = [bytearray(len(self._filters[0])), bytearray(len(self._filters[0]))]
        self._epoch = max(epoch, self._epoch)

    def __contains__(self, identity: bytes) -> bool:
        """Whether ``identity`` was (probably) seen in this window or the previous one; unlike
        ``check_and_insert`` it remembers nothing and does not rotate the windows."""
        start, mask = self._locate(identity)
        stop = start + BLOCK_BYTES
        return any(
            int.from_bytes(bloom[start:stop], "little") & mask == mask for bloom in self._filters
        )

    def check_and_insert(self, identity: bytes, now_unix: float) -> bool:
        """True if ``identity`` is new (and is now remembered); False if (probably) seen."""
        self._rotate(now_unix)
        start, mask = self._locate(identity)
        stop = start + BLOCK_BYTES
        current, previous = self._filters
        block = int.from_bytes(current[start:stop], "little")
        if block & mask == mask:
            return False
        current[start:stop] = (block | mask).to_bytes(BLOCK_BYTES, "little")
        # Seen in the previous window only: remembered in the current one too (above), so it
        # stays remembered for a whole window after its last sighting.
        return int.from_bytes(previous[start:stop], "little") & mask != mask


def early_data_verdict(
    cache: ReplayCache | None,
    identity: bytes,
    client_time_ms: int,
    now_unix: float,
    key_exclusive: bool = False,
) -> str | None:
    """None if a first flight's early data may run, else the reason it may not.

    ``key_exclusive``: the server ephemeral key the packet is boxed to was made by this
    process and never shared, so no earlier process or replica can have accepted it.
    """
    if cache is None:
        return "no replay cache"
    client_time = client_time_ms / 1000.0
    if abs(now_unix - client_time) > cache.window:
        return "client clock outside the freshness window"
    if not key_exclusive and client_time - cache.window < cache.started_at:
        return "sent before the replay cache could remember it"
    if not cache.check_and_insert(identity, now_unix):
        return "replayed (or a replay-cache false positive)"
    return None
