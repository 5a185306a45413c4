"""The joint Normal–Wishart block: ``mu[k] ~ MvNormal(m, precision = c * Lam[k])``, ``Lam[k] ~ Wishart``."""

from __future__ import annotations

from ...families.normal_wishart import NormalWishart
from ...ir.graph import ModelGraph
from ._joint import JointBlock, location_precision_pairs

#: The block this rule makes (``compiler/rules/__init__.py``: a joint-block rule).
FAMILY = NormalWishart


def match(m: ModelGraph, factors) -> list[JointBlock]:
    """One block ``(("loc", mu), ("precision", Lam))`` for every ``mu[k] ~ MvNormal(m,
    precision = c * Lam[k])`` with ``Lam[k] ~ Wishart(...)``, read elsewhere only as
    ``MvNormal(mu[...], precision = Lam[...])`` at the same element
    (:func:`location_precision_pairs`; Bishop PRML §10.2.1)."""
    return location_precision_pairs(m, factors, NormalWishart, "precision_matrix")


__all__ = ["FAMILY", "match"]
