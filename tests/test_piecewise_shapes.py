"""A node defined by several statements over different ranges has the extent that covers
every piece (issue #23), as the bound arrays have (elj.plates.plate_shape); the static
shape used to be the first piece's."""

from __future__ import annotations

import numpy as np
import pytest

import vemppl as vp

PIECES = """model pw
data y: real[5]
for t in range(0, 2) { x[t] ~ Normal(0, 1) }
for t in range(2, 5) { x[t] ~ Normal(1, precision = 4.0) }
for t in range(5) { y[t] ~ Normal(x[t], precision = 2.0) }
"""


def test_a_smaller_first_piece_gives_the_union_and_the_fit_is_exact():
    m = vp.parse(PIECES, filename="pw.vem")
    assert m.shapes["x"] == (5,)  # was (2,): the first loop's range
    y = np.array([0.3, -0.5, 1.2, 0.8, 2.0])
    fit = vp.fit(m, {"y": y}, tol=1e-13)
    p0, m0 = np.array([1.0, 1, 4, 4, 4]), np.array([0.0, 0, 1, 1, 1])  # each x[t]'s prior
    np.testing.assert_allclose(np.asarray(fit.posterior["x"].mean), (p0 * m0 + 2 * y) / (p0 + 2), atol=1e-10)


@pytest.mark.parametrize("pieces, shape", [
    ("x[0] ~ Normal(0, 1)\nx[1] ~ Normal(0, 1)\nx[2] ~ Normal(0, 1)", (3,)),  # constant indices only: was (1,)
    ("x[0] ~ Normal(0, 1)\nfor t in range(1, 4) { x[t] ~ Normal(0, 1) }", (4,)),
    ("for t in range(1, 4) { x[t] ~ Normal(0, 1) }\nx[0] ~ Normal(0, 1)", (4,)),
    ("for t in range(0, 3) { x[t] ~ Normal(0, 1) }\nx[3] ~ Normal(0, 1)", (4,)),  # was (3,)
])
def test_constant_and_loop_pieces(pieces, shape):
    m = vp.parse(f"model c\ndata y: real[{shape[0]}]\n{pieces}\nfor t in range({shape[0]}) {{ y[t] ~ Normal(x[t], 1) }}\n")
    assert m.shapes["x"] == shape


@pytest.mark.parametrize("first", [True, False])
def test_a_constant_index_under_a_symbolic_piece_takes_the_symbol(first):
    pieces = ["x[0] ~ Normal(0, 1)", "for t in range(T) { x[t + 1] ~ Normal(0, 1) }"]
    body = "\n".join(pieces if first else pieces[::-1])
    m = vp.parse(f"model s\ndim T\ndata y: real[T]\n{body}\nfor t in range(T) {{ y[t] ~ Normal(x[t], 1) }}\n")
    assert m.shapes["x"] == ("T+1",)


def test_a_piecewise_data_node_matches_its_declaration():
    """Declared real[5], defined over [0, 2) and [2, 5): was 'declared with shape [5] but
    its statements give [2]'."""
    m = vp.parse("model d\nmu ~ Normal(0, 1)\ndata y: real[5]\n"
                 "for t in range(0, 2) { y[t] ~ Normal(mu, 1) }\nfor t in range(2, 5) { y[t] ~ Normal(mu, 4) }\n")
    assert m.shapes["y"] == (5,)


# ---- two size symbols: t < T and T <= t < S ----------------------------------------------------
TWO_SYMBOLS = """model pw2
dim T, S
data y: real[S]
for t in range(T) { x[t] ~ Normal(0, 1) }
for t in range(T, S) { x[t] ~ Normal(1, precision = 4.0) }
for t in range(S) { y[t] ~ Normal(x[t], precision = 2.0) }
"""


def test_pieces_over_two_size_symbols_cover_both_and_fit_exactly():
    """range(T) and range(T, S) are disjoint (was refused as 'defined twice'), and the node's
    extent is the larger of T and S (was T, the first piece's), as the bound arrays have."""
    m = vp.parse(TWO_SYMBOLS, filename="pw2.vem")
    assert m.shapes["x"] == ("S",)  # S >= T: range(T, S) is refused otherwise
    y = np.array([0.3, -0.5, 1.2, 0.8, 2.0])
    fit = vp.fit(m, {"y": y}, dims={"T": 2}, tol=1e-13)  # S = 5 from y
    p0, m0 = np.array([1.0, 1, 4, 4, 4]), np.array([0.0, 0, 1, 1, 1])  # each x[t]'s prior
    np.testing.assert_allclose(np.asarray(fit.posterior["x"].mean), (p0 * m0 + 2 * y) / (p0 + 2), atol=1e-10)


def test_overlapping_symbolic_ranges_are_still_defined_twice():
    with pytest.raises(vp.VemError) as info:
        vp.parse(TWO_SYMBOLS.replace("range(T, S)", "range(1, S)"), filename="pw2.vem")
    assert (info.value.kind, info.value.line) == ("redeclared", 5), info.value.render()


HOLES = """model holes
dim N, M
data y: real[M]
data w: real[N]
for i in range(N) { x[i, 0] ~ Normal(0, 1) }
for i in range(M) { x[i, 1] ~ Normal(1, precision = 4.0) }
for i in range(M) { y[i] ~ Normal(x[i, 1], precision = 2.0) }
for i in range(N) { w[i] ~ Normal(x[i, 0], precision = 2.0) }
"""


def test_an_element_no_statement_defines_is_a_located_error_not_a_nan_elbo():
    """N = 2 < M = 5 leaves x[2:5, 0] without a prior: was 'the ELBO became nan at iteration 1'."""
    m = vp.parse(HOLES, filename="holes.vem")
    assert m.shapes["x"] == ("max(N, M)", 2)
    with pytest.raises(vp.VemError) as info:
        vp.fit(m, {"y": np.zeros(5), "w": np.zeros(2)})
    err = info.value
    assert (err.kind, err.file, err.line, err.column) == ("shape", "holes.vem", 5, 21), err.render()
    assert "no statement defines x[2, 0]" in err.message and "[5, 2]" in err.message, err.message
    # With N = M every element is defined, and each x[i, j] is its own conjugate pair.
    fit = vp.fit(m, {"y": np.full(5, 2.0), "w": np.full(5, -1.0)}, tol=1e-13)
    np.testing.assert_allclose(np.asarray(fit.posterior["x"].mean),
                               np.tile([(0 * 1 + 2 * -1.0) / 3, (4 * 1 + 2 * 2.0) / 6], (5, 1)), atol=1e-10)


EMPTY = """model empty
dim N
data y: real[N]
for t in range(3) { x[t] ~ Normal(0, 1) }
for t in range(N, N) { x[t] ~ Normal(5, 1) }
for n in range(N) { y[n] ~ Normal(x[0], 1) }
"""


@pytest.mark.parametrize("swap", [False, True])
def test_an_empty_range_beside_another_piece_writes_nothing(swap):
    """range(N, N) is empty: it was 'an element of 'x' is defined twice (also at line 4)', and
    its stop N widened the static shape to N (the bound arrays, 3)."""
    text = EMPTY
    if swap:
        lines = text.splitlines(keepends=True)
        lines[3], lines[4] = lines[4], lines[3]
        text = "".join(lines)
    m = vp.parse(text, filename="empty.vem")
    assert m.shapes["x"] == (3,)
    if swap:
        return
    y = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    fit = vp.fit(m, {"y": y}, tol=1e-13)  # x[0]: prior N(0, 1) and five unit-precision reads
    np.testing.assert_allclose(np.asarray(fit.posterior["x"].mean), [y.sum() / 6, 0.0, 0.0], atol=1e-10)
