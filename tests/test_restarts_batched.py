"""Restarts batched with vmap (engine/fit.py): one compiled sweep for every restart, and the
same fit as running the restarts in turn (each stops on its own test; the best ELBO wins)."""

from pathlib import Path

import numpy as np

import vemppl as vp

ROOT = Path(__file__).resolve().parents[1]


def test_batched_restarts_are_the_restarts_in_turn():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(150, 2)) + np.repeat(np.array([[0, 0], [3, 3], [0, 3.5]]), 50, axis=0)
    m = vp.load(ROOT / "models/gmm.vem")
    batched = vp.fit(m, {"x": x}, restarts=3, max_iter=100, tol=1e-7, batch_restarts=True)
    in_turn = vp.fit(m, {"x": x}, restarts=3, max_iter=100, tol=1e-7, batch_restarts=False)
    assert batched.engine.traces == 1 and in_turn.engine.traces == 1
    # measured: 0 to 1e-15 (a vmapped program may fuse a sum differently)
    np.testing.assert_allclose(batched.elbo, in_turn.elbo, rtol=1e-10)
    if batched.best_restart == in_turn.best_restart:  # two restarts at one optimum tie up to round-off
        assert batched.iterations == in_turn.iterations and batched.converged == in_turn.converged
        np.testing.assert_allclose(batched.elbo_trace, in_turn.elbo_trace, rtol=1e-10)
        np.testing.assert_allclose(batched.state.mu["z"].onehot, in_turn.state.mu["z"].onehot, atol=1e-8)
