"""RangeSet against a plain set-of-ints model, plus the edge cases callers rely on."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minimalt.proto.rangeset import RangeSet

SPAN = 60  # small universe so random operations collide, merge and split often


def model_ranges(values: set[int]) -> list[tuple[int, int]]:
    """The canonical merged half-open ranges of a set of ints."""
    out: list[tuple[int, int]] = []
    for v in sorted(values):
        if out and out[-1][1] == v:
            out[-1] = (out[-1][0], v + 1)
        else:
            out.append((v, v + 1))
    return out


bounds = st.integers(min_value=-5, max_value=SPAN)
ops = st.lists(
    st.tuples(st.sampled_from(["add", "subtract", "trim_below", "shift"]), bounds, bounds),
    max_size=60,
)


@settings(max_examples=400, derandomize=True)
@given(ops)
def test_operations_match_a_set_of_ints(operations):
    rs = RangeSet()
    model: set[int] = set()
    for op, a, b in operations:
        if op == "add":
            rs.add(a, b)
            model |= set(range(a, b))
        elif op == "subtract":
            rs.subtract(a, b)
            model -= set(range(a, b))
        elif op == "trim_below":
            rs.trim_below(a)
            model = {v for v in model if v >= a}
        elif model:
            first = model_ranges(model)[0]
            assert rs.shift() == first
            model -= set(range(*first))
        else:
            with pytest.raises(IndexError):
                rs.shift()
        expected = model_ranges(model)
        assert list(rs) == expected
        assert list(reversed(rs)) == expected[::-1]
        assert rs.inclusive_descending() == [(a, b - 1) for a, b in expected[::-1]]
        assert len(rs) == len(expected)
        assert bool(rs) == bool(model)
        if model:
            assert rs.bounds() == (min(model), max(model) + 1)
        for v in range(-6, SPAN + 2):
            assert (v in rs) == (v in model)


@settings(max_examples=300, derandomize=True)
@given(st.lists(st.tuples(bounds, bounds), max_size=20), bounds, bounds)
def test_queries_match_a_set_of_ints(ranges, a, b):
    rs = RangeSet(ranges)
    model = {v for s, e in ranges for v in range(s, e)}
    missing = {v for v in range(a, b) if v not in model}
    assert rs.gaps_in(a, b) == model_ranges(missing)
    assert rs.covers(a, b) == (not missing)
    gap = a
    while gap in model:
        gap += 1
    assert rs.first_gap_from(a) == gap
    assert RangeSet(rs) == rs


@settings(max_examples=200, derandomize=True)
@given(st.lists(st.tuples(bounds, st.integers(min_value=1, max_value=10)), min_size=1))
def test_shift_with_a_length_limit_takes_the_head_of_the_first_range(ranges):
    rs = RangeSet((s, s + n) for s, n in ranges)
    before = list(rs)
    start, stop = before[0]
    assert rs.shift(3) == (start, min(stop, start + 3))
    expected = ([(start + 3, stop)] if stop - start > 3 else []) + before[1:]
    assert list(rs) == expected


def test_adjacent_ranges_merge_and_empty_ranges_are_ignored():
    rs = RangeSet([(0, 3), (3, 5), (7, 7), (9, 8)])
    assert list(rs) == [(0, 5)]
    rs.add(6, 8)
    rs.add(5, 6)
    assert list(rs) == [(0, 8)]


def test_in_order_appends_extend_the_last_range():
    rs = RangeSet()
    for n in range(0, 1000, 2):  # odd-stepping packet numbers of one direction
        rs.add(n, n + 1)
    assert len(rs) == 500
    rs2 = RangeSet()
    for n in range(1000):
        rs2.add(n, n + 1)
    assert list(rs2) == [(0, 1000)]


def test_subtract_splits_a_range():
    rs = RangeSet([(0, 10)])
    rs.subtract(3, 5)
    assert list(rs) == [(0, 3), (5, 10)]
    rs.subtract(-1, 1)
    rs.subtract(9, 20)
    assert list(rs) == [(1, 3), (5, 9)]


def test_trim_below_cuts_inside_a_range_and_drops_earlier_ones():
    rs = RangeSet([(0, 2), (4, 8), (10, 12)])
    rs.trim_below(5)
    assert rs == RangeSet([(5, 8), (10, 12)])
    rs.trim_below(8)
    assert list(rs) == [(10, 12)]


def test_empty_set_has_no_bounds_and_compares_by_value():
    rs = RangeSet()
    with pytest.raises(ValueError):
        rs.bounds()
    assert rs == RangeSet()
    assert rs != RangeSet([(1, 2)])
    assert repr(RangeSet([(1, 2)])) == "RangeSet([(1, 2)])"
