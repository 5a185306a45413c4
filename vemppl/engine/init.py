"""Initialisation: the prior start, then the categorical blocks seeded from the data.

Every block starts at its prior given its parents' means (``elj/prior.py``); Gaussians are
moved off a symmetric start by a small jitter, or start from a draw of their prior when
they are the global side of a bilinear term (``compile.py``).  A categorical block whose
data it gates are real-valued starts from broad k-means++ responsibilities
(:func:`kmeanspp`); a Markov chain from those and the data's lag-1 persistence
(:func:`persistence`); any other categorical block from random responsibilities.
"""

from __future__ import annotations

import time
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from .. import _prng
from ..diagnostics import VemError
from ..elj.joint import on_device
from ..elj.prior import chain_stats, initial_params, num_categories
from ..ir.expr import Index, Name
from ..plan import BlockStructure, Init
from . import programs
from .networks import optimizer
from .state import State


def init_state(engine, key, params=None, warm=None, given=None) -> State:
    """q_j = the prior given its parents' means, in topological order; categorical
    blocks seeded by k-means++ on the data they gate, or at random.

    ``warm`` (an ``engine.warm.SweepWarmup``), on the engine's first start, is handed the
    start's signature as soon as the start's program is lowered, so the sweep compiles
    while the start compiles and runs (``start_signature``).  ``given``: starting assignments
    or responsibilities of seeded blocks by name (``fit(init={"z": ...})``, ``given_responsibilities``)."""
    given = given or {}
    eta, mu = {}, {}
    key, sub = _prng.split(key)  # NumPy, bit for bit: no XLA program per split (vemppl/_prng.py)
    declared = {n.name for n in engine.model.of_kind("param")}
    # Values for names that are not model params are held fixed (globals at a point).
    extra = {k: jnp.asarray(v) for k, v in (params or {}).items() if k not in declared}
    params = {**initial_params(engine, sub, {k: v for k, v in (params or {}).items() if k in declared}), **extra}
    order = [n for n in engine.plan.schedule if engine.plan.block(n).init is Init.PRIOR]
    order += [n for n in engine.plan.schedule if n not in order]
    chains = {b.name for b in engine.plan.blocks if b.structure is BlockStructure.MARKOV_CHAIN}
    key, sub = _prng.split(key)
    # One compiled function rather than dozens of eagerly dispatched (and compiled) ops.
    first = engine._prior_jit is None
    if first:
        engine._prior_jit = jax.jit(engine._prior_blocks, compiler_options=programs.PRIOR_START)
    t0 = time.perf_counter()
    if first and warm is not None and not (chains or engine.networks or engine.amortised):
        warm(start_signature(engine, engine._prior_jit.lower(params, sub, engine.data), order, params))
    eta, mu = jax.block_until_ready(engine._prior_jit(params, sub, engine.data))
    if first:
        engine.init_compile_seconds = time.perf_counter() - t0
    seeding_seconds = 0.0
    unread = _first_update_of_random_globals(engine)
    factorial, seeds = factorial_gates(engine.plan), {}
    if factorial:  # a key of their own: every other model's starts stay as they were, bit for bit
        key, sub = _prng.split(key)
        seeds = factorial_seeds(engine, factorial, {j: mu[j].onehot.shape for j in factorial}, given, sub)
    for j in order:
        b = engine.plan.block(j)
        if b.init in (Init.PRIOR, Init.PRIOR_DRAW) or (j == unread and j not in given):
            continue
        key, sub = _prng.split(key)
        if j in chains:
            k = num_categories(engine, j, mu, eta, params)
            shape = engine.bound_shape(j) + (k,)
            if j in given:  # independent marginals: no persistence is read off given responsibilities
                r, centres = given_responsibilities(j, given[j], shape), None
            else:
                r, centres = seed_responsibilities(engine, j, np.zeros(shape), sub, b.init is Init.KMEANS)
            rho = 0.0 if centres is None else chain_persistence(engine, j, centres)
            t0 = time.perf_counter()
            eta[j], mu[j] = jax.block_until_ready(seeded_chain(engine.families[j], r, rho))
        else:
            if j in factorial:
                r = seeds[j]
            elif j in given:
                r = given_responsibilities(j, given[j], mu[j].onehot.shape)
            else:
                r, _ = seed_responsibilities(engine, j, mu[j].onehot, sub, kmeans=b.init is Init.KMEANS)
            t0 = time.perf_counter()
            eta[j], mu[j] = jax.block_until_ready(seeded_categorical(engine.families[j], type(eta[j]), r))
        seeding_seconds += time.perf_counter() - t0
    if first:  # their first calls compile (once per process, family and shape)
        engine.init_compile_seconds += seeding_seconds
    if not (engine.networks or engine.amortised):
        return State(eta, mu, params)
    # The amortised blocks hold their prior until the first sweep reads the encoder.
    nets = {k: params[k] for k in engine.trained}
    return State(eta, mu, params, key=jax.random.fold_in(key, 1), opt=optimizer(engine.learning_rate).init(nets))


def start_signature(engine, lowered, order, params) -> State:
    """The start's State as ``jax.ShapeDtypeStruct`` leaves, from the lowered prior program's
    outputs and, for the seeded categorical blocks, ``seeded_categorical``'s (chains,
    networks and amortised blocks are not handled: the caller leaves those fits alone)."""
    eta, mu = lowered.out_info
    eta, mu = dict(eta), dict(mu)
    real = jax.dtypes.canonicalize_dtype(np.float64)  # jnp.asarray of the NumPy responsibilities
    for j in order:
        if engine.plan.block(j).init in (Init.PRIOR, Init.PRIOR_DRAW):
            continue
        r = jax.ShapeDtypeStruct(mu[j].onehot.shape, real)
        eta[j], mu[j] = jax.eval_shape(partial(seeded_categorical, engine.families[j], type(eta[j])), r)
    return State(eta, mu, params)


#: The weight a given assignment spreads over the other categories (``given_responsibilities``):
#: a hard one-hot start has log 0 in its natural parameters.
GIVEN_SMOOTHING = 0.1
#: The weight a factorial gate's start spreads over its other categories (``factorial_seeds``),
#: given or seeded: its cells, nearly hard.
FACTORIAL_SMOOTHING = 0.01


def factorial_gates(plan):
    """The mean-field categorical blocks seeded from the data that a factor reads beside another
    such block (``y[n] ~ Normal(a[z[n]] + b[c[n]], precision = tau)``: a factorial mixture), each
    mapped to the set of those it is read beside (``factorial_seeds`` starts them)."""
    seeded = {j for j in plan.schedule if plan.block(j).init is Init.KMEANS
              and plan.block(j).structure is BlockStructure.MEAN_FIELD}
    beside: dict[str, set] = {}
    for f in plan.factors:
        gates = {r.block for r in f.enum if r.block in seeded}
        for j in gates if len(gates) > 1 else ():
            beside.setdefault(j, set()).update(gates - {j})
    return beside


def factorial_seeds(engine, beside, shapes, given, key):
    """Starting responsibilities of the factorial gates (``factorial_gates``; ``shapes``: each
    one's elements and categories), by name: their cells smoothed by ``FACTORIAL_SMOOTHING``,
    not broad responsibilities.  Assignments given (``fit(init=...)``) are taken as they are.
    The other gates are seeded one at a time, each by k-means++ on the data it gates centred
    within the cells of the gates it is read beside that are already started (``_cells_within``),
    the one whose cells explain the most of those data per category beyond the first
    (between-cell sum of squares over k − 1) first; then each once more within all the others'
    cells (the first was seeded on the raw data); then, where they gate one data array, Lloyd
    steps over the product of their cells (``_joint_lloyd``) move each point to the nearest
    combination of categories at once, which no coordinate update can (a point of cell (0, 0)
    that k-means gave category 1 of ``z`` sits nearest (1, 2), and changing ``z`` alone or ``c``
    alone puts it further away).

    Broad responsibilities (or labels smoothed by 0.1) put weight on categories whose centres
    lie a whole gate's effect away, and a spread that the factor shares (its precision) reads
    that blur as noise: on the factorial mixture of ``tests/test_factorial_start.py`` (a gap of 6
    in ``a``, noise sd 0.3) the first update gave τ = 0.29, ``c``'s responsibilities, whose
    effects differ by about 1, went flat (largest 0.42 on average), its ``b`` merged into one
    value and the fit stopped at a noise sd of 0.94 instead of 0.28, from every seed and from the
    true labels given.  And k-means++ on the raw data seeds each gate with the largest effect's
    clusters: the later gate's cells are the earlier one's again, whatever their smoothing."""
    k = {j: shapes[j][-1] for j in beside}
    seeds = {j: given_responsibilities(j, given[j], shapes[j], FACTORIAL_SMOOTHING) for j in beside if j in given}
    cells = {j: np.asarray(r).reshape(-1, k[j]).argmax(axis=1) for j, r in seeds.items()}

    def seed(j, key):  # within the cells started so far of the gates j is read beside
        return _cells_within(engine, j, shapes[j], key, [cells[g] for g in sorted(beside[j]) if g in cells])

    todo, seeded = sorted(j for j in beside if j not in given), []
    while todo:
        tried = {}
        for j in todo:
            key, sub = _prng.split(key)
            tried[j] = seed(j, sub)
        j = max(todo, key=lambda g: tried[g][1])
        seeds[j] = tried[j][0]
        if tried[j][1] > -np.inf:  # cells read off the data, not a random start
            cells[j] = seeds[j].argmax(axis=1)
            seeded.append(j)
        todo.remove(j)
    for j in seeded:
        key, sub = _prng.split(key)
        seeds[j] = seed(j, sub)[0]
        cells[j] = seeds[j].argmax(axis=1)
    x = gated_data(engine, seeded[0]) if len(seeded) > 1 else None
    if x is not None and all(np.array_equal(gated_data(engine, g), x) for g in seeded[1:]):
        for g in (g for g in given if g in beside and cells[g].shape[0] == x.shape[0]):
            x = x - _cell_means(x, cells[g])[1][cells[g]]
        dims = [k[g] for g in seeded]
        if x.shape[0] * int(np.prod(dims)) <= _ONE_HOT_LIMIT:
            for g, lab in zip(seeded, _joint_lloyd(x, [cells[g] for g in seeded], dims)):
                seeds[g] = (1 - FACTORIAL_SMOOTHING) * np.eye(k[g])[lab] + FACTORIAL_SMOOTHING / k[g]
    return {j: r if j in given else on_device(np.asarray(r).reshape(shapes[j])) for j, r in seeds.items()}


def _joint_lloyd(x, labels, dims, steps=300):
    """Lloyd steps over the product of several gates' cells (``labels``, one array per gate, of
    ``dims`` categories): each point to the nearest centre of a combination, until none moves;
    the gates' labels."""
    n = int(np.prod(dims))
    joint = np.ravel_multi_index(labels, dims)
    for _ in range(steps):
        counts, means = _cell_means(x, joint, n)
        d2 = _sqdist(x, means)
        d2[:, counts == 0] = np.inf
        new = np.argmin(d2, axis=1)
        if np.array_equal(new, joint):
            break
        joint = new
    return np.unravel_index(joint, dims)


def _cells_within(engine, j, shape, key, within):
    """Block ``j``'s k-means++ cells (smoothed by ``FACTORIAL_SMOOTHING``, one row per element)
    on the data it gates centred within each of the cell labels ``within``, and how much of
    those data the cells explain per category beyond the first (between-cell sum of squares over
    k − 1); random responsibilities and −inf where ``j`` gates no data element by element."""
    k, rows = shape[-1], int(np.prod(shape[:-1]))
    feats = gated_data(engine, j)
    rng = np.random.default_rng(np.asarray(jax.random.key_data(key)).ravel()[-1])
    if feats is None or feats.shape[0] != rows:
        return rng.dirichlet(np.ones(k), size=rows), -np.inf
    for cell in within:
        if cell.shape[0] == rows:
            feats = feats - _cell_means(feats, cell)[1][cell]
    r, centres = kmeanspp(feats, k, rng, broad=False, smooth=FACTORIAL_SMOOTHING, return_centres=True)
    sizes = np.bincount(r.argmax(axis=1), minlength=k)
    return r, float(sizes @ np.sum((centres - feats.mean(axis=0)) ** 2, axis=1)) / max(k - 1, 1)


def given_responsibilities(name, value, shape, smoothing=GIVEN_SMOOTHING):
    """Starting responsibilities of block ``name`` (``shape``: its elements and K categories)
    from ``fit(init={name: value})``: assignments (whole numbers in 0..K−1, one per element),
    each 1 − ``smoothing`` on its category and the rest spread evenly, as scikit-learn's
    mixtures start from k-means labels (``FACTORIAL_SMOOTHING`` for a factorial gate); or
    responsibilities (non-negative rows summing to 1), floored at 1e-10.  Anything else is a ``data`` error naming the shape expected."""
    k, elements = shape[-1], shape[:-1]
    v = np.asarray(value)
    if v.shape == elements and v.dtype.kind in "iub" or (v.shape == elements and v.dtype.kind == "f"
                                                          and np.all(np.isfinite(v)) and np.all(v == np.round(v))):
        labels = v.astype(np.int64)
        if labels.size and (labels.min() < 0 or labels.max() >= k):
            bad = tuple(int(i) for i in np.argwhere((labels < 0) | (labels >= k))[0])
            raise VemError("data", f"init for '{name}' assigns category {labels[bad]} at index {bad}; its categories "
                           f"are 0..{k - 1}")
        r = np.full(shape, smoothing / max(k - 1, 1))
        np.put_along_axis(r, labels[..., None], 1.0 - smoothing if k > 1 else 1.0, axis=-1)
        return jnp.asarray(r)
    if v.shape == tuple(elements) and v.dtype.kind == "f":  # the assignments' shape, not their values
        bad = tuple(int(i) for i in np.argwhere(~np.isfinite(v) | (v != np.round(v)))[0])
        raise VemError("data", f"init for '{name}' has the shape of its assignments, {tuple(elements)}, but "
                       f"{v[bad]:g} at index {bad} is not a whole number; expected whole numbers in 0..{k - 1} "
                       f"(or responsibilities, of shape {tuple(shape)})")
    if v.shape != tuple(shape) or v.dtype.kind not in "fiu":
        raise VemError("data", f"init for '{name}' has shape {v.shape}; expected its assignments, whole numbers "
                       f"of shape {tuple(elements)}, or its responsibilities, of shape {tuple(shape)}")
    r = v.astype(float)
    sums = r.sum(axis=-1)
    if not (np.all(np.isfinite(r)) and np.all(r >= 0) and np.allclose(sums, 1.0, atol=1e-6)):
        raise VemError("data", f"init for '{name}' holds responsibilities that are not probabilities: each row "
                       "must be non-negative and sum to 1")
    r = np.maximum(r, 1e-10)
    return jnp.asarray(r / r.sum(axis=-1, keepdims=True))


def _first_update_of_random_globals(engine):
    """The local a ``start="random-globals"`` schedule updates first (engine/schedule.py), or
    None: its first update reads the random globals and the locals started at their priors,
    never its own start, so it keeps the prior's (LDA's z: 54 380×20 Dirichlet draws, their logs
    and means, ~20 ms a fit on one core, read by nothing)."""
    schedule = engine.local_global
    if schedule is None or schedule.start != "random-globals" or not schedule.locals_:
        return None
    return schedule.locals_[0]


def seed_responsibilities(engine, j, r0, key, kmeans):
    """Starting responsibilities for block ``j`` (shape of ``r0``) and the k-means centres
    they were read from (None for a random start: no data gated by ``j``, or not asked)."""
    k = r0.shape[-1]
    feats = gated_data(engine, j) if kmeans else None
    rng = np.random.default_rng(np.asarray(jax.random.key_data(key)).ravel()[-1])
    if feats is None or feats.shape[0] != r0.reshape(-1, k).shape[0]:
        r, centres = rng.dirichlet(np.ones(k), size=r0.reshape(-1, k).shape[0]), None
    else:
        r, centres = kmeanspp(feats, k, rng, broad=engine.broad_start, return_centres=True)
    return on_device(r.reshape(r0.shape)), centres


def chain_persistence(engine, j, centres):
    """The chain ``j``'s persistence ρ read off the data it gates (``_persistence``), its
    absent steps (padding of shorter sequences) left out."""
    shape = engine.bound_shape(j)
    feats = gated_data(engine, j).reshape(shape + (-1,))
    present = np.asarray(engine.present[j]) if j in engine.present else np.ones(shape, bool)
    return persistence(feats, np.broadcast_to(present, shape), centres)


#: The most entries of one-hot features built for k-means++ seeding (128 MB in float64); a
#: categorical variable with more units x categories starts its responsibilities at random.
_ONE_HOT_LIMIT = 1 << 24


def gated_data(engine, j):
    """The data gated by block ``j``, one row per element of ``j`` (categories as one-hot
    vectors), for k-means++ seeding; None when no data array is gated element by element."""
    for f in engine.plan.factors:
        node = engine.model.nodes[f.target]
        refs = [r for r in f.enum if r.block == j]
        if node.kind != "data" or not refs:
            continue
        ref = refs[0].expr
        d = f.definition
        if isinstance(ref, Index) and ref.indices == d.indices and d.indices == tuple(Name(v) for v in d.loop_vars[: len(d.indices)]):
            x = np.asarray(engine.bound.values[f.target], dtype=float)
            if node.type.base == "cat":  # a category's sufficient statistic is its one-hot vector
                n_cat = int(np.max(x, initial=0)) + 1
                if x.size * n_cat > _ONE_HOT_LIMIT:
                    return None  # too large to expand: a random start
                x = np.eye(n_cat)[x.astype(int)]
            return x.reshape(int(np.prod(x.shape[: len(d.indices)])), -1)  # one row per element
    return None


# Jitted once per family and shape and kept across fits: run eagerly, each op compiled on
# its own on a process's first fit (0.3 s of an HMM's at T = 100k).
@partial(jax.jit, static_argnums=0)
def seeded_chain(fam, r, rho):
    """``elj.prior.chain_stats``: a chain at marginals r with persistence ρ."""
    return chain_stats(fam, r, rho)


@partial(jax.jit, static_argnums=(0, 1))
def seeded_categorical(fam, stats_type, r):
    eta = stats_type(jnp.log(r))
    return eta, fam.expected_stats(eta)


def kmeanspp(x, k, rng, broad=True, smooth=0.1, lloyd_steps=300, tol=1e-4, return_centres=False):
    """Greedy k-means++ seeding (Arthur & Vassilvitskii 2007; 2 + ln k candidates per centre,
    the one that lowers the potential most kept, as scikit-learn's ``KMeans``), Lloyd steps
    until the centres move less than ``tol`` × the mean per-feature variance (squared), then
    *broad* responsibilities: r_nk ∝ exp(−‖x_n − c_k‖² / 2s²) with s² = tr Cov(x), every
    component the whole data's spread around its centre, as hmmlearn starts its variational
    HMM (k-means means, the data covariance for every state).

    Measured on the GMM benchmark (N = 100k, D = K = 10, seeds 0–4), against the hard cells
    (smoothed 0.1) this replaces: CAVI took 22 / 11 / 15 / 11 / 82 sweeps instead of
    124 / 6 / 488 / 6 / 417, to held-out log-likelihoods −16.396 / −16.104 / −16.104 /
    −16.104 / −16.343 instead of −16.385 / −16.104 / −16.384 / −16.104 / −16.343 (mean
    −16.210 against −16.264): hard cells fit each component's covariance to its Voronoi
    cell, too narrow where clusters overlap, and CAVI then crawls out of that saddle.  On
    the Gaussian HMM benchmark (T = 100k) every seed took 27 sweeps instead of 40–43, to the
    same optimum.  Well-separated clusters, where the cells are already right, pay a few
    sweeps (N = 10k, D = K = 5: 15 instead of 7, 0.05 s).

    ``broad=False``: the hard cells, smoothed by ``smooth``, for stochastic VI, whose damped
    global steps cannot climb out of a broad start as fast as full CAVI sweeps do (a GMM of
    5000 points in batches of 500 ended 1.6% below the full-batch held-out log-likelihood
    from the broad start, within 1e-5 of it from the cells).

    ``return_centres=True`` returns ``(responsibilities, centres)``.
    """
    n = x.shape[0]
    xx = np.sum(x * x, axis=1)  # ‖x_n‖², once (each distance below reuses it)
    trials = 2 + int(np.log(k))
    first = x[rng.integers(n)]
    d2 = np.sum((x - first) ** 2, axis=1)
    centres = [first]
    for _ in range(1, k):
        p = d2 / d2.sum() if d2.sum() > 0 else np.full(n, 1.0 / n)
        cand = rng.choice(n, size=trials, p=p)
        d2_cand = np.minimum(d2[None, :], np.maximum(_sqdist(x, x[cand], xx).T, 0.0))  # [trials, N]
        best = int(np.argmin(d2_cand.sum(axis=1)))
        centres.append(x[cand[best]])
        d2 = d2_cand[best]
    c = np.stack(centres)
    threshold = tol * float(np.mean(np.var(x, axis=0)))
    for _ in range(lloyd_steps):
        assign = np.argmin(_sqdist(x, c, xx), axis=1)
        counts, means = _cell_means(x, assign, k)
        new = np.where(counts[:, None] > 0, means, c)
        shift = float(np.sum((new - c) ** 2))
        c = new
        if shift <= threshold:
            break
    if not broad:
        r = (1 - smooth) * np.eye(k)[np.argmin(_sqdist(x, c, xx), axis=1)] + smooth / k
    else:
        spread = float(np.sum(np.var(x, axis=0)))
        logits = -0.5 * np.maximum(_sqdist(x, c, xx), 0.0) / (spread if spread > 0 else 1.0)
        r = np.exp(logits - logits.max(axis=1, keepdims=True))
        r = r / r.sum(axis=1, keepdims=True)
    return (r, c) if return_centres else r


def persistence(x, present, centres, most=0.99):
    """How persistent a chain's states are, read off the data they emit: ρ in [0, ``most``].

    For a chain that keeps its state with probability ρ and otherwise draws afresh from its
    stationary distribution p, the state means' lag-1 autocovariance is ρ times their
    variance: E[(μ_{z_t} − μ̄)ᵀ(μ_{z_{t−1}} − μ̄)] = ρ Σ_k p_k ‖μ_k − μ̄‖².  Emission noise is
    independent from step to step, so the data's lag-1 autocovariance over the between-state
    variance estimates ρ, with the k-means cells (``centres``) standing in for the states.
    A negative autocovariance (a chain that moves on, such as a cycle) gives 0, the
    independent start.

    ``x``: the data, one row per step, the chain's time axis second-to-last ([..., T, F]);
    ``present``: which steps exist ([..., T]).  Measured on the Gaussian HMM benchmark
    (T = 100k, K = 4, D = 3, stay 0.9): ρ̂ = 0.74 and 10 sweeps instead of 27 from the
    independent start, the same optimum; transitions uniform or cyclic: ρ̂ ≤ 0.002, the
    sweeps of the independent start (82 and 17).
    """
    w = present.astype(float)
    n = w.sum()
    if n < 2:
        return 0.0
    flat, wf = x.reshape(-1, x.shape[-1]), w.reshape(-1)
    mean = (wf @ flat) / n
    xc = (x - mean) * w[..., None]
    pairs = w[..., 1:] * w[..., :-1]
    if pairs.sum() == 0:
        return 0.0
    auto = float(np.sum(xc[..., 1:, :] * xc[..., :-1, :]) / pairs.sum())
    cell = np.argmin(_sqdist(flat, centres), axis=1)
    counts = np.bincount(cell, weights=wf, minlength=len(centres))
    between = float(counts @ np.sum((centres - mean) ** 2, axis=1)) / n
    return float(np.clip(auto / between, 0.0, most)) if between > 0 else 0.0


def _cell_means(x, cell, cells=0):
    """(each cell's count, the mean row of ``x`` in it; 0 for an empty one) for labels ``cell``,
    one row per label 0 .. max(max label, ``cells`` − 1): one pass of bincount per feature
    (a mask per cell reads x once per cell)."""
    counts = np.bincount(cell, minlength=cells)
    sums = np.stack([np.bincount(cell, weights=x[:, d], minlength=len(counts)) for d in range(x.shape[1])], axis=1)
    return counts, sums / np.maximum(counts, 1)[:, None]


def _sqdist(x, c, xx=None):
    xx = (x**2).sum(1) if xx is None else xx
    return xx[:, None] - 2.0 * x @ c.T + (c**2).sum(1)[None, :]



__all__ = ["factorial_gates", "factorial_seeds", "gated_data", "given_responsibilities", "init_state", "kmeanspp", "persistence", "seed_responsibilities"]
