"""The joint Normal–Gamma block: ``mu[k] ~ Normal(m, precision = c * tau[k])``, ``tau[k] ~ Gamma``."""

from __future__ import annotations

from ...families.normal_gamma import NormalGamma
from ...ir.graph import ModelGraph
from ._joint import JointBlock, location_precision_pairs

#: The block this rule makes (``compiler/rules/__init__.py``: a joint-block rule).
FAMILY = NormalGamma


def match(m: ModelGraph, factors) -> list[JointBlock]:
    """One block ``(("loc", mu), ("precision", tau))`` for every ``mu[k] ~ Normal(m,
    precision = c * tau[k])`` (``c`` fixed or absent) with ``tau[k] ~ Gamma(...)``, read
    elsewhere only as ``Normal(mu[...], precision = tau[...])`` at the same element
    (:func:`location_precision_pairs`; Murphy 2007, §6)."""
    return location_precision_pairs(m, factors, NormalGamma, "precision")


__all__ = ["FAMILY", "match"]
