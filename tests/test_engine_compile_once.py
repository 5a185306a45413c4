"""The sweep is traced once per model and data shape: no recompilation across iterations
or restarts (counted by the engine's trace counter)."""

import numpy as np

import vemppl as vp
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_one_trace_for_all_iterations_and_restarts():
    x = np.random.default_rng(0).normal(size=(120, 2)) + np.repeat(np.array([[0, 0], [4, 4], [0, 4.0]]), 40, axis=0)
    fit = vp.fit(vp.load(ROOT / "models/gmm.vem"), {"x": x}, restarts=3, max_iter=40, tol=0.0)
    assert fit.iterations == 40
    assert fit.engine.traces == 1
