"""The data plate's sum taken chunk by chunk (engine/chunks.py) is the same sum.

Each model is fitted twice on the same data and seed, once with the plate split into chunks
of rows and once evaluated whole (chunking turned off by raising its minimum), and the ELBO
traces must agree to rounding.  The models cover what a chunk slices: data arrays along the
plate, a data mask, Gaussian and categorical local blocks, a local read through a data
index (LDA's θ[doc[i]]), and point parameters with M-steps.
"""

from pathlib import Path

import numpy as np
import pytest

import vemppl as vp
from vemppl.engine import chunks
from vemppl.engine.reuse import forget

ROOT = Path(__file__).resolve().parent.parent


def _gmm():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(-2, 1, (1024, 2)), rng.normal(2, 0.5, (1024, 2))])
    mask = np.ones_like(x, dtype=bool)
    mask[rng.random(len(x)) < 0.05, 1] = False  # a few rows observed only in part
    return vp.load(ROOT / "models" / "gmm.vem"), {"x": x}, {"K": 2}, {"mask": {"x": mask}}


def _fa():
    rng = np.random.default_rng(1)
    W = rng.normal(size=(6, 2))
    x = rng.normal(size=(3000, 2)) @ W.T + 0.5 * rng.normal(size=(3000, 6))
    return vp.load(ROOT / "models" / "fa.vem"), {"x": x}, {"L": 2}, {}


def _lda():
    rng = np.random.default_rng(2)
    doc = np.repeat(np.arange(64), 40)  # 2560 tokens
    word = rng.integers(0, 30, size=len(doc))
    return (vp.load(ROOT / "models" / "lda.vem"), {"doc": doc, "word": word}, {"K": 3},
            {"dims": {"D": 64, "V": 30}})


def _poisson_regression_mixture():  # not in models/: count data with a covariate, two regimes
    text = """
model regimes
dim N
const K = 2
data u: real[N]
data y: count[N]
pi ~ Dirichlet(fill(1.0, K))
for k in range(K) { rate[k] ~ Gamma(1.0, 1.0) }
for n in range(N) {
    z[n] ~ Categorical(pi)
    y[n] ~ Poisson(rate[z[n]])
    u[n] ~ Normal(0.0, 1.0)
}
"""
    rng = np.random.default_rng(3)
    y = np.concatenate([rng.poisson(2.0, 1500), rng.poisson(9.0, 1500)])
    return vp.parse(text), {"y": y, "u": rng.normal(size=3000)}, {"K": 2}, {}


CASES = {"gmm with a mask": _gmm, "factor analysis": _fa, "lda tokens": _lda, "poisson mixture": _poisson_regression_mixture}


@pytest.mark.parametrize("name", sorted(CASES))
def test_chunked_and_whole_plate_give_the_same_elbo_trace(name, monkeypatch):
    model, data, consts, kw = CASES[name]()
    fits = []
    for split in (True, False):
        monkeypatch.setattr(chunks, "MIN_WORK", 0)  # these plates are small: chunk them anyway
        if not split:
            monkeypatch.setattr(chunks, "MIN_ROWS", 10**9)
            forget()  # the engine is built under the new setting, not the split fit's kept (engine/reuse.py)
        fit = vp.fit(model, data, consts=consts, seed=0, max_iter=6, tol=0, progress=False, **kw)
        assert (fit.engine.chunks is not None) == split
        fits.append(np.asarray(fit.elbo_trace))
    a, b = fits
    assert a.shape == b.shape
    np.testing.assert_allclose(a, b, rtol=1e-10, atol=0)
    assert np.all(np.diff(a) >= -1e-9 * np.abs(a[1:]))  # CAVI: never decreasing


def test_chunk_rows_divide_the_plate():
    assert chunks.chunk_rows(100_000) == 4000
    assert chunks.chunk_rows(76_032) is not None and 76_032 % chunks.chunk_rows(76_032) == 0
    assert chunks.chunk_rows(1437) is None  # smaller than two chunks: evaluated whole
    assert chunks.chunk_rows(10_007) is None  # prime: no divisor in range, evaluated whole


def test_chunks_are_worth_it_by_the_largest_intermediate():
    """The measure is the largest array of the plate's factors evaluated whole, read off
    their jaxpr: a GMM's [N, K·D] product x_n Λ_k, factor analysis's [N, D] (dot(W[j], h[n])
    contracted, never [N, D, L, L]), LDA's [M, K]; all of these small plates are below
    MIN_WORK, where the scan's overhead would outweigh the cache it saves."""
    rng = np.random.default_rng(0)
    cases = [(vp.load(ROOT / "models" / "gmm.vem"), {"x": rng.normal(size=(2048, 4))}, {"K": 3}, {}, 2048 * 3 * 4),
             (vp.load(ROOT / "models" / "fa.vem"), {"x": rng.normal(size=(3000, 6))}, {"L": 2}, {}, 3000 * 6)]
    lda_model, lda_data, lda_consts, lda_kw = _lda()
    # The prior start's one sweep (an admixture's default local/global schedule measures each
    # local block's loop-invariant part too, docs/engine.md)
    cases.append((lda_model, lda_data, lda_consts, dict(lda_kw, algorithm=vp.cavi(start="prior", compress=False)),
                  2560 * 3))
    for model, data, consts, kw, largest in cases:
        kw = dict(kw) if "algorithm" in kw else dict(kw, algorithm=vp.cavi(compress=False))
        fit = vp.fit(model, data, consts=consts, seed=0, max_iter=2, progress=False, **kw)
        assert fit.engine.chunks is not None  # the plate could be split...
        # ...measured once per set of the plate's factors a program sums (the M-step of a param
        # sums only the factors that read it, engine/cavi.py), the same largest array in each...
        assert set(fit.engine.chunks._largest.values()) == {largest}
        assert largest < chunks.MIN_WORK  # ...and not worth it
