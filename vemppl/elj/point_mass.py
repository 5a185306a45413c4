"""What the conjugacy probe reads the expected log joint with: a point parameter as a point
mass offering every moment, and a tracker of the moments read of each block.

The compiler (``compiler/conjugacy.py``) traces ``L`` once with these: a block is closed-form
when every moment read of it is one of its family's statistics and no read is flagged
nonlinear; a point parameter's M-step is closed form under the first family whose statistics
cover the moments read of it.
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp


class Tracker:
    """Records which moments of which block the expected log joint reads, and which reads
    are not affine (``nonlinear``), each with the first factor that made it so
    (``reasons``: the factor's text, its source position and why).  The evaluation sets
    ``factor`` to the factor it is reading."""

    def __init__(self):
        self.nonlinear: dict[str, set[str]] = {}
        self.reads: dict[str, set[str]] = {}
        self.reasons: dict[str, str] = {}
        self.factor = None

    def read(self, block: str, moment: str):
        self.reads.setdefault(block, set()).add(moment)

    def flag(self, block: str, why: str):
        f = self.factor
        where = ""
        if f is not None and f.definition.span is not None:
            sp = f.definition.span
            where = f" at {sp.file or '<model>'}:{sp.line}:{sp.column}"
        self.reasons.setdefault(block, f"{f.describe() if f else '?'}{where}: {why}")
        self.nonlinear.setdefault(block, set()).add(why)


class PointMassStats(NamedTuple):
    """Every moment of a point mass θ: the probe reads these to choose θ's M-step family."""

    mean: jnp.ndarray
    sq: jnp.ndarray
    outer: jnp.ndarray
    log: jnp.ndarray
    log1m: jnp.ndarray
    logdet: jnp.ndarray


class PointMass:
    """A stand-in family for a point parameter while probing which moments are read."""

    name = "point"
    Stats = PointMassStats
    event_rank = 0

    @staticmethod
    def stats(theta):
        theta = jnp.asarray(theta, dtype=float)
        outer = theta[..., :, None] * theta[..., None, :] if theta.ndim else theta**2
        square = theta.ndim >= 2 and theta.shape[-1] == theta.shape[-2]
        # Non-square θ has no log-determinant; a zero of indexable shape keeps the probe going.
        logdet = jnp.linalg.slogdet(theta)[1] if square else jnp.zeros(theta.shape[:-1] if theta.ndim >= 2 else theta.shape)
        return PointMassStats(theta, theta**2, outer, jnp.log(theta), jnp.log1p(-theta), logdet)

    @staticmethod
    def derived_moment(eta, name):
        raise KeyError(name)


__all__ = ["PointMass", "PointMassStats", "Tracker"]
