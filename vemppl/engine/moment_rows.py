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
times.  After the fit, every row's locals are read off the ``2r`` rows' (``every_row``): a
local's natural parameters are affine in its row.

The ELBO trace is the data's: at the end of each sweep every local is at its update, so the
weighted rows' ELBO equals the rows' at the same globals and locals; the first sweep of a
schedule that updates a global block before the locals reads the weighted rows' starting
locals (their prior, as the rows' would be), so that sweep, and only it, may differ from a
fit on every row.  The returned state is the one a fit on every row would return after the
same sweeps, and its ELBO is the trace's last value.
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
    """``2r`` rows ``mean ± scale_k basis[:, k]`` standing for the ``rows`` units of ``plate``,
    ``weights[i]`` units each (the interface of ``compress.UnitWeights`` that ``elj/joint.py``
    reads), the ``+`` rows first."""

    plate: DataPlate
    weights: np.ndarray  # [2r]
    rows: int
    mean: np.ndarray  # [p]: the rows' mean
    basis: np.ndarray  # [p, r]: the eigenvectors of their covariance with non-zero eigenvalues
    scale: np.ndarray  # [r]: √(r λ_k)

    def local_weight(self, stat):
        """The weights laid out along the leading (plate) axis of a local block's array."""
        w = jnp.asarray(self.weights, dtype=stat.dtype)
        return jnp.reshape(w, w.shape + (1,) * (stat.ndim - 1))


def plate_rows(plate, bound) -> np.ndarray:
    """The plate's arrays side by side, one row per unit: [N, p]."""
    n = int(bound.sizes[plate.dim])
    return np.concatenate([np.asarray(bound.values[a], dtype=np.float64).reshape(n, -1) for a in plate.arrays], 1)


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
    x = plate_rows(plate, bound)
    if not np.all(np.isfinite(x)):
        return None
    mean, basis, scale = sigma_points(x)
    sigma = np.concatenate([mean + (scale * basis).T, mean - (scale * basis).T])
    if len(sigma) >= n:
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
    return merged, MomentRows(plate, weights, n, mean, basis, scale)


def sigma_points(x: np.ndarray):
    """(mean [p], basis [p, r], scale [r]) of the rows of ``x`` [N, p]: the rows
    ``mean ± scale_k basis[:, k]``, each weighted 1/(2r), have the rows' mean and covariance
    (see the module docstring).  Rows all equal: one direction of scale 0 (two copies of the row)."""
    mean = x.mean(0)
    centred = x - mean
    lam, u = np.linalg.eigh(centred.T @ centred / len(x))
    keep = lam > RANK_TOL * max(float(lam.max(initial=0.0)), np.finfo(float).tiny)
    if not keep.any():
        return mean, np.eye(len(mean))[:, :1], np.zeros(1)
    r = int(keep.sum())
    return mean, u[:, keep], np.sqrt(r * lam[keep])


def every_row(engine, state, small):
    """(the state on every row of the plate, the seconds its compilation took): the globals
    of ``state`` (the fit on the moment rows of ``small``, a ``MomentRows``) and each row's
    locals at that fit's last update.  A local's natural parameters are affine in the row,
    ``η(x) = a + B x`` (``compiler/rules/linear_gaussian.py``), so from the ``±`` pair of each
    direction, ``η(x) = η̄ + Σ_k ⟨u_k, x − x̄⟩ (η_{k+} − η_{k−}) / (2 scale_k)`` with ``η̄`` their
    mean: every row's update from the 2r rows', no pass over the data, and the returned state's
    ELBO is the trace's last value.  ``engine`` is bound to every row."""
    r = len(small.scale)
    safe = np.where(small.scale > 0, small.scale, 1.0)
    coord = jnp.asarray((plate_rows(small.plate, engine.bound) - small.mean) @ small.basis / safe)  # [N, r]
    local = [j for j in engine.plan.schedule if j in small.plate.local_blocks]

    def expand(eta, coord):
        def widen(a):  # [2r, ...] -> [N, ...]
            flat = a.reshape(2 * r, -1)
            slope = (flat[:r] - flat[r:]) / 2.0
            return (jnp.mean(flat, 0) + coord @ slope).reshape(coord.shape[:1] + a.shape[1:])

        out = {}
        for j in local:
            eta_j = jax.tree_util.tree_map(widen, eta[j])
            out[j] = (eta_j, engine.families[j].expected_stats(eta_j))
        return out

    # The rows' coordinates are an argument, not a constant of the program: compiled once per
    # engine and rank, and called again by a later fit of the same shapes (engine/reuse.py).
    t0 = time.perf_counter()
    etas = {j: state.eta[j] for j in local}
    compiled = engine.lazy_programs.get(("every_row", r))
    if compiled is None:
        compiled = engine.lazy_programs[("every_row", r)] = jax.jit(expand).lower(etas, coord).compile()
    compile_seconds = time.perf_counter() - t0
    new = jax.block_until_ready(compiled(etas, coord))
    full = state._replace(eta={**state.eta, **{j: e for j, (e, _) in new.items()}},
                          mu={**state.mu, **{j: m for j, (_, m) in new.items()}})
    return full, compile_seconds


__all__ = ["MomentRows", "RANK_TOL", "every_row", "moment_rows", "plate_rows", "sigma_points"]
