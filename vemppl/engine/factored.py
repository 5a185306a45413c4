"""A local block's mean map taken in the exp domain, one group of rows at a time.

In the local passes of the schedule (``engine/schedule.py``) a closed-form local block ``j``
has the target ``η_j = ι + v``: ``ι`` the part of the factors that read no other local block
(fixed while the passes run: LDA's ``E[log β]`` at each row's word) and ``v`` the part of the
factors that read the other locals (``E[log θ]`` at each row's document).  When every factor in
``v`` reads the plate's row ``i`` only as ``j[i]`` and as data arrays ``a[i]`` with finitely
many values (``doc: cat(D)``), row ``u``'s ``v`` is a function of those values alone: rows
with the same values have the same ``v``, and there are at most ``G = Π |values|`` of them.

For a family whose mean map is a normalised exponential (the Categorical's softmax),

    μ_u = exp(ι_u + v_u) / Σ exp(…)  =  B_u ⊙ P[g(u)] / n_u,
    B = exp(ι − max ι) (once a sweep),  P = exp(V − max V) ([G, K], each pass),  n_u = Σ_k B_uk P[g(u), k],

with ``V`` v at one row of each group.  A pass then takes G×K exps where the softmax takes one
per row and category (LDA on Reuters: 355×20 against 54 380×20), as scikit-learn's batch
E-step does, and no pass writes η_j: the passes carry V ([G, K]) and η_j = ι + V[g] is formed
once after them (no update in the passes reads η_j, the CAVI targets read μ).  It is the same
update to rounding (``tests/test_factored_softmax.py``).

Where some row's ``n_u`` falls below √tiny of its dtype (its best category far below both
factors' maxima, where the product loses digits) the sweep is not exact: its η_j is made NaN,
and ``engine/guards.py::guarded_sweep`` runs the sweep again with the softmax of the sum (a
second program, compiled only then).  A test inside the passes (``lax.cond``) would copy the
[N, K] operands in and out of the conditional on XLA:CPU each pass, which cost more than the
exps it saves.

The rule is read off the plan's factors (never off a model's name); a family says whether it
can (``ExpFamily.mean_of_sum``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ..elj.evaluate import plate_var
from ..ir.expr import Index, Name, walk


class Prepared(NamedTuple):
    """What a sweep's passes read of a grouped block, made once before them."""

    iota: Any  # ι at each row
    fixed_exp: Any  # the family's exp(ι − max ι) at each row
    key: Any  # [N]: each row's group
    first: Any  # [G]: one row of each group
    by_value: Any = None  # (each row's ι-key [N], ι and exp(ι − max ι) at one row of each ι-key), or None


@dataclass(frozen=True)
class GroupedRows:
    """Block ``block``'s rows grouped by the data arrays ``keys`` (radix ``sizes``): the
    factors ``rest`` (every factor but the loop-invariant ones) give each group one target.
    ``iota_keys`` ((array, its number of values), ...), where the loop-invariant factors
    ``invariant`` read a row only as ``block[i]`` and those arrays at it (LDA: the word), so that
    ι is a function of their values: it is then evaluated at one row of each value (``dim``
    the plate, ``arrays`` its data arrays, cut to those rows) and gathered, not evaluated at
    every row, and its exp is taken there (V×K exps for LDA's N×K)."""

    block: str
    keys: tuple[str, ...]
    sizes: tuple[int, ...]
    rest: tuple
    invariant: tuple = ()
    iota_keys: tuple = ()
    dim: str | None = None
    arrays: tuple = ()

    @property
    def groups(self) -> int:
        return int(np.prod(self.sizes))

    def prepare(self, engine, state, data, invariant_part):
        """Once a sweep: :class:`Prepared` (ι, the family's exp of ι, each row's group, one row
        of each group, and where ``iota_keys``: ι and its exp at one row of each of their values)."""
        fam = engine.families[self.block]
        key, first = _radix(data, self.keys, self.sizes)
        if not self.iota_keys:
            iota = _per_row(engine, self.block, invariant_part)
            return Prepared(iota, fam.fixed_exp(iota), key, first)
        names, sizes = zip(*self.iota_keys)
        row_value, one = _radix(data, names, sizes)
        j, size = self.block, one.shape[0]
        at = partial(jax.tree_util.tree_map, lambda a: a[one])
        cut = {a: data[a][one] for a in self.arrays if a in data}
        sizes_at = {**engine.bound.sizes, self.dim: size}

        def L(mu_j):  # the invariant factors at one row of each value, each row of weight 1
            return engine.factor_sum(self.invariant, {**state.mu, j: mu_j}, {**state.eta, j: at(state.eta[j])},
                                     state.params, {**data, **cut}, sizes=sizes_at,
                                     units=(self.dim, jnp.ones(size, jnp.result_type(float))))

        iota_at = jax.grad(L)(at(state.mu[j]))
        fixed_at = fam.fixed_exp(iota_at)
        gather = partial(jax.tree_util.tree_map, lambda a: a[row_value])
        return Prepared(gather(iota_at), gather(fixed_at), key, first, (row_value, iota_at, fixed_at))

    def empty(self, state):
        """V before the first pass ([G, ...] zeros, the shape of a row of μ_j)."""
        return jax.tree_util.tree_map(lambda a: jnp.zeros((self.groups,) + a.shape[1:], a.dtype), state.mu[self.block])

    def update(self, engine, state, data, prepared):
        """(the state with μ_j updated, V, whether μ_j is exact to rounding): μ_j as
        ``Engine.update_block`` with the loop-invariant part gives it, η_j left as it was."""
        fixed_exp, key, first = prepared.fixed_exp, prepared.key, prepared.first
        j, fam = self.block, engine.families[self.block]
        raw = jax.grad(engine._as_function_of(state, j, data, self.rest))(state.mu[j])
        grouped = jax.tree_util.tree_map(lambda a: a[first], _per_row(engine, j, raw))
        mu, exact = fam.mean_of_sum(fixed_exp, grouped, key)
        return state._replace(mu={**state.mu, j: mu}), grouped, exact

    def finish(self, engine, state, prepared, grouped, exact):
        """The state with η_j = ι + V[g] of the last pass; NaN where a pass was not exact."""
        iota, key = prepared.iota, prepared.key
        poison = jnp.where(exact, 0.0, jnp.nan)
        eta = jax.tree_util.tree_map(lambda a, v: a + v[key] + poison, iota, grouped)
        return state._replace(eta={**state.eta, self.block: engine.families[self.block].tidy_natural(eta)})


def _radix(data, names, sizes):
    """(each row's value of the arrays ``names`` read as one radix-``sizes`` number, [N]; one
    row of each such value, [Π sizes]: its first, or the last row where it is absent)."""
    key = jnp.zeros(data[names[0]].shape[0], jnp.int32)
    for name, size in zip(names, sizes):
        key = key * size + jnp.asarray(data[name]).astype(jnp.int32)
    rows, values = key.shape[0], int(np.prod(sizes))
    return key, jnp.full(values, rows - 1, jnp.int32).at[key].min(jnp.arange(rows, dtype=jnp.int32))


def _per_row(engine, j, grad):
    """A part of ∇_{μ_j} L per unit: divided by the merged rows' counts (engine/compress.py)."""
    if j in engine._weighted:
        return jax.tree_util.tree_map(lambda g: g / engine.unit_weights.local_weight(g), grad)
    return grad


def grouped_rows(engine, plate, j, invariant_factors) -> GroupedRows | None:
    """The grouping of local block ``j``'s rows (module docstring), or None where the rule does
    not hold: the family has no exp-domain mean map, ``j`` is not one element per row ``j[i]``,
    a factor reads row ``i`` other than as ``j[i]`` or a finite-valued data array ``a[i]``
    (``x[i]`` real, another local ``y[i]``, ``i - 1``), the plate has masked entries, or the
    groups are not fewer than half the rows."""
    fam, model = engine.families[j], engine.model
    if fam.mean_of_sum is None or plate is None:
        return None
    plate_dim = plate.dim
    if not all(_one_per_row(d, plate_dim) for d in model.nodes[j].defs):
        return None
    rest = tuple(f for f in engine.plan.factors if f not in invariant_factors)
    reading = [f for f in engine._local(j) if f not in invariant_factors]
    if not reading:
        return None
    keys: list[str] = []
    for f in reading:
        found = _row_reads(f, plate_dim, j)
        if found is None:
            return None
        keys += [k for k in found if k not in keys]
    sizes = []
    for name in keys:
        size = _finite_values(engine, name)
        if size is None or name in engine.masks:
            return None
        sizes.append(size)
    if j in engine.masks or not keys:
        return None
    rows = int(engine.bound.sizes[plate_dim]) if engine.unit_weights is None else len(engine.unit_weights.weights)
    if 2 * int(np.prod(sizes)) > rows:
        return None
    return GroupedRows(j, tuple(keys), tuple(sizes), rest, tuple(invariant_factors),
                       _iota_keys(engine, plate, j, invariant_factors, rows), plate_dim, tuple(plate.arrays))


def _iota_keys(engine, plate, j, invariant_factors, rows) -> tuple:
    """((array, its number of values), ...) that the ``invariant_factors`` read at a row besides
    ``j[i]``, where each reads a row only so and those arrays are finite-valued and unmasked,
    their values fewer than half the rows, and no array of the plate is masked; else ()."""
    if any(a in engine.masks for a in plate.arrays) or engine.networks or engine.amortised:
        return ()
    names: list[str] = []
    for f in invariant_factors:
        found = _row_reads(f, plate.dim, j)
        if found is None:
            return ()
        names += [k for k in found if k not in names]
    sizes = [_finite_values(engine, name) for name in names]
    if not names or None in sizes or 2 * int(np.prod(sizes)) > rows:
        return ()
    return tuple(zip(names, sizes))


def _one_per_row(d, dim) -> bool:
    v = plate_var(d, dim)
    return v is not None and len(d.loops) == 1 and d.indices == (Name(v),)


def _row_reads(f, dim, j) -> list[str] | None:
    """The data arrays factor ``f`` reads at its plate row (``a[i]``), or None where it reads the
    row any other way than those and ``j[i]``."""
    d = f.definition
    if not _one_per_row(d, dim):
        return None
    v = Name(plate_var(d, dim))
    exprs = [Index(Name(f.target), d.indices)] + [e for _, e in d.args] + ([d.expr] if d.expr is not None else [])
    exprs += [r.expr for r in f.enum]
    direct, keys = 0, []
    for e in exprs:
        for node in walk(e):
            if isinstance(node, Index) and v in node.indices:
                if node.indices != (v,) or not isinstance(node.base, Name):
                    return None
                direct += 1
                if node.base.id != j:
                    keys.append(node.base.id)
    uses = sum(1 for e in exprs for node in walk(e) if node == v)
    return keys if uses == direct else None


def _finite_values(engine, name) -> int | None:
    """How many values data array ``name`` takes: K for ``cat(K)``, 2 for ``bool``; else None."""
    node = engine.model.nodes.get(name)
    if node is None or node.kind != "data":
        return None
    t = node.type
    if t.base == "bool":
        return 2
    if t.base != "cat" or t.bound is None:
        return None
    b = t.bound
    if isinstance(b, Name):
        value = engine.bound.sizes.get(b.id, engine.consts.get(b.id))
    else:
        value = getattr(b, "value", None)
    try:
        return int(np.asarray(value)) if value is not None else None
    except (TypeError, ValueError):
        return None


__all__ = ["GroupedRows", "Prepared", "grouped_rows"]
