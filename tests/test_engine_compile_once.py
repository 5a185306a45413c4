"""The sweep is traced once per model and data shape: no recompilation across iterations
or restarts (counted by the engine's trace counter)."""

from pathlib import Path

import numpy as np
import pytest

import vemppl as vp
from vemppl.engine.reuse import forget


@pytest.fixture(autouse=True)
def _engines_of_their_own():
    """Each test counts its own fit's traces: no engine kept from another test (engine/reuse.py)."""
    forget()


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


def test_a_second_fit_of_the_model_and_shapes_traces_nothing_and_keeps_the_first_fits_data():
    """engine/reuse.py: the second fit to other data of the same shapes calls the first fit's
    programs (no trace), gives what a fit with an engine of its own gives (bitwise), and the
    first fit's result still reads its own data."""
    rng = np.random.default_rng(2)
    x1 = rng.normal(size=(90, 2)) + np.repeat(np.array([[0, 0], [4, 4], [0, 4.0]]), 30, axis=0)
    x2 = x1[::-1] * 1.1 + 0.3
    m = vp.load(ROOT / "models/gmm.vem")
    first = vp.fit(m, {"x": x1}, max_iter=30, progress=False)
    traced = first.engine.traces
    second = vp.fit(m, {"x": x2}, max_iter=30, progress=False)
    assert second.engine is not first.engine and second.engine.traces == traced  # no new trace
    forget()
    alone = vp.fit(m, {"x": x2}, max_iter=30, progress=False)
    np.testing.assert_array_equal(second.elbo_trace, alone.elbo_trace)
    np.testing.assert_array_equal(second.posterior["mu"].mean, alone.posterior["mu"].mean)
    np.testing.assert_array_equal(np.asarray(first.engine.data["x"]), x1)
    other = vp.fit(m, {"x": x2}, consts={"K": 2}, max_iter=5, progress=False)  # another const: its own engine
    assert other.engine.traces == 1 and other.posterior["mu"].mean.shape == (2, 2)


def _tokens(seed, docs=12, vocab=15, per_doc=30):
    rng = np.random.default_rng(seed)
    doc = np.repeat(np.arange(docs), per_doc)
    word = rng.integers(0, vocab, size=doc.size) % (3 + doc % 5) * 2  # repeats within each document
    return {"doc": doc, "word": word}, {"D": docs, "V": vocab}


@pytest.mark.parametrize("path, data, consts", [
    ("models/lda.vem", None, {"K": 3}),  # merged token rows with their counts (engine/compress.py)
    ("models/fa.vem", "fa", {"L": 2}),  # a linear-Gaussian plate's moment rows (engine/moment_rows.py)
])
def test_a_second_fit_on_merged_rows_traces_nothing_and_gives_what_an_engine_of_its_own_gives(path, data, consts):
    """The merged rows' counts are constants of the engine's traces: a fit of the same data calls
    the first fit's programs; other data of the same shapes but other counts get an engine of
    their own; either way the result is bitwise the one a fresh engine gives."""
    m = vp.load(ROOT / path)
    if data == "fa":
        rng = np.random.default_rng(3)
        w = rng.normal(size=(6, 2))
        sets = [({"x": rng.normal(size=(80, 2)) @ w.T + rng.normal(size=(80, 6))}, {}) for _ in range(2)]
    else:
        sets = [_tokens(4), _tokens(5)]
    (d1, dims1), (d2, dims2) = sets
    first = vp.fit(m, d1, consts=consts, dims=dims1, max_iter=12, progress=False)
    traced = first.engine.traces
    again = vp.fit(m, d1, consts=consts, dims=dims1, max_iter=12, progress=False)
    # the first fit's jitted programs, each with its one trace: nothing traced again
    assert {id(p) for p in again.engine.programs} <= {id(p) for p in first.engine.programs}
    assert again.engine.traces == traced
    other = vp.fit(m, d2, consts=consts, dims=dims2, max_iter=12, progress=False)
    forget()
    alone = vp.fit(m, d2, consts=consts, dims=dims2, max_iter=12, progress=False)
    for fit, fresh in ((again, first), (other, alone)):  # first and alone: engines of their own
        np.testing.assert_array_equal(fit.elbo_trace, fresh.elbo_trace)
        for name in fresh.posterior:
            np.testing.assert_array_equal(np.asarray(fit.state.eta[name][0]), np.asarray(fresh.state.eta[name][0]))


def test_a_natural_gradient_block_traces_its_likelihood_once_per_pass(monkeypatch):
    """Bayesian logistic regression (w by natural-gradient steps, tau closed form, w last):
    the sweep traces the likelihood once in tau's gradient (every factor, which JAX then
    drops), once in w's gradient pass (whose value is the line search's base) and once in
    the line search's loop body; not for the base apart, nor for the sweep's ELBO (the
    loop's value is reused).  Main traced it five times."""
    import collections

    import jax

    from vemppl.elj import joint

    rng = np.random.default_rng(3)
    X = rng.normal(size=(30, 3))
    y = (rng.random(30) < 1 / (1 + np.exp(-X @ np.array([1.0, -1.0, 0.5])))).astype(float)
    fit = vp.fit(vp.load(ROOT / "models/logreg.vem"), {"X": X, "y": y}, max_iter=2, progress=False)
    assert fit.engine.plan.block("w").update == "natural-gradient"
    traced = collections.Counter()
    original = joint.factor_value

    def counted(model, f, *args, **kwargs):
        traced[f.target] += 1
        return original(model, f, *args, **kwargs)

    monkeypatch.setattr(joint, "factor_value", counted)
    jax.make_jaxpr(fit.engine._sweep_impl)(fit.state, fit.engine.data)
    assert list(fit.engine.plan.schedule) == ["tau", "w"]
    assert traced["y"] == 3


def test_data_and_seeded_responsibilities_reach_the_device_without_a_program(caplog):
    """elj.joint.on_device: the array ``jnp.asarray`` gives (dtype, bytes, weak type), put on the
    device without the one-op program ``jnp.asarray`` compiles for each new shape."""
    import jax
    import jax.numpy as jnp

    from vemppl.elj.joint import on_device

    rng = np.random.default_rng(0)
    arrays = [rng.normal(size=(13, 7)), rng.dirichlet(np.ones(3), size=11), np.arange(17), rng.random(19) < 0.5,
              rng.normal(size=(5, 3)).T.astype(np.float32)]
    with caplog.at_level("WARNING"), jax.log_compiles(True):
        put = [on_device(a) for a in arrays]
        assert not [r for r in caplog.records if "Compiling" in r.getMessage()]
        jnp.asarray(rng.normal(size=(23, 29)))  # the detector detects: jnp.asarray compiles for a new shape
        assert [r for r in caplog.records if "Compiling" in r.getMessage()]
    for a, x in zip(arrays, put):
        y = jnp.asarray(a)
        assert (x.dtype, x.shape, x.weak_type) == (y.dtype, y.shape, y.weak_type)
        np.testing.assert_array_equal(np.asarray(x), a.astype(x.dtype))
