"""Fit results: posteriors, point parameters, traces, predictions, and their files."""

from .fit import Fit, load_results
from .predict import Prediction, predict

__all__ = ["Fit", "load_results", "Prediction", "predict"]
