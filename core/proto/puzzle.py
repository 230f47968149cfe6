"""Stateless client puzzles (DESIGN §8): the server's defence against floods of first packets.

Under load the server answers a first packet with a puzzle instead of doing its Curve25519
work. The puzzle is a challenge the server can recompute from a rotating secret, so it keeps no
state per client:

    challenge = BLAKE2b-128(key = secret(window), client key · server key id · window · difficulty)

The client finds an 8-byte solution such that BLAKE2b-64(challenge · solution) starts with
``difficulty`` zero bits, and resends its first packet with window, difficulty, challenge and
solution. The server checks it with two BLAKE2b calls, before any public-key operation; a
solution is accepted once (a Bloom filter of used challenges per window).
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from dataclasses import dataclass

from . import constants as C
from .antireplay import ReplayCache
from .crypto import RandomSource

_WINDOW = struct.Struct(">IB")


def leading_zero_bits(digest: bytes) -> int:
    value = int.from_bytes(digest, "big")
    return len(digest) * 8 - value.bit_length()


def _work(challenge: bytes, solution: bytes) -> bytes:
    return hashlib.blake2b(challenge + solution, digest_size=8).digest()


def solve(section: bytes, *, max_difficulty: int = C.MAX_PUZZLE_DIFFICULTY) -> bytes | None:
    """The answer section (puzzle section + solution) for a server's puzzle section, or None
    if the puzzle is malformed or harder than ``max_difficulty``. Expected 2**difficulty
    BLAKE2b calls."""
    if len(section) != C.PUZZLE_SECTION_SIZE:
        return None
    difficulty = section[C.PUZZLE_WINDOW_SIZE]
    if difficulty > max_difficulty:
        return None
    challenge = section[C.PUZZLE_WINDOW_SIZE + 1 :]
    counter = 0
    while True:
        solution = counter.to_bytes(C.PUZZLE_SOLUTION_SIZE, "big")
        if leading_zero_bits(_work(challenge, solution)) >= difficulty:
            return section + solution
        counter += 1


def busy_section(limit: int) -> bytes:
    """The clear section of a *busy* answer: the server is at ``limit`` (``C.BUSY_*``), so no
    puzzle answer would get a tunnel now. Shaped like a puzzle section, so a client that does
    not know it sees a puzzle too hard to solve and ignores it."""
    return _WINDOW.pack(0, C.BUSY_DIFFICULTY) + bytes([limit]) + bytes(C.PUZZLE_CHALLENGE_SIZE - 1)


def busy_limit(section: bytes) -> int | None:
    """``C.BUSY_*`` if ``section`` is a busy answer, else None (a real puzzle)."""
    if len(section) != C.PUZZLE_SECTION_SIZE or section[C.PUZZLE_WINDOW_SIZE] != C.BUSY_DIFFICULTY:
        return None
    return section[C.PUZZLE_WINDOW_SIZE + 1]


@dataclass
class PuzzleStats:
    issued: int = 0
    solved: int = 0
    refused: int = 0


class PuzzleIssuer:
    """Server side: decides when to demand puzzles, issues them and checks answers."""

    def __init__(
        self,
        *,
        random: RandomSource,
        threshold: float | None,
        difficulty: int,
        max_difficulty: int = 24,
        now_unix: float,
    ) -> None:
        self._master = random(32)
        #: New-tunnel attempts per second above which puzzles are demanded (0: always;
        #: None: never).
        self.threshold = threshold
        self.base_difficulty = difficulty
        self.max_difficulty = max_difficulty
        self._bucket_start = now_unix
        self._bucket_count = 0
        self._rate = 0.0  # first packets per second in the last full second
        self._used = ReplayCache(
            random=random, now_unix=now_unix, window=C.PUZZLE_PERIOD, bits=1 << 20, hashes=5
        )
        self.stats = PuzzleStats()

    # --- load ----------------------------------------------------------------------------

    def note_attempt(self, now_unix: float) -> None:
        """Count one first packet (before any expensive work)."""
        if now_unix - self._bucket_start >= 1.0:
            elapsed = now_unix - self._bucket_start
            self._rate = self._bucket_count / elapsed if elapsed < 2.0 else 0.0
            self._bucket_start = now_unix
            self._bucket_count = 0
        self._bucket_count += 1

    def current_load(self, now_unix: float) -> float:
        """Attempts per second: the last full second, or the current one if already higher."""
        elapsed = max(now_unix - self._bucket_start, 1e-3)
        current = self._bucket_count / max(elapsed, 1.0)
        return max(self._rate, current)

    def required_difficulty(self, now_unix: float) -> int | None:
        """None when no puzzle is needed now, else the difficulty to demand (adaptive: one
        more bit each time the load doubles past the threshold)."""
        threshold = self.threshold
        if threshold is None:
            return None
        load = self.current_load(now_unix)
        if threshold > 0 and load <= threshold:
            return None
        extra = 0
        if threshold > 0:
            ratio = load / threshold
            while ratio >= 2 and extra < 16:
                ratio /= 2
                extra += 1
        return min(self.base_difficulty + extra, self.max_difficulty)

    # --- puzzles -------------------------------------------------------------------------

    def _window(self, now_unix: float) -> int:
        return int(now_unix // C.PUZZLE_PERIOD) & 0xFFFFFFFF

    def _challenge(
        self, client_public: bytes, key_id: bytes, window: int, difficulty: int
    ) -> bytes:
        secret = hashlib.blake2b(window.to_bytes(4, "big"), key=self._master, digest_size=32)
        return hashlib.blake2b(
            client_public + key_id + _WINDOW.pack(window, difficulty),
            key=secret.digest(),
            digest_size=C.PUZZLE_CHALLENGE_SIZE,
        ).digest()

    def puzzle_section(
        self, client_public: bytes, key_id: bytes, difficulty: int, now_unix: float
    ) -> bytes:
        """The clear section of a puzzle packet for this client."""
        window = self._window(now_unix)
        self.stats.issued += 1
        return _WINDOW.pack(window, difficulty) + self._challenge(
            client_public, key_id, window, difficulty
        )

    def check(
        self, answer: bytes, client_public: bytes, key_id: bytes, now_unix: float
    ) -> str | None:
        """None if ``answer`` solves a puzzle we issued to this client recently and was not
        used before; else why not. Two BLAKE2b calls (and a Bloom filter) at most."""
        window, difficulty = _WINDOW.unpack_from(answer, 0)
        current = self._window(now_unix)
        if window not in (current, (current - 1) & 0xFFFFFFFF):
            return "puzzle_expired"
        if difficulty < self.base_difficulty:
            return "puzzle_too_easy"
        challenge = answer[C.PUZZLE_WINDOW_SIZE + 1 : C.PUZZLE_SECTION_SIZE]
        expected = self._challenge(client_public, key_id, window, difficulty)
        if not hmac.compare_digest(challenge, expected):
            return "puzzle_forged"
        solution = answer[C.PUZZLE_SECTION_SIZE :]
        if leading_zero_bits(_work(challenge, solution)) < difficulty:
            return "puzzle_unsolved"
        if not self._used.check_and_insert(challenge, now_unix):
            return "puzzle_reused"
        self.stats.solved += 1
        return None
