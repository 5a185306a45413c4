"""Fit results: posteriors, point parameters, traces."""

from .fit import Fit

__all__ = ["Fit"]
