"""Stochastic variational inference (Hoffman, Blei, Wang & Paisley 2013).

Each step draws a minibatch ``B`` of the data plate's units (``engine/dataplate.py``):

1. the *local* blocks of the batch (one element per unit: ``z[n]``, a sequence's chain) start
   from their initial values (not from the last batch's, which belong to other units: a
   document's θ left peaked on another document's topic holds its z there) and are fitted by CAVI with the globals fixed, ``local_iter`` sweeps (one suffices when a single
   conjugate local block reads only globals and data), on the batch's expected log joint
   *unscaled* (``PlateScaledEngine.on(masks, 1.0)``);
2. every *global* block takes the natural-gradient step (Hoffman et al. 2013, eq. 26)

       η_j ← (1 − ρ_t) η_j + ρ_t η̂_j,     ρ_t = (t + τ)^(−κ),

   where ``η̂_j = ∇_{μ_j} L̂`` is the CAVI target of ``engine/cavi.py`` computed on the
   expected log joint with every factor inside the plate scaled by ``N/|B|`` (an unbiased
   estimate of the full sum), taken block by block in schedule order;
3. a closed-form M-step keeps a running average of its statistic gradient
   ``ḡ ← (1 − ρ_t) ḡ + ρ_t ĝ`` and sets ``θ = F.mode(ḡ)`` (online EM, Cappé & Moulines 2009);
   a gradient M-step takes its Adam steps on ``L̂``.

The step reports ``L̂ + Σ_global H[q_j] + (N/|B|) Σ_local H[q_j]``, an unbiased estimate of
the ELBO at the batch's locals.  With ``ρ_t = 1`` and the batch equal to all the data, a
step is a CAVI sweep (locals, then globals).  The step is one jitted pure function per batch
shape, traced once: the batch's arrays and masks, ``ρ_t`` and the "first step" flag are its
arguments, ``N/|B|`` a static one; nothing on the engine changes while it is traced.

Data arrays may be memory-mapped (``np.load(path, mmap_mode="r")``): they are validated in
chunks and each batch reads only its rows, so the data set need not fit in memory.
"""

from __future__ import annotations

import copy
import mmap
import time
import warnings
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ..data_scale import nonfinite_parts
from ..diagnostics import VemError
from ..families import get_family
from ..plan import Init, MStep, Update
from . import mstep, programs
from ..elj.evaluate import size_of
from .bind import _check_support, _read_names, bind, category_dims, category_note, size_source
from .bind_values import check_categories
from .cavi import Engine, State
from .dataplate import DataPlate, data_plate
from .schedule import STARTS, LocalGlobal

_CHUNK_ROWS = 1 << 18  # rows per chunk when validating a (memory-mapped) array


class PlateScaledEngine(Engine):
    """The CAVI engine with the factors and entropies of the data plate scaled by ``scale``
    (``N/|B|``) and the masks of its binding (the first batch's).  ``on(masks, scale)`` is
    the same engine on one batch: the step makes it from its own arguments, so nothing is
    swapped on this object while a step is traced."""

    #: Hard k-means cells, not the broad start: damped steps climb out of it too slowly.
    broad_start = False

    def __init__(self, model, plan, bound, plate: DataPlate, scale: float, present=None, chain="sequential"):
        super().__init__(model, plan, bound, present=present, chain=chain)
        self.plate, self.scale = plate, float(scale)
        self.local = set(plate.local_blocks)

    def on(self, masks: dict, scale: float) -> PlateScaledEngine:
        """This engine on one batch: ``masks`` (the batch's data masks and absent local
        elements, by name) in place of the binding's, and the plate's factors and local
        entropies scaled by ``scale``.  A new object, made inside the traced step from the
        step's arguments; ``self`` is unchanged.  ``scale=1`` is the batch's own expected
        log joint, for the local updates: every factor that reads a local block lies inside
        the plate, so ``N/|B|`` would multiply its CAVI target (a categorical's logits
        sharpened towards hard assignments, a Dirichlet's ``alpha - 1`` pushed below zero);
        the locals of a batch are fitted to the batch (Hoffman et al. 2013, Fig. 6, step 5)."""
        view = copy.copy(self)
        view.masks = {**self.masks, **masks}
        view.present = {j: view.masks[j] for j in self.present}
        view.scale = float(scale)
        return view

    def expected_log_joint(self, mu, eta, params, data, *args, factors=None, **kwargs):
        if self.scale == 1.0:
            return super().expected_log_joint(mu, eta, params, data, *args, factors=factors, **kwargs)
        fs = self.plan.factors if factors is None else factors
        outside = tuple(f for f in fs if not self.plate.is_inside(f))
        inside = tuple(f for f in fs if self.plate.is_inside(f))
        total = super().expected_log_joint(mu, eta, params, data, *args, factors=outside, **kwargs)
        return total + self.scale * super().expected_log_joint(mu, eta, params, data, *args, factors=inside, **kwargs)

    def entropy(self, state, skip=()):
        if self.scale == 1.0:
            return super().entropy(state, skip)
        total = 0.0
        for j in (j for j in state.eta if j not in skip):
            h = jnp.sum(self.families[j].entropy(state.eta[j], state.mu[j]))
            if j in self.present:  # absent categorical elements: their log K removed (Engine.entropy)
                h = h - jnp.sum(~self.present[j]) * jnp.log(state.mu[j].onehot.shape[-1])
            total = total + (self.scale * h if j in self.local else h)
        return total


class SVIState(NamedTuple):
    state: State  # the globals, the current batch's locals, the point parameters
    stats: dict  # closed-form parameter -> running average of ∇_{T(θ)} L̂ (its family's Stats)
    fresh: dict | None = None  # local block -> its initial (eta, mu), where every batch's locals start


class SVI:
    """``init(key, params) -> SVIState`` and the jitted ``step(s, data, masks, rho, first, scale)``,
    a pure function of its arguments: the batch's arrays ``data``, its ``masks`` (data
    masks and absent local elements, by name; ``Stream.batch``), the step size ``rho``,
    the "first step" flag and the static ``scale`` N/|B|.

    ``start="random-globals"`` (as batch CAVI's, ``engine/schedule.py``) starts the globals at
    random and lets the first batch's locals read them, seeded locals first, instead of
    keeping the locals' seed on the first step: with a flat prior start and random
    responsibilities, LDA's topics all begin at one average of the corpus."""

    randomise_globals = LocalGlobal.randomise_globals  # reads self.globals_

    def __init__(self, engine: PlateScaledEngine, local_iter: int | None = None, start: str = "prior"):
        self.engine = engine
        plan = engine.plan
        if getattr(engine, "networks", ()):
            raise VemError("unsupported", "stochastic VI does not support networks yet; fit without batch_size=")
        if start not in STARTS:
            raise VemError("data", f"start must be one of {', '.join(STARTS)}; got {start!r}")
        self.start = start
        self.locals_ = [j for j in plan.schedule if j in engine.local]
        self.globals_ = [j for j in plan.schedule if j not in engine.local]
        single = len(self.locals_) == 1 and plan.block(self.locals_[0]).update is Update.CAVI
        self.local_iter = int(local_iter) if local_iter is not None else (1 if single or not self.locals_ else 20)
        if self.local_iter < 1:
            raise VemError("data", f"local_iter must be at least 1; got {self.local_iter}")
        # Locals seeded from the data (k-means++, random) keep their seed on the first step,
        # as CAVI's first sweep does (it updates them last).
        self.seeded = {j for j in self.locals_ if plan.block(j).init not in (Init.PRIOR, Init.PRIOR_DRAW)}
        # So do locals that CAVI's sweep updates after a global: its first sweep moves that global
        # reading the locals' start.  Fitted first to the globals' prior instead, they take up what
        # the globals should (a per-group offset u[g] the intercept b0 + u[g]), and the steps,
        # shrinking as rho_t, then undo it only at mean-field's rate: b0 -0.25 after 500 steps
        # against 0.94 by CAVI (tests/test_outsider_models9.py).
        sched = list(plan.schedule)
        first_global = min((sched.index(j) for j in self.globals_), default=len(sched))
        self.seeded |= {j for j in self.locals_ if sched.index(j) > first_global}
        if start == "random-globals":  # the seeded locals read the random globals first
            self.locals_ = [j for j in self.locals_ if j in self.seeded] + [j for j in self.locals_ if j not in self.seeded]
            self.seeded = set()
        self._programs = []
        self.step = programs.jit(self._programs, self._step_impl, static_argnames=("scale",))

    @property
    def traces(self) -> int:
        """How many programs the step compiled (one per batch shape; engine/programs.py)."""
        return programs.traces(self._programs)

    def init(self, key, params=None) -> SVIState:
        state = self.engine.init(key, params)
        if self.start == "random-globals":
            state = self.randomise_globals(self.engine, state, jax.random.fold_in(key, 1))
        stats = {}
        fresh = {j: (state.eta[j], state.mu[j]) for j in self.locals_}
        for p in self.engine.plan.params:
            if p.mstep is MStep.CLOSED_FORM:
                fam = get_family(p.family)
                stats[p.name] = jax.tree_util.tree_map(jnp.zeros_like, mstep.point_stats(fam, state.params[p.name]))
        return SVIState(state, stats, fresh)

    def _step_impl(self, s: SVIState, data, masks, rho, first, scale):
        eng = self.engine.on(masks, scale)  # the batch's estimate of L: its plate scaled by N/|B|
        local = self.engine.on(masks, 1.0)  # the batch's own L, which its locals are fitted to
        state = s.state

        def local_sweep(_, st):
            for j in self.locals_:
                new = local.update_block(st, j, data)
                if j in self.seeded:
                    new = jax.tree_util.tree_map(lambda old, upd: jnp.where(first, old, upd), st, new)
                st = new
            return st

        if s.fresh:  # a new batch's locals start afresh, not at the last batch's (other units')
            state = state._replace(eta={**state.eta, **{j: e for j, (e, _) in s.fresh.items()}},
                                   mu={**state.mu, **{j: m for j, (_, m) in s.fresh.items()}})
        if self.locals_:
            state = jax.lax.fori_loop(0, self.local_iter, local_sweep, state)
        for j in self.globals_:
            fam = eng.families[j]

            def L(mu_j, j=j, state=state):
                return eng.expected_log_joint({**state.mu, j: mu_j}, state.eta, state.params, data, **_key(state))

            target = fam.tidy_natural(fam.Stats(*jax.grad(L)(state.mu[j])))
            eta_j = jax.tree_util.tree_map(lambda a, b: (1 - rho) * a + rho * b, state.eta[j], target)
            eta_j = fam.tidy_natural(eta_j)
            state = state._replace(eta={**state.eta, j: eta_j}, mu={**state.mu, j: fam.expected_stats(eta_j)})
        stats = dict(s.stats)
        for p in eng.plan.params:
            state, stats = self._mstep(eng, state, stats, p, data, jnp.where(first, 1.0, rho))
        return SVIState(state, stats, s.fresh), eng.elbo(state, data)

    @staticmethod
    def _mstep(eng, state, stats, p, data, rho):
        others = {k: v for k, v in state.params.items() if k != p.name}
        if p.mstep is MStep.CLOSED_FORM:
            fam = get_family(p.family)

            def L_stats(st):
                return eng.expected_log_joint(state.mu, state.eta, others, data, extra_blocks={p.name: (fam, st, st)},
                                              **_key(state))

            g = mstep.statistic_gradient(fam, L_stats, state.params[p.name])
            gbar = jax.tree_util.tree_map(lambda a, b: (1 - rho) * a + rho * b, stats[p.name], g)
            stats[p.name] = gbar
            theta = fam.mode(gbar)
        else:
            def L_theta(theta):
                return eng.expected_log_joint(state.mu, state.eta, {**others, p.name: theta}, data, **_key(state))

            theta = mstep.gradient_update(L_theta, state.params[p.name], p.type)
        return state._replace(params={**state.params, p.name: theta}), stats


def _key(state) -> dict:
    """The Monte Carlo key of models that draw (networks), for the engine's expected log joint."""
    key = getattr(state, "key", None)
    return {} if key is None else {"key": key}


def step_sizes(tau: float, kappa: float):
    """ρ_t = (t + τ)^(−κ), t = 1, 2, ...; Robbins–Monro needs κ ∈ (0.5, 1], τ ≥ 0."""
    if not (0.5 < kappa <= 1.0 or kappa == 0.0) or tau < 0:
        raise VemError("data", f"step_size=(tau, kappa) needs tau >= 0 and kappa in (0.5, 1] (Robbins–Monro: smaller kappa never "
                           f"settles), or kappa = 0 (every step rho = 1); got ({tau}, {kappa})")

    def rho(t):
        return float((t + tau) ** (-kappa))

    return rho


# ---- the data stream ---------------------------------------------------------------------


class Stream:
    """Minibatches of the data plate's arrays, read row by row from arrays or memory maps.

    Every array along the plate is validated once, in chunks (support, missing entries,
    category ranges), so a batch needs only a type conversion.  A batch is a uniform sample
    of ``batch_size`` units without replacement, its rows read in increasing order.
    """

    def __init__(self, model, plate: DataPlate, data: dict, mask: dict, present: dict, batch_size: int, seed: int):
        self.model, self.plate = model, plate
        self.nodes = {n.name: n for n in model.of_kind("data")}
        self.arrays = {k: data[k] for k in plate.arrays if k in data}
        lengths = {k: int(np.shape(v)[0]) for k, v in self.arrays.items() if np.ndim(v)}
        if len(set(lengths.values())) > 1:
            raise VemError(
                "data", f"the arrays along the plate {plate.dim} disagree about its size. Expected one length; got "
                + ", ".join(f"'{k}' {n}" for k, n in lengths.items())
            )
        if not lengths:
            raise VemError("data", f"no data array runs along the plate {plate.dim}")
        self.n = next(iter(lengths.values()))
        if int(batch_size) < 1:
            raise VemError("data", f"batch_size must be at least 1; got {batch_size}")
        if int(batch_size) > self.n:  # said, not clamped silently: the fit is not the minibatch fit asked for
            warnings.warn(f"batch_size={int(batch_size)} is larger than the data plate {plate.dim} = {self.n}: every "
                          f"step reads all {self.n} units, a full-batch fit whose steps are CAVI sweeps damped by the "
                          "step size, with no convergence test (fit without batch_size= for CAVI, which stops by its "
                          "rule)", UserWarning, stacklevel=6)
        self.batch_size = min(int(batch_size), self.n)
        self.masks = {k: mask[k] for k in self.arrays if k in mask}
        self.present = {k: np.asarray(v) for k, v in present.items() if k in plate.local_blocks}
        self.read = _read_names(model)
        self.rng = np.random.default_rng(seed)
        self.missing, self.cat_max, self.cat_min = self._validate()
        self._full = None

    def _validate(self):
        missing, cat_max, cat_min = {}, {}, {}
        for k, a in self.arrays.items():
            node = self.nodes[k]
            missing[k] = False
            for lo in range(0, self.n, _CHUNK_ROWS):
                hi = min(lo + _CHUNK_ROWS, self.n)
                m = None if k not in self.masks else np.asarray(self.masks[k][lo:hi])
                arr, m = _check_support(node, np.asarray(a[lo:hi]), m, bool(node.defs), k in self.read, offset=lo)
                missing[k] = missing[k] or m is not None
                if node.type.base == "cat" and arr.size:
                    cat_max[k] = max(cat_max.get(k, 0), int(arr.max()))
                    cat_min[k] = min(cat_min.get(k, 0), int(arr.min()))
                _release(a)
        return missing, cat_max, cat_min

    def check_categories(self, sizes: dict, sources: dict) -> None:
        """Every row of each ``cat`` array on the plate against its bound, once the sizes are
        bound: binding reads the first batch only, so a category above a V given (``--set``,
        ``consts=``, ``dims=``) in any other row was fitted silently (a one-hot of nothing)."""
        for k, a in self.arrays.items():
            node = self.nodes[k]
            if k not in self.cat_max:
                continue
            v = size_of(node.type.bound, sizes, k)
            if v is None or (self.cat_min[k] >= 0 and self.cat_max[k] < v):
                continue
            for lo in range(0, self.n, _CHUNK_ROWS):  # the first value outside, at its index in the whole array
                check_categories(node, np.asarray(a[lo:lo + _CHUNK_ROWS]).astype(np.int64), v,
                                 size_source(node.type.bound, sources), offset=lo)
                _release(a)

    def dims(self, others: dict, given: dict) -> tuple[dict, list[str]]:
        """Sizes a batch cannot tell, and the notes saying where they came from: the plate's
        (the batch size) and each dim the data's categories bind (``bind.category_dims``) and
        ``given`` does not, from the whole plate's arrays and the arrays off it (``others``)."""
        out, notes = {self.plate.dim: self.batch_size}, []
        for dim, arrays in category_dims(self.model).items():
            if dim in given:
                continue
            tops = [self.cat_max[k] for k in arrays if k in self.cat_max]
            tops += [int(np.max(others[k])) for k in arrays if k in others and np.size(others[k])]
            out[dim] = max(tops, default=-1) + 1
            notes.append(category_note(dim, out[dim], arrays))
        return out, notes

    def indices(self):
        if self.batch_size >= self.n:
            return None
        return np.sort(self.rng.choice(self.n, self.batch_size, replace=False))

    def raw(self, idx):
        """The batch's rows as NumPy arrays (and masks), for binding the first batch."""
        take = (lambda a: np.asarray(a)) if idx is None else (lambda a: _gather(a, idx))
        return ({k: take(a) for k, a in self.arrays.items()}, {k: take(m) for k, m in self.masks.items()},
                {k: take(m) for k, m in self.present.items()})

    def batch(self, idx) -> tuple[dict, dict]:
        """The batch as the jitted step's ``data`` and ``masks`` arguments: its arrays, and the
        masks of its arrays with missing entries and of its local blocks' absent elements."""
        if idx is None and self._full is not None:
            return self._full
        arrays, masks, present = self.raw(idx)
        out, out_masks = {}, {}
        for k, a in arrays.items():
            node = self.nodes[k]
            arr, m = _check_support(node, a, masks.get(k), bool(node.defs), k in self.read)
            out[k] = jnp.asarray(arr)
            if self.missing[k]:
                out_masks[k] = jnp.asarray(np.ones(arr.shape, bool) if m is None else m)
        for j, m in present.items():
            out_masks[j] = jnp.asarray(m, dtype=bool)
        if idx is None:
            self._full = out, out_masks
        return out, out_masks


def _gather(a, idx, rows=512):
    """``a[idx]`` (``idx`` sorted), from a memory map in groups of ``rows`` rows, each group's
    pages handed back before the next: the kernel maps up to 16 neighbouring pages per page
    fault (fault-around), so gathering 10k scattered rows at once could map 600 MB."""
    if not isinstance(a, np.memmap):
        return np.asarray(a[idx])
    out = np.empty((len(idx),) + a.shape[1:], a.dtype)
    for lo in range(0, len(idx), rows):
        out[lo:lo + rows] = a[idx[lo:lo + rows]]
        _release(a)
    return out


def _release(a):
    """Let the kernel drop the pages of a memory map that were read (they stay in the page
    cache, not in this process's resident set), so streaming a file larger than memory
    does not grow the process."""
    mm = getattr(a, "_mmap", None)
    if isinstance(a, np.memmap) and mm is not None and hasattr(mm, "madvise"):
        try:
            mm.madvise(mmap.MADV_DONTNEED)
        except (OSError, ValueError):
            pass


# ---- the outer loop ------------------------------------------------------------------------


def fit_svi(m, plan, data, *, consts, dims, mask, present, init_params, seed, max_iter, strict, batch_size,
            step_size, local_iter, plate, progress_bar, start="prior", chain="sequential"):
    """Run SVI for ``max_iter`` steps; returns the pieces of a :class:`~vemppl.results.Fit`."""
    pl = data_plate(m, plan, plate)
    stream = Stream(m, pl, data, mask or {}, present, batch_size, seed)
    tau, kappa = _step_size(step_size)
    rho = step_sizes(tau, kappa)
    idx = stream.indices()
    arrays, masks, pres = stream.raw(idx)
    others = {k: v for k, v in data.items() if k not in stream.arrays}
    user_dims = dict(dims or {})
    # The batch's size replaces the plate's in every binding: a given size the arrays contradict is
    # the error bind gives a CAVI fit, not replaced without a word.
    if pl.dim in user_dims and int(user_dims[pl.dim]) != stream.n:
        first = stream.nodes[next(iter(stream.arrays))]
        raise VemError("data", f"'{first.name}' disagrees about dim {pl.dim}: {pl.dim} = {user_dims[pl.dim]} from "
                       f"dims={{'{pl.dim}': {user_dims[pl.dim]}}}, but '{first.name}' axis 0 has size {stream.n}. "
                       f"Expected {user_dims[pl.dim]} units along the data plate; got {stream.n}", first.span)
    told, notes = stream.dims(others, user_dims)
    batch_dims = {**told, **user_dims, pl.dim: stream.batch_size}
    other_masks = {k: v for k, v in (mask or {}).items() if k not in stream.arrays}
    bound = bind(m, {**others, **arrays}, consts, batch_dims, {**other_masks, **masks}, strict,
                 own_ranges=frozenset(stream.arrays))
    stream.check_categories(bound.sizes, bound.sources)  # every row, not the first batch's
    bound.notes[:0] = notes
    scale = stream.n / stream.batch_size
    present0 = {**{k: v for k, v in present.items() if k not in pl.local_blocks}, **pres}
    engine = PlateScaledEngine(m, plan, bound, pl, scale, present=present0, chain=chain)
    svi = SVI(engine, local_iter, start)
    t0 = time.perf_counter()
    s = svi.init(jax.random.PRNGKey(seed), init_params)
    static = {k: v for k, v in engine.data.items() if k not in stream.arrays}
    trace, compile_seconds = [], None
    arrays, masks = stream.batch(idx)
    for t in range(1, max_iter + 1):
        t_it = time.perf_counter()
        if t > 1:
            arrays, masks = stream.batch(stream.indices())
        s, elbo = svi.step(s, {**static, **arrays}, masks, jnp.asarray(rho(t), float), jnp.asarray(t == 1), scale)
        elbo = float(elbo)
        if compile_seconds is None:
            compile_seconds = time.perf_counter() - t_it
        if not np.isfinite(elbo):
            where = nonfinite_parts(s.state)
            where = f": {' and '.join(where)} became non-finite" if where else ""
            raise VemError("data", f"the ELBO estimate became {elbo} at step {t}{where}; the step was too long for "
                           "this batch: try a smaller step (larger tau or kappa) or a larger batch")
        trace.append(elbo)
        progress_bar.update(t, elbo)
    progress_bar.close()
    fit_seconds = time.perf_counter() - t0 - (compile_seconds or 0.0)
    return engine, bound, s.state, trace, compile_seconds or 0.0, fit_seconds, svi


def _step_size(step_size):
    try:
        tau, kappa = (float(x) for x in step_size)
    except (TypeError, ValueError):
        raise VemError("data", f"step_size must be a pair (tau, kappa); got {step_size!r}") from None
    return tau, kappa
