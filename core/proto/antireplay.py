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
"""

from __future__ import annotations

import hashlib
import math

from .crypto import RandomSource


class ReplayCache:
    """Time-windowed Bloom filters of first-packet identities."""

    __slots__ = ("window", "bits", "hashes", "_key", "_filters", "_epoch", "started_at")

    def __init__(
        self,
        *,
        random: RandomSource,
        now_unix: float,
        window: float = 10.0,
        bits: int = 1 << 20,
        hashes: int = 7,
    ) -> None:
        if bits < 8 or hashes < 1:
            raise ValueError("a replay cache needs at least 8 bits and one hash")
        self.window = window
        self.bits = bits
        self.hashes = hashes
        self._key = random(32)  # keyed hashing: peers cannot aim for collisions
        self._filters = [bytearray((bits + 7) // 8), bytearray((bits + 7) // 8)]
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
        hashes = max(1, round(bits / n * math.log(2)))
        return cls(random=random, now_unix=now_unix, window=window, bits=bits, hashes=hashes)

    @property
    def memory_bytes(self) -> int:
        return sum(len(f) for f in self._filters)

    def _positions(self, identity: bytes) -> list[int]:
        digest = hashlib.blake2b(identity, key=self._key, digest_size=16).digest()
        h1 = int.from_bytes(digest[:8], "little")
        h2 = int.from_bytes(digest[8:], "little") | 1
        return [(h1 + i * h2) % self.bits for i in range(self.hashes)]

    def _rotate(self, now_unix: float) -> None:
        epoch = int(now_unix // self.window)
        if epoch == self._epoch:
            return
        if epoch == self._epoch + 1:
            self._filters = [bytearray(len(self._filters[0])), self._filters[0]]
        elif epoch > self._epoch:
            self._filters = [bytearray(len(self._filters[0])), bytearray(len(self._filters[0]))]
        self._epoch = max(epoch, self._epoch)

    def check_and_insert(self, identity: bytes, now_unix: float) -> bool:
        """True if ``identity`` is new (and is now remembered); False if (probably) seen."""
        self._rotate(now_unix)
        positions = self._positions(identity)
        current, previous = self._filters
        seen = all(current[p >> 3] & (1 << (p & 7)) for p in positions) or all(
            previous[p >> 3] & (1 << (p & 7)) for p in positions
        )
        for p in positions:
            current[p >> 3] |= 1 << (p & 7)
        return not seen


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
