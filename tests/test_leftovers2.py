"""More defects left over from earlier sessions, each with a test that failed before its fix.

1. A stochastic VI fit runs its ``max_iter`` steps by design, yet its summary said "not
   converged": it now says it ran its steps (``Fit.stochastic``), and saved results record
   ``"algorithm": "svi"`` in ``settings`` beside ``"converged": false``.
2. A ``batch_size`` above the data plate's N was lowered to N without a word: it now warns, naming
   the option (``--batch-size`` on the command line), N and that the fit is full-batch.
3. A fit keeps the ``tol`` it ran under (``Fit.tol``, ``settings.tol`` in saved results), and
   ``predict`` re-infers new data's locals at the smaller of it and its own 1e-10 (before: always
   1e-10, so a fit asked for 1e-13 predicted at 1e-10); results saved without it still load.
5. A V the user set (``dims=``, ``consts=``, ``--set``) or a const's own value bounds the ``cat(V)``
   data: under SVI every row is checked against it, not only the first batch's (a category above
   it elsewhere was fitted silently), at its index in the whole array; the error says where a
   const V came from.

Other options a fit dropped without a word: under SVI a ``dims=`` size of the data plate that the
arrays contradict (CAVI refuses it) was replaced by the batch size, and ``tol=`` (``--tol``), which
SVI cannot honour (no convergence test), was ignored; the first is now the error CAVI gives, the
second a warning. ``max_iter=0`` ended in an IndexError and a negative or NaN ``tol`` ran every
sweep: both are now ``data`` errors naming the option. A name in ``init=`` that is no param (a
misspelling, a latent) was ignored: it is a ``data`` error naming it and the model's params. SVI
validates the plate's arrays in chunks of rows, and named a bad value's index in its chunk.
``vp.svi(2.5)`` ran batches of 2, ``vp.svi(True)`` batches of 1 and ``local_iter=1.5`` one pass:
counts are whole numbers (``4.0`` is 4).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import vemppl as vp
from vemppl.results import io as rio

NORMAL_MEAN = """model normal_mean
dim N
data x: real[N]
mu ~ Normal(0.0, precision = 0.01)
for n in range(N) { x[n] ~ Normal(mu, precision = 2.0) }
"""

X = np.random.default_rng(0).normal(3.0, 0.7, size=12)


def test_an_svi_fit_says_it_ran_its_steps_not_that_it_failed_to_converge(tmp_path):
    fit = vp.fit(vp.parse(NORMAL_MEAN), {"x": X}, algorithm=vp.svi(4), max_iter=3, progress=False)
    first = fit.summary().splitlines()[0]
    assert fit.stochastic and not fit.converged and fit.iterations == 3
    assert "after 3 stochastic VI steps (all max_iter steps run: no convergence test" in first, first
    assert "not converged" not in first, first
    fit.save(tmp_path / "svi")
    manifest = json.loads((tmp_path / "svi" / "manifest.json").read_text())
    assert manifest["settings"]["algorithm"] == "svi" and manifest["converged"] is False
    back = vp.load_results(tmp_path / "svi")
    assert back.stochastic and back.summary().splitlines()[0].split("; compile")[0] == first.split("; compile")[0]
    cavi = vp.fit(vp.parse(NORMAL_MEAN), {"x": X}, progress=False)  # one conjugate block: converged at sweep 2
    assert not cavi.stochastic and "iterations (converged" in cavi.summary().splitlines()[0]


def test_a_batch_larger_than_the_plate_says_the_fit_is_full_batch():
    import warnings

    from vemppl.cli_runtime import reword

    with pytest.warns(UserWarning, match=r"batch_size=20 is larger than the data plate N = 12") as got:
        fit = vp.fit(vp.parse(NORMAL_MEAN), {"x": X}, algorithm=vp.svi(20), max_iter=1, progress=False)
    text = str(next(w.message for w in got if "batch_size=20" in str(w.message)))
    assert "every step reads all 12 units, a full-batch fit" in text and fit.engine.scale == 1.0
    assert reword(text).startswith("--batch-size=20 is larger than the data plate N = 12"), reword(text)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a batch of exactly N is what was asked: no warning
        vp.fit(vp.parse(NORMAL_MEAN), {"x": X}, algorithm=vp.svi(12), max_iter=1, progress=False)


TWO_LOCALS = """model two_locals
dim N
data y: real[N]
mu ~ Normal(0.0, precision = 0.01)
for n in range(N) {
    a[n] ~ Normal(0.0, 1.0)
    b[n] ~ Normal(0.0, 1.0)
    y[n] ~ Normal(mu + a[n] + b[n], precision = 4.0)
}
"""


@pytest.fixture(scope="module")
def two_locals():
    """Two local blocks per row, a[n] and b[n], read through one sum: mean-field sweeps between them
    converge linearly (rate 0.64), so how many sweeps predict takes depends on its tolerance
    (measured: 25 at 1e-10, 32 at 1e-13)."""
    rng = np.random.default_rng(1)
    y, new = rng.normal(1.0, 1.5, 10), {"y": rng.normal(1.0, 1.5, 5)}
    tight = vp.fit(vp.parse(TWO_LOCALS), {"y": y}, tol=1e-13, progress=False)
    return tight, new


def test_predict_reinfers_locals_at_the_fits_tighter_tol(two_locals, tmp_path):
    tight, new = two_locals
    assert tight.tol == 1e-13
    at_13, at_10 = (tight.predict(new, tol=t).iterations for t in (1e-13, 1e-10))
    assert at_13 > at_10 and tight.predict(new).iterations == at_13, (at_13, at_10)
    tight.save(tmp_path / "tight")
    back = vp.load_results(tmp_path / "tight")  # what `vemppl predict` reads
    assert back.tol == 1e-13 and back.predict(new).iterations == at_13
    # Results saved before settings.tol: they load, and predict keeps its own 1e-10.
    path = tmp_path / "tight" / "manifest.json"
    m = json.loads(path.read_text())
    del m["settings"]["tol"], m["settings"]["algorithm"]
    m["manifest_sha256"] = rio._self_hash(m)
    path.write_text(json.dumps(m))
    old = vp.load_results(tmp_path / "tight")
    assert old.tol is None and not old.stochastic and old.predict(new).iterations == at_10


def test_a_looser_fit_tol_does_not_loosen_predict(two_locals):
    tight, new = two_locals
    loose = vp.fit(vp.parse(TWO_LOCALS), {"y": np.asarray(tight.bound.values["y"])}, progress=False)
    assert loose.tol == 1e-8  # the default for this plan
    assert loose.predict(new).iterations == loose.predict(new, tol=1e-10).iterations


CAT_V = """model catv
dim N, V
data x: cat(V)[N]
pi ~ Dirichlet(fill(1.0, V))
for n in range(N) { x[n] ~ Categorical(pi) }
"""


@pytest.mark.parametrize("bad", [4, -1])
def test_svi_checks_every_rows_category_against_a_given_v(bad):
    """Seed 1's first batch of 3 (rows 0, 1, 3: measured) lacks row 5; before, the fit ran on
    with the bad category read as no category at all."""
    x = np.array([0, 1, 2, 1, 0, bad])
    with pytest.raises(vp.VemError) as err:
        vp.fit(vp.parse(CAT_V), {"x": x}, dims={"V": 3}, algorithm=vp.svi(3), seed=1, max_iter=2, progress=False)
    assert err.value.kind == "data" and err.value.span is not None and err.value.span.line == 3
    assert f"(type cat(V)[N], V = 3 from dims={{'V': 3}}); got {bad} at index (5,)" in err.value.message


def test_a_const_v_exceeded_says_where_v_came_from():
    from vemppl.cli_runtime import reword

    const_v = CAT_V.replace("dim N, V\n", "dim N\nconst V = 3\n")
    x = np.array([0, 1, 4])
    for consts, source in [(None, "from the model's const V"), ({"V": 2}, "from consts={'V': 2}")]:
        with pytest.raises(vp.VemError) as err:
            vp.fit(vp.parse(const_v), {"x": x}, consts=consts, max_iter=1, progress=False)
        k = 3 if consts is None else 2
        assert f"V = {k} {source}); got 4 at index (2,)" in err.value.message, err.value.message
    assert "V = 2 from --set V=2); got 4" in reword(err.value.message)


def test_svi_refuses_a_plate_size_the_arrays_contradict_as_cavi_does():
    with pytest.raises(vp.VemError) as err:  # before: fitted, with N silently the batch's 4
        vp.fit(vp.parse(NORMAL_MEAN), {"x": X}, dims={"N": 50}, algorithm=vp.svi(4), max_iter=1, progress=False)
    assert err.value.kind == "data" and err.value.span.line == 3
    assert "'x' disagrees about dim N: N = 50 from dims={'N': 50}, but 'x' axis 0 has size 12" in err.value.message


def test_svi_says_it_ignores_tol():
    from vemppl.cli_runtime import reword

    with pytest.warns(UserWarning, match=r"tol= is ignored under stochastic VI \(got 0.01\): it runs") as got:
        fit = vp.fit(vp.parse(NORMAL_MEAN), {"x": X}, tol=1e-2, algorithm=vp.svi(4), max_iter=3, progress=False)
    assert fit.iterations == 3 and fit.tol is None
    text = str(next(w.message for w in got if "is ignored" in str(w.message)))
    assert reword(text).startswith("--tol is ignored under stochastic VI (got 0.01)"), reword(text)
    assert reword(text).endswith("fit without --batch-size to stop by --tol"), reword(text)


@pytest.mark.parametrize("options, words", [
    (dict(max_iter=0), "max_iter must be a whole number >= 1; got 0"),  # before: IndexError
    (dict(max_iter=2.5), "max_iter must be a whole number >= 1; got 2.5"),  # before: TypeError
    (dict(tol=-1.0), "tol must be a finite number >= 0; got -1.0"),  # before: 500 sweeps, never met
    (dict(tol=float("nan")), "tol must be a finite number >= 0; got nan"),
    (dict(max_iter=0, algorithm=vp.svi(4)), "max_iter must be"),  # before: a Fit with no ELBO
])
def test_max_iter_and_tol_are_checked(options, words):
    with pytest.raises(vp.VemError) as err:
        vp.fit(vp.parse(NORMAL_MEAN), {"x": X}, progress=False, **options)
    assert err.value.kind == "data" and words in err.value.message, err.value.message


PARAM_PRIOR = (NORMAL_MEAN.replace("dim N\n", "dim N\nparam m0: real\n")
               .replace("Normal(0.0, precision", "Normal(m0, precision"))


@pytest.mark.parametrize("init, got", [({"m0x": 3.0}, "'m0x', which the model does not declare"),
                                       ({"mu": 3.0}, "'mu', which is a latent")])
def test_init_names_only_params(init, got):
    with pytest.raises(vp.VemError) as err:  # before: fitted from the default start
        vp.fit(vp.parse(PARAM_PRIOR), {"x": X}, init=init, max_iter=2, progress=False)
    assert "Expected the name of a param of the model (m0); got " + got in err.value.message, err.value.message


def test_svi_names_a_bad_values_index_in_the_whole_array(monkeypatch):
    import vemppl.engine.svi as svi

    monkeypatch.setattr(svi, "_CHUNK_ROWS", 4)  # validated 4 rows at a time (262,144 otherwise)
    x = X.copy()
    x[9] = np.inf
    with pytest.raises(vp.VemError) as err:  # before: "at index (1,)", row 9's place in its chunk
        vp.fit(vp.parse(NORMAL_MEAN), {"x": x}, algorithm=vp.svi(4), max_iter=1, progress=False)
    assert "Expected finite values (type real[N]); got inf at index (9,)" in err.value.message, err.value.message
    with pytest.raises(vp.VemError) as err:  # the category check reads the same chunks
        vp.fit(vp.parse(CAT_V), {"x": np.array([0, 1, 2, 1, 0, 4])}, dims={"V": 3}, algorithm=vp.svi(3), seed=1,
               max_iter=1, progress=False)
    assert "got 4 at index (5,)" in err.value.message, err.value.message


@pytest.mark.parametrize("make, words", [
    (lambda: vp.svi(2.5), "batch_size must be at least 1 and a whole number; got 2.5"),
    (lambda: vp.svi(True), "batch_size must be at least 1 and a whole number; got True"),
    (lambda: vp.svi(4, local_iter=1.5), "local_iter must be at least 1 and a whole number; got 1.5"),
    (lambda: vp.cavi(local_iter=1.5), "local_iter must be at least 1 and a whole number; got 1.5"),
])
def test_counts_are_whole_numbers(make, words):
    with pytest.raises(vp.VemError) as err:  # before: truncated (2.5 -> 2, True -> 1) and fitted
        make()
    assert words in err.value.message, err.value.message
    assert vp.svi(4.0).batch_size == 4.0 and vp.svi(np.int64(4)).batch_size == 4  # whole values stay accepted
