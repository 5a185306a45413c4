"""A joint Newton step on the means of a natural-gradient Gaussian block of several rows.

A Gaussian block ``q_j = Π_r N(w_r | m_r, Σ_r)`` (rows r: a Normal's elements, an MvNormal's
batch) takes the damped natural-gradient step ``η ← (1−ρ)η + ρ∇_μ L`` (Khan & Lin 2017).  At
ρ = 1 its mean part is ``m_r ← m_r + P_r⁻¹ ∇_{m_r} L`` with ``P_r = −2∇_{Σ_r} L``, which by
Price's and Bonnet's theorems is ``E_q[−∇²_{w_r} log p]`` (Opper & Archambeau 2009, eqs. 6–7): a
Newton step on each row's mean with only its own (diagonal) block of the curvature, i.e. a
block-Jacobi Newton step.  Where the rows are coupled in the likelihood, that iteration crawls
along the directions in which the coupling cancels the rows' own curvature: under
``y[n] ~ Categorical(logits = W @ X[n])`` a shift of every row of ``W`` by one vector leaves the
likelihood unchanged, so only the prior pulls the rows' sum back, at a rate of about
``1 − τ₀/(τ₀ + Σ_n p(1 − p) x²)`` per sweep (Jacobi's rate on a nearly singular matrix;
Golub & Van Loan 2013, §11.2), and in the contrast directions the full step overshoots
(ρ = ½ every few sweeps).

After the natural-gradient step, this module takes one Newton step on all the rows' means at
once with their covariances held: ``f(m) = L(μ(m))``, ``μ(m) = (m, Σ + m mᵀ)`` (the entropy does
not depend on ``m``), ``m ← m − t H⁻¹∇f`` with ``H = ∇²f`` the full Hessian, cross-row blocks
included (Nocedal & Wright 2006, §3.3), ``t`` the largest of 1, ½, …, 2⁻⁶ that does not lower
``f``.  Where ``−H`` is not positive definite (a non-concave ``f``), or no ``t`` raises ``f``,
the means stay as the natural-gradient step left them.  Every accepted step raises the ELBO, so
the sweep stays monotone, and at the fixed point (``∇f = 0``) the step is zero: the optimum of
the mean-field family is unchanged.  The Hessian costs one forward-mode pass per coordinate,
computed one Hessian-vector product at a time (the memory of one gradient pass), so the step is
taken only for blocks of at most ``MAX_COORDINATES`` mean coordinates.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from .state import select

#: The largest block (in mean coordinates, all rows together) given the joint step: its
#: dense Hessian costs that many Hessian-vector products of the block's factors a sweep.
MAX_COORDINATES = 64

#: The step lengths tried along the Newton direction, largest first.
STEPS = tuple(2.0 ** -k for k in range(7))


def applies(fam, eta) -> bool:
    """Whether block ``q_j`` (family ``fam`` at ``eta``) takes the joint step: a Gaussian of
    more than one row (one row's natural-gradient step is already its Newton step) with at most
    ``MAX_COORDINATES`` mean coordinates."""
    if not getattr(fam, "gaussian", False) or getattr(fam, "event_rank", None) not in (0, 1):
        return False
    if not hasattr(fam, "with_mean"):
        return False
    mean = eta[0]
    rows = mean.shape[:mean.ndim - fam.event_rank]
    n_rows = 1
    for s in rows:
        n_rows *= int(s)
    return n_rows > 1 and mean.size <= MAX_COORDINATES


def step(fam, eta, mu, f, f_mu):
    """(η, μ, f at them, whether moved) after one line-searched Newton step of ``f``, the block's
    part of the expected log joint as a function of its (natural, mean) parameters, on the rows' means
    with their covariances held (module docstring); ``f_mu``: f at ``mu``, returned where
    the means stay."""
    m0, _ = fam.mean_cov(eta)
    shape = m0.shape

    def g(flat):
        return f(*fam.with_mean(eta, flat.reshape(shape)))

    x0 = m0.reshape(-1)
    f0, grad = jax.value_and_grad(g)(x0)
    # Column by column (forward over reverse, one Hessian-vector product at a time): memory of
    # one gradient pass, not ``x0.size`` of them at once (a Monte Carlo factor over many rows).
    hvp = lambda v: jax.jvp(jax.grad(g), (x0,), (v,))[1]  # noqa: E731
    hess = jax.lax.map(hvp, jnp.eye(x0.size, dtype=x0.dtype))
    neg = -0.5 * (hess + hess.T)
    chol = jnp.linalg.cholesky(neg)
    direction = jax.scipy.linalg.cho_solve((chol, True), grad)
    usable = jnp.all(jnp.isfinite(chol)) & jnp.all(jnp.isfinite(direction)) & jnp.isfinite(f0)
    direction = jnp.where(usable, direction, 0.0)
    # above f at both spellings of the start (the state's μ and μ rebuilt from its mean)
    accepted, x, value = line_search(g, x0, direction, jnp.maximum(f0, f_mu), usable, f0)
    eta_n, mu_n = fam.with_mean(eta, x.reshape(shape))
    return select(accepted, eta_n, eta), select(accepted, mu_n, mu), jnp.where(accepted, value, f_mu), accepted


def line_search(f, x0, direction, floor, usable, f0):
    """(accepted, x, f(x)): ``x = x0 + t·direction`` for the largest ``t`` of ``STEPS`` with a
    finite ``f(x)`` above ``floor`` (backtracking; Nocedal & Wright 2006, §3.1), where ``usable``;
    else (False, x0, f0).  ``x0`` and ``direction`` may be pytrees of the same structure."""
    steps = jnp.asarray(STEPS, dtype=jnp.result_type(f0, float))

    def not_yet(carry):
        i, accepted = carry[:2]
        return usable & ~accepted & (i < len(STEPS))

    def try_next(carry):
        i = carry[0]
        x = jax.tree_util.tree_map(lambda a, d: a + steps[i] * d, x0, direction)
        value = f(x)
        return i + 1, jnp.isfinite(value) & (value > floor), x, value

    _, accepted, x, value = jax.lax.while_loop(not_yet, try_next, (jnp.asarray(0), jnp.asarray(False), x0, f0))
    return accepted, x, value
