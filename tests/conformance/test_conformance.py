"""The conformance cases (tests/conformance/cases.py) in their fast profile, one test each.

A failing case fails its test with the case's detail; an unsupported one is skipped with the
reason. ``MINIMALT_CONFORMANCE=full`` runs the full profile instead (what ``make conformance``
runs, minutes rather than seconds).
"""

from __future__ import annotations

import os

import pytest

from tests.aio.leaks import no_leaked_resources  # noqa: F401  (autouse fixture)
from tests.conformance.cases import CASES, PROFILES
from tests.conformance.runner import run_case

PROFILE = PROFILES[os.environ.get("MINIMALT_CONFORMANCE", "fast")]


@pytest.mark.network
@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_conformance_case(case):
    outcome = run_case(case, PROFILE)
    if outcome.result == "unsupported":
        pytest.skip(f"unsupported: {outcome.detail}")
    assert outcome.result == "pass", f"{case.name} failed: {outcome.detail}"
