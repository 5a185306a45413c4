"""A deterministic fit whose ELBO falls beyond rounding stops at the sweep before the fall,
with a PrecisionWarning (engine/stops.py); a fall within rounding does not stop it."""

from pathlib import Path

import numpy as np
import pytest

import vemppl as vp
from vemppl.data_scale import PrecisionWarning

MODELS = Path(__file__).resolve().parents[1] / "models"


def _fit_with_a_fall(monkeypatch, relative, at=3, max_iter=8):
    """A Bayesian linear regression (deterministic: closed-form CAVI over w, alpha, tau)
    whose ``at``-th sweep reports the ELBO of the sweep before it lowered by ``relative``
    of its size."""
    import importlib

    cavi = importlib.import_module("vemppl.engine.cavi")
    real, elbos = cavi.Engine.sweep, []

    def sweep(self, state):
        new, elbo = real(self, state)
        elbos.append(float(elbo))
        return new, (elbos[-2] - relative * abs(elbos[-2]) if len(elbos) == at else elbo)

    monkeypatch.setattr(cavi.Engine, "sweep", sweep)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3))
    y = X @ np.array([1.0, -2.0, 0.0]) + 0.3 * rng.normal(size=40)
    return vp.fit(vp.load(MODELS / "linreg.vem"), {"X": X, "y": y}, seed=0, max_iter=max_iter, tol=0.0)


def test_a_fall_beyond_rounding_stops_at_the_sweep_before(monkeypatch):
    with pytest.warns(PrecisionWarning) as caught:
        fit = _fit_with_a_fall(monkeypatch, 1e-4)
    (msg,) = [str(w.message) for w in caught if issubclass(w.category, PrecisionWarning)]
    assert "stopped at iteration 3, where the ELBO fell from" in msg and "those of iteration 2" in msg, msg
    assert fit.iterations == 2 and len(fit.elbo_trace) == 2 and not fit.converged
    # nothing here is beyond float64: the message names the term that fell most instead
    assert "beyond float64" not in msg and "fell most, by" in msg, msg


def test_a_fall_within_rounding_goes_on(monkeypatch):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", PrecisionWarning)
        fit = _fit_with_a_fall(monkeypatch, 1e-9)
    assert fit.iterations == 8 and np.diff(fit.elbo_trace)[1] < 0  # the fall is in the trace, the fit went on
