"""The general path: E_q[log p(y | args)] for a factor whose family cannot form it from moments.

A family's ``expected_log_prob`` reads moments of its arguments; where an argument is a
random expression whose needed moment has no closed form (``Binomial(n, logits = η)`` reads
``logits.value``; ``Normal(log(λ), …)`` reads ``E[log(λ)²]``), the evaluator calls
:func:`expected_log_prob` here instead, which evaluates the *family's own* log density
(its ``expected_log_prob`` with every argument a known value, i.e. ``log p``) at points:

* **Gauss–Hermite** (``POINTS`` = 64 points) when exactly one of the value and the arguments is random and
  it is ``φ(x)``, with φ a chain of elementwise functions and ``x`` a Gaussian scalar under q
  (a linear function of Gaussian blocks, ``nonlinear.gaussian_linear``):
  ``E[log p(y | φ(x))] = Σ_i w_i log p(y | φ(m + s·t_i))``.  The error depends on how far
  the log density's complex singularities lie from the real line relative to s: for the
  logistic link (poles at ±iπ) 64 points give < 1e-10 up to s = 2 where 32 give 1e-7
  (``tests/test_general_path.py`` checks 1e-8 against scipy's adaptive quadrature); a function of x's moments (m, E[x²]) so the CAVI
  gradient ∇_μ L flows through them;
* otherwise a **fixed-sample reparameterised Monte Carlo estimate** with ``DRAWS`` draws of
  every random block the factor reads: ``(1/S) Σ_s log p(y | args(z_s))``.

**Draws as functions of μ.**  The natural-gradient step (Khan & Lin 2017;
``engine/cavi.py``'s ``_damped``) needs ``∇_μ L`` with the block's natural parameters η held.
A Gaussian block's draw is written in its mean parameters directly:
``z = m + √(E[z²] − m²) ε`` (``m + chol(E[zzᵀ] − mmᵀ) ε`` for an MvNormal).  Any other family
(Gamma, Beta, Dirichlet) is drawn by NumPyro's sampler at η (``elj/gamma_pool.py``; a Gamma's
draws rescaled to average its mean, ``_mean_matched``), whose gradient w.r.t. η is its
implicit reparameterisation (Figurnov et al. 2018); η is passed through
:func:`natural_at`, the identity in value whose derivative is ``dη/dμ = F(η)⁻¹`` with
``F = ∇²A(η) = dμ/dη`` (per element, from autodiff of ``expected_stats``), so the chain rule
gives ``∇_μ L = F(η)⁻¹ ∇_η L`` exactly, the identity behind natural gradients.

**Fixed samples.**  ε is drawn from a key fixed for the whole fit (folded with the block's
name): the estimate is a deterministic function of μ (sample-average approximation), so the
backtracking line search and the ELBO trace are exactly monotone for it, and a fit converges
by the usual ELBO tolerance; the price is a bias of order 1/√S in the objective.  Two views
of one block with the same shape share ε (``u[g]`` read twice is one draw); two different
elements of one block at the same position of the grid would share it too (their draws are
then dependent where q has them independent): write such a factor with the elements as
separate latents.

Every block the general path reads is flagged non-conjugate on the tracker with the
estimator's name, so the compiler gives it a natural-gradient update and ``vemppl check``
prints why.
"""

from __future__ import annotations

import zlib

import jax
import jax.numpy as jnp
import numpy as np

from ..diagnostics import VemError
from ..families import get_family
from ..families.mean_map import natural_at
from . import gamma_pool
from . import moments as M
from . import affine as A
from .cross import ElementRead, Stacked
from .grid import Trailing
from .lagged import ChainStep
from .nonlinear import Apply, gaussian_linear, is_const
from .products import DiagOf, RowsTimesVector, ScalarProduct, ScalarTimesMatrix, ScalarTimesVector, VectorTimesRows

#: Gauss–Hermite points (probabilists' weights normalised to 1).
POINTS = 64
_NODES, _WEIGHTS = np.polynomial.hermite_e.hermegauss(POINTS)
_WEIGHTS = _WEIGHTS / _WEIGHTS.sum()
#: Monte Carlo draws per factor evaluation (the estimator's standard error shrinks as 1/√DRAWS).
DRAWS = 64
_QUADRATURE = f"E[log p] has no closed form in its moments: {POINTS}-point Gauss–Hermite quadrature of the family's log density"
_MONTE_CARLO = (f"E[log p] has no closed form in its moments: a {DRAWS}-draw reparameterised Monte Carlo "
                "estimate of the family's log density (fixed draws)")


def expected_log_prob(fam, value, args: dict, grid_rank: int, tracker, exc: Exception, span=None):
    """E_q[log p(value | args)] by the family's log density at points (module docstring).

    ``grid_rank``: the number of leading grid axes of the factor (loops and gates), behind
    which each source's event axes lie; ``exc`` is what the moment path raised, re-raised
    when nothing here is random (a point parameter the family needs as a value)."""
    sources = {"value": value, **args}
    random = {k: s for k, s in sources.items() if not is_const(s)}
    if not random or _blames_point(exc, sources):
        raise exc
    quad = _quadrature_source(random)
    if quad is not None and jnp.ndim(quad[1].mean) <= grid_rank:
        saved = snapshot(tracker)
        try:
            return _quadrature(fam, sources, *quad, grid_rank, tracker)
        except (M.NoMoment, M.NotFixed):  # another argument the family cannot read by its moments
            restore(tracker, saved)
    try:
        return _monte_carlo(fam, sources, grid_rank, tracker, span)
    except VemError as err:  # located at the factor
        if err.span is not None:
            raise
        raise VemError(err.kind, err.message, span, err.hint) from None


def snapshot(tracker):
    """What ``tracker`` has recorded so far (None without a tracker), for :func:`restore`."""
    if tracker is None:
        return None
    return ({k: set(v) for k, v in tracker.reads.items()}, {k: set(v) for k, v in tracker.nonlinear.items()},
            dict(tracker.reasons))


def restore(tracker, saved):
    """Forget what a failed moment path recorded, so a block's reason names the estimator
    the general path uses, not the moment the family could not read."""
    if tracker is not None:
        tracker.reads, tracker.nonlinear, tracker.reasons = saved


def _blames_point(exc, sources) -> bool:
    """The moment path failed on a point parameter's value (its M-step's business), not on a
    random block."""
    names = {lf.block for s in sources.values() for lf in _leaves(s)
             if isinstance(lf, M.BlockMoments) and lf.family is M.PointMass}
    return getattr(exc, "block", None) in names


def scalar_core(src):
    """``x`` when ``src = φ(x)`` for ``x`` a Gaussian scalar under q (per grid element) and φ
    any expression in which ``x`` is the one random part, each node of it with one random
    operand (``Dm @ sigmoid(cuts − dot(X[n], w))``, an ordinal model's probabilities); else
    None.  E[log p] is then a one-dimensional Gaussian expectation, which quadrature
    computes to rounding where Monte Carlo draws would bias the optimum."""
    if gaussian_linear(src):
        return src
    rnd = [a for a in _children(src) if not is_const(a)]
    return scalar_core(rnd[0]) if len(rnd) == 1 else None


def _quadrature_source(random: dict):
    """``(name, core)``: the argument integrated by quadrature and its one Gaussian scalar
    (``scalar_core``), or None.  Either it is the factor's one random argument, or every other
    random argument is a block read whole (a latent precision ``tau``, a point parameter being
    M-stepped), which the family reads by its moments beside the quadrature points; its blocks
    must not be the core's (q factorises over blocks, so the two are independent under q)."""
    whole = {k for k, s in random.items() if isinstance(s, M.BlockMoments)}
    rest = [k for k in random if k not in whole] if len(random) > 1 else list(random)
    if len(rest) != 1:
        return None
    name = rest[0]
    core = scalar_core(random[name])
    if core is None:
        return None
    mine = {lf.block for lf in _leaves(core) if isinstance(lf, M.BlockMoments)}
    if any(random[k].block in mine for k in random if k != name):
        return None
    return name, core


def _quadrature(fam, sources, name, core, R, tracker):
    """E[log p] with the argument ``name`` at Gauss–Hermite points of its Gaussian ``core``
    and every other argument as it is (known, or a block the family reads by its moments)."""
    nodes, weights = _NODES, _WEIGHTS
    m = core.mean
    sd = M.sd_of(m, core.sq)
    m, sd = _pad(m, R, 0), _pad(sd, R, 0)
    pts = m[None] + sd[None] * jnp.reshape(nodes, (-1,) + (1,) * R)
    vals = {k: (_source_at(s, lambda x: pts if x is core else None) if k == name or is_const(s) else s)
            for k, s in sources.items()}
    _flag(tracker, core, _QUADRATURE)
    elp = fam.expected_log_prob(vals.pop("value"), **vals)
    elp = jnp.broadcast_to(elp, jnp.broadcast_shapes(jnp.shape(elp), (len(nodes),) + (1,) * (jnp.ndim(elp) - 1)))
    return jnp.tensordot(jnp.asarray(weights), elp, axes=(0, 0))


def _monte_carlo(fam, sources, R, tracker, span):
    cache = {}
    rows = _matrix_rows(sources, span)

    def leaf(x):
        if isinstance(x, (M.BlockMoments, Stacked)) and not is_const(x):
            if id(x) not in cache:
                cache[id(x)] = _draw(x, R, span, rows.get(id(x), 0))
            return cache[id(x)]
        return None

    # The factor's value, a latent block, is read by its moments beside the drawn arguments
    # where the family can: E[log p(x | θ)] = E_θ[⟨η(θ), E[T(x)]⟩ − A(θ)] + E[log h(x)] is
    # affine in q(x)'s mean parameters when T is its family's statistics, so q(x) keeps its
    # closed-form CAVI update and only the arguments are drawn (θ ~ Dirichlet(fill(a, K))
    # with a latent a: q(θ) Dirichlet in closed form, a by natural gradient).  A discrete
    # value is summed the same way: Σ_k E[z = k] log p(k | θ).  q factorises over blocks,
    # so the draws of θ are independent of q(x) unless θ reads x's block (then x is drawn).
    value = sources["value"]
    if _by_moments(value, sources):
        saved = snapshot(tracker)
        try:
            return _mean_over_draws(fam, sources, leaf, tracker, keep="value")
        except (M.NoMoment, M.NotFixed):  # the family reads the value at points (a Student-t)
            if _summed(value):
                raise
            restore(tracker, saved)
    return _mean_over_draws(fam, sources, leaf, tracker)


def _matrix_rows(sources, span) -> dict:
    """{id(block view): how many of its batch axes are event axes of the factor}: those of the
    matrix of a product ``W @ h`` or ``h @ W`` (its rows), whose draws get the grid's axes in
    front of them.  The matrix read directly: its one row axis (rows of an MvNormal).  An
    elementwise function of it (``exp(B) @ X[n]``): each block it reads must be a whole matrix
    view (two axes), all of whose batch axes are the matrix's; another random term beside it
    (``exp(s * B)``) would need its draws laid out against the matrix's axes, which is refused."""
    rows = {}
    for s in sources.values():
        for x in _nodes(s):
            if not isinstance(x, (RowsTimesVector, VectorTimesRows)):
                continue
            if isinstance(x.a, M.BlockMoments):
                rows[id(x.a)] = 1
                continue
            for lf in _leaves(x.a):
                if not isinstance(lf, M.BlockMoments) or lf.is_fixed or lf.family is M.PointMass:
                    continue
                if type(lf) is not M.BlockMoments or jnp.ndim(lf.stats.mean) != 2:
                    raise VemError("unsupported", f"a function of a random matrix reads '{lf.block}' as other than "
                                   "the whole matrix; the general path draws such a function of one matrix only", span,
                                   hint="write the matrix's function of one latent matrix, or the product row by row")
                rows[id(lf)] = 2 - lf.family.event_rank
    return rows


def _mean_over_draws(fam, sources, leaf, tracker, keep=None):
    """(1/S) Σ_s E[log p(value | args_s)]: every random source at its draws but ``keep``,
    which the family reads by its moments."""
    for k, s in sources.items():
        if k != keep:
            _flag(tracker, s, _MONTE_CARLO)
    vals = {k: (s if k == keep else _source_at(s, leaf)) for k, s in sources.items()}
    elp = fam.expected_log_prob(vals.pop("value"), **vals)
    elp = jnp.broadcast_to(elp, jnp.broadcast_shapes(jnp.shape(elp), (DRAWS,) + (1,) * (jnp.ndim(elp) - 1)))
    return jnp.mean(elp, axis=0)


def _by_moments(value, sources) -> bool:
    """Whether the factor's value may be read by its moments beside drawn arguments: a view of
    one latent block (not a point parameter, not an expression) that no argument reads."""
    if _summed(value):
        return True
    if type(value) not in (M.BlockMoments, ElementRead) or value.family is M.PointMass:
        return False
    others = {lf.block for k, s in sources.items() if k != "value" for lf in _leaves(s)
              if isinstance(lf, M.BlockMoments)}
    return value.block not in others


def _summed(src) -> bool:
    """Whether ``src`` is a whole discrete block read as a factor's value (not a chain's step,
    whose q is the chain's), which the family's expected log density reads by its moments."""
    return type(src) in (M.BlockMoments, ElementRead) and getattr(src.family, "support", None) in ("cat", "bool")


def _flag(tracker, src, why):
    if tracker is None:
        return
    for lf in _leaves(src):
        if isinstance(lf, M.BlockMoments):
            if lf.family is M.PointMass:
                tracker.read(lf.block, "value")
                tracker.flag(lf.block, "a nonlinear function of its value")
            else:
                tracker.flag(lf.block, why)


_KIDS = {A.Sum: ("a", "b"), A.Scaled: ("a",), A.Dot: ("a", "b"), A.MatVec: ("v",), ScalarProduct: ("a", "b"),
         RowsTimesVector: ("a", "h"), VectorTimesRows: ("h", "a"), Trailing: ("a",), ScalarTimesMatrix: ("s", "m"),
         DiagOf: ("a",), ScalarTimesVector: ("s", "v")}


def _children(src):
    if isinstance(src, Apply):
        return list(src.args)
    return [getattr(src, n) for cls, names in _KIDS.items() if isinstance(src, cls) for n in names]


def _nodes(src):
    """Every sub-expression of ``src``, itself first."""
    if isinstance(src, M.BlockMoments) or src.is_fixed:
        return [src]
    return [src] + [x for c in _children(src) for x in _nodes(c)]


def _leaves(src):
    """The block views and known values an expression reads."""
    if isinstance(src, M.BlockMoments) or src.is_fixed:
        return [src]
    if isinstance(src, Stacked):
        return [src.e]
    kids = _children(src)
    return [lf for c in kids for lf in _leaves(c)] if kids else [src]


def _source_at(src, leaf):
    """``src`` as a known source at the points ``leaf`` gives its random parts."""
    if isinstance(src, Apply):
        if (stable := _log_of_sum(src, leaf)) is not None:
            return M.Fixed(stable)
        return src.at_points([_at(a, leaf) for a in src.args])
    return M.Fixed(_at(src, leaf))


def _log_of_sum(src, leaf):
    """``log(a + b + …)`` of positive terms at the points as ``logaddexp`` of the terms' logs,
    each from its pre-image where it has one (``log exp(x) = x``), or None where ``src`` is no
    such log.  A softplus written ``log(1.0 + exp(x))`` rounds to ``log 1 = 0`` once
    ``exp(x) < eps/2`` (x < −37), where the quadrature's outer points (±15 sd) fall for a spread
    above 2.5: a Poisson rate of 0 there made E[log p] −inf for data of any scale.  Where a
    known factor is not positive (known only when traced), the value is the plain log."""
    if not (isinstance(src, Apply) and src.name == "log" and len(src.args) == 1 and isinstance(src.args[0], A.Sum)):
        return None
    found = _log_at(src.args[0], leaf)
    if found is None:
        return None
    stable, ok = found
    if ok is True:
        return stable
    plain = _at(src.args[0], leaf)  # (1 where the stable form holds: no nan in where's gradient)
    return jnp.where(ok, stable, jnp.log(jnp.where(ok, 1.0, plain)))


def _positive_log(c):
    """``(log c, c > 0)`` of a known value, with log 1 where c ≤ 0 (no nan in a gradient)."""
    c = jnp.asarray(c, dtype=float)
    ok = c > 0
    return jnp.log(jnp.where(ok, c, 1.0)), ok


def _log_at(src, leaf):
    """``(log src, where valid)`` at the points for a sum of positive terms (``exp`` of
    anything, known values, known multiples of such terms), or None where a term has no such
    form (a difference, a random term other than ``exp``)."""
    if isinstance(src, Apply) and src.name == "exp" and len(src.args) == 1:
        return _at(src.args[0], leaf), True
    if src.is_fixed:
        return _positive_log(src.value)
    if isinstance(src, A.Scaled):
        inner = _log_at(src.a, leaf)
        if inner is None:
            return None
        lc, ok = _positive_log(src.c)
        return lc + inner[0], ok if inner[1] is True else ok & inner[1]
    if isinstance(src, A.Sum) and not isinstance(src.s, jax.core.Tracer) and float(src.s) > 0:
        a, b = _log_at(src.a, leaf), _log_at(src.b, leaf)
        if a is None or b is None:
            return None
        ok = a[1] if b[1] is True else (b[1] if a[1] is True else a[1] & b[1])
        return jnp.logaddexp(a[0], b[0]), ok
    return None


def _at(src, leaf):
    """The value of the expression ``src`` with each random part at ``leaf(part)``; points on
    a leading axis."""
    v = leaf(src)
    if v is not None:
        return v
    if src.is_fixed:
        return src.value
    if isinstance(src, M.BlockMoments) and src.family is M.PointMass:
        return src.stats.mean
    if isinstance(src, A.Sum):
        return _at(src.a, leaf) + src.s * _at(src.b, leaf)
    if isinstance(src, A.Scaled):
        return src.c * _at(src.a, leaf)
    if isinstance(src, A.Dot):
        return jnp.sum(_at(src.a, leaf) * _at(src.b, leaf), axis=-1)
    if isinstance(src, A.MatVec):
        return jnp.matmul(src.m, _at(src.v, leaf)[..., None])[..., 0]
    if isinstance(src, Apply):
        if (stable := _log_of_sum(src, leaf)) is not None:
            return stable
        return src.fn(*(_at(a, leaf) for a in src.args))
    if isinstance(src, ScalarProduct):
        return _at(src.a, leaf) * _at(src.b, leaf)
    if isinstance(src, ScalarTimesVector):
        return jnp.asarray(_at(src.s, leaf))[..., None] * _at(src.v, leaf)
    if isinstance(src, Trailing):
        return src.lay(_at(src.a, leaf))
    if isinstance(src, RowsTimesVector):
        a, h = _at(src.a, leaf), _at(src.h, leaf)
        return jnp.matmul(a, h[..., None])[..., 0]
    if isinstance(src, VectorTimesRows):
        h, a = _at(src.h, leaf), _at(src.a, leaf)
        return jnp.matmul(h[..., None, :], a)[..., 0, :]
    if isinstance(src, ScalarTimesMatrix):  # a random scalar times a matrix, as a covariance
        return jnp.asarray(_at(src.s, leaf))[..., None, None] * _at(src.m, leaf)
    if isinstance(src, DiagOf):
        a = _at(src.a, leaf)
        return a[..., :, None] * jnp.eye(a.shape[-1])
    raise VemError("unsupported", f"the general (Monte Carlo) path cannot draw {type(src).__name__} expressions")


def at_means(src):
    """The value of the expression ``src`` with every latent at its mean, E[x] for f(E[x]):
    a plug-in start where E[f(x)] has no closed form.  None where a latent has no mean
    to read (a categorical one) or the expression cannot be evaluated at points."""
    def mean(x):
        if isinstance(x, M.BlockMoments) and x.family is not M.PointMass:
            return jnp.asarray(x.mean)
        return None

    try:
        return jnp.asarray(_at(src, mean), dtype=float)
    except (M.NoMoment, M.NotFixed, VemError, AttributeError):
        return None


def _pad(x, R, event_rank):
    """``x`` with its batch axes padded in front to the grid's R axes."""
    x = jnp.asarray(x)
    lead = R + event_rank - x.ndim
    return jnp.reshape(x, (1,) * lead + x.shape) if lead > 0 else x


def _key(block: str):
    return jax.random.fold_in(jax.random.PRNGKey(0), zlib.crc32(block.encode()) & 0x7FFFFFFF)


def _draw(src, R, span, rows=0):
    """``DRAWS`` reparameterised draws of a block view, [DRAWS, *grid, *event], as functions of
    its mean parameters (module docstring).  ``rows = 1`` where the view's last batch axis is
    read as an event axis (the rows of the matrix of ``W @ h``)."""
    if isinstance(src, ElementRead) and src.site.kind != "chain" and not rows:
        return _element_draw(src, R, span)
    if isinstance(src, ChainStep):  # steps of a chain: draws of the whole chain, laid on the grid as read
        whole = _draw(M.BlockMoments(src.block, src.family, src.stats, src.eta, None), 0, span, rows)
        return jax.vmap(lambda z: src.ctx.take(z, src.indices))(whole)
    if isinstance(src, Stacked):  # independent scalar elements read as one vector
        e = src.e
        if not getattr(e.family, "gaussian", False):  # Gamma elements read as a vector: the
            return _draw(e, R + 1, span, rows)  # vector's axis is the elements' own batch axis
        m, sq = _pad(e.stats.mean, R, 1 + rows), _pad(e.stats.sq, R, 1 + rows)
        eps = jax.random.normal(_key(e.block), (DRAWS,) + m.shape)
        return m + M.sd_of(m, sq) * eps
    fam = src.family
    if isinstance(src, M.MemberMoments):
        raise VemError("unsupported", f"the general path cannot draw a member of the joint block '{src.block}'", span)
    if getattr(fam, "gaussian", False) and fam.event_rank == 0:
        m, sq = _pad(src.stats.mean, R, rows), _pad(src.stats.sq, R, rows)
        eps = jax.random.normal(_key(src.block), (DRAWS,) + m.shape)
        return m + M.sd_of(m, sq) * eps
    if getattr(fam, "gaussian", False) and fam.event_rank == 1:
        m, outer = _pad(src.stats.mean, R, 1 + rows), _pad(src.stats.outer, R, 2 + rows)
        cov = outer - m[..., :, None] * m[..., None, :]
        chol = jnp.linalg.cholesky(cov + 1e-12 * jnp.eye(m.shape[-1]))
        eps = jax.random.normal(_key(src.block), (DRAWS,) + m.shape)
        return m + jnp.einsum("...ij,s...j->s...i", chol, eps)
    if getattr(fam, "support", None) in ("cat", "bool"):  # before its q is built: a chain's is the whole chain's
        raise VemError(
            "unsupported",
            f"'{src.block}' is a discrete latent (q = {fam.name}) read as a number inside an expression; the general "
            "path draws reparameterised samples, which a discrete latent has none of",
            span,
            hint=f"index by it instead: a value per category, v[{src.block}[...]], is a mixture, which fits in closed form"
                 + (" (draw it from a two-category Categorical to index by it)" if fam.support == "bool" else ""),
        )
    why = "has no reparameterised sampler, which the general path needs here"
    try:
        q = fam.to_numpyro(natural_at(fam, src.stats, src.eta))
    except NotImplementedError:
        q = None
    except (ValueError, TypeError):  # a view q cannot be built from: one element of a Dirichlet vector
        q, why = None, "is read here as a part of its vector, and the general path draws whole vectors only"
    if q is None or not q.has_rsample:
        raise VemError("unsupported", f"'{src.block}' (q = {fam.name}) {why}", span)
    with jax.ensure_compile_time_eval():  # a constant of the fit, for gamma_pool's candidates
        key = _key(src.block)
    z = gamma_pool.rsample(q, key, DRAWS)
    if z is None:
        z = q.rsample(key, (DRAWS,))
    batch = len(q.batch_shape) - rows
    return jnp.reshape(z, (DRAWS,) + (1,) * (R - batch) + z.shape[1:]) if batch < R else z


def _element_draw(src, R, span):
    """Draws of an element read ``w[g[n]]`` gathered from draws of its whole block (the same
    key for every read of it), so two reads of one block are one draw where they read the
    same element and jointly distributed as under q elsewhere (independent elements, or the
    entries of one MvNormal row), never two copies of one ε."""
    s = src.site
    fam = get_family(src.family.vector_family) if s.kind == "rows" else src.family
    whole = _draw(M.BlockMoments(src.block, fam, s.stats, s.eta, None), 0, span)
    z = whole[(slice(None), *(jnp.asarray(i) for i in s.idx))]
    return jnp.reshape(z, (DRAWS,) + (1,) * (R - z.ndim + 1) + z.shape[1:]) if z.ndim - 1 < R else z


__all__ = ["DRAWS", "expected_log_prob", "natural_at", "scalar_core"]
