"""The outer loop: restarts, convergence, progress; the best ELBO wins.

Fitting is a Python loop over a jitted sweep (STYLE.md, pattern 1), so progress and
callbacks are plain Python and the sweep compiles once per model and data shape, shared
by every restart.
"""

from __future__ import annotations

import sys
import time
from functools import partial

import jax
import numpy as np

from ..api import as_ir
from ..compiler import compile_model
from ..diagnostics import VemError
from .bind import bind
from .cavi import Engine


def fit(
    model,
    data: dict | None = None,
    *,
    consts: dict | None = None,
    dims: dict | None = None,
    mask: dict | None = None,
    init: dict | None = None,
    seed: int = 0,
    restarts: int = 1,
    max_iter: int = 500,
    tol: float | None = None,
    strict: bool = False,
    progress: bool | None = None,
    learning_rate: float = 1e-2,
    batch_size: int | None = None,
    step_size: tuple[float, float] = (1.0, 0.7),
    local_iter: int | None = None,
    local_tol: float | None = None,
    local_restart: bool | int = False,
    plate: str | None = None,
    devices: int | None = None,
    batch_restarts: bool | None = None,
    start: str | None = None,
    chain: str = "sequential",
    compress: bool | None = None,
):
    """Fit ``model`` to ``data`` by variational EM; returns a :class:`~vemppl.results.Fit`.

    ``mask`` marks missing entries of data arrays (False = missing) and, on a
    categorical latent, its absent elements: ``mask={"z": t < length[s]}`` fits sequences
    of different lengths padded to one array (every factor that reads an absent element
    is dropped, and the ELBO is that of the unpadded sequences).

    Networks (``param f: mlp(...)[...]``) and amortised posteriors take one Adam step of
    size ``learning_rate`` per iteration on a reparameterised Monte Carlo ELBO
    (``engine/networks.py``); ``init={"dec": {"W0": ..., "b0": ...}}`` sets their weights.

    Convergence: the relative ELBO change falls below ``tol`` (default 1e-8; 1e-3 under an
    admixture's default schedule, where held-out quality has stopped improving).  With ``restarts > 1`` the
    fit is repeated from ``restarts`` initialisations (seeds ``seed, seed+1, ...``) and
    the one with the highest ELBO is returned.  ``batch_restarts=True`` runs the restarts
    together in one vmapped sweep (one compilation); each still stops on its own test and
    keeps its own trace.  ``None`` batches them on an accelerator when their states fit in
    memory, and runs them in turn on a CPU, where the batch only adds the sweeps of the
    restarts that have already converged (measured in docs/scaling.md).

    Data-parallel (``engine/shard.py``): ``devices=n`` splits the data plate over ``n``
    devices with ``jax.sharding`` (the plate's size must be a multiple of ``n``); the
    sums over the plate become all-reduces and the fit is the single-device fit.

    Stochastic VI (``engine/svi.py``, Hoffman et al. 2013): with ``batch_size=B`` each of
    ``max_iter`` steps fits the local latents of ``B`` units of the data plate (``plate``,
    by default the leading dim of the data) and moves the globals by
    ``η ← (1−ρ_t)η + ρ_t η̂`` with ``ρ_t = (t + tau)^(−kappa)``, ``step_size=(tau, kappa)``;
    ``elbo_trace`` holds the per-step ELBO estimates and the returned locals are those of
    the last batch (``Fit.predict`` re-infers them for any data).  ``start="random-globals"``
    starts the globals at random and fits the first batch's locals to them.  Data arrays may be
    memory maps (``np.load(path, mmap_mode="r")``); only each batch's rows are read.

    Markov chains (``z[t] ~ Categorical(A[z[t-1]])``, one block each): ``chain="sequential"``
    computes their forward–backward by a T-step scan; ``chain="parallel"`` by a balanced
    tree of log-space matrix products, log₂ T deep (``families/markov_chain_parallel.py``),
    for long chains on a GPU; the same fit to rounding, slower on a CPU (docs/engine.md).

    Start (``start=None``, the default): the one the graph calls for (``Plan.start``).  An
    admixture (a categorical latent whose weights are a latent read through data, LDA's
    ``z[i] ~ Categorical(theta[doc[i]])``) starts as ``start="random-globals",
    local_tol=1e-3, local_restart=25``; every other model as ``start="prior"``, its mixtures'
    responsibilities seeded by k-means++ on the data they gate (one-hot vectors for
    categories).

    Local/global schedule (``engine/schedule.py``): ``local_iter=L`` updates the blocks
    local to the data plate (``z[i]``, and blocks read through data such as
    ``theta[doc[i]]``) ``L`` times per sweep; ``start="random-globals"`` starts the global
    blocks at random (a Dirichlet at Gamma(100, 1/100) concentrations) and updates the
    locals first, as variational EM for LDA does (Blei et al. 2003; scikit-learn).
    ``local_tol=t`` stops a sweep's local passes once the last local block moves by at
    most ``t`` (relative mean change of its natural parameters), ``local_iter`` passes at
    most (default 10 then).  Every update is still CAVI, so the ELBO never decreases.
    ``local_restart=True`` (with ``start="random-globals"``) starts the locals afresh at
    their prior each sweep, as scikit-learn's LDA E-step does; that is not a coordinate
    step, so a sweep that would end below the last sweep's ELBO is replaced by the carried
    one, and the ELBO still never decreases.  ``local_restart=S`` restarts them in the
    first S sweeps only and carries them after (LDA: ``local_restart=25``, docs/engine.md).

    Repeated rows (``engine/compress.py``): units of the data plate with the same discrete
    data (LDA's tokens of one word in one document) have the same posterior, so by default
    (``compress=None``) the fit runs on the distinct rows, each weighted by its count, when
    at least a tenth of the rows repeats: the same ELBO and fixed points on fewer rows, the
    returned state expanded to every unit.  ``compress=False`` fits every row;
    ``compress=True`` merges whenever any row repeats, and says why when it cannot.
    """
    from ..results.fit import Fit

    m = as_ir(model)
    latents = {n.name for n in m.of_kind("latent")}
    present = {k: v for k, v in (mask or {}).items() if k in latents}
    plan = compile_model(m, masked=tuple(present))
    mask = {k: v for k, v in (mask or {}).items() if k not in latents} if mask is not None else None
    if start is None:  # the start the graph calls for (Plan.start), with its schedule
        start = plan.start if batch_size is None else "prior"
        if start == "random-globals" and local_iter is None and local_tol is None and local_restart is False:
            local_tol, local_restart = 1e-3, 25  # docs/engine.md: the admixture's default schedule
            # Held-out quality stops improving by a relative change of 1e-3 (docs/engine.md, when to stop).
            tol = 1e-3 if tol is None else tol
    tol = 1e-8 if tol is None else tol
    if restarts < 1:
        raise VemError("data", f"restarts must be at least 1; got {restarts}")
    show = sys.stderr.isatty() if progress is None else progress
    if batch_size is not None and local_restart:
        raise VemError("data", "local_restart= is for batch fits; stochastic VI starts each batch's locals afresh "
                       "already", hint="drop local_restart= or fit without batch_size=")
    if batch_size is not None and local_tol is not None:
        raise VemError("data", "local_tol= is for batch fits; stochastic VI runs local_iter passes per batch",
                       hint="drop local_tol= or fit without batch_size=")
    if batch_size is not None and compress is True:
        raise VemError("data", "compress=True is for batch fits; stochastic VI reads every row of its batches",
                       hint="drop compress=True or fit without batch_size=")
    if batch_size is not None:
        return _fit_svi(m, plan, data, consts, dims, mask, present, init, seed, max_iter, strict, batch_size,
                        step_size, local_iter, plate, restarts, show, start, chain)
    if devices is not None and batch_size is not None:
        raise VemError("data", "devices= and batch_size= together are not supported yet; choose one")
    bound = bind(m, {} if data is None else data, consts, dims, mask, strict)
    t0 = time.perf_counter()
    merged = None
    if compress is not False and devices is None:
        from .compress import compress_plate

        networks = any(n.is_network for n in m.of_kind("param")) or any(b.update == "amortised" for b in plan.blocks)
        merged = compress_plate(m, plan, bound, present, plate, networks, required=compress is True)
    elif compress is True:
        raise VemError("data", "compress=True with devices= is not supported; the sharded fit runs on every row")

    def make_engine(b, weights=None):
        eng = Engine(m, plan, b, present=present, learning_rate=learning_rate, unit_weights=weights)
        eng.use_chain_algorithm(chain)
        if start != "prior" or local_iter is not None or local_tol is not None or local_restart:
            from .schedule import LocalGlobal

            passes = local_iter if local_iter is not None else (1 if local_tol is None else 10)
            eng.local_global = LocalGlobal(eng, start, passes, plate, local_tol, local_restart)
        return eng

    engine = make_engine(*merged) if merged is not None else make_engine(bound)
    sweep, place, gather = engine.sweep, (lambda s: s), (lambda s: s)
    if devices is not None:
        from .dataplate import data_plate
        from .shard import Sharded

        engine.chunks = None  # each device holds its rows whole; chunking would reshape a sharded axis
        sharded = Sharded(engine, data_plate(m, plan, plate, "sharding"), devices)
        sweep, place, gather = sharded.sweep, sharded.place, sharded.gather
    key = jax.random.PRNGKey(seed)
    starts = []
    for r in range(restarts):
        key, sub = jax.random.split(key)
        starts.append(engine.init(sub, _initial_params(m, bound, init)))
        if start == "random-globals":
            t_r = time.perf_counter()
            starts[-1] = jax.block_until_ready(
                engine.local_global.randomise_globals(engine, starts[-1], jax.random.fold_in(sub, 1)))
            if r == 0:  # the first call compiles (once per process, family and shape)
                engine.init_compile_seconds += time.perf_counter() - t_r
            starts[-1] = engine.local_global.counting(starts[-1])
    if batch_restarts is None:
        batch_restarts = (restarts > 1 and devices is None and jax.default_backend() != "cpu"
                          and _fits_in_memory(starts, bound))
    if batch_restarts and restarts > 1:
        if devices is not None:
            raise VemError("data", "batch_restarts=True with devices= is not supported; the restarts run in turn")
        runs, compile_seconds = _run_batched(engine, starts, max_iter, tol, show)
    else:
        runs, compile_seconds = [], None
        for r, initial in enumerate(starts):  # not `start`: that names the initialisation scheme
            bar = _Progress(show, f"restart {r + 1}/{restarts}" if restarts > 1 else "fit", max_iter)
            state, trace, converged, it, c = _run(sweep, place(initial), max_iter, tol, bar, lambda: engine.traces)
            compile_seconds = c if compile_seconds is None else compile_seconds
            runs.append((gather(state), trace, converged, it))
    which = max(range(restarts), key=lambda r: (runs[r][1][-1], -r))  # the first of equal bests
    state, trace, converged, iterations = runs[which]
    # Compile time: the first sweep's call, the prior start's first call and the first
    # random-globals draw (all almost all tracing and XLA); the fit time is the rest, k-means seeding and the sweeps included.
    compile_seconds = (compile_seconds or 0.0) + engine.init_compile_seconds
    if merged is not None:
        # The fit of every unit: its engine (compiled on first use) and each unit's locals.
        weights = merged[1]
        state = weights.expand(state)
        full = make_engine(bound)
        full.traces, full.init_compile_seconds, full.merged_rows = engine.traces, engine.init_compile_seconds, weights
        engine = full
    fit_seconds = time.perf_counter() - t0 - compile_seconds
    return Fit(
        model=m, plan=plan, bound=bound, engine=engine, state=state, elbo_trace=np.asarray(trace),
        converged=converged, iterations=iterations, seed=seed, restarts=restarts,
        compile_seconds=compile_seconds or 0.0, fit_seconds=fit_seconds, best_restart=which,
    )


def _check_elbo(elbo, it):
    if not np.isfinite(elbo):
        raise VemError(
            "data", f"the ELBO became {elbo} at iteration {it}; the data may be badly scaled or a prior improper",
        )


def _run(sweep, state, max_iter, tol, bar, traces=lambda: 0):
    """One fit: sweeps until the relative ELBO change is at most ``tol``.  Compile time: the
    first sweep's call, and any later one that traced a program (``traces()`` moved; the
    carried sweep of ``local_restart=S`` compiles when the restarts end)."""
    trace: list[float] = []
    converged, compile_seconds, it = False, None, 0
    for it in range(1, max_iter + 1):
        t_it, traced = time.perf_counter(), traces()
        state, elbo = sweep(state)
        elbo = float(elbo)
        if compile_seconds is None:
            compile_seconds = time.perf_counter() - t_it
        elif traces() != traced:
            compile_seconds += time.perf_counter() - t_it
        _check_elbo(elbo, it)
        trace.append(elbo)
        bar.update(it, elbo)
        if len(trace) > 1 and abs(trace[-1] - trace[-2]) <= tol * abs(trace[-1]):
            converged = True
            break
    bar.close()
    return state, trace, converged, it, compile_seconds


def _run_batched(engine, starts, max_iter, tol, show):
    """Every restart in one vmapped sweep (one compilation); a restart that has converged
    is frozen (its state kept, its trace closed) while the others go on, so each restart's
    trace and final state are those it would have had alone."""
    import jax.numpy as jnp

    def frozen(state, active, data, restart=False):
        new, elbo = engine._sweep_impl(state, data)
        if restart:  # guarded_sweep's test per restart: both sweeps, then a select
            restarted, elbo_r = engine._sweep_impl(state, data, restart=True)
            keep = elbo_r >= state.elbo
            new = jax.tree_util.tree_map(lambda a, b: jnp.where(keep, a, b), restarted, new)
            elbo = jnp.where(keep, elbo_r, elbo)
        return jax.tree_util.tree_map(lambda a, b: jnp.where(active, a, b), new, state), elbo

    steps = {restart: jax.jit(jax.vmap(partial(frozen, restart=restart), in_axes=(0, 0, None)))
             for restart in (False, True)}
    schedule = getattr(engine, "local_global", None)
    states = jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *starts)
    r_count = len(starts)
    active = np.ones(r_count, bool)
    traces = [[] for _ in range(r_count)]
    done = [(False, max_iter)] * r_count
    bar = _Progress(show, f"{r_count} restarts (batched)", max_iter)
    compile_seconds = None
    for it in range(1, max_iter + 1):
        t_it, traced = time.perf_counter(), engine.traces
        restart = schedule is not None and schedule.restarts_at(it - 1)  # every restart is at sweep it - 1
        states, elbos = steps[restart](states, jnp.asarray(active), engine.data)
        elbos = np.asarray(elbos)
        if compile_seconds is None:
            compile_seconds = time.perf_counter() - t_it
        elif engine.traces != traced:
            compile_seconds += time.perf_counter() - t_it
        for r in np.flatnonzero(active):
            _check_elbo(float(elbos[r]), it)
            traces[r].append(float(elbos[r]))
            t = traces[r]
            if len(t) > 1 and abs(t[-1] - t[-2]) <= tol * abs(t[-1]):
                active[r] = False
                done[r] = (True, it)
        bar.update(it, float(np.max(elbos)))
        if not active.any():
            break
    bar.close()
    runs = []
    for r in range(r_count):
        state = jax.tree_util.tree_map(lambda a, r=r: a[r], states)
        converged, it = done[r]
        runs.append((state, traces[r], converged, it if converged else len(traces[r])))
    return runs, compile_seconds


def _fits_in_memory(starts, bound, budget_fraction=0.25, overhead=8):
    """Batch the restarts when ``overhead`` times their states and the data take at most
    ``budget_fraction`` of the memory available now (the sweep's temporaries scale with
    the states: responsibilities, per-component statistics)."""
    import os

    state_bytes = sum(np.asarray(a).nbytes for a in jax.tree_util.tree_leaves(starts[0]))
    data_bytes = sum(np.asarray(v).nbytes for v in bound.values.values())
    need = overhead * len(starts) * state_bytes + data_bytes
    try:
        avail = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return False
    return need <= budget_fraction * avail


def _fit_svi(m, plan, data, consts, dims, mask, present, init, seed, max_iter, strict, batch_size, step_size,
             local_iter, plate, restarts, show, start="prior", chain="sequential"):
    from ..results.fit import Fit
    from .svi import fit_svi

    if restarts != 1:
        raise VemError("data", f"stochastic VI runs one fit; got restarts={restarts}",
                       hint="drop restarts= or fit without batch_size=")
    if data is None:
        raise VemError("data", "stochastic VI needs data to subsample")
    bar = _Progress(show, "svi", max_iter)
    engine, bound, state, trace, compile_s, fit_s, _ = fit_svi(
        m, plan, dict(data), consts=consts, dims=dims, mask=mask, present=present,
        init_params=_initial_params(m, None, init), seed=seed,
        max_iter=max_iter, strict=strict, batch_size=batch_size, step_size=step_size, local_iter=local_iter,
        plate=plate, progress_bar=bar, start=start, chain=chain,
    )
    return Fit(
        model=m, plan=plan, bound=bound, engine=engine, state=state, elbo_trace=np.asarray(trace),
        converged=False, iterations=len(trace), seed=seed, restarts=1, compile_seconds=compile_s,
        fit_seconds=fit_s, best_restart=0,
    )


def _initial_params(model, bound, init):
    init = dict(init or {})
    out = {}
    for p in model.of_kind("param"):
        if p.name in init:
            out[p.name] = jax.tree_util.tree_map(lambda v: np.asarray(v, dtype=float), init[p.name])
    return out


class _Progress:
    """A rich progress bar with the current ELBO, shown only on a terminal."""

    def __init__(self, show: bool, label: str, total: int):
        self._p = None
        self._start = time.perf_counter()
        self.show, self.label, self.total = show, label, total

    def update(self, it, elbo):
        if not self.show:
            return
        if self._p is None and time.perf_counter() - self._start > 1.0:
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

            self._p = Progress(
                TextColumn("{task.description}"), BarColumn(), TextColumn("iter {task.completed}"),
                TextColumn("ELBO {task.fields[elbo]:.6g}"), TimeElapsedColumn(), transient=True,
            )
            self._p.start()
            self._task = self._p.add_task(self.label, total=self.total, elbo=elbo)
        if self._p is not None:
            self._p.update(self._task, completed=it, elbo=elbo)

    def close(self):
        if self._p is not None:
            self._p.stop()
