"""A linear-Gaussian data plate fitted on ``2r`` weighted rows with the data's first two moments.

When the compiler finds the data plate linear-Gaussian (``Plan.moment_plate``,
``compiler/rules/linear_gaussian.py``), the expected log joint of a row at its updated locals
is a polynomial of degree two in the row ``x_n``, so every sum over the plate that a sweep
computes (the globals' CAVI targets, the params' M-steps, the ELBO) depends on the rows only
through ``N``, ``Σ x_n`` and ``Σ x_n x_nᵀ``.  Any weighted set of rows ``s_i`` with weights
``w_i`` and ``Σ w_i = N``, ``Σ w_i s_i = Σ x_n``, ``Σ w_i s_i s_iᵀ = Σ x_n x_nᵀ`` gives the same
numbers.  With the rows' mean ``x̄`` and covariance ``C = Σ_k λ_k u_k u_kᵀ`` (its ``r`` non-zero
eigenvalues), the symmetric set

    s_{k±} = x̄ ± √(r λ_k) u_k,     w_{k±} = N / (2r),      k = 1..r,

has them (the sigma points of the unscented transform, Julier & Uhlmann 1997, at weight
1/(2r)): ``Σ w s = N x̄`` by symmetry and ``Σ w (s − x̄)(s − x̄)ᵀ = N Σ_k λ_k u_k u_kᵀ = N C``.
Each sweep then costs ``2r ≤ 2D`` rows instead of ``N``: the D×D second-moment form of EM
for factor analysis (Rubin & Thayer 1982; Bishop, PRML §12.2.4), derived from the graph.

The weights enter as the counts of repeated rows do (``engine/compress.py``, ``elj/joint.py``):
a weighted row's local target is its own CAVI target, and its terms and entropy count ``w_i``
times.  After the fit, the locals of the ``N`` rows are one CAVI update of each local block on
the data (``every_row``): a local's target reads only the globals and its own row.

The ELBO trace is the data's: at the end of each sweep every local is at its update, so the
weighted rows' ELBO equals the rows' at the same globals; the first sweep of a schedule that
updates a global block before the locals reads the weighted rows' starting locals (their
prior, as the rows' would be), so that sweep, and only it, may differ from a fit on every
row.  The returned state's ELBO (the locals updated once more, at the last globals) is at
least the trace's last value.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import jax
import jax.numpy as jnp
import numpy as np

from ..diagnostics import VemError
from .dataplate import DataPlate, data_plate, rows_apart

#: Relative size below which an eigenvalue of the rows' covariance is taken as zero (its
#: direction carries no variance: a constant column, collinear columns).
RANK_TOL = 1e-12


@dataclass(frozen=True)
class MomentRows:
    """``2r`` rows standing for the ``rows`` units of ``plate``, ``weights[i]`` units each
    (the interface of ``compress.UnitWeights`` that ``elj/joint.py`` reads)."""

    plate: DataPlate
    weights: np.ndarray  # [2r]
    rows: int

    def local_weight(self, stat):
        """The weights laid out along the leading (plate) axis of a local block's array."""
        w = jnp.asarray(self.weights, dtype=stat.dtype)
        return jnp.reshape(w, w.shape + (1,) * (stat.ndim - 1))


def moment_rows(model, plan, bound, present=(), dim=None, networks=False):
    """(the binding with the plate's rows replaced by ``2r`` moment-matched rows, their
    ``MomentRows``), or None when the plan's plate is not linear-Gaussian, the plate asked for is
    another one, a mask or absent element touches it, or ``2r`` is not fewer than its rows."""
    if plan.moment_plate is None or networks or (dim is not None and dim != plan.moment_plate):
        return None
    try:
        plate = data_plate(model, plan, plan.moment_plate, "fitting on the data's moments")
    except VemError:
        return None
    if not plate.local_blocks or not rows_apart(model, plate):
        return None
    touched = set(plate.arrays) | set(plate.local_blocks)
    if set(bound.masks) & touched or set(present) & touched:
        return None  # a missing entry makes its row's local precision its own
    n = int(bound.sizes[plate.dim])
    rows = np.concatenate([np.asarray(bound.values[a], dtype=np.float64).reshape(n, -1) for a in plate.arrays], 1)
    sigma = sigma_rows(rows)
    if sigma is None or len(sigma) >= n:
        return None
    values = dict(bound.values)
    at = 0
    for a in plate.arrays:
        shape = np.shape(bound.values[a])[1:]
        width = int(np.prod(shape, dtype=int))
        values[a] = sigma[:, at:at + width].reshape((len(sigma),) + shape)
        at += width
    weights = np.full(len(sigma), n / len(sigma))
    merged = replace(bound, sizes={**bound.sizes, plate.dim: len(sigma)}, values=values)
    return merged, MomentRows(plate, weights, n)


def sigma_rows(x: np.ndarray) -> np.ndarray | None:
    """``2r`` rows whose mean and covariance (each weighted 1/(2r)) are those of the rows of
    ``x`` [N, p] (see the module docstring); None when the rows are not finite."""
    if not np.all(np.isfinite(x)):
        return None
    mean = x.mean(0)
    centred = x - mean
    cov = centred.T @ centred / len(x)
    lam, u = np.linalg.eigh(cov)
    keep = lam > RANK_TOL * max(float(lam.max(initial=0.0)), np.finfo(float).tiny)
    r = max(int(keep.sum()), 1)
    if not keep.any():  # every row the same: two copies of it
        return np.stack([mean, mean])
    spread = (np.sqrt(r * lam[keep]) * u[:, keep]).T  # [r, p]
    return np.concatenate([mean + spread, mean - spread])


def every_row(engine, state, small):
    """(the state on every row of the plate: the globals of ``state``, each local block's CAVI
    update on the data, the seconds its compilation took).  ``engine`` is bound to every row;
    ``state`` is the fit on the moment rows of ``small`` (a ``MomentRows``)."""
    n = small.rows
    local = [j for j in engine.plan.schedule if j in small.plate.local_blocks]

    def widen(tree):  # any value of the right shape: a local's update reads only the globals and its row
        return jax.tree_util.tree_map(lambda a: jnp.broadcast_to(a[:1], (n,) + a.shape[1:]), tree)

    start = state._replace(eta={**state.eta, **{j: widen(state.eta[j]) for j in local}},
                           mu={**state.mu, **{j: widen(state.mu[j]) for j in local}})

    def update(s, data):
        for j in local:
            s = engine.update_block(s, j, data)
        return s

    t0 = time.perf_counter()
    compiled = jax.jit(update).lower(start, engine.data).compile()
    compile_seconds = time.perf_counter() - t0
    return jax.block_until_ready(compiled(start, engine.data)), compile_seconds


__all__ = ["MomentRows", "RANK_TOL", "every_row", "moment_rows", "sigma_rows"]
