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


def test_the_prior_start_is_compiled_once_for_all_restarts(monkeypatch):
    from vemppl.engine.cavi import Engine

    calls = []
    original = Engine._prior_blocks

    def counted(self, *a):
        calls.append(self)  # runs only while tracing: the compiled start does not call back into Python
        return original(self, *a)

    monkeypatch.setattr(Engine, "_prior_blocks", counted)
    x = np.random.default_rng(1).normal(size=(60, 2))
    fit = vp.fit(vp.load(ROOT / "models/gmm.vem"), {"x": x}, consts={"K": 2}, restarts=3, max_iter=3, tol=0.0,
                 progress=False)
    assert sum(c is fit.engine for c in calls) == 1  # (compile_model's probe engine traces its own)
    assert fit.compile_seconds >= fit.engine.init_compile_seconds > 0


def test_a_new_input_signature_is_counted_as_another_program():
    """``traces`` counts the compiled programs from JAX's caches, not by a side effect while
    tracing: sweeping the same shapes again adds none, data of another dtype adds one."""
    import jax.numpy as jnp

    x = np.random.default_rng(2).normal(size=(60, 2))
    fit = vp.fit(vp.load(ROOT / "models/gmm.vem"), {"x": x}, consts={"K": 2}, max_iter=3, tol=0.0, progress=False)
    engine = fit.engine
    assert engine.traces == 1
    engine.sweep(fit.state)
    assert engine.traces == 1
    engine._sweep(fit.state, {"x": engine.data["x"].astype(jnp.float32)})  # the jitted sweep, retraced
    assert engine.traces == 2
