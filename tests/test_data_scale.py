"""Data far from unit scale (issue #23): the GMM on the same clustered data at scales
1e-8 … 1e8 either clusters as at scale 1 or warns, naming the data and the prior; the ELBO
never decreases where float64 can represent the fit (see the 1e8 case)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

import vemppl as vp
from vemppl.data_scale import ScaleWarning

MODELS = Path(__file__).resolve().parents[1] / "models"


def _data():
    rng = np.random.default_rng(0)
    centres = np.array([[0.0, 0.0], [5.0, 0.0], [0.0, 5.0]])
    labels = rng.integers(3, size=300)
    return centres[labels] + rng.normal(size=(300, 2)), labels


def _fit(scale):
    x, labels = _data()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit = vp.fit(vp.load(MODELS / "gmm.vem"), {"x": x * scale}, seed=0)
    z = np.asarray(fit.posterior["z"].probs).argmax(-1)
    msgs = [str(w.message) for w in caught if issubclass(w.category, ScaleWarning)]
    return fit, adjusted_rand_score(labels, z), msgs


@pytest.fixture(scope="module")
def unit():
    return _fit(1.0)


def test_unit_scale_clusters_without_a_warning(unit):
    fit, ari, msgs = unit
    assert ari > 0.9 and msgs == []


@pytest.mark.parametrize("scale", [1e-8, 1e-4, 1e4])
def test_far_scales_cluster_as_at_unit_scale_or_warn_naming_the_prior(scale, unit):
    fit, ari, msgs = _fit(scale)
    if ari < unit[1] - 0.05:
        assert any("data 'x'" in m and "prior of 'mu'" in m and "rescale" in m for m in msgs), msgs
        assert any("prior of 'Lam'" in m for m in msgs), msgs
    trace = np.asarray(fit.elbo_trace)
    assert np.all(np.diff(trace) >= -1e-9 * np.abs(trace[1:])), np.diff(trace).min()


def test_the_warning_states_both_scales():
    fit, ari, msgs = _fit(1e4)
    (mu,) = [m for m in msgs if "'mu'" in m]
    assert "scale 3.08e+04" in mu and "assumes ~10" in mu  # RMS of the data; |0| + sd 10 of the prior


def test_scale_1e8_warns_and_never_fails_as_an_internal_error():
    """At 1e8 the moment form of the expected quadratic, tr(Λ (x xᵀ − 2 x E[μ]ᵀ + E[μ μᵀ])),
    adds terms of size 1e16 to get O(1): float64 loses it (see the report of issue #23).
    The user is warned before the fit; the fit ends in a fit or a data error, never a crash."""
    x, _ = _data()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            vp.fit(vp.load(MODELS / "gmm.vem"), {"x": x * 1e8}, seed=0, max_iter=100)
        except vp.VemError as err:
            assert err.kind == "data"
    assert any(issubclass(w.category, ScaleWarning) and "prior of 'mu'" in str(w.message) for w in caught)
