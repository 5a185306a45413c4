"""Identical units of the data plate fitted once, each weighted by how often it occurs.

Two units of a data plate with the same data (LDA's tokens of one word in one document, a
mixture's repeated count vectors) have the same Markov blanket: every factor that reads
their local blocks reads the same globals and the same data, so the CAVI update gives them
the same q.  With the distinct units u and their counts c_u,

    Σ_n E_q[log p(x_n, z_n | globals)] + Σ_n H[q(z_n)]  =  Σ_u c_u (E_q[log p(x_u, z_u | ·)] + H[q(z_u)]),

so the ELBO is the same number computed over fewer rows, the globals' CAVI targets (the
gradient of the expected log joint in their statistics) are the same, and a local block's
target is the gradient in its own statistics divided by its count, ∇_{μ_u} L / c_u (the
count multiplies every term of L that reads μ_u).  It is the document–term count matrix
that variational EM for LDA iterates over (Blei et al. 2003, §5.3; scikit-learn's
``LatentDirichletAllocation``), derived for any model whose data plate has repeated rows.

When (``compress_plate``): the data plate of ``engine/dataplate.py`` (its units independent
given the globals), every array on it of a discrete type (``cat``, ``int``, ``count``,
``bool``: real-valued rows are seldom equal, and hashing them would cost every fit), no
mask on the plate, every local block updated in closed form (a gradient step on c_u·ℓ_u
would take c_u times the step), and at least ``MIN_SAVING`` of the rows repeats.  The fit
runs on the distinct rows; its state is expanded back to every unit (``expand``), so the
returned fit is the one the full plate would have given.
"""

from __future__ import annotations

import time

from dataclasses import dataclass, replace

import jax
import jax.numpy as jnp
import numpy as np
from jax.tree_util import tree_map

from ..diagnostics import VemError
from ..plan import Update
from .dataplate import DataPlate, data_plate, rows_apart

#: Merge the repeated rows only when at least this fraction of the plate's rows repeats
#: an earlier one (below that, the weights' multiplications cost about what they save).
MIN_SAVING = 0.1
_DISCRETE = ("cat", "int", "count", "bool")


@dataclass(frozen=True)
class UnitWeights:
    """The distinct units of a data plate: ``weights[u]`` = how many units have row u's data;
    ``inverse[n]`` = the distinct row of unit n; ``first[u]`` = the first unit with it."""

    plate: DataPlate
    weights: np.ndarray  # [U] float
    inverse: np.ndarray  # [N] int
    first: np.ndarray  # [U] int

    @property
    def rows(self) -> int:
        return len(self.inverse)

    def local_weight(self, stat):
        """The weights laid out along the leading (plate) axis of a local block's array."""
        w = jnp.asarray(self.weights, dtype=stat.dtype)
        return jnp.reshape(w, w.shape + (1,) * (stat.ndim - 1))

    def expand(self, state, locals_=None, timed=False):
        """The state of the full plate: each unit's local blocks (default: the plate's) are
        its distinct row's.  ``timed``: (that state, the seconds of the call where a gather was
        compiled, else 0), the fit's compile time (LDA on Reuters: 0.05 s of its first fit)."""
        locals_ = self.plate.local_blocks if locals_ is None else locals_
        idx = jnp.asarray(self.inverse)
        t0, traced = time.perf_counter(), _TRACES[0]
        eta = {j: (_rows(v, idx) if j in locals_ else v) for j, v in state.eta.items()}
        mu = {j: (_rows(v, idx) if j in locals_ else v) for j, v in state.mu.items()}
        state = state._replace(eta=eta, mu=mu)
        if not timed:
            return state
        state = jax.block_until_ready(state)
        return state, (time.perf_counter() - t0 if _TRACES[0] != traced else 0.0)


_TRACES = [0]  # how often _rows was traced: a new shape compiles on its first call


@jax.jit
def _rows(tree, idx):
    # One compiled gather per block: run eagerly, each leaf's op compiles on its own (0.8 s
    # of a small LDA's first fit).
    _TRACES[0] += 1
    return tree_map(lambda a: a[idx], tree)


def compress_plate(model, plan, bound, present=(), dim=None, networks=False, required=False, started=()):
    """(the bound data with the plate's repeated rows merged, their ``UnitWeights``), or None
    when the plate has none worth merging or its rows cannot be merged.  ``required``: say why
    not instead of returning None (``fit(compress=True)``).  ``started``: the latents whose
    start the user gave element by element (``fit(init={"z": labels})``): two units with the
    same data may start apart, so a plate whose local blocks those are is not merged."""

    def refuse(reason):
        if required:
            raise VemError("unsupported", f"compress=True cannot merge the data plate's repeated rows: {reason}",
                           hint="drop compress=True; the fit runs on every row")
        return None

    if networks:
        return refuse("the model has networks or amortised posteriors")
    try:
        plate = data_plate(model, plan, dim, "merging repeated rows")
    except VemError as e:
        return refuse(e.message)
    if not plate.factors or not plate.arrays or not rows_apart(model, plate):
        return refuse(f"the plate over {plate.dim} cannot be taken apart row by row")
    for name in plate.arrays:
        base = model.nodes[name].type.base
        if base not in _DISCRETE:
            return refuse(f"'{name}' is {base}-valued (only discrete data rows are compared)")
    touched = set(plate.arrays) | set(plate.local_blocks)
    if set(bound.masks) & touched or set(present) & touched:
        return refuse("the plate has masked entries")
    given = [j for j in plate.local_blocks if j in started]
    if given:
        return refuse(f"init= starts the local block(s) {', '.join(given)} unit by unit")
    slow = [j for j in plate.local_blocks if plan.block(j).update is not Update.CAVI]
    if slow:
        return refuse(f"the local block(s) {', '.join(slow)} are not updated in closed form")
    n = int(bound.sizes[plate.dim])
    keys = np.concatenate([np.asarray(bound.values[a]).reshape(n, -1).astype(np.float64) for a in plate.arrays], 1)
    _, first, inverse, counts = np.unique(keys, axis=0, return_index=True, return_inverse=True, return_counts=True)
    if len(first) > (1.0 - MIN_SAVING) * n and not (required and len(first) < n):
        return refuse(f"only {n - len(first)} of its {n} rows repeat an earlier one")
    # Distinct rows in the order of their first unit, so the merged plate reads as the data does.
    order = np.argsort(first, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    weights = UnitWeights(plate, counts[order].astype(np.float64), rank[np.ravel(inverse)], first[order])
    values = dict(bound.values)
    for a in plate.arrays:
        values[a] = np.asarray(bound.values[a])[weights.first]
    merged = replace(bound, sizes={**bound.sizes, plate.dim: len(first)}, values=values)
    return merged, weights


__all__ = ["UnitWeights", "compress_plate", "MIN_SAVING"]
