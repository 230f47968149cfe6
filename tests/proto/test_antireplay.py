"""The replay cache on its own: windows, rotation, sizing, and its false-positive rate."""

from __future__ import annotations

import random

import pytest

from minimalt.proto.antireplay import BLOCK_BYTES, MAX_HASHES, ReplayCache, early_data_verdict


def make_cache(seed: int = 1, **kwargs: object) -> tuple[ReplayCache, random.Random]:
    rng = random.Random(seed)
    cache = ReplayCache(random=rng.randbytes, now_unix=1000.0, **kwargs)  # type: ignore[arg-type]
    return cache, rng


def test_an_identity_is_new_once_then_seen_within_the_window():
    cache, rng = make_cache()
    identity = rng.randbytes(32)
    assert cache.check_and_insert(identity, 1000.5)
    assert identity in cache
    assert not cache.check_and_insert(identity, 1001.0)
    assert not cache.check_and_insert(identity, 1009.9)


def test_an_identity_seen_in_the_previous_window_is_refused_and_remembered_again():
    cache, rng = make_cache(window=10.0)
    identity = rng.randbytes(32)
    assert cache.check_and_insert(identity, 1005.0)
    # Next window: still refused (it came from the previous filter) ...
    assert not cache.check_and_insert(identity, 1012.0)
    # ... and, having been seen again, refused a window later still.
    assert not cache.check_and_insert(identity, 1025.0)
    # Two whole windows without a sighting: forgotten (the freshness check covers it).
    assert cache.check_and_insert(identity, 1046.0)


def test_a_jump_over_several_windows_forgets_everything():
    cache, rng = make_cache(window=10.0)
    identities = [rng.randbytes(32) for _ in range(100)]
    for identity in identities:
        assert cache.check_and_insert(identity, 1000.0)
    assert all(cache.check_and_insert(identity, 1100.0) for identity in identities)


def test_memory_is_whole_blocks_and_fixed_whatever_the_traffic():
    cache, rng = make_cache(bits=1000)
    assert cache.bits % (BLOCK_BYTES * 8) == 0 and cache.bits >= 1000
    before = cache.memory_bytes
    for _ in range(5000):
        cache.check_and_insert(rng.randbytes(32), 1000.0)
    assert cache.memory_bytes == before == 2 * cache.bits // 8


@pytest.mark.parametrize("hashes", [0, MAX_HASHES + 1])
def test_a_cache_refuses_a_hash_count_it_cannot_serve(hashes: int):
    with pytest.raises(ValueError, match="hashes"):
        make_cache(hashes=hashes)


def test_false_positive_rate_at_the_designed_load_stays_near_its_target():
    # sized_for promises about 1e-4 here; a blocked filter may lose a small factor, never
    # orders of magnitude (a broken mask or block choice would show as ~1).
    rng = random.Random(7)
    cache = ReplayCache.sized_for(
        random=rng.randbytes,  # type: ignore[arg-type]
        now_unix=1000.0,
        window=10.0,
        tunnels_per_window=20_000,
        false_positive_rate=1e-4,
    )
    for _ in range(20_000):
        cache.check_and_insert(rng.randbytes(32), 1000.0)
    trials = 50_000
    false_positives = sum(rng.randbytes(32) in cache for _ in range(trials))
    assert false_positives / trials < 3e-4


def test_early_data_verdict_names_each_refusal():
    cache, rng = make_cache(window=10.0)
    identity = rng.randbytes(32)
    now = 1005.0
    assert early_data_verdict(None, identity, int(now * 1000), now) == "no replay cache"
    assert "freshness" in str(early_data_verdict(cache, identity, int((now - 11) * 1000), now))
    assert "before the replay cache" in str(
        early_data_verdict(cache, identity, int(now * 1000), now)  # cache started at 1000.0
    )
    assert early_data_verdict(cache, identity, int(now * 1000), now, key_exclusive=True) is None
    assert "replayed" in str(
        early_data_verdict(cache, identity, int(now * 1000), now, key_exclusive=True)
    )
