"""ReplayWindow, table-driven in the manner of wireguard-go's replay test."""

from __future__ import annotations

import pytest

from minimalt.proto.replay import ReplayWindow

W = 64  # a small window keeps the table readable; the default size is tested below

# (nonce, expected accept result), applied in order to one window.
TABLE = [
    (0, True),
    (1, True),
    (1, False),  # duplicate
    (9, True),
    (8, True),  # out of order within the window
    (7, True),
    (7, False),
    (W, True),
    (W - 1, True),
    (W - 1, False),
    (W - 2, True),
    (2, True),  # 62 behind highest: still inside
    (2, False),
    (W + 16, True),
    (3, False),  # now 77 behind: too old
    (W + 16, False),
    (W * 4, True),  # big jump: everything before falls out
    (W * 4 - (W - 1), True),  # oldest still inside
    (10, False),
    (W * 4 - W, False),  # exactly size behind: too old
    (W * 4 - (W - 1), False),
    (W * 4 + 1, True),
    (W * 4 - (W - 2), True),  # the slide by one left it as the oldest: inside, unseen
    (W * 4 - (W - 1), False),  # slid out
    (2**63, True),  # a jump far past the window does not build a huge bitmap
    (2**63 - 1, True),
    (2**63 - 1, False),
    (2**63 - W, False),
]


def test_table():
    window = ReplayWindow(W)
    for row, (nonce, expected) in enumerate(TABLE):
        before = window.check(nonce)
        assert before == expected, f"row {row}: check({nonce})"
        assert window.accept(nonce) == expected, f"row {row}: accept({nonce})"
        assert not window.check(nonce), f"row {row}: {nonce} must be rejected once accepted"


def test_check_changes_nothing():
    window = ReplayWindow(W)
    assert window.check(5)
    assert window.check(5)
    assert window.highest == -1
    assert window.accept(5)
    assert window.highest == 5


def test_one_direction_stepping_by_two_fills_half_the_window():
    window = ReplayWindow()  # 2048 nonces = the last 1024 packets of one direction
    nonces = list(range(1, 2 * 5000, 2))  # client nonces are odd
    for n in nonces:
        assert window.accept(n)
    top = nonces[-1]
    late_ok = top - 2 * 1023  # 1023 packets late: inside
    late_bad = top - 2 * 1024  # 1024 packets late: outside
    assert not window.check(late_ok)  # already seen
    assert not window.check(late_bad)
    fresh = ReplayWindow()
    fresh.accept(top)
    assert fresh.accept(late_ok)
    assert not fresh.accept(late_bad)


def test_random_order_within_the_window_accepts_each_nonce_once():
    import random

    rng = random.Random(7)
    nonces = list(range(0, 4000, 2))
    # shuffle within blocks smaller than the window so nothing becomes too old
    for i in range(0, len(nonces), 500):
        block = nonces[i : i + 500]
        rng.shuffle(block)
        nonces[i : i + 500] = block
    window = ReplayWindow()
    for n in nonces:
        assert window.accept(n)
    for n in nonces[-500:]:
        assert not window.accept(n)


def test_rejects_a_non_positive_size():
    with pytest.raises(ValueError):
        ReplayWindow(0)
