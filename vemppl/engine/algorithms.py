"""The algorithms ``fit`` runs, as option objects that validate themselves.

``vp.cavi(...)`` (batch coordinate ascent, the default) and ``vp.svi(batch_size=...)``
(stochastic VI) are what ``fit(..., algorithm=...)`` takes, as ``numpyro.infer.SVI``
takes its optimiser: each carries its schedule's options, checks them when it is made
(``VemError`` with code ``data``, the code every option error of ``fit`` has), and knows
how to run on a compiled plan (``engine/fit.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ..diagnostics import VemError
from ..plan import Init

#: Where the blocks start: every block at its prior, or the globals at random and the locals fitted to them.
STARTS = ("prior", "random-globals")
#: The default relative tolerance of a fit on a linear-Gaussian plate's moments, whose sweeps
#: cost 2r ≤ 2D rows whatever the plate's size.  EM there converges linearly at a rate near 1
#: (factor analysis, N = 20k, D = 30, L = 5; docs/engine.md): with the accelerated sweep and the
#: rate-reading stop, 1e-8 stops after 74 sweeps 5.4e-8 nats per row short of the maximum and
#: 1e-10 after 86 sweeps at it (under the change-only rule, plain: 218 and 379 sweeps).
MOMENT_TOL = 1e-10
#: Starts screened by default where a categorical block is seeded by k-means++ (a mixture or a
#: chain; ``Cavi.starts_screened``), and the sweeps each runs before the best one continues.
#: On 16 Gaussian mixtures (scikit-learn's iris, wine, breast-cancer and 10 principal components
#: of digits, standardised, K = 3, 4, 6, 10), seed 0's single start ended on average 220.6 nats
#: below the best of 8 whole fits; the best of 4 starts after 5 sweeps, continued, 40.3 below it
#: (of 8 starts: 21.7, 20 sweeps more; of 4 after 10 sweeps: 41.2) (docs/engine.md).
SCREEN_STARTS = 4
SCREEN_SWEEPS = 5
#: An admixture's default local passes a sweep (at most; ``local_tol=1e-3`` stops them earlier)
#: and its tolerance.  With the passes on the documents' sums (engine/summed.py) a pass costs
#: about a thirtieth of a sweep's other work, and passes that settle each document further make
#: each global update count for more: on Reuters' 10 folds (K = 20, one seed each, document
#: completion) ``local_iter=20, tol=2e-3`` stopped after 10.8 sweeps against 15.8 with at most
#: 10 passes at ``tol=1e-3``, at 0.994 ± 0.003 of its perplexity (docs/engine.md).
ADMIXTURE_LOCAL_ITER = 20
ADMIXTURE_TOL = 2e-3
#: How a Markov chain's forward–backward is computed (families/markov_chain*.py).
CHAINS = ("sequential", "parallel")


def _check_start(start):
    if start is not None and start not in STARTS:
        raise VemError("data", f"start must be one of {', '.join(STARTS)}; got {start!r}")


def check_chain(chain):
    if chain not in CHAINS:
        raise VemError("data", f"chain must be one of {', '.join(CHAINS)}; got {chain!r}")


def _check_whole(name, v):
    """A count of units or passes: a whole number >= 1 (``4.0`` is 4; ``2.5`` and ``True`` were
    truncated to 2 and read as 1 without a word)."""
    whole = not isinstance(v, (bool, np.bool_)) and isinstance(v, (int, float, np.integer, np.floating)) \
        and float(v).is_integer()
    if not whole or v < 1:
        raise VemError("data", f"{name} must be at least 1 and a whole number; got {v!r}")


def _check_local_iter(local_iter):
    if local_iter is not None:
        _check_whole("local_iter", local_iter)


def _check_learning_rate(learning_rate):
    if not (isinstance(learning_rate, (int, float, np.floating)) and learning_rate > 0):
        raise VemError("data", f"learning_rate must be a positive number; got {learning_rate!r}")


@dataclass(frozen=True)
class Cavi:
    """Batch CAVI (``vp.cavi``): every block updated once per sweep in the plan's order.

    ``local_iter``/``local_tol``/``local_restart``/``start``: the local/global schedule
    (``engine/schedule.py``); ``chain``: how Markov chains are computed; ``compress``: fit
    the data plate's distinct rows, weighted by their counts (``engine/compress.py``);
    ``batch_restarts``: run the restarts in one vmapped sweep; ``learning_rate``: Adam's
    step for networks; ``devices``: shard the data plate over this many devices
    (``engine/shard.py``); ``plate``: the data plate those options act on; ``strict``:
    undeclared names in the data are errors, not warnings; ``accelerate``: the guarded
    extrapolation of slow sweeps (``engine/accel.py``), the rotation step (``engine/rotation.py``)
    and a slow fit's joint step on a local block's rows with their globals
    (``engine/schur_newton.py``); False: plain CAVI, for comparison;
    ``screen``: how many starts a fit with ``restarts=1`` screens, each run ``SCREEN_SWEEPS``
    sweeps before the one with the highest ELBO continues (None: as the plan calls for,
    ``starts_screened``; 1: one start).
    """

    local_iter: int | None = None
    local_tol: float | None = None
    local_restart: bool | int = False
    start: str | None = None
    chain: str = "sequential"
    compress: bool | None = None
    batch_restarts: bool | None = None
    learning_rate: float = 1e-2
    devices: int | None = None
    plate: str | None = None
    strict: bool = False
    accelerate: bool = True
    screen: int | None = None

    def __post_init__(self):
        _check_start(self.start)
        if self.screen is not None and not (isinstance(self.screen, (int, np.integer)) and self.screen >= 1):
            raise VemError("data", f"screen must be a whole number of starts, at least 1; got {self.screen!r}")
        check_chain(self.chain)
        _check_local_iter(self.local_iter)
        _check_learning_rate(self.learning_rate)
        if self.local_tol is not None and not self.local_tol >= 0:
            raise VemError("data", f"local_tol must be a non-negative number; got {self.local_tol}")
        r = self.local_restart
        if not (isinstance(r, bool) or r is None or (isinstance(r, (int, np.integer)) and r >= 0)):
            raise VemError("data", f"local_restart must be True, False or a number of sweeps (0 or more); got {r!r}")
        if r and self.start is not None and self.start != "random-globals":
            raise VemError("data", "local_restart=True re-fits the locals against the globals each sweep; it needs "
                           "start='random-globals'", hint="add start='random-globals' (CLI: --start random-globals)")
        if self.compress is True and self.devices is not None:
            raise VemError("data", "compress=True with devices= is not supported; the sharded fit runs on every row")

    @property
    def scheduled(self) -> bool:
        """Whether the local/global schedule runs (any of its options set)."""
        return (self.start not in (None, "prior") or self.local_iter is not None or self.local_tol is not None
                or bool(self.local_restart))

    def starts_screened(self, plan) -> int:
        """How many starts a single fit screens: ``screen`` when given; else ``SCREEN_STARTS``
        where a categorical block starts from k-means++ seeds (a mixture or a chain of the
        plan's ``"prior"`` start: ``Init.KMEANS``), whose optimum depends on the seed, and 1
        for every other model, whose start is its prior's, the same from any seed."""
        if self.screen is not None:
            return int(self.screen)
        seeded = any(b.init is Init.KMEANS for b in plan.blocks)
        return SCREEN_STARTS if seeded and self.start in (None, "prior") and not self.scheduled else 1

    def for_plan(self, plan, tol):
        """(these options, tol) with ``start=None`` made the start the graph calls for
        (``Plan.start``): an admixture (LDA's ``z[i] ~ Categorical(theta[doc[i]])``) starts as
        ``start="random-globals", local_iter=20, local_tol=1e-3, local_restart=25`` and stops at
        ``tol=2e-3`` (held-out quality stops improving there; docs/engine.md), every other model as
        ``start="prior"``; ``tol`` otherwise 1e-8, and ``MOMENT_TOL`` for a linear-Gaussian
        plate fitted on its moments (``Plan.moment_plate``, engine/moment_rows.py), whose
        sweeps cost 2r rows whatever the plate's size."""
        a = self
        if self.start is None:
            a = replace(self, start=plan.start)
            if a.start == "random-globals" and (self.local_iter, self.local_tol, self.local_restart) == (None, None, False):
                a = replace(a, local_iter=ADMIXTURE_LOCAL_ITER, local_tol=1e-3, local_restart=25)
                tol = ADMIXTURE_TOL if tol is None else tol
        if tol is None and plan.moment_plate is not None and self.compress is not False and self.devices is None:
            tol = MOMENT_TOL
        return a, (1e-8 if tol is None else tol)


@dataclass(frozen=True)
class Svi:
    """Stochastic VI (``vp.svi``; Hoffman et al. 2013): each step fits the locals of
    ``batch_size`` units of the data plate (``plate``) by ``local_iter`` passes and moves
    the globals by ``η ← (1−ρ_t)η + ρ_t η̂``, ``ρ_t = (t + tau)^(−kappa)``,
    ``step_size=(tau, kappa)``; ``start``, ``chain`` and ``strict`` as for :class:`Cavi`."""

    batch_size: int
    step_size: tuple[float, float] = (1.0, 0.7)
    plate: str | None = None
    local_iter: int | None = None
    start: str | None = None
    chain: str = "sequential"
    strict: bool = False

    def __post_init__(self):
        _check_start(self.start)
        check_chain(self.chain)
        _check_local_iter(self.local_iter)
        _check_whole("batch_size", self.batch_size)
        try:
            tau, kappa = (float(x) for x in self.step_size)
        except (TypeError, ValueError):
            raise VemError("data", f"step_size must be a pair (tau, kappa); got {self.step_size!r}") from None
        if not (tau >= 0 and (0.5 < kappa <= 1 or kappa == 0)):
            raise VemError("data", f"step_size=(tau, kappa) needs tau >= 0 and kappa in (0.5, 1] (Robbins–Monro: smaller kappa never "
                           f"settles), or kappa = 0 (every step rho = 1); got ({tau}, {kappa})")

    def for_plan(self, plan, tol):
        """(these options, tol): stochastic VI starts at the prior unless told otherwise."""
        return (replace(self, start="prior") if self.start is None else self), (1e-8 if tol is None else tol)


def cavi(**options) -> Cavi:
    """Batch coordinate-ascent VI with the given schedule options (see :class:`Cavi`)."""
    return Cavi(**options)


def svi(batch_size: int, **options) -> Svi:
    """Stochastic VI on minibatches of ``batch_size`` units (see :class:`Svi`)."""
    return Svi(batch_size, **options)


#: fit()'s keywords before the algorithm objects, and where each one now lives.
LEGACY = ("strict", "learning_rate", "batch_size", "step_size", "local_iter", "local_tol", "local_restart", "plate",
          "devices", "batch_restarts", "start", "chain", "compress", "screen")


def from_keywords(kw: dict):
    """The algorithm that ``fit``'s old keywords ask for, with their old checks."""
    unknown = set(kw) - set(LEGACY)
    if unknown:
        raise TypeError(f"fit() got an unexpected keyword argument {sorted(unknown)[0]!r}")
    # Every option maps onto the algorithm's field of its name; one the algorithm has no use
    # for is refused, not dropped (step_size= without batch_size= and learning_rate= with it
    # were dropped without a word).
    if kw.get("batch_size") is None:
        if kw.get("step_size") is not None:
            raise VemError("data", "step_size= is the step of stochastic VI; a batch fit (no batch_size=) takes no step",
                           hint="add batch_size= or drop step_size=")
        kw = {k: v for k, v in kw.items() if k not in ("batch_size", "step_size")}
        return Cavi(**kw)
    if kw.get("local_restart"):
        raise VemError("data", "local_restart= is for batch fits; stochastic VI starts each batch's locals afresh "
                       "already", hint="drop local_restart= or fit without batch_size=")
    if kw.get("local_tol") is not None:
        raise VemError("data", "local_tol= is for batch fits; stochastic VI runs local_iter passes per batch",
                       hint="drop local_tol= or fit without batch_size=")
    if kw.get("compress") is True:
        raise VemError("data", "compress=True is for batch fits; stochastic VI reads every row of its batches",
                       hint="drop compress=True or fit without batch_size=")
    if kw.get("devices") is not None:
        raise VemError("data", "devices= and batch_size= together are not supported yet; choose one")
    if kw.get("screen") is not None:
        raise VemError("data", "screen= is for batch fits; stochastic VI runs one start",
                       hint="drop screen= or fit without batch_size=")
    if kw.get("learning_rate") is not None:
        raise VemError("data", "learning_rate= is Adam's step for networks, which stochastic VI does not fit",
                       hint="drop learning_rate= or fit without batch_size=")
    if kw.get("batch_restarts"):
        raise VemError("data", "batch_restarts=True is for batch fits; stochastic VI runs one fit",
                       hint="drop batch_restarts= or fit without batch_size=")
    # What is left and not an Svi field says what stochastic VI does anyway: None, and
    # compress=False or batch_restarts=False (it reads every row of its batches, one fit).
    return Svi(**{k: v for k, v in kw.items() if k in Svi.__dataclass_fields__ and v is not None})


__all__ = ["CHAINS", "Cavi", "MOMENT_TOL", "SCREEN_STARTS", "SCREEN_SWEEPS", "STARTS", "Svi", "cavi", "check_chain", "from_keywords", "svi"]
