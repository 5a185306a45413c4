"""The outer loop: restarts, convergence, progress; the best ELBO wins.

Fitting is a Python loop over a jitted sweep (STYLE.md, pattern 1), so progress and
callbacks are plain Python and the sweep compiles once per model and data shape, shared
by every restart.
"""

from __future__ import annotations

import sys
import time

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
    tol: float = 1e-8,
    strict: bool = False,
    progress: bool | None = None,
    learning_rate: float = 1e-2,
    batch_size: int | None = None,
    step_size: tuple[float, float] = (1.0, 0.7),
    local_iter: int | None = None,
    plate: str | None = None,
):
    """Fit ``model`` to ``data`` by variational EM; returns a :class:`~vemppl.results.Fit`.

    ``mask`` marks missing entries of data arrays (False = missing) and, on a
    categorical latent, its absent elements: ``mask={"z": t < length[s]}`` fits sequences
    of different lengths padded to one array (every factor that reads an absent element
    is dropped, and the ELBO is that of the unpadded sequences).

    Networks (``param f: mlp(...)[...]``) and amortised posteriors take one Adam step of
    size ``learning_rate`` per iteration on a reparameterised Monte Carlo ELBO
    (``engine/networks.py``); ``init={"dec": {"W0": ..., "b0": ...}}`` sets their weights.

    Convergence: the relative ELBO change falls below ``tol``.  With ``restarts > 1`` the
    fit is repeated from ``restarts`` initialisations (seeds ``seed, seed+1, ...``) and
    the one with the highest ELBO is returned.

    Stochastic VI (``engine/svi.py``, Hoffman et al. 2013): with ``batch_size=B`` each of
    ``max_iter`` steps fits the local latents of ``B`` units of the data plate (``plate``,
    by default the leading dim of the data) and moves the globals by
    ``η ← (1−ρ_t)η + ρ_t η̂`` with ``ρ_t = (t + tau)^(−kappa)``, ``step_size=(tau, kappa)``;
    ``elbo_trace`` holds the per-step ELBO estimates and the returned locals are those of
    the last batch (``Fit.predict`` re-infers them for any data).  Data arrays may be
    memory maps (``np.load(path, mmap_mode="r")``); only each batch's rows are read.
    """
    from ..results.fit import Fit

    m = as_ir(model)
    plan = compile_model(m)
    latents = {n.name for n in m.of_kind("latent")}
    present = {k: v for k, v in (mask or {}).items() if k in latents}
    mask = {k: v for k, v in (mask or {}).items() if k not in latents} if mask is not None else None
    if restarts < 1:
        raise VemError("data", f"restarts must be at least 1; got {restarts}")
    show = sys.stderr.isatty() if progress is None else progress
    if batch_size is not None:
        return _fit_svi(m, plan, data, consts, dims, mask, present, init, seed, max_iter, strict, batch_size,
                        step_size, local_iter, plate, restarts, show)
    bound = bind(m, {} if data is None else data, consts, dims, mask, strict)
    t0 = time.perf_counter()
    engine = Engine(m, plan, bound, present=present, learning_rate=learning_rate)
    key = jax.random.PRNGKey(seed)
    best = None
    compile_seconds = None
    for r in range(restarts):
        key, sub = jax.random.split(key)
        state = engine.init(sub, _initial_params(m, bound, init))
        trace: list[float] = []
        converged = False
        bar = _Progress(show, f"restart {r + 1}/{restarts}" if restarts > 1 else "fit", max_iter)
        it = 0
        for it in range(1, max_iter + 1):
            t_it = time.perf_counter()
            state, elbo = engine.sweep(state)
            elbo = float(elbo)
            if compile_seconds is None:
                compile_seconds = time.perf_counter() - t_it
            if not np.isfinite(elbo):
                raise VemError(
                    "data",
                    f"the ELBO became {elbo} at iteration {it}; the data may be badly scaled or a prior improper",
                )
            trace.append(elbo)
            bar.update(it, elbo)
            if len(trace) > 1 and abs(trace[-1] - trace[-2]) <= tol * abs(trace[-1]):
                converged = True
                break
        bar.close()
        if best is None or trace[-1] > best[1][-1]:
            best = (state, trace, converged, it, r)
    state, trace, converged, iterations, which = best
    fit_seconds = time.perf_counter() - t0 - (compile_seconds or 0.0)
    return Fit(
        model=m, plan=plan, bound=bound, engine=engine, state=state, elbo_trace=np.asarray(trace),
        converged=converged, iterations=iterations, seed=seed, restarts=restarts,
        compile_seconds=compile_seconds or 0.0, fit_seconds=fit_seconds, best_restart=which,
    )


def _fit_svi(m, plan, data, consts, dims, mask, present, init, seed, max_iter, strict, batch_size, step_size,
             local_iter, plate, restarts, show):
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
        plate=plate, progress_bar=bar,
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
