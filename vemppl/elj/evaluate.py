"""Evaluating the expected log joint, one factor at a time, vectorised over plates.

A factor (one ``~`` statement) is evaluated on a grid: one array axis per enclosing loop variable, then one
axis per enumerated categorical reference (the gates of ``compiler.compile``), then the value's event axes.
Indexing by a loop variable is a slice placed on that variable's axis, indexing by a data array is a gather,
and indexing by a categorical latent places every category on that reference's axis.  The factor's expected
log density, an array over the grid, is weighted by ``E[onehot]`` of the enumerated latents and summed:

    E_q[log p(x_n | mu_{z_n}, ...)] = Σ_k E[z_nk] · E[log p(x_n | mu_k, ...)]

which is affine in every block's mean parameters (Winn & Bishop 2005; Minka & Winn 2008).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ..diagnostics import VemError
from ..families import REGISTRY, get_family
from ..ir.collect import collect
from ..ir.expr import BinOp, Call, Index, Name, Neg, Num, loop_offset, names
from ..ir.inline import push_index
from ..ir.shapes import infer
from . import deterministic as D
from .enum_weights import enum_weight, group_refs, held_at_points, joint_weight
from . import general
from .grid import align as _align, lift, matmul as _matmul
from . import affine as A, cross, moments as M
from . import nonlinear
from .lagged import ChainStep
from .networks import call_network
from .products import DiagOf, product, self_dot


def eval_fixed(e, sizes: dict, values: dict):
    """Value of an expression of constants and sizes only (no loop variables)."""
    ctx = _Context(None, (), (), sizes, values, {}, {}, None)
    src = ctx.ev(e)
    return src.value


def const_value(node, sizes: dict, values: dict) -> np.ndarray:
    """A const's value from its definition; a typed const takes its declared shape, which a
    scalar value fills (``const W: real[J, L] = 0.0``; docs/text-language.md)."""
    return typed_fill(node, np.asarray(eval_fixed(node.value, sizes, values)), sizes)


def typed_fill(node, v: np.ndarray, sizes: dict) -> np.ndarray:
    """A scalar value of a typed const filled to its declared shape (``const alpha: real[C]``
    given 1.0 in the text, or 0.5 by ``consts=``/``--set``), once the shape's sizes are known."""
    t = node.type
    if t is not None and t.shape and v.ndim == 0:
        shape = tuple(size_of(e, sizes) for e in t.shape)
        if t.base == "spd":
            shape = shape + shape[-1:]
        if None not in shape:
            v = np.full(shape, v.item(), dtype=v.dtype)
    return v


def size_of(e, sizes, what=None) -> int | None:
    """The size an expression of sizes stands for (``D``, ``3``, ``D + 2``); None while one
    of its names is not bound."""
    if isinstance(e, Num):
        return int(e.value)
    if isinstance(e, Name):
        return sizes.get(e.id)
    try:
        v = np.asarray(eval_fixed(e, sizes, {}))
    except KeyError:
        return None
    return int(v)


def plate_var(d, dim) -> str | None:
    """The loop variable of definition ``d`` that runs over the plate ``dim``, if any."""
    for lp in d.loops:
        if isinstance(lp.stop, Name) and lp.stop.id == dim:
            return lp.var
    return None


class _Context:
    """Evaluation of expressions inside one factor's grid."""

    def __init__(self, model, loops, enum, sizes, values, blocks, params, tracker, masks=None):
        self.model, self.sizes, self.values = model, sizes, values
        self.blocks, self.params, self.tracker = blocks, params, tracker
        self.masks = masks or {}
        self.loops = []
        for lp in loops:
            start = int(eval_fixed(lp.start, sizes, values))
            stop = int(eval_fixed(lp.stop, sizes, values))
            self.loops.append((lp.var, start, stop))
        self.loop_vars = tuple(v for v, _, _ in self.loops)
        self.enum = enum
        self.enum_sizes = [blocks[r.block][1].onehot.shape[-1] for r in enum]
        self.R = len(self.loops) + len(enum)
        self._random_dets: dict[str, bool] = {}
        self._wholes: dict[str, object] = {}

    # ---- layout helpers ---------------------------------------------------------
    def grid_shape(self):
        return tuple(stop - start for _, start, stop in self.loops) + (1,) * len(self.enum)

    def _axis_array(self, values, axis):
        shape = [1] * self.R
        shape[axis] = len(values)
        return np.reshape(np.asarray(values), shape)

    def grid_arange(self, var, offset=0):
        p = self.loop_vars.index(var)
        _, start, stop = self.loops[p]
        return self._axis_array(np.arange(start + offset, stop + offset), p)

    def enum_arange(self, e):
        return self._axis_array(np.arange(self.enum_sizes[e]), len(self.loops) + e)

    def index_arrays(self, indices):
        out = []
        for ix in indices:
            ix = D.written_out(self, ix)  # an index read through a deterministic node of latents: z[n] in m[z[n]]
            hit = next((i for i, r in enumerate(self.enum) if r.expr == ix), None)
            if hit is not None:
                out.append(self.enum_arange(hit))
                continue
            lo = loop_offset(ix, self.loop_vars)
            if lo is not None:
                out.append(self.grid_arange(*lo))
                continue
            src = self.ev(ix)
            if not src.is_fixed:
                raise VemError(
                    "unsupported",
                    "an index must be a loop variable, data, a constant or a categorical latent",
                    getattr(ix, "span", None),
                    hint=("a Bernoulli latent is not one: draw a two-valued index from a Categorical "
                          "(`s[n] ~ Categorical(w)`, `w ~ Dirichlet(ones(2))`)"
                          if getattr(getattr(src, "family", None), "support", None) == "bool" else None),
                )
            v = src.value
            if v.ndim not in (0, self.R):
                raise VemError("unsupported", "this index expression has an unexpected shape", getattr(ix, "span", None))
            out.append(v.astype(np.int64) if isinstance(v, np.ndarray) else v.astype(jnp.int32))
        return tuple(out)

    def take(self, a, indices):
        """``a[index_arrays(indices)]``, taken as a slice when every index is a loop variable
        (plus a constant offset) on its own grid axis, in order: ``z[i]``, ``x[d, l]``,
        ``z[t-1]``.  The gather it replaces reads the same rows, but its gradient is a
        scatter-add over the whole plate (2 of them cost 2/3 of an LDA z-update); a slice's
        gradient is a pad."""
        spans, last = [], -1
        for ix in indices:
            lo = None if any(r.expr == ix for r in self.enum) else loop_offset(ix, self.loop_vars)
            if lo is None:
                return self._gather(a, indices)
            p = self.loop_vars.index(lo[0])
            _, start, stop = self.loops[p]
            first, end = start + lo[1], stop + lo[1]
            if p <= last or first < 0 or len(spans) >= np.ndim(a) or end > np.shape(a)[len(spans)]:
                return self._gather(a, indices)
            spans.append((p, first, end))
            last = p
        shape = [1] * self.R
        for p, first, end in spans:
            shape[p] = end - first
        sliced = a[tuple(slice(first, end) for _, first, end in spans)]
        xp = np if isinstance(a, np.ndarray) else jnp
        return xp.reshape(sliced, tuple(shape) + tuple(np.shape(a)[len(spans):]))

    def _gather(self, a, indices):
        idx = self.index_arrays(indices)
        if isinstance(a, np.ndarray) and any(isinstance(i, jax.Array) for i in idx):
            a = jnp.asarray(a)  # a known array gathered by traced data (v[grp[n]])
        return a[idx]

    # ---- evaluation --------------------------------------------------------------
    def ev(self, e) -> M.MomentSource:
        if isinstance(e, Num):
            return M.Fixed(float(e.value))
        if isinstance(e, (Name, Index)):
            # a gated categorical (`z[n]`, or an unplated `s`): every category on its own axis
            hit = next((i for i, r in enumerate(self.enum) if r.expr == e), None)
            if hit is not None:
                return M.Fixed(self.enum_arange(hit))
        if isinstance(e, Name):
            return self._name(e)
        if isinstance(e, Index):
            return self._index(e)
        if isinstance(e, Neg):
            a = self.ev(e.operand)
            return M.Fixed(-a.value) if a.is_fixed else A.Scaled(-1.0, a)
        if isinstance(e, BinOp):
            return self._binop(e)
        if isinstance(e, Call):
            return self._call(e)
        raise TypeError(e)

    def _name(self, e: Name):
        if e.id in self.loop_vars:
            return M.Fixed(self.grid_arange(e.id))
        if e.id in self.values:
            return M.Fixed(self.values[e.id])
        if e.id in self.sizes:
            return M.Fixed(self.sizes[e.id])
        if e.id in self.params:
            return M.Fixed(self.params[e.id])
        if e.id in self.blocks:
            fam, stats, eta = entry = self.blocks[e.id]
            if isinstance(entry, M.Member):  # a member of a joint block (Normal–Wishart)
                return _matched(M.MemberMoments(entry.block, fam, stats, eta, self.tracker, entry.role), entry)
            src = _matched(M.BlockMoments(e.id, fam, stats, eta, self.tracker), entry)
            node = self.model.nodes[e.id]
            if fam.event_rank == 0 and node.defs and node.defs[0].indices:
                return cross.Stacked(src, self.tracker)
            return src
        if self.model is not None and e.id in self.model.nodes and self.model.nodes[e.id].kind == "det":
            return D.read(self, e, self.model.nodes[e.id])
        raise KeyError(e.id)

    def _index(self, e: Index):
        if isinstance(e.base, Index) and isinstance(e.base.base, Name):  # x[t][d] is x[t, d] (scalar indices)
            e = Index(e.base.base, e.base.indices + e.indices, e.span)
        if isinstance(e.base, Name) and e.base.id in self.blocks:
            fam, stats, eta = entry = self.blocks[e.base.id]
            idx = self.index_arrays(e.indices)
            if isinstance(entry, M.Member):
                stats, eta = (type(t)(*(a[idx] for a in t)) for t in (stats, eta))
                return _matched(M.MemberMoments(entry.block, fam, stats, eta, self.tracker, entry.role, e.indices, idx),
                                entry)
            scalar = _element_family(self.model, e.base.id, fam, len(idx))
            if scalar is not None:  # (x[t, d] of a vector chain too: its outer's diagonal, conjugate)
                return cross.element_view(e.base.id, scalar, stats, eta, idx, e.indices, self.tracker,
                                          getattr(fam, "lag_stat", None) is not None)
            if getattr(fam, "lag_stat", None) is not None:  # a step of a Gaussian chain (elj/lagged.py)
                return ChainStep(e.base.id, fam, stats, eta, self.tracker, e.indices, self)
            def take(a):  # leading plate axes only
                if jnp.ndim(a) < len(idx):  # a probe's point mass offers per-matrix moments too
                    return jnp.zeros(jnp.broadcast_shapes(*(jnp.shape(i) for i in idx)))
                return self.take(a, e.indices)

            parts = e.base.id, fam, type(stats)(*map(take, stats)), type(eta)(*map(take, eta)), self.tracker
            if fam.event_rank == 0 and len(idx) == jnp.ndim(stats[0]):  # a scalar element: cross moments by site
                return _matched(cross.ElementRead(*parts, cross.Site(tuple(e.indices), idx, stats, eta)), entry)
            return _matched(M.BlockMoments(*parts), entry)
        if isinstance(e.base, Name) and self.model is not None:
            node = self.model.nodes.get(e.base.id)
            if node is not None and node.kind == "det":
                return D.read(self, e, node)
        if self.model is not None and self._reads_random(e.base):
            # (W @ c)[j] is W[j] @ c: the index moves down to the names the expression reads.
            def shape_of(x):
                return infer(x, self.model.shapes, self.loop_vars)

            return self.ev(push_index(e.base, e.indices, shape_of, self._reads_random, e.span))
        base = self.ev(e.base)
        if not base.is_fixed:
            raise VemError("unsupported", "indexing this random expression is not supported", e.span)
        return M.Fixed(self.take(base.value, e.indices))

    def _ranks(self, left, right, x, y):
        """The ranks of two operands' own values (not of their grid axes), where the model's
        shapes give them and some operand has grid axes in front of its own; else None."""
        if self.model is None or not self.R:
            return None
        ra, rb = self.rank(left), self.rank(right)
        if ra is None or rb is None:
            return None
        if np.ndim(x) == ra and np.ndim(y) == rb:
            return None
        return ra, rb

    def _reads_random(self, e) -> bool:
        """Whether ``e`` reads a latent block, directly or through deterministic nodes."""
        return any(x.id not in self.loop_vars and D.is_random(self, x.id) for x in names(e))

    def _binop(self, e: BinOp):
        a, b = self.ev(e.left), self.ev(e.right)
        if a.is_fixed and b.is_fixed:
            return self._fixed_binop(e, a.value, b.value)
        if e.op == "@" and e.left == e.right and self.rank(e.left) == 1:  # w @ w: not two independent factors
            return self_dot(a, self.tracker)
        if e.op in "+-":
            ranks = (self.rank(e.left), self.rank(e.right)) if self.R else (None, None)
            if None not in ranks and ranks[0] != ranks[1]:  # `cuts - w` in a loop: grid with grid (elj/grid.py)
                a, b = lift(a, *ranks), lift(b, *ranks[::-1])
            if a.deps & b.deps and not getattr(a, "pairs_with", lambda other: False)(b):
                # b·x + b·y is (x + y)·b (deterministic nodes written out): E[ab] ≠ E[a]E[b]
                merged = collect(D.written_out(self, e), self._reads_random)
                if merged is not None:
                    return self.ev(merged)
            return A.Sum(a, b, 1.0 if e.op == "+" else -1.0, self.tracker)
        prod = product(e.op, a, b, (self.rank(e.left), self.rank(e.right)), self.tracker, self.latent(a, b))
        if prod is not None:  # a product of latents, or a latent scalar times a matrix
            return prod
        if e.op in "*/" and (a.is_fixed or b.is_fixed):  # a scalar times a vector (`x[n] * mu`, `m * ones(D)`)
            a, b = self._paired(e, a, b)
        if e.op == "*" and a.is_fixed:
            return A.Scaled(a.value, b)
        if e.op == "*" and b.is_fixed:
            return A.Scaled(b.value, a)
        if e.op == "/" and b.is_fixed:
            return A.Scaled(1.0 / jnp.asarray(b.value), a)
        # Two vectors, one known (`X[n] @ w`, `w @ X[n]`, `X[n] @ w[z[n]]`): a dot, whatever the
        # known one's layout in its loop ([N, P] for X[n], which is no matrix).
        vectors = e.op == "@" and (self.rank(e.left), self.rank(e.right)) == (1, 1)
        if vectors and (a.is_fixed or b.is_fixed):
            return A.Dot(a, b, self.tracker)
        if e.op == "@" and a.is_fixed and not (self.rank(e.left) == 1 and self.rank(e.right) == 2):
            # (a known vector times a matrix, `Z[d] @ B`, is no matrix–vector product: its
            # value's plate layout has two axes; a param matrix is read at its point below)
            va = jnp.asarray(a.value)
            return A.MatVec(va, b) if va.ndim >= 2 else A.Dot(a, b, self.tracker)
        if e.op == "@" and b.is_fixed and jnp.asarray(b.value).ndim == 1:
            return A.Dot(a, b, self.tracker)
        if e.op == "@" and b.is_fixed and (self.rank(e.left), self.rank(e.right)) == (1, 2):
            # a random vector times a known matrix, u @ W: the matrix-vector product Wᵀ u
            return A.MatVec(jnp.swapaxes(jnp.asarray(b.value), -1, -2), a)
        v = _points((a, b))
        if v is not None:  # point parameters (the probe's point masses) at their values
            return self._fixed_binop(e, *v)
        a, b = self._paired(e, a, b)  # a random scalar beside a vector (mu / tau)
        nl = nonlinear.binary(e.op, a, b, self.tracker)  # a nonlinear function of random terms
        if nl is not None:
            return nl
        raise M.NoMoment(", ".join(sorted(a.deps | b.deps)), "expression", f"({e.op})")

    def _paired(self, e: BinOp, a, b):
        """The operands of ``e`` laid out so that broadcasting pairs grid with grid and own axes
        with own (``grid.lift``) where their own ranks differ; a known value without grid axes
        stays as it is (``beta0 * Lam`` keeps its scalar)."""
        ra, rb = self.rank(e.left), self.rank(e.right)
        if None in (ra, rb) or ra == rb:
            return a, b
        return tuple(x if x.is_fixed and np.ndim(x.value) <= r else lift(x, r, o) for x, r, o in ((a, ra, rb), (b, rb, ra)))

    def latent(self, *srcs) -> bool:
        """True when one of ``srcs`` reads a latent block (not only point parameters, which
        the compiler's probe stands in for by point masses)."""
        nodes = self.model.nodes if self.model is not None else {}
        return any(getattr(nodes.get(d), "kind", "latent") == "latent" for s in srcs for d in s.deps)

    def rank(self, e) -> int | None:
        """The rank of the value of ``e`` (its axes, without the loop layout's), from the
        model's inferred shapes; None where they are not known."""
        try:
            return len(infer(e, self.model.shapes, self.loop_vars))
        except (AttributeError, KeyError, TypeError, VemError):
            return None

    def _fixed_binop(self, e: BinOp, x, y):
        xp = _xp(x, y)
        ranks = self._ranks(e.left, e.right, x, y)
        if ranks is not None and e.op == "@":
            return M.Fixed(_matmul(xp, x, y, *ranks))
        if ranks is not None:  # per-element values laid out on the grid, then their own axes
            x, y = _align(xp, x, y, *ranks)
        ops = {"+": xp.add, "-": xp.subtract, "*": xp.multiply, "/": xp.divide, "**": xp.power, "@": xp.matmul}
        return M.Fixed(ops[e.op](x, y))

    def _call(self, e: Call):
        if self.model is not None and e.func in self.model.nodes:  # a network param
            return M.Fixed(call_network(self, e))
        if e.func == "transpose" and self.rank(e.args[0]) in (0, 1):  # a vector's, not a plate axis swapped in
            return self.ev(e.args[0])
        args = [self.ev(a) for a in e.args]
        if e.func == "dot" and not all(a.is_fixed for a in args):  # dot(x, x): E[xᵀx], not E[x]ᵀE[x]
            return self_dot(args[0], self.tracker) if e.args[0] == e.args[1] else A.Dot(*args[:2], self.tracker)
        if e.func == "sum" and len(args) == 1 and not args[0].is_fixed:
            # Σx = dot(x, 1) (ones of size 1): E[Σx] = ΣE[x], E[(Σx)²] = 1ᵀE[xxᵀ]1; a Gaussian x stays conjugate
            return A.Dot(args[0], M.Fixed(np.ones(1)), self.tracker)
        if e.func == "fill" and self.latent(args[0]) and all(a.is_fixed for a in args[1:]) and self.rank(e.args[0]) == 0:
            shape = tuple(int(np.asarray(a.value)) for a in args[1:])  # fill(c, K) of a latent c is c * ones(K)
            return A.Scaled(np.ones(shape), lift(args[0], 0, len(shape)))
        v = _points(args)
        if v is None and e.func == "diag" and len(args) == 1:
            return DiagOf(args[0], self.tracker)  # an ARD precision diag(alpha), elj/products.py
        if v is None and (nl := nonlinear.call(e.func, args, self.tracker)) is not None:
            return nl  # a nonlinear function of random terms
        if v is None:
            rnd = sorted(set().union(*(a.deps for a in args if not a.is_fixed)))
            raise M.NoMoment(", ".join(rnd), "expression", f"{e.func}(...)")
        f = e.func
        xp = _xp(*v)
        if f in ("zeros", "ones"):
            return M.Fixed((np.zeros if f == "zeros" else np.ones)(tuple(int(x) for x in v)))
        if f == "fill":
            return M.Fixed(xp.full(tuple(int(x) for x in v[1:]), v[0], dtype=float))
        if f == "eye":
            return M.Fixed(np.eye(int(v[0])))
        if f == "diag":
            return M.Fixed(xp.vectorize(xp.diag, signature="(n)->(n,n)")(v[0]))
        table = {
            "exp": jnp.exp, "log": jnp.log, "sigmoid": jax.nn.sigmoid,
            "softmax": lambda x: jax.nn.softmax(x, axis=-1), "sum": lambda x: jnp.sum(x, axis=-1),
            "transpose": lambda x: jnp.swapaxes(x, -1, -2),
            "dot": lambda x, y: jnp.sum(x * y, axis=-1),
        }
        # A real function of counts or categories (sigmoid(m[n]) with m: int data) reads them as reals.
        v = [x if jnp.issubdtype(jnp.result_type(x), jnp.inexact) else jnp.asarray(x, jnp.result_type(float))
             for x in v]
        return M.Fixed(table[f](*v))


def _points(args):
    """The values of ``args`` where each is known or a point parameter: a ``param`` is a
    fixed value to the fit, and to the compiler's probe a point mass whose value is then
    read as a nonlinear read (its M-step takes gradient steps, moments.BlockMoments.point).
    None where one of them is a latent."""
    try:
        return [a.value if a.is_fixed else a.point for a in args]
    except M.NotFixed:
        return None


def _xp(*values):
    """NumPy for concrete values (sizes stay concrete under tracing), else jax.numpy."""
    return jnp if any(isinstance(v, jax.Array) for v in values) else np


def _element_family(model, name, fam, n_idx: int):
    """The family of one element of a Gaussian vector block (None if not one): scalar Normals made one
    MvNormal block (see compile) at their indices, or ``u[s, d]`` of ``u[s] ~ MvNormal`` (one past)."""
    node = model.nodes.get(name) if model is not None else None
    if node is None or not node.defs:
        return None
    own, plates = get_family(node.defs[0].dist), len(node.defs[0].indices)
    if (own is fam or getattr(fam, "lag_stat", None) is not None) and n_idx == plates + 1:  # or a chain's step
        own, plates, fam = next((f for f in REGISTRY.values() if f.vector_family == own.name), None), n_idx, own
    return own if own is not None and own.vector_family == fam.name and n_idx == plates else None


def _matched(src, entry):
    """``src`` told whether its η matches its statistics (``moments.Entry``)."""
    src.eta_matches = getattr(entry, "matched", False)
    return src


def factor_value(model, factor, sizes, values, blocks, params, tracker=None, masks=None, keep_leading=False,
                 units=None):
    """Σ over the grid of E[onehot weights] · E[log p(target | args)] for one factor
    (with ``keep_leading``, summed over every axis but the outermost loop's).  ``units``:
    (the data plate's dim, the count of each of its rows), the weight of the factor's terms
    at each row of the plate (engine/compress.py)."""
    d = factor.definition
    fam = get_family(factor.family)
    blocks = held_at_points(model, factor.enum, blocks, params)
    ctx = _Context(model, d.loops, factor.enum, sizes, values, blocks, params, tracker, masks)
    target = Index(Name(factor.target), d.indices) if d.indices else Name(factor.target)
    defaults = {k: v for k, v in fam.args.defaults.items()}
    given = {k for k, _ in d.args}
    args = {k: ctx.ev(v) for k, v in d.args}
    for group in fam.args.groups:
        if not any(g in given for g in group):
            name = next(g for g in group if g in defaults)
            args[name] = M.Fixed(defaults[name])
    value = ctx.ev(target)
    before = general.snapshot(tracker)
    try:
        elp = fam.expected_log_prob(value, **args)
    except (M.NotFixed, M.NoMoment) as exc:  # no closed form in the moments: elj/general.py
        general.restore(tracker, before)  # the failed attempt's reads say nothing
        elp = general.expected_log_prob(fam, value, args, ctx.R, tracker, exc, d.span)
    weight = jnp.ones(())
    for group in group_refs(factor.enum, blocks):
        if len(group) == 2:
            weight = weight * joint_weight(ctx, *group)
        else:
            for e in group:
                weight = weight * enum_weight(ctx, e, factor.enum[e])
    for ref in factor.enum:
        if ref.block in ctx.masks and isinstance(ref.expr, Index):
            # A factor that reads an absent element of a categorical latent is absent too.
            present = ctx.take(jnp.asarray(ctx.masks[ref.block], dtype=float), ref.expr.indices)
            weight = weight * jnp.reshape(present, (1,) * (ctx.R - present.ndim) + present.shape)
    if factor.target in ctx.masks:
        m = _index_fixed(ctx, jnp.asarray(ctx.masks[factor.target], dtype=float), d.indices)
        # A vector event is observed only if all of it is (missing rows drop out whole).
        while m.ndim > ctx.R:
            m = jnp.min(m, axis=-1)
        weight = weight * m
    if units is not None:
        var = plate_var(d, units[0])
        if var is not None:
            weight = weight * ctx.take(units[1], (Name(var),))
    if keep_leading:
        full = jnp.broadcast_to(weight * elp, jnp.broadcast_shapes(jnp.shape(weight * elp), ctx.grid_shape()))
        return jnp.sum(full, axis=tuple(range(1, full.ndim)))
    return jnp.sum(weight * elp)


def _index_fixed(ctx, arr, indices):
    return ctx.take(jnp.asarray(arr), indices) if indices else jnp.asarray(arr)
