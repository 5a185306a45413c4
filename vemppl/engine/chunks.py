"""The data plate's sum taken chunk by chunk, so its intermediates stay in cache.

The expected log joint of a factor inside the data plate is a sum over its N units.  Taken
whole, every per-unit intermediate is an array over all N units: for a full-covariance
GMM with N = 100k and D = K = 10, each ``x_n Λ_k`` product is an 80 MB [N, K, D] array
written and read back, and a sweep spent ~0.2 s per block doing so while its
multiply-adds need ~3 ms.  Summing the same factors over chunks of rows with
``lax.scan`` keeps each chunk's intermediates in cache; the value is the same sum in a
different order, and ``jax.grad`` of it gives the same CAVI targets (per-chunk gradients
of the local blocks, accumulated gradients of the globals).

What a chunk slices is read off the data plate (``engine/dataplate.py``): the data arrays
laid out along it, their masks, and the local blocks' moments and natural parameters.  A
model whose plate cannot be split (no single plate, a chain along it, a constant array
laid out along it, a read of a plate array at another unit, which ``data_plate`` refuses)
is evaluated whole, as before.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
from jax.extend.core import jaxprs_in_params
from jax.tree_util import tree_map

from ..diagnostics import VemError
from .dataplate import DataPlate, data_plate, rows_apart

# Rows per chunk: the largest divisor of N in this range (so no chunk needs padding); a
# plate with no such divisor, or smaller than two chunks, is not chunked.
MIN_ROWS, MAX_ROWS = 1024, 4096
# Chunk only when the whole evaluation's largest intermediate holds at least this many
# numbers (read off its jaxpr).  Measured on GMM sweeps (2 cores), whose largest is the
# [N, K·D] product x_n Λ_k: 10M (N = 100k, D = K = 10) and 5M (N = 50k, D = 20, K = 5)
# ran 1.3× faster chunked, 3M (N = 30k, D = K = 10) the same, and 2.5M (N = 100k,
# D = K = 5) 1.8× slower, the scan's per-chunk overhead outweighing the cache it saves.
# Factor analysis (N = 20k, D = 20, L = 5; largest [N, L, L], 0.5M) ran 2.1× slower chunked.
MIN_WORK = 4_000_000


@dataclass(frozen=True)
class Chunks:
    plate: DataPlate
    rows: int  # units per chunk
    count: int  # chunks
    _largest: dict = field(default_factory=dict, compare=False, repr=False)  # worth's measure, by factors

    def worth(self, engine, factors, mu, eta, params, data, extra_blocks) -> bool:
        """Whether the plate's factors, evaluated whole, build an intermediate of at least
        ``MIN_WORK`` numbers (the largest array of their jaxpr, traced once per engine):
        only then do chunks that stay in cache repay the scan's overhead."""
        key = tuple(id(f) for f in factors)
        if key not in self._largest:
            jaxpr = jax.make_jaxpr(lambda: engine.factor_sum(factors, mu, eta, params, data, extra_blocks))()
            self._largest[key] = largest_intermediate(jaxpr.jaxpr)
        return self._largest[key] >= MIN_WORK

    def split(self, x):
        """[N, ...] -> [count, rows, ...]."""
        return jnp.reshape(x, (self.count, self.rows) + x.shape[1:])


def largest_intermediate(jaxpr) -> int:
    """The most numbers any one value of ``jaxpr`` holds, its sub-jaxprs (loops, calls,
    custom derivatives) included."""
    out = 0
    for eqn in jaxpr.eqns:
        for v in eqn.outvars:
            out = max(out, math.prod(getattr(v.aval, "shape", ())))
        for sub in jaxprs_in_params(eqn.params):
            out = max(out, largest_intermediate(getattr(sub, "jaxpr", sub)))
    return out


def chunk_rows(n: int) -> int | None:
    if n < 2 * MIN_ROWS:
        return None
    for rows in range(min(MAX_ROWS, n // 2), MIN_ROWS - 1, -1):
        if n % rows == 0:
            return rows
    return None


def plate_chunks(engine) -> Chunks | None:
    """How the engine's data plate splits into chunks, or None to evaluate it whole."""
    if engine.networks or engine.amortised or engine.fixed_blocks:
        return None
    try:
        plate = data_plate(engine.model, engine.plan, None, "chunked evaluation")
    except VemError:
        return None
    n = int(engine.bound.sizes.get(plate.dim, 0))
    rows = chunk_rows(n)
    if rows is None or not plate.factors:
        return None
    if not rows_apart(engine.model, plate):
        return None
    if engine.unit_weights is not None and engine.unit_weights.plate.dim != plate.dim:
        return None  # the merged rows' counts lie along another plate than the chunks would split
    return Chunks(plate, rows, n // rows)


def chunked_sum(engine, chunks: Chunks, factors, mu, eta, params, data, extra_blocks):
    """Σ over chunks of the plate's factors, each chunk with its own rows of the data,
    masks and local blocks (the globals and everything off the plate read whole)."""
    plate = chunks.plate
    local = [j for j in plate.local_blocks if j in mu]
    arrays = [k for k in plate.arrays if k in data]
    masked = [k for k in engine.masks if k in plate.arrays or k in plate.local_blocks]
    units = engine.unit_weights  # the merged rows' counts (engine/compress.py), or None
    xs = (
        {j: tree_map(chunks.split, mu[j]) for j in local},
        {j: tree_map(chunks.split, eta[j]) for j in local},
        {k: chunks.split(data[k]) for k in arrays},
        {k: chunks.split(jnp.asarray(engine.masks[k])) for k in masked},
        None if units is None else chunks.split(jnp.asarray(units.weights)),
    )
    sizes = {**engine.bound.sizes, plate.dim: chunks.rows}

    def body(total, x):
        mu_c, eta_c, data_c, masks_c, weights_c = x
        total = total + engine.factor_sum(factors, {**mu, **mu_c}, {**eta, **eta_c}, params, {**data, **data_c},
                                          extra_blocks, sizes=sizes, masks={**engine.masks, **masks_c},
                                          weights=weights_c)
        return total, None

    total, _ = jax.lax.scan(body, jnp.zeros(()), xs)
    return total


__all__ = ["Chunks", "chunk_rows", "plate_chunks", "chunked_sum"]
