"""Running an algorithm on a compiled plan: restarts, convergence, progress; the best ELBO wins.

Fitting is a Python loop over a jitted sweep (STYLE.md, pattern 1; ``engine/loop.py``), so
progress and callbacks are plain Python and the sweep compiles once per model and data
shape, shared by every restart.  ``vemppl.fit`` (``api.py``) compiles the model, picks the
runner of its algorithm (``engine/algorithms.py``) and wraps the :class:`Run` as a ``Fit``.
"""

from __future__ import annotations

import os
import time
import warnings
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .. import _prng
from ..data_scale import PrecisionWarning, nonfinite_parts
from ..diagnostics import VemError
from ..plan import Init, Update
from .bind import bind
from .accel import Accelerated
from .algorithms import SCREEN_SWEEPS
from .cavi import Engine
from .guards import NARROWINGS, sharpened_start
from .compress import compress_plate
from .dataplate import data_plate
from .loop import converge, converged as loop_converged
from .moment_rows import MomentRows, every_row, moment_rows
from .reuse import engine_key, reused
from .rotation import Rotated
from .schur_newton import JointRows, pairs as joint_row_pairs
from .shard import Sharded
from .stops import (fallen_term, fell, monotone, nonfinite_factors, nonfinite_terms, not_stuck, reading_terms,
                    wide_parts)
from .svi import fit_svi
from .warm import SweepWarmup


class Run(NamedTuple):
    """What a run of an algorithm gives ``Fit``: the binding, the engine of every row, the
    best restart's state and ELBO trace, and the run's counts and timings."""

    bound: Any
    engine: Any
    state: Any
    elbo_trace: Any
    converged: bool
    iterations: int
    restarts: int
    compile_seconds: float
    fit_seconds: float
    best_restart: int
    #: Stochastic VI: ``max_iter`` steps and no convergence test, so ``converged`` is False.
    stochastic: bool = False
    #: The relative tolerance of the stopping rule the fit ran under (None: stochastic VI, no rule).
    tol: float | None = None


def run_cavi(m, plan, algorithm, data, consts, dims, mask, present, init, seed, restarts, max_iter, tol,
             show) -> Run:
    """Batch CAVI (``algorithm``: :class:`~vemppl.engine.algorithms.Cavi`) from ``restarts``
    initialisations; the run with the highest ELBO wins."""
    a = algorithm
    devices, plate = a.devices, a.plate
    bound = bind(m, {} if data is None else data, consts, dims, mask, a.strict)
    t0 = time.perf_counter()
    merged = None
    given = given_starts(plan, init)
    if a.compress is not False and devices is None:
        networks = any(n.is_network for n in m.of_kind("param")) or any(b.update is Update.AMORTISED for b in plan.blocks)
        # A linear-Gaussian plate: its first two moments as 2r weighted rows (engine/moment_rows.py).
        merged = moment_rows(m, plan, bound, present, plate, networks)
        if merged is None:
            merged = compress_plate(m, plan, bound, present, plate, networks, required=a.compress is True,
                                    started=given)

    schedule = None
    if a.scheduled:
        passes = a.local_iter if a.local_iter is not None else (1 if a.local_tol is None else 10)
        schedule = dict(start=a.start, local_iter=passes, dim=plate if plate is not None else plan.start_plate,
                        local_tol=a.local_tol, local_restart=a.local_restart)

    def make_engine(b, weights=None, merged_rows=None):
        """The engine for binding ``b``; a later fit of the same model, plan, shapes and row
        counts calls the first one's programs (engine/reuse.py)."""
        key = None if devices is not None else engine_key(
            m, plan, b, present, weights, learning_rate=a.learning_rate, chain=a.chain,
            schedule=tuple(sorted(schedule.items())) if schedule is not None else None)
        return reused(key, lambda: Engine(m, plan, b, present=present, learning_rate=a.learning_rate,
                                          unit_weights=weights, chain=a.chain, schedule=schedule,
                                          chunked=devices is None, merged_rows=merged_rows),
                      b, weights, merged_rows)

    engine = make_engine(*merged) if merged is not None else make_engine(bound)
    sweep, place, gather = engine.sweep, (lambda s: s), (lambda s: s)
    if devices is not None:
        sharded = Sharded(engine, data_plate(m, plan, plate, "sharding"), devices)
        sweep, place, gather = sharded.sweep, sharded.place, sharded.gather
    key = _prng.key(seed)  # in NumPy, bit for bit: no XLA programs before the data's (vemppl/_prng.py)
    # A single fit of a mixture or a chain screens several seeded starts (engine/algorithms.py),
    # unless the user gave them.
    screen = 1 if given or restarts != 1 or a.batch_restarts else a.starts_screened(plan)
    starts = []
    # The sweep compiles while the first start does (engine/warm.py), where the first sweep
    # is called on a start as init returns it: one device, restarts in turn, no schedule.
    may_batch = a.batch_restarts or (a.batch_restarts is None and restarts > 1 and jax.default_backend() != "cpu")
    warm = None
    if devices is None and engine.local_global is None and a.start != "random-globals" and not may_batch:
        warm = SweepWarmup(engine._sweep, engine.data)
    try:
        for r in range(max(restarts, screen)):
            key, sub = _prng.split(key)
            starts.append(engine.init(sub, initial_params(m, init), warm=warm if r == 0 else None, given=given))
            if a.start == "random-globals":
                t_r = time.perf_counter()
                starts[-1] = jax.block_until_ready(
                    engine.local_global.randomise_globals(engine, starts[-1], jax.random.fold_in(sub, 1)))
                if r == 0:  # the first call compiles (once per process, family and shape)
                    engine.init_compile_seconds += time.perf_counter() - t_r
                starts[-1] = engine.local_global.counting(starts[-1])
    except BaseException:
        # A start refused (a bad init=): the sweep's compilation thread is waited for, as a
        # daemon thread still inside XLA when the interpreter exits aborts it (exit 134).
        if warm is not None:
            warm.join()
        raise
    batch_restarts = a.batch_restarts
    if batch_restarts is None:
        batch_restarts = (restarts > 1 and devices is None and jax.default_backend() != "cpu"
                          and _fits_in_memory(starts, bound))
    if warm is not None:  # the wait is the sweep's compilation: counted as compile time
        t_w = time.perf_counter()
        warm.join()
        engine.init_compile_seconds += time.perf_counter() - t_w
    if batch_restarts and restarts > 1:
        if devices is not None:
            raise VemError("data", "batch_restarts=True with devices= is not supported; the restarts run in turn")
        runs, compile_seconds = _run_batched(engine, starts, max_iter, tol, show)
    else:
        runs, compile_seconds = [], None

        def run(initial, label, sweeps):
            nonlocal compile_seconds
            run_sweep = sweep
            if a.accelerate and plan.rotations and devices is None:  # a bilinear pair (engine/rotation.py)
                run_sweep = Rotated(sweep, engine, plan.rotations, tol)
            found = joint_row_pairs(engine, initial.eta) if a.accelerate and devices is None else ()
            if found:  # a local block's rows with the globals they read (engine/schur_newton.py)
                run_sweep = JointRows(run_sweep, engine, found)
            if a.accelerate and reads_rate(engine, initial):  # a fixed monotone map, as SQUAREM's forecast too assumes
                run_sweep = Accelerated(run_sweep, engine, tol)  # engine/accel.py: acts only on a slow trace
            state, trace, converged, it, c = _run(run_sweep, place(initial), sweeps, tol, Progress(show, label, sweeps),
                                                  lambda: engine.traces, None if devices is not None else engine,
                                                  monotone(engine, initial), rate=reads_rate(engine, initial))
            compile_seconds = c if compile_seconds is None else compile_seconds
            return gather(state), list(trace), converged, it

        if screen > 1:
            runs = [_screened(run, starts, max_iter, bound)]
        for r, initial in enumerate(starts if screen == 1 else ()):  # not `start`: that names the initialisation scheme
            runs.append(run(initial, f"restart {r + 1}/{restarts}" if restarts > 1 else "fit", max_iter))
    which = max(range(len(runs)), key=lambda r: (runs[r][1][-1], -r))  # the first of equal bests
    state, trace, converged, iterations = runs[which]
    # Compile time: the first sweep's call, the prior start's first call and the first
    # random-globals draw (all almost all tracing and XLA); the fit time is the rest, k-means seeding and the sweeps included.
    compile_seconds = (compile_seconds or 0.0) + engine.init_compile_seconds
    if merged is not None:
        # Every unit's locals, read off the moment rows' (their natural parameters are affine in the
        # row) or each unit's distinct row's; the first call of either is compile time.
        moments = isinstance(merged[1], MomentRows)
        full = make_engine(bound) if moments else make_engine(bound, merged_rows=merged[1])
        state, compiled = every_row(full, state, merged[1]) if moments else merged[1].expand(state, timed=True)
        full.programs += [p for p in engine.programs if p not in full.programs]  # this fit's programs, each once
        full.init_compile_seconds = engine.init_compile_seconds
        compile_seconds += compiled
        engine = full
    fit_seconds = time.perf_counter() - t0 - compile_seconds
    return Run(bound, engine, state, np.asarray(trace), converged, iterations, restarts, compile_seconds or 0.0,
               fit_seconds, which, tol=float(tol))


def _screened(run, starts, max_iter, bound):
    """The fit from the best of several starts: each runs ``SCREEN_SWEEPS`` sweeps, and the one
    with the highest ELBO then runs on to convergence (its trace and sweeps are the fit's).
    A seeded mixture's optimum depends on its start, and the ELBO after a few sweeps already
    ranks the starts: on 16 Gaussian mixtures one start ended on average 220.6 nats below the
    best of 8 whole fits, the best of 4 after 5 sweeps 40.3 below it (docs/engine.md,
    Initialisation)."""
    budget = min(SCREEN_SWEEPS, max_iter)
    tried = [run(initial, f"start {r + 1}/{len(starts)}", budget) for r, initial in enumerate(starts)]
    best = max(range(len(tried)), key=lambda r: (tried[r][1][-1], -r))
    state, trace, converged, it = tried[best]
    if not converged and it == budget and it < max_iter:  # (a fit stopped for precision stays stopped)
        state, more, converged, more_it = run(state, "fit", max_iter - it)
        trace, it = trace + more, it + more_it
    bound.notes.append(f"started from the best of {len(starts)} seeded starts after {budget} sweeps each "
                       f"(start {best + 1}); fit(restarts=R) runs R whole fits, vp.cavi(screen=1) one start")
    return state, trace, converged, it


def reads_rate(engine, state) -> bool:
    """Whether the stopping rule reads the trace's rate (``loop.converged``): the sweep is one
    fixed monotone map, as Aitken's forecast assumes (the general path's Monte Carlo draws are fixed
    for the fit, so it is one).  Not with fresh draws each sweep, networks or
    amortised posteriors (the ratio of two changes is noise), nor under the local/global
    schedule, whose local restarts and data-dependent local passes (``local_tol``) change the
    map from sweep to sweep (the admixture default stops on the change, where held-out quality
    stops improving: docs/engine.md, when to stop)."""
    return monotone(engine, state) and engine.local_global is None


def _run(sweep, state, max_iter, tol, bar, traces=lambda: 0, engine=None, deterministic=False, rate=True):
    """One fit: sweeps until ``loop.converged`` at ``tol`` (reading the trace's ``rate`` or not).
    Compile time: the first sweep's call, and any later one that traced a program
    (``traces()`` moved; the carried sweep of ``local_restart=S`` compiles when the restarts end).
    A sweep whose ELBO is not finite, or (``deterministic``: every sweep monotone,
    engine/stops.py) falls beyond rounding, stops the fit at the sweep before it (``_stopped``;
    ``engine`` says where, None: it cannot)."""
    compile_seconds = None
    dtype = [np.float64]

    def timed(state):
        nonlocal compile_seconds
        t_it, traced = time.perf_counter(), traces()
        state, elbo = sweep(state)
        dtype[0] = getattr(elbo, "dtype", np.float64)
        elbo = float(elbo)
        if compile_seconds is None:
            compile_seconds = time.perf_counter() - t_it
        elif traces() != traced:
            compile_seconds += time.perf_counter() - t_it
        return state, elbo

    finite: list[float] = []
    last = []  # the last sweep's (state before, state after)

    def guarded(state):
        new, elbo = timed(state)
        last[:] = [state, new]
        if not np.isfinite(elbo) or (deterministic and finite and fell(finite[-1], elbo, dtype[0])):
            raise _Stop(state, new, elbo)
        return new, elbo

    def watch(it, elbo):
        finite.append(elbo)
        bar.update(it, elbo)

    for narrowed in range(NARROWINGS + 1):
        try:
            state, trace, converged, it = converge(guarded, state, max_iter, tol, watch, rate)
            if converged and engine is not None and last:
                converged = not_stuck(engine, *last, it)
        except _Stop as stop:
            # The first sweep's ELBO not finite: the natural-gradient blocks' start sharpened
            # (engine/guards.py::sharpened_start) and the fit started again, up to NARROWINGS times.
            sharper = (sharpened_start(engine, stop.before)
                       if not finite and engine is not None and narrowed < NARROWINGS else None)
            if sharper is not None:
                state = sharper
                continue
            bar.close()
            state, trace, converged, it = _stopped(stop, finite, engine)
        break
    bar.close()
    return state, trace, converged, it, compile_seconds


class _Stop(Exception):
    """A sweep from ``before`` to ``after`` whose ELBO is not finite or fell."""

    def __init__(self, before, after, elbo):
        super().__init__(elbo)
        self.before, self.after, self.elbo = before, after, elbo


def _stopped(stop: _Stop, finite: list[float], engine=None):
    """A sweep made the ELBO non-finite, or (a finite ELBO) made a deterministic fit's ELBO
    fall beyond rounding (engine/stops.py): ``(state, trace, converged, sweeps)`` of the
    sweep before it with a PrecisionWarning that says where, or, if it was the first sweep,
    the data error naming the same.  Non-finite: the blocks whose q went non-finite, the
    params that did, and the ELBO's terms that are not finite.  A fall: the blocks and params
    whose values span more than float64 resolves, and the term that fell most.  Each sweep
    kept was a CAVI step on finite numbers, so the trace kept is the fit's, monotone; the
    sweep that failed is the one float64 could not represent (a unit-scale prior on data at
    scale 1e8 rounds a Wishart rate V₀⁻¹ + Σ r x xᵀ to a singular matrix; the noise
    precision of a constant data column grows toward 1e31)."""
    it = len(finite) + 1
    bad = []  # the factors whose terms are not finite: the first locates an error
    if np.isfinite(stop.elbo):
        wide = wide_parts(stop.after) or wide_parts(stop.before)
        if engine is None:
            terms = []
        elif wide:  # the statements that read them: the terms float64 cannot evaluate
            terms = reading_terms(engine, _members(engine, [name for name, _ in wide]))
        else:
            terms = [t for t in [fallen_term(engine, stop.before, stop.after)] if t]
        said = ([f"{' and '.join(text for _, text in wide)} reach{'es' if len(wide) == 1 else ''} beyond "
                 f"float64's resolution"] if wide else []) + (
            [f"read by {', '.join(terms)}" if wide else terms[0]] if terms else [])
        what = (f"the ELBO fell from {finite[-1]:.10g} to {stop.elbo:.10g}, by {finite[-1] - stop.elbo:.3g} nats, "
                f"where no sweep of this fit can lower it")
    else:
        parts = nonfinite_parts(stop.after)
        bad = nonfinite_factors(engine, stop.after) if engine is not None else []
        terms = nonfinite_terms(engine, stop.after, bad) if engine is not None else []
        said = ([f"{' and '.join(parts)} became non-finite"] if parts else []) + (
            [f"{', '.join(terms)} {'is' if len(terms) == 1 else 'are'} not finite"] if terms else [])
        what = f"the ELBO became {stop.elbo}"
    which = f" {'; '.join(said)}:" if said else ""
    if not finite:  # located at the first statement whose term is not finite, where one is
        raise VemError(
            "data", f"the ELBO became {stop.elbo} at iteration 1:{which} the data may be badly scaled or a prior improper",
            bad[0].definition.span if bad else None,
        )
    warnings.warn(
        f"the fit stopped at iteration {it}, where {what}:{which} its update is not "
        f"representable in float64 (data far from the prior's scale, an improper prior, or a param with no finite "
        f"optimum, such as the noise precision of a constant data column); the results are those "
        f"of iteration {it - 1}, not converged. Rescale the data or set priors on the data's scale",
        PrecisionWarning, stacklevel=5)
    return stop.before, finite, False, it - 1


def _members(engine, names) -> list[str]:
    """The model's node names of the blocks and params ``names`` (a joint block's members)."""
    out = []
    for n in names:
        block = next((b for b in engine.plan.blocks if b.name == n), None)
        out += [m for _, m in block.members] if block is not None and block.members else [n]
    return out


def _run_batched(engine, starts, max_iter, tol, show):
    """Every restart in one vmapped sweep (one compilation); a restart that has converged
    is frozen (its state kept, its trace closed) while the others go on, so each restart's
    trace and final state are those it would have had alone."""
    def frozen(state, active, data, restart=False, grouped=False):
        new, elbo = engine._sweep_impl(state, data, grouped=grouped)
        if restart:  # guarded_sweep's test per restart: both sweeps, then a select
            restarted, elbo_r = engine._sweep_impl(state, data, restart=True, grouped=grouped)
            keep = elbo_r >= state.elbo
            new = jax.tree_util.tree_map(lambda a, b: jnp.where(keep, a, b), restarted, new)
            elbo = jnp.where(keep, elbo_r, elbo)
        return jax.tree_util.tree_map(lambda a, b: jnp.where(active, a, b), new, state), elbo

    deterministic = monotone(engine, starts[0])
    rate = reads_rate(engine, starts[0])
    schedule = getattr(engine, "local_global", None)
    # The exp-domain local passes as the sweep in turn runs them, the sweep without them where
    # one was not exact (a NaN ELBO; engine/factored.py).  Each program compiles on first use.
    grouped = schedule is not None and bool(schedule.grouped)
    steps = {(restart, g): engine.jit(jax.vmap(partial(frozen, restart=restart, grouped=g), in_axes=(0, 0, None)))
             for restart in (False, True) for g in {grouped, False}}
    states = jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *starts)
    r_count = len(starts)
    active = np.ones(r_count, bool)
    traces = [[] for _ in range(r_count)]
    done = [(False, max_iter)] * r_count
    bar = Progress(show, f"{r_count} restarts (batched)", max_iter)
    compile_seconds = None
    for it in range(1, max_iter + 1):
        t_it, traced = time.perf_counter(), engine.traces
        restart = schedule is not None and schedule.restarts_at(it - 1)  # every restart is at sweep it - 1
        before = states
        states, elbos = steps[restart, grouped](states, jnp.asarray(active), engine.data)
        elbos = np.asarray(elbos)
        if grouped and np.isnan(elbos[active]).any():
            states, elbos = steps[restart, False](before, jnp.asarray(active), engine.data)
            elbos = np.asarray(elbos)
        if np.isnan(elbos[active]).any():  # a sweep's ELBO it could not trust (engine/guards.py::_rescored)
            elbos = np.where(np.isnan(elbos), np.asarray(engine.elbo_program(batched=True)(states, engine.data)), elbos)
            if states.sweeps is not None:
                states = states._replace(elbo=jnp.asarray(elbos))
        if compile_seconds is None:
            compile_seconds = time.perf_counter() - t_it
        elif engine.traces != traced:
            compile_seconds += time.perf_counter() - t_it
        for r in np.flatnonzero(active):
            if not np.isfinite(elbos[r]) or (deterministic and traces[r]
                                             and fell(traces[r][-1], float(elbos[r]), elbos.dtype)):
                # as _run does: say where; keep the sweep before
                pick = partial(jax.tree_util.tree_map, lambda a, r=r: a[r])
                _stopped(_Stop(pick(before), pick(states), float(elbos[r])), traces[r], engine)
                states = jax.tree_util.tree_map(lambda a, b, r=r: a.at[r].set(b[r]), states, before)
                active[r] = False
                continue
            traces[r].append(float(elbos[r]))
            if loop_converged(traces[r], tol, rate):
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
    state_bytes = sum(np.asarray(a).nbytes for a in jax.tree_util.tree_leaves(starts[0]))
    data_bytes = sum(np.asarray(v).nbytes for v in bound.values.values())
    need = overhead * len(starts) * state_bytes + data_bytes
    try:
        avail = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return False
    return need <= budget_fraction * avail


def run_svi(m, plan, algorithm, data, consts, dims, mask, present, init, seed, restarts, max_iter, show) -> Run:
    """Stochastic VI (``algorithm``: :class:`~vemppl.engine.algorithms.Svi`) for ``max_iter`` steps."""
    a = algorithm
    if restarts != 1:
        raise VemError("data", f"stochastic VI runs one fit; got restarts={restarts}",
                       hint="drop restarts= or fit without batch_size=")
    if data is None:
        raise VemError("data", "stochastic VI needs data to subsample")
    bar = Progress(show, "svi", max_iter)
    engine, bound, state, trace, compile_s, fit_s, _ = fit_svi(
        m, plan, dict(data), consts=consts, dims=dims, mask=mask, present=present,
        init_params=_svi_params(m, plan, init), seed=seed,
        max_iter=max_iter, strict=a.strict, batch_size=a.batch_size, step_size=a.step_size, local_iter=a.local_iter,
        plate=a.plate, progress_bar=bar, start=a.start, chain=a.chain,
    )
    # No convergence test (the per-step ELBO estimates are noisy): converged stays False and the
    # Fit says it ran its steps (``Fit.stochastic``), not that it failed to converge.
    return Run(bound, engine, state, np.asarray(trace), False, len(trace), 1, compile_s, fit_s, 0, stochastic=True)


def _svi_params(m, plan, init):
    """``initial_params`` for stochastic VI, whose batches' locals start afresh: no latent's start."""
    given = given_starts(plan, init)
    if given:
        raise VemError("data", f"init= sets '{next(iter(given))}', a local latent; stochastic VI starts each batch's "
                       "locals afresh", hint="drop it from init= or fit without batch_size=")
    return initial_params(m, init)


def given_starts(plan, init) -> dict:
    """The categorical latents ``fit(init=...)`` names (a mixture's ``z``, a chain's states):
    their starting assignments or responsibilities, by block (engine/init.py,
    ``given_responsibilities``).  Only blocks seeded from the data or at random take one."""
    seeded = {b.name for b in plan.blocks if b.init in (Init.KMEANS, Init.RANDOM)}
    return {k: v for k, v in (init or {}).items() if k in seeded}


def initial_params(model, init):
    """The user's starting values of the model's params (``fit(init=...)``), as arrays; the
    names were checked by ``api.fit`` (params and seeded latents, ``given_starts``)."""
    init = dict(init or {})
    out = {}
    for p in model.of_kind("param"):
        if p.name in init:
            out[p.name] = jax.tree_util.tree_map(lambda v: np.asarray(v, dtype=float), init[p.name])
    return out


class Progress:
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


__all__ = ["Progress", "Run", "initial_params", "run_cavi", "run_svi"]
