"""Fit results: posteriors, point parameters, traces, predictions, and their files."""

from .. import _jax_setup  # noqa: F401  (float64, XLA flags and the compile cache before any JAX use)
from .fit import Fit, load_results
from .predict import Prediction, predict

__all__ = ["Fit", "load_results", "Prediction", "predict"]
