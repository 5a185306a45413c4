"""The random-model property test's second half (see tests/test_random_models.py).

The same generator and the same check, under another hypothesis seed (derandomized runs are
seeded by the test function's source), so the two halves draw different models; in a file of
its own so that the two CI workers (``-n 2 --dist loadfile``) fit the halves side by side.
"""

from __future__ import annotations

import pytest
from hypothesis import given

from test_random_models import (  # noqa: F401  (_fast_compiles: the module's autouse fixture)
    DISTINCT, DRAWN, RANDOM_MODELS, _fast_compiles, cases, check_and_fit,
)


@RANDOM_MODELS
@given(case=cases())
@pytest.mark.timeout(1500)
def test_more_random_models_check_and_fit_or_raise_a_located_error(case):
    text, spec, n = case
    problem = check_and_fit(text, spec, n, half="second")
    assert problem is None, f"{problem}\n--- model (N = {n}) ---\n{text}"


def test_the_second_half_drew_enough_different_models():
    drawn = DRAWN.get("second", set())
    assert len(drawn) >= DISTINCT, f"{len(drawn)} different models drawn"
    # The halves' models differ (in one process, as without xdist, the first half's are known).
    assert len(drawn & DRAWN.get("first", set())) <= len(drawn) // 10
