"""The ELBO a sweep reports is the ELBO of the state it returns.

When a sweep ends on a closed-form update, L is affine in that block's statistics, so the
sweep takes L at the new state from the update's own pass, L(μ') = L(μ) + ⟨∇L, μ' − μ⟩, and
adds the entropies (engine/cavi.py, ``Engine._update_block``).  Each case here ends its
sweeps on a different kind of block, or on an M-step or a gradient update where the sweep
evaluates every factor again; ``Engine.elbo`` of the returned state, computed afresh over
every factor, must be the reported number.
"""

from pathlib import Path

import numpy as np
import pytest

import vemppl as vp

ROOT = Path(__file__).resolve().parent.parent


def _hmm():  # the chain is the last block of the default schedule
    rng = np.random.default_rng(0)
    z = np.repeat(rng.integers(0, 3, 30), 8)
    x = np.array([[0.0, 0.0], [3.0, 3.0], [0.0, 4.0]])[z] + rng.normal(size=(240, 2))
    return vp.load(ROOT / "models/hmm.vem"), {"x": x}, {"K": 3}, {}, {}


def _lda():  # random globals: the topics q(β) are updated last, the rows merged
    rng = np.random.default_rng(1)
    doc = np.repeat(np.arange(20), 25)
    word = np.where(doc % 2 == 0, rng.integers(0, 6, doc.size), rng.integers(4, 10, doc.size))
    return (vp.load(ROOT / "models/lda.vem"), {"doc": doc, "word": word}, {"K": 2}, {"D": 20, "V": 10},
            {"algorithm": vp.cavi(start="random-globals", local_tol=1e-3)})


def _regression():  # a Normal–Gamma regression: a joint Gaussian block updated last
    rng = np.random.default_rng(2)
    X = rng.normal(size=(80, 3))
    y = X @ np.array([1.0, -2.0, 0.5]) + 0.3 * rng.normal(size=80)
    return vp.load(ROOT / "models/linreg.vem"), {"X": X, "y": y}, {}, {}, {}


def _factor_analysis():  # point parameters: the sweep ends on M-steps
    rng = np.random.default_rng(3)
    x = rng.normal(size=(200, 2)) @ rng.normal(size=(2, 5)) + 0.3 * rng.normal(size=(200, 5))
    return vp.load(ROOT / "models/fa.vem"), {"x": x}, {"L": 2}, {}, {}


def _logistic():  # a non-conjugate block: a damped natural-gradient step with its own line search
    rng = np.random.default_rng(4)
    X = rng.normal(size=(100, 2))
    y = (rng.random(100) < 1 / (1 + np.exp(-X @ np.array([2.0, -1.0])))).astype(int)
    return vp.load(ROOT / "models/logreg.vem"), {"X": X, "y": y}, {}, {}, {}


CASES = {"hmm": _hmm, "lda": _lda, "regression": _regression, "factor analysis": _factor_analysis,
         "logistic": _logistic}


@pytest.mark.parametrize("name", sorted(CASES))
def test_reported_elbo_is_the_returned_states(name):
    model, data, consts, dims, kw = CASES[name]()
    # Three sweeps: far from the optimum, where the last update moves the most.
    fit = vp.fit(model, data, consts=consts, dims=dims, max_iter=3, tol=0, progress=False, **kw)
    assert float(fit.engine.elbo(fit.state)) == pytest.approx(fit.elbo, rel=1e-10)
