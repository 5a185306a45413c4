"""The public entry points: ``fit`` a model with an algorithm, and the glue that accepts a
DSL model or an IR wherever a model is expected.

``fit(model, data, *, ..., algorithm=vp.cavi(...))`` compiles the model, binds the data,
runs the algorithm (``engine/fit.py``) and returns a :class:`~vemppl.results.Fit`.
"""

from __future__ import annotations

import functools
import sys
import warnings

import numpy as np

from .compiler import compile_model
from .diagnostics import VemError, did_you_mean, resource_error
from .engine.algorithms import LEGACY, Cavi, Svi, cavi, from_keywords, svi
from .engine.fit import given_starts, run_cavi, run_svi
from .ir.graph import as_ir
from .results.fit import Fit


def _old_keywords(f):
    """Accept fit's keywords from before the algorithm objects (``batch_size=``,
    ``local_iter=``, ...): each is mapped onto ``vp.cavi``/``vp.svi``, with a
    DeprecationWarning.  The documented signature is ``f``'s (``inspect.signature`` reads it)."""

    @functools.wraps(f)
    def fit(*args, **kwargs):
        old = {k: kwargs.pop(k) for k in list(kwargs) if k in LEGACY}
        if old:
            kwargs["algorithm"] = _algorithm(kwargs.get("algorithm"), old)
        return f(*args, **kwargs)

    return fit


@_old_keywords
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
    progress: bool | None = None,
    algorithm: Cavi | Svi | None = None,
):
    """Fit ``model`` to ``data`` by variational EM; returns a :class:`~vemppl.results.Fit`.

    ``mask`` marks missing entries of data arrays (False = missing) and, on a
    categorical latent, its absent elements: ``mask={"z": t < length[s]}`` fits sequences
    of different lengths padded to one array (every factor that reads an absent element
    is dropped, and the ELBO is that of the unpadded sequences).

    ``algorithm``: ``vp.cavi(...)`` (the default, batch CAVI with its schedule options) or
    ``vp.svi(batch_size=..., step_size=...)`` (stochastic VI); every option below named as
    a keyword (``batch_size=``, ``local_iter=``, ``devices=``, ...) is an option of one of
    them.  Passing those options to ``fit`` itself still works, with a DeprecationWarning; one the
    algorithm has no use for (``step_size=`` without ``batch_size=``, ``learning_rate=`` or
    ``batch_restarts=True`` beside it) is a ``data`` error.

    Networks (``param f: mlp(...)[...]``) and amortised posteriors take one Adam step of
    size ``learning_rate`` per iteration on a reparameterised Monte Carlo ELBO
    (``engine/networks.py``); ``init={"dec": {"W0": ..., "b0": ...}}`` sets their weights.

    Convergence: the last ELBO change and Aitken's forecast of the gain after it are both within
    ``tol·|ELBO|`` at two consecutive sweeps (the change alone under a local/global schedule or
    with networks or amortised posteriors, whose Monte Carlo draws are fresh each sweep; the
    general path's are fixed for the fit, and its rate is read; ``engine/loop.py``,
    docs/engine.md "When a fit stops"; default 1e-8; 1e-3 under an admixture's default
    schedule, where held-out quality has stopped improving; 1e-10 for a linear-Gaussian data
    plate fitted on its first two moments, ``Plan.moment_plate``, whose sweeps cost 2r ≤ 2D rows whatever N: factor analysis, PPCA).  ``compress=False`` fits
    every row instead of those moments (or of the distinct rows).  With ``restarts > 1`` the
    fit is repeated from ``restarts`` initialisations (keys split in turn off ``PRNGKey(seed)``: the
    others are not those of ``seed+1, ...``) and the one with the highest ELBO is returned.  A
    single fit of a mixture or a chain seeded by k-means++ screens 4 such starts over 5 sweeps
    each and continues the best (``vp.cavi(screen=R)``; docs/engine.md, Initialisation).  ``batch_restarts=True`` runs the restarts
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
    ``elbo_trace`` holds the per-step ELBO estimates (there is no convergence test: ``tol=`` is
    ignored with a warning) and the returned locals are those of
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
    local_iter=20, local_tol=1e-3, local_restart=25`` and stops at ``tol=2e-3``; every other model as ``start="prior"``, its mixtures'
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
    m = as_ir(model)
    _check_options(seed, restarts, max_iter, tol)
    algorithm = Cavi() if algorithm is None else _checked(algorithm)
    latents = {n.name for n in m.of_kind("latent")}
    present = {k: v for k, v in (mask or {}).items() if k in latents}
    plan = compile_model(m, masked=tuple(present))
    mask = {k: v for k, v in (mask or {}).items() if k not in latents} if mask is not None else None
    _check_init(m, plan, init)
    if isinstance(algorithm, Svi) and tol is not None:  # said, not dropped: SVI has no test to give it to
        warnings.warn(f"tol= is ignored under stochastic VI (got {tol:g}): it runs its max_iter steps with no "
                      "convergence test (its per-step ELBO estimates are noisy); set max_iter=, or fit without "
                      "batch_size= to stop by tol=", UserWarning, stacklevel=3)
        tol = None
    algorithm, tol = algorithm.for_plan(plan, tol)  # start=None: the start the graph calls for, with its schedule
    show = sys.stderr.isatty() if progress is None else progress
    try:
        if isinstance(algorithm, Svi):
            run = run_svi(m, plan, algorithm, data, consts, dims, mask, present, init, seed, restarts, max_iter, show)
        else:
            run = run_cavi(m, plan, algorithm, data, consts, dims, mask, present, init, seed, restarts, max_iter, tol,
                           show)
    except (MemoryError, RuntimeError, ValueError) as exc:  # out of memory is the user's to fix (issue #23)
        err = resource_error(exc)
        if err is None:
            raise
        raise err from None
    return Fit(model=m, plan=plan, seed=seed, **run._asdict())


def _algorithm(algorithm, deprecated: dict):
    """The algorithm that fit's old keywords ask for (with their old checks)."""
    if algorithm is not None:
        raise VemError("data", f"{', '.join(f'{k}=' for k in sorted(deprecated))} and algorithm= together: "
                       "the options belong to the algorithm",
                       hint="pass them to vp.cavi(...) or vp.svi(...)")
    made = from_keywords(dict(deprecated))
    name = "svi" if isinstance(made, Svi) else "cavi"
    warnings.warn(f"fit({', '.join(f'{k}=' for k in deprecated)}) is deprecated; pass "
                  f"algorithm=vp.{name}(...) with these options", DeprecationWarning, stacklevel=3)
    return made


def _whole(x) -> bool:
    return isinstance(x, (int, np.integer)) and not isinstance(x, (bool, np.bool_))


def _check_options(seed, restarts, max_iter, tol):
    """fit's own options, as the command line checks them (docs/cli.md): a ``data`` error naming
    the option, not an IndexError from an empty trace (``max_iter=0``) or a seed JAX wraps."""
    if not (_whole(seed) and 0 <= seed <= 2**32 - 1):
        raise VemError("data", f"seed must be a whole number in 0 … 2**32 - 1; got {seed!r}")
    if not (_whole(restarts) and restarts >= 1):
        raise VemError("data", f"restarts must be a whole number >= 1; got {restarts!r}")
    if not (_whole(max_iter) and max_iter >= 1):
        raise VemError("data", f"max_iter must be a whole number >= 1; got {max_iter!r}")
    if tol is not None and not (isinstance(tol, (int, float, np.integer, np.floating)) and not isinstance(tol, bool)
                                and np.isfinite(tol) and tol >= 0):
        raise VemError("data", f"tol must be a finite number >= 0; got {tol!r}")


def _check_init(m, plan, init):
    """``init=`` names params and seeded categorical latents (``given_starts``): a misspelt
    name was ignored without a word."""
    params = [n.name for n in m.of_kind("param")]
    seeded = given_starts(plan, init)
    for key in init or {}:
        if key not in params and key not in seeded:
            kind = getattr(m.nodes.get(key), "kind", None)
            raise VemError("data", f"init= sets '{key}'. Expected the name of a param of the model "
                           f"({', '.join(params) or 'it declares none'}); got '{key}', "
                           + (f"which is a {kind}" if kind else "which the model does not declare")
                           + (" that starts at its prior" if kind == "latent" else ""),
                           hint=did_you_mean(key, params) if params else None)


def _checked(algorithm):
    if not isinstance(algorithm, (Cavi, Svi)):
        raise VemError("data", f"algorithm must be vp.cavi(...) or vp.svi(...); got {type(algorithm).__name__}")
    return algorithm


__all__ = ["as_ir", "cavi", "fit", "svi"]
