"""The local passes of a grouped block and the local that reads it, on its per-group sums.

``engine/factored.py`` takes local block ``z``'s mean map in the exp domain one group of rows at
a time (rows with equal values of the finite data arrays its other factors read: LDA's tokens of
one document).  Its partner, the schedule's last local ``θ`` (read with ``z`` by those factors:
``z[i] ~ Categorical(theta[doc[i]])``), then still reads ``μ_z`` at every row, so each pass wrote
the [N, K] means and scattered them back to [G, K].  It need not: ``L`` is affine in ``μ_z`` (a
closed-form block) and each such factor reads row ``u`` only through ``z[u]`` and the group's
values, so with the rows' counts ``c_u``

    Σ_u c_u ℓ(g(u), μ_u, μ_θ)  =  Σ_g C_g ℓ(g, M_g / C_g, μ_θ),   C_g = Σ_{u∈g} c_u,  M_g = Σ_{u∈g} c_u μ_u,

the same factors evaluated at one row of each group, weighted by the group's count, at the
group's mean of ``μ_z``.  Both ``z``'s group target ``V`` (∇ in that row's μ_z over C_g) and
``θ``'s CAVI target (∇ in μ_θ) are that small evaluation's gradients, and ``M`` is what the
family's ``summed_mean`` gives from ``exp(ι − max ι)`` laid out [R, W, K] (each group's rows in
blocks of ``BLOCK``, its last block zero-padded) without forming the means: two batched
matrix-vector products a pass, and a scatter of the R blocks' sums to their groups, where the
scatter of [N, K] means took the most time (on XLA:CPU a ``segment_sum`` of [N, K] costs
several times the products over the layout).  The
passes carry only ``V`` and ``θ``; ``μ_z`` and ``η_z`` are formed once after them, from the last
pass's ``V``, as ``engine/factored.py`` forms them.  The same updates to rounding
(``tests/test_factored_softmax.py``).  The same identity gives those factors' part of the
sweep's ELBO (``known_value``): the last global update then evaluates only the rest.  Where z's
loop-invariant factors read it only as enumeration weights, they and H[q_z] join it, from the
passes' normalisers (``known_value``; docs/engine.md "The passes on the groups' sums").

The layout (which row stands at [g, l]) is built on the host from the engine's data and checked
in each sweep against the data it is given (a reused engine's copy, engine/reuse.py, may hold
other data of the same shapes): where a row's group differs, the sweep is not exact, and its η
is poisoned as where a normaliser underflows (``engine/guards.py::guarded_sweep`` then runs the
sweep without the exp domain).  Not built where padding would more than ``MAX_PADDING``-fold the
rows (one group far larger than the others), where the plate cannot be taken apart from the
rest (``rows_apart``) or holds masked arrays, or where the partner's factors are not all among
the grouped block's (a third local read with them).
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from ..ir.expr import Index, Name, walk
from ..plan import Update
from .dataplate import data_plate, rows_apart
from .factored import GroupedRows

#: The most cells of the layout per row of the plate.
MAX_PADDING = 4
#: The rows of one block: each group's rows are laid out in blocks of this many (the last one
#: padded), so the padding is under a block per group, and each block's products are short.
#: On Reuters (355 documents of 1 to 315 distinct words) a pass took 0.45 ms of CPU in blocks
#: of 32, 0.53 in blocks of 64, 0.65 in blocks of 16 and 1.55 with each document padded whole.
BLOCK = 32


@dataclass(frozen=True, eq=False)
class SummedPair:
    """``rows.block`` (grouped) and ``partner`` (the last local) updated on per-group sums."""

    rows: GroupedRows
    partner: str
    factors: tuple  # the grouped block's factors that read another local (its target's V)
    partner_factors: tuple  # the partner's factors that read another local (⊆ factors)
    dim: str  # the data plate
    arrays: tuple  # its data arrays
    index: np.ndarray  # [R, W]: the rows of each block (one group's, ``BLOCK`` at most), -1 where padded
    block_group: np.ndarray  # [R]: the group of each block
    linear: tuple = ()  # the grouped block's loop-invariant factors where each reads it only as weights

    @property
    def groups(self) -> int:
        return self.rows.groups

    def _to_groups(self, tree):
        """Per-block sums ([R, ...]) summed per group ([G, ...]), a scatter of R rows."""
        ids = jnp.asarray(self.block_group)
        return jax.tree_util.tree_map(lambda a: jax.ops.segment_sum(a, ids, self.groups, indices_are_sorted=True), tree)

    def prepare(self, engine, state, data, prepared):
        """Once a sweep: the group layout of exp(ι − max ι), the rows' counts, each group's
        count, its row of data and of q_z, and whether the data's groups are the layout's."""
        key, first = prepared.key, prepared.first
        valid = jnp.asarray(self.index >= 0)
        rows = jnp.asarray(np.maximum(self.index, 0))
        fits = jnp.all(jnp.where(valid, key[rows] == jnp.asarray(self.block_group, key.dtype)[:, None], True))
        if prepared.by_value is None:
            laid = jax.tree_util.tree_map(lambda a: jnp.where(valid[..., None], a[rows], 0.0), prepared.fixed_exp)
        else:  # one gather from ι's exp at each value (LDA: [V, K]) into the layout
            row_value, _, fixed_at = prepared.by_value
            laid = jax.tree_util.tree_map(lambda a: jnp.where(valid[..., None], a[row_value[rows]], 0.0), fixed_at)
        unit = engine.unit_weights
        w = jnp.ones(key.shape[0], laid.dtype) if unit is None else jnp.asarray(unit.weights, laid.dtype)
        weights = jnp.where(valid, w[rows], 0.0)
        one_row = {a: data[a][first] for a in self.arrays if a in data}
        j = self.rows.block
        at_first = jax.tree_util.tree_map(lambda a: a[first], (state.mu[j], state.eta[j]))
        return laid, weights, valid, self._to_groups(jnp.sum(weights, axis=1)), one_row, at_first, fits

    def _group_sum(self, engine, state, data, laid_out, factors, mu_z, mu_p, eta_p):
        """The factors at one row of each group, weighted by the group's count, at the group's
        mean of μ_z and the partner's q."""
        _, _, _, count, one_row, (_, eta_z), _ = laid_out
        j, p = self.rows.block, self.partner
        sizes = {**engine.bound.sizes, self.dim: count.shape[0]}
        return engine.factor_sum(factors, {**state.mu, j: mu_z, p: mu_p}, {**state.eta, j: eta_z, p: eta_p},
                                 state.params,
                                 {**data, **one_row}, sizes=sizes, units=(self.dim, count))

    def update(self, engine, state, data, laid_out, carry, invariant):
        """One pass: z's V at the partner's μ, the groups' sums of μ_z, the partner's CAVI
        update from them.  ``carry``: (partner's η, partner's μ, V, exact, the groups' mean of
        μ_z at the last V)."""
        laid, weights, valid, count, _, (mu_first, _), _ = laid_out
        eta_p, mu_p, _, exact, _ = carry
        j, p = self.rows.block, self.partner
        fam_z, fam_p = engine.families[j], engine.families[p]
        safe = jnp.where(count > 0, count, 1.0)

        def per_group(g):
            return g / jnp.reshape(safe, safe.shape + (1,) * (g.ndim - 1))

        grad_z = jax.grad(lambda m: self._group_sum(engine, state, data, laid_out, self.factors, m, mu_p, eta_p))(mu_first)
        V = jax.tree_util.tree_map(per_group, grad_z)
        ids = jnp.asarray(self.block_group)
        blocks, ok = fam_z.summed_mean(laid, jax.tree_util.tree_map(lambda v: v[ids], V), weights, valid)
        summed = self._to_groups(blocks)
        mean = jax.tree_util.tree_map(
            lambda s, f: jnp.where(jnp.reshape(count > 0, count.shape + (1,) * (s.ndim - 1)), per_group(s), f),
            summed, mu_first)
        grad_p = jax.grad(lambda m: self._group_sum(engine, state, data, laid_out, self.partner_factors, mean, m, eta_p))(mu_p)
        if invariant is not None:
            grad_p = jax.tree_util.tree_map(jnp.add, grad_p, invariant)
        eta_new = fam_p.tidy_natural(fam_p.Stats(*grad_p))
        return eta_new, fam_p.expected_stats(eta_new), V, exact & ok, mean

    def entropy_known(self, engine, after) -> bool:
        """Whether ``known_value`` for the last of the global updates ``after`` also holds the
        ``linear`` factors and q_z's entropy: it is closed form, the pair's factors do not read
        it, and no global updated before it is read by a ``linear`` factor (their ι is the
        sweep's, taken before the passes)."""
        if not self.linear or not after or engine.plan.block(after[-1]).update is not Update.CAVI:
            return False
        return not set(self.factors) & set(engine._local(after[-1])) and not any(
            set(self.linear) & set(engine._local(g)) for g in after[:-1])

    def known_value(self, engine, state, data, laid_out, carry, reading, prepared=None):
        """(``factors``, their value at ``state``) from the groups' mean of μ_z (module
        docstring), for the last global update (``Engine.update_block_and_log_joint``); None
        where one of them reads the blocks ``reading`` (that update's).  ``state``: after
        ``finish``, its partner's q the last pass's.  With ``prepared`` (the grouped rows'
        ``prepare``; where ``entropy_known``) also the ``linear`` factors plus H[q_z]: each
        such factor is ⟨c_u ι_u, μ_u⟩ summed (zero at μ_z = 0, affine in it), and H[q_z] =
        Σ_u c_u (A(η_u) − ⟨ι_u + V_g(u), μ_u⟩), so their sum is Σ_u c_u A(η_u) − Σ_g ⟨V_g, M_g⟩:
        no [N, K] product (the family's ``summed_log_normalizer`` on the passes' layout)."""
        if set(self.factors) & set(reading):
            return None
        p = self.partner
        mean = carry[-1]
        value = self._group_sum(engine, state, data, laid_out, self.factors, mean, state.mu[p], state.eta[p])
        if prepared is None:
            return self.factors, value
        laid, weights, valid, count = laid_out[:4]
        V, unit = carry[2], engine.unit_weights
        # ι is a function of the values of the arrays ``rows.iota_keys`` at the row: ι at one row
        # of each value (``GroupedRows.prepare``), with those rows' total count.
        row_value, iota_at, _ = prepared.by_value
        w = jnp.ones(row_value.shape[0]) if unit is None else jnp.asarray(unit.weights)
        size = jax.tree_util.tree_leaves(iota_at)[0].shape[0]
        a = engine.families[self.rows.block].summed_log_normalizer(
            iota_at, jax.ops.segment_sum(w, row_value, size), laid,
            jax.tree_util.tree_map(lambda v: v[jnp.asarray(self.block_group)], V), weights, valid)
        inner = sum(jnp.vdot(v, m * jnp.reshape(count, count.shape + (1,) * (m.ndim - 1))) for v, m in zip(V, mean))
        poison = jnp.where(jnp.isnan(jax.tree_util.tree_leaves(state.eta[self.rows.block])[0].ravel()[0]), jnp.nan, 0.0)
        return self.factors + self.linear, value + a - inner + poison  # NaN as ``finish`` made η_z

    def finish(self, engine, state, data, prepared, laid_out, carry):
        """The state after the passes: the partner's q, q_z from the last pass's V (η_z NaN
        where a pass, or the layout, was not exact)."""
        eta_p, mu_p, V, exact, _ = carry
        j, p = self.rows.block, self.partner
        mu_z, ok = engine.families[j].mean_of_sum(prepared.fixed_exp, V, prepared.key)
        state = state._replace(eta={**state.eta, p: eta_p}, mu={**state.mu, j: mu_z, p: mu_p})
        return self.rows.finish(engine, state, prepared, V, exact & ok & laid_out[-1])


def summed_pair(engine, locals_, grouped, invariant, dim=None) -> SummedPair | None:
    """The pair (module docstring) where the schedule's locals are a grouped block and a last
    local that only it is read with; None where the rule does not hold."""
    if len(locals_) != 2 or locals_[0] not in grouped:
        return None
    j, p = locals_
    rows: GroupedRows = grouped[j]
    fam_z, fam_p = engine.families[j], engine.families[p]
    if fam_z.summed_mean is None or engine.plan.block(p).update is not Update.CAVI:
        return None
    if p in engine._weighted or p in engine.masks or j in engine.present or p in engine.amortised:
        return None
    plate = data_plate(engine.model, engine.plan, dim, "a local/global schedule")
    if not rows_apart(engine.model, plate) or any(k in plate.arrays or k in plate.local_blocks for k in engine.masks):
        return None
    if engine.unit_weights is not None and engine.unit_weights.plate.dim != plate.dim:
        return None
    factors = tuple(f for f in engine._local(j) if f not in invariant.get(j, ()))
    partner_factors = tuple(f for f in engine._local(p) if f not in invariant.get(p, ()))
    if not partner_factors or any(f not in factors for f in partner_factors):
        return None
    if any(k not in engine.data for k in rows.keys):
        return None
    key = np.zeros(np.asarray(engine.data[rows.keys[0]]).shape[0], np.int64)
    for name, size in zip(rows.keys, rows.sizes):
        key = key * size + np.asarray(engine.data[name]).astype(np.int64)
    counts = np.bincount(key, minlength=rows.groups)
    width = min(BLOCK, int(counts.max(initial=0)))
    if width == 0:
        return None
    blocks = -(-counts // width)  # each group's blocks
    if int(blocks.sum()) * width > MAX_PADDING * len(key):
        return None
    order = np.argsort(key, kind="stable")  # the rows group by group
    block_group = np.repeat(np.arange(rows.groups), blocks)
    # Row r of the sorted order, the n-th of its group g, stands in block (g's first + n // width).
    nth = np.arange(len(key)) - np.concatenate([[0], np.cumsum(counts)[:-1]])[key[order]]
    first_block = np.concatenate([[0], np.cumsum(blocks)[:-1]])
    index = np.full((int(blocks.sum()), width), -1, np.int32)
    index[first_block[key[order]] + nth // width, nth % width] = order
    # Their ι at one row of each value of what they read (rows.iota_keys) gives H[q_z] with them.
    linear = invariant.get(j, ())
    if (fam_z.summed_log_normalizer is None or not rows.iota_keys
            or not all(_weights_only(engine.model, f, j) for f in linear)):
        linear = ()
    return SummedPair(rows, p, factors, partner_factors, plate.dim, plate.arrays, index, block_group, tuple(linear))


def _weights_only(model, f, j) -> bool:
    """Whether factor ``f`` reads block ``j`` only as one enumerated read (``beta[z[i]]``), whose
    E[onehot] weights each of its terms, so that it is zero at μ_j = 0: ``j`` is not its
    target, and it names no deterministic node (through which it could read ``j`` otherwise)."""
    refs = [r for r in f.enum if r.block == j]
    if f.target == j or len(refs) != 1 or not isinstance(refs[0].expr, Index) or refs[0].expr.base != Name(j):
        return False
    d = f.definition
    exprs = [e for _, e in d.args] + ([d.expr] if d.expr is not None else [])
    nodes = [n for e in exprs for n in walk(e)]
    if any(isinstance(n, Name) and getattr(model.nodes.get(n.id), "kind", None) == "det" for n in nodes):
        return False
    return sum(n == Name(j) for n in nodes) == sum(n == refs[0].expr for n in nodes)


__all__ = ["BLOCK", "MAX_PADDING", "SummedPair", "summed_pair"]
