"""The M-step for point parameters (type-II maximum likelihood / empirical Bayes).

A parameter ``θ`` maximises ``L(μ; θ) = E_q[log p(x, z; θ)]``.  When ``L`` is affine in the
sufficient statistics ``T(θ)`` of some exponential family ``F`` (a precision under Gamma,
a probability vector under Dirichlet, a regression weight under Normal/MvNormal), then with
``g = ∇_{T(θ)} L`` the maximiser is the maximiser of ``⟨g, T(θ)⟩``, i.e. ``F.mode(g)``
(GUIDE §2, "Point parameters"; Neal & Hinton 1998): closed form and derived, not written
per model.  The family is chosen from the parameter's declared type and from the moments
the expected log joint reads of it (found by the conjugacy test, compiler/conjugacy.py).  Otherwise ``θ`` takes
gradient steps in an unconstrained space (``numpyro.distributions.transforms.biject_to``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpyro.distributions.constraints as C
from numpyro.distributions.transforms import biject_to


_CONSTRAINTS = {
    "real": C.real,
    "pos": C.positive,
    "unit": C.unit_interval,
    "simplex": C.simplex,
    "spd": C.positive_definite,
}


def point_stats(family, theta):
    """T(θ) of a point mass, in the family's ``Stats`` layout."""
    return family.point_stats(theta)


def statistic_gradient(family, L_of_stats, theta):
    """g = ∇_{T(θ)} L at the point θ: the natural parameters whose mode is the M-step."""
    return family.tidy_natural(family.Stats(*jax.grad(L_of_stats)(point_stats(family, theta))))


def closed_form_update(family, L_of_stats, theta, type_base: str = "real"):
    """θ ← F.mode(∇_{T(θ)} L), inside the open support of θ's type (:func:`interior`).  An
    element that L does not read (``p[1]`` where only ``dot(eye(D)[0], p)`` is read) has a zero
    gradient, whose mode 0/0 is nan: it keeps its value (a simplex or matrix param as a whole)."""
    g = statistic_gradient(family, L_of_stats, theta)
    if getattr(family, "gaussian", False):
        g = _anchored(g, theta)
    new = interior(family.mode(g), type_base)
    ok = jnp.isfinite(new)
    return jnp.where(ok if type_base in ("real", "pos", "unit") else jnp.all(ok), new, theta)


def _anchored(g, theta, rel: float = 1e-10):
    """A Gaussian mode's statistic gradient ``(η₁, η₂)`` plus ``rel · max|P|`` times a Gaussian
    at θ, ``P = −2η₂``: the mode ``(P + εI)⁻¹(η₁ + εθ)`` is the exact one to a relative 1e-10
    where P is regular, and θ itself along what L does not read (P singular: ``p[1]`` where
    only ``dot(eye(D)[0], p)`` is read), where ``P⁻¹η₁`` was 0/0."""
    first, second = g[0], g[1]
    theta = jnp.broadcast_to(jnp.asarray(theta, dtype=first.dtype), first.shape)
    if second.ndim > first.ndim:  # a vector: P is a matrix
        eye = jnp.eye(second.shape[-1], dtype=second.dtype)
        eps = rel * jnp.max(jnp.abs(jnp.diagonal(second, axis1=-2, axis2=-1)), axis=-1, keepdims=True)
        eps = jnp.maximum(eps, jnp.finfo(second.dtype).tiny)
        return type(g)(first + eps * theta, second - 0.5 * eps[..., None] * eye, *g[2:])
    eps = jnp.maximum(rel * jnp.max(jnp.abs(second)), jnp.finfo(second.dtype).tiny)
    return type(g)(first + eps * theta, second - 0.5 * eps, *g[2:])


def interior(theta, type_base: str):
    """θ moved to the nearest float inside the open support of its type where a closed-form
    mode lands on the boundary: a ``unit`` param's Beta mode Σy/n is 1 when every observation
    is 1 (then ``0 · log(1 − θ)`` is nan), a ``pos`` param's Gamma mode 0 or ∞, a ``simplex``
    param's Dirichlet mode has zeros.  The supremum is on the boundary, so the value inside is
    as close to it as float64 allows; a mode inside is unchanged."""
    theta = jnp.asarray(theta)
    if not jnp.issubdtype(theta.dtype, jnp.floating):
        return theta
    fi = jnp.finfo(theta.dtype)
    if type_base == "unit":
        return jnp.clip(theta, fi.tiny, 1.0 - fi.epsneg)
    if type_base == "pos":
        return jnp.clip(theta, fi.tiny, fi.max)
    if type_base == "simplex":
        floored = jnp.maximum(theta, fi.tiny)
        return floored / jnp.sum(floored, axis=-1, keepdims=True)
    return theta


def unconstrained(type_base: str):
    """The bijection from the unconstrained reals onto a point param's type, in which its
    gradient M-step moves (and the accelerated sweep extrapolates it, engine/accel.py)."""
    return biject_to(_CONSTRAINTS.get(type_base, C.real))


def gradient_update(L_of_theta, theta, type_base: str, steps: int = 20, lr: float = 0.05):
    """A few Adam steps on L in the unconstrained space of θ (optax) with a step that decays
    to zero, kept only if they raise L: the entropy does not depend on θ, so the ELBO then
    never decreases."""
    import optax

    bij = unconstrained(type_base)
    u = bij.inv(theta)
    # The step shrinks to zero over the run, so the last iterate settles near a maximum
    # instead of circling it at Adam's step length lr (which the check below would reject).
    opt = optax.adam(optax.cosine_decay_schedule(lr, steps))
    opt_state = opt.init(u)

    def loss(u):
        return -L_of_theta(bij(u))

    def body(carry, _):
        u, s = carry
        grads = jax.grad(loss)(u)
        updates, s = opt.update(grads, s)
        return (optax.apply_updates(u, updates), s), None

    (u_new, _), _ = jax.lax.scan(body, (u, opt_state), None, length=steps)
    return _backtrack(L_of_theta, bij, u, u_new - u, theta)


def _backtrack(L_of_theta, bij, u, d, theta, halvings: int = 8):
    """θ at u + s·d for the largest s in 1, 1/2, …, 2^−halvings that does not lower L; θ itself
    if none.  Near a maximum Adam's steps (about lr each, whatever the gradient's size) end on
    the far side of it, below the start; a shorter step along the same displacement is then
    above it, where keeping θ whole stalls the fit (the ELBO stops changing, the fit stops
    converged, a hyperparameter far from its maximum)."""
    base = L_of_theta(theta)

    def cond(c):
        s, found = c
        return ~found & (s >= 2.0**-halvings)

    def body(c):
        s, _ = c
        value = L_of_theta(bij(u + s * d))
        ok = jnp.isfinite(value) & (value >= base)
        return jnp.where(ok, s, 0.5 * s), ok

    s, found = jax.lax.while_loop(cond, body, (jnp.asarray(1.0, dtype=jnp.result_type(float)), jnp.asarray(False)))
    return jnp.where(found, bij(u + s * d), theta)
