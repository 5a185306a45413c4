"""Predictions on new data: local latents re-inferred with the global blocks fixed.

A block is *local* when it lives on a plate whose size comes from the data (``z[n]``,
``h[n]``, a document's ``theta[d]``, a sequence's chain); every other block is *global*.
For new data the globals are held at their fitted posteriors (or, with ``plug_in=True``,
at point masses on their posterior means), the fitted point parameters are kept, and
the locals are fitted by the same CAVI updates.  The bound on the new data is then

* ``plug_in=False``: the held-out ELBO, ``E_q[log p(x_new, z_new | globals)] + H[q(z_new)]``
  with the globals' uncertainty averaged over;
* ``plug_in=True``: with discrete or Gaussian locals this bound is tight, so it *is* the
  log-likelihood of the new data under the plug-in parameters (Bishop PRML eq. 9.14 for
  a mixture), comparable number for number with scikit-learn's ``score``.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from ..diagnostics import VemError
from ..elj.joint import check_one_plate
from ..engine.fit import reads_rate
from ..engine.loop import converge
from ..families import get_family
from .local import _local_engine, local_blocks
from .predictive import NotExact, exact_log_predictive


@dataclass
class Prediction:
    """The local latents of new data re-inferred with the globals fixed (:meth:`Fit.predict`).

    ``elbo`` is the bound on the new data (the module's docstring says which bound),
    ``n_points`` the size of the new data's leading plate, ``posterior`` q of every local
    block as NumPyro distributions, ``state`` the variational state, ``iterations`` the
    sweeps run and ``converged`` whether they stopped by the rule (``predict``) rather than
    at ``max_iter``.
    """

    elbo: float  # the bound on the new data (see module docstring)
    n_points: int  # size of the leading data plate, for per-point averages
    posterior: dict  # q of every local block (NumPyro distributions)
    state: object
    iterations: int = 0
    converged: bool = True

    @property
    def log_likelihood(self) -> float:
        """The bound on the new data; with ``plug_in=True`` and discrete or Gaussian locals,
        the log-likelihood under the plug-in parameters."""
        return self.elbo

    @property
    def log_likelihood_per_point(self) -> float:
        """:attr:`log_likelihood` divided by the number of units of the leading data plate."""
        return self.elbo / self.n_points

    def assignments(self, name: str) -> np.ndarray:
        """The most probable category of a categorical local (cluster, state, topic)."""
        stats = self.state.mu[name]
        return np.asarray(jnp.argmax(stats.onehot, axis=-1))

    def probabilities(self, name: str) -> np.ndarray:
        """The posterior probabilities of a categorical local, one row per element."""
        return np.asarray(self.state.mu[name].onehot)


#: predict's own relative tolerance for the local sweeps: with the globals held they are cheap,
#: and a fit's looser tol (LDA's 1e-3) would move predictions.
PREDICT_TOL = 1e-10


def locals_tol(fit, tol: float | None) -> float:
    """The tolerance new data's locals are re-inferred at: ``tol`` where given, else the smaller
    of the fit's own (``Fit.tol``: a fit asked for tighter, its predictions are as tight) and
    ``PREDICT_TOL``; ``PREDICT_TOL`` for a fit with none (stochastic VI, results saved before
    ``tol`` was recorded)."""
    if tol is not None:
        return float(tol)
    own = getattr(fit, "tol", None)
    return PREDICT_TOL if own is None else min(float(own), PREDICT_TOL)


def predict(fit, data: dict, *, plug_in: bool = False, max_iter: int = 500, tol: float | None = None,
            consts: dict | None = None, dims: dict | None = None, seed: int = 0,
            compress: bool | None = None) -> Prediction:
    """The local latents of new data re-inferred by CAVI with the globals fixed at q (or,
    ``plug_in``, at their posterior means).  Repeated rows of the new data are fitted once,
    weighted by their count, as in ``fit`` (``compress``); the returned state has every row.

    The sweeps stop by ``fit``'s rule (``engine/loop.py``) at ``tol`` (default: the smaller of
    ``fit.tol`` and 1e-10, :func:`locals_tol`): reading the trace's rate
    where the sweep is one fixed monotone map (``engine.fit.reads_rate``), else on the change
    alone; and then also at a sweep that changes no variational parameter (amortised locals:
    the ELBO moves by its Monte Carlo draw alone, which no ``tol`` this tight outlasts, and ran
    every one of 500 sweeps).  ``converged`` says whether the rule or ``max_iter`` stopped them."""
    model = fit.model
    engine, sub_plan, params, bound, _ = _local_engine(fit, data, plug_in, consts, dims, compress)
    state = engine.init(jax.random.PRNGKey(seed), params)
    rate = reads_rate(engine, state)
    state, trace, done, sweeps = converge(engine.sweep, state, max_iter, locals_tol(fit, tol), rate=rate,
                                          fixed_point=not rate)
    if not trace:
        trace.append(float(engine.elbo(state)))
    if engine.merged_rows is not None:
        state = engine.merged_rows.expand(state)
    posterior = {j: get_family(sub_plan.block(j).family).to_numpyro(state.eta[j]) for j in state.eta}
    n_points = _leading_plate_size(model, bound)
    return Prediction(trace[-1], n_points, posterior, state, sweeps, done)


class PredictiveDensity(np.ndarray):
    """Per-point log posterior predictive densities, with ``method`` ('exact' or
    'monte-carlo') and, for Monte Carlo, ``reason``: why the exact form did not apply."""

    def __new__(cls, values, method: str, reason: str | None = None):
        obj = np.asarray(values, dtype=float).view(cls)
        obj.method, obj.reason = method, reason
        return obj

    def __array_finalize__(self, obj):
        self.method = getattr(obj, "method", None)
        self.reason = getattr(obj, "reason", None)


def predictive_density(fit, data: dict, *, exact: bool | None = None, samples: int = 200, seed: int = 0,
                       max_iter: int = 200, tol: float | None = None, consts: dict | None = None,
                       dims: dict | None = None) -> PredictiveDensity:
    """log p(x_n | data) = log E_q[p(x_n | globals)] for each new point.

    ``exact=None`` (default): in closed form where the model allows it
    (``results.predictive``: conjugate blocks, categorical locals summed out; for the GMM
    with a Normal–Wishart block, the Student-t mixture of Bishop PRML eq. 10.81), else by
    Monte Carlo; ``exact=True`` raises when there is no closed form; ``exact=False`` always
    uses Monte Carlo.  The result says which (``.method``, ``.reason``).

    Monte Carlo draws ``samples`` sets of globals from q (a joint block's members jointly);
    for each, the locals are re-inferred (plug-in), giving each point's ELBO given globals_s:
    log p(x_n | globals_s) where the locals' q is their exact posterior (summed-out categoricals,
    conjugate Gaussians), a lower bound where it is not (a log-link emission); the log of their
    average is the estimate; the locals stop as ``predict``'s do, at ``tol`` (default: the smaller
    of ``fit.tol`` and 1e-10).  The compiled sweep is shared by
    every draw (the globals are arguments, not constants).
    """
    from scipy.special import logsumexp

    for b in fit.plan.blocks:  # the Monte Carlo path re-infers locals by CAVI, which an encoder's q is not
        q = fit.model.nodes[b.name].amortised if b.name in fit.model.nodes else None
        if q is not None:
            raise VemError("unsupported", f"no posterior predictive density for a model whose q({b.name}) is given by "
                           "an encoder: its locals are not re-inferred by the sweep that the density averages over",
                           q.span, hint="`predict` (held-out ELBO) scores new data under the encoder")
    reason = None
    if exact is not False:
        try:
            return PredictiveDensity(exact_log_predictive(fit, data, consts, dims), "exact")
        except NotExact as why:
            if exact:
                engine = _local_engine(fit, data, True, consts, dims)[0]
                check_one_plate(engine.model, engine.plan.factors)  # the located refusal first
                raise VemError("unsupported", f"no exact posterior predictive density: {why}",
                               hint="predictive_density(..., exact=False) estimates it by Monte Carlo") from None
            reason = str(why)
    engine, _, params, _, globals_ = _local_engine(fit, data, True, consts, dims)
    check_one_plate(engine.model, engine.plan.factors)  # before any draw
    key = jax.random.PRNGKey(seed)
    key, sub = jax.random.split(key)
    base = engine.init(sub, params)

    # Jitted once for all draws: run eagerly, the draw and the per-point terms dispatched
    # their ops one by one (about 1 s a draw, 400 draws in 5 minutes on 2 cores).
    @jax.jit
    def draw(key):
        drawn = {}
        for b, k in zip(globals_, jax.random.split(key, len(globals_))):
            fam, eta = get_family(b.family), fit.state.eta[b.name]
            if b.members:
                joint = fam.sample(eta, k)
                drawn.update({node: joint[role] for role, node in b.members})
            elif fam.support == "cat":  # a categorical global (a change point): a one-hot draw, read as a gate
                drawn[b.name] = jax.nn.one_hot(fam.to_numpyro(eta).sample(k), fit.state.mu[b.name].onehot.shape[-1])
            else:
                drawn[b.name] = fam.to_numpyro(eta).sample(k)
        return drawn

    pointwise = jax.jit(engine.pointwise)
    rate = reads_rate(engine, base)  # predict's rule (above), at predict's tolerance
    tol = locals_tol(fit, tol)
    per_draw = []
    for _ in range(samples):
        key, sub = jax.random.split(key)
        state = base._replace(params={**base.params, **draw(sub)})
        state = converge(engine.sweep, state, max_iter, tol, rate=rate, fixed_point=not rate)[0]
        per_draw.append(np.asarray(pointwise(state)))
    ll = np.stack(per_draw)
    return PredictiveDensity(logsumexp(ll, axis=0) - np.log(samples), "monte-carlo", reason)


def _leading_plate_size(model, bound) -> int:
    for n in model.of_kind("data"):
        if n.defs and n.type.shape:
            return int(np.shape(bound.values[n.name])[0])
    return 1


__all__ = ["predict", "predictive_density", "Prediction", "PredictiveDensity", "local_blocks"]
