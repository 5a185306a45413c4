"""Uses of vemppl written from docs/language.md, cli.md, scaling.md and model-selection.md alone
(round 9 of the outsider checks: the Python DSL, stochastic VI, model selection, seeds, saved
results).  Each test first failed on the code before its fix.
"""

import numpy as np
import pytest

import vemppl as vp


# --- the DSL: Python's own iteration and truth tests of a model expression ---------------------------
def test_python_sum_of_a_dsl_expression_is_a_clear_error_not_an_endless_loop():
    # Before: E had __getitem__ but no __iter__, so sum(x[n]) asked for x[n][0], x[n][1], ... for ever.
    m = vp.Model("s")
    N, D = m.dim("N", "D")
    x = m.data("x", vp.real[N, D])
    with m.plate("n", N) as n:
        with pytest.raises(TypeError, match="vp.sum_"):
            iter(x[n])  # what sum(x[n]), list(x[n]) and `a, b = x[n]` call first
        with pytest.raises(TypeError, match="truth value"):
            bool(x[n])
