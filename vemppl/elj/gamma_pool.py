"""JAX's Gamma sampler with its random numbers drawn once: the general path's fixed draws
without a rejection loop in the compiled program.

The general path (``elj/general.py``) draws a Gamma, Beta or Dirichlet block with a key fixed
for the whole fit, so every random number ``jax.random.gamma`` consumes is a constant of the
fit; only the shape α moves (q's η, in the block's own natural-gradient step).  JAX's sampler
(Marsaglia & Tsang 2000) is a per-element ``while_loop`` of threefry splits, normal and
uniform draws and an accept test; XLA:CPU took ~2 CPU seconds to compile each copy of it
(jax 0.10.2, 2 cores), and a sweep holds one per evaluation of the factor (the update's
gradient, the line search's loop, the ELBO): 9.3 of a 10 s compile for a 12-group
hierarchical Gamma model.

Here the candidates JAX's loop would draw for an element are drawn once, outside the
program (``jax.ensure_compile_time_eval``), from the same keys in the same order: ``T``
outer tries, each a uniform ``U_t`` and ``S`` normals ``x_{t,s}`` (JAX redraws ``x`` while
``v = 1 + x/(3√d) ≤ 0``), and the uniform of the α < 1 boost.  The program then runs JAX's
own arithmetic on all candidates at once and takes the first accepted: **the same value as
``jax.random.gamma(key, α)``** (to a few ulps: XLA fuses the same operations differently;
3.6e-15 at most in ``tests/test_gamma_pool.py``), whenever JAX's loop accepts within those
candidates.  It does not with probability below 2e-10 per draw: a try whose ``S`` normals all
give ``v ≤ 0`` (each has probability ≤ Φ(−3√(2/3)) = 0.0072, so ``T·0.0072^S`` = 1.5e-10 at
``T = 8``, ``S = 5``) counts here as rejected, where JAX would draw more normals; a later
try's value still has q's law.  Only where no try is accepted (< (1 − 0.951)^T = 3.2e-11:
Marsaglia–Tsang accepts ≥ 95.1% of tries for α ≥ 1) is the draw set to ``d = α − 1/3``
(times the boost), the one departure from q's law.  The gradient is JAX's
own (implicit reparameterisation, Figurnov et al. 2018: ``dz/dα = −∂_α F(z; α) / f(z; α)``,
``lax.random_gamma_grad``), so values and gradients are those of the sampler this replaces.

Where the candidates would be large (``POOL_LIMIT`` numbers: a Dirichlet over thousands of
documents), :func:`gamma` runs JAX's sampler itself, with the same gradient (:func:`_grad`:
JAX's, but Wilson–Hilferty's above ``LARGE_SHAPE``, where JAX's never ends).
"""

from __future__ import annotations

import math
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from .._jax_setup import TINY

#: Outer tries and inner normal draws per try kept for each element (module docstring).
TRIES, NORMALS = 8, 5
#: The most candidate numbers drawn for one block (4 MB in float64); beyond it, JAX's sampler.
#: Per copy of the draw in a program, compile CPU s (value and gradient, jax 0.10.2, 2 cores):
#: 768 elements 0.5 here against 1.8 for JAX's loop, 5400 elements 0.6 against 1.9, 21000
#: (2^20 numbers) 0.9 against 1.8; drawing the candidates costs ~0.5 s once per process
#: and size, plus their run.
POOL_LIMIT = 1 << 19
#: Candidates already drawn, by (key, element count): every evaluation of a factor in one
#: trace reads the same arrays (one constant in the program, one eager draw).
_DRAWN: dict = {}


# Run once per fit and block: no LLVM optimisation (1.3 s to compile instead of 3.2, 2 cores
# under load; its run, 0.05 s for 768 elements, is not in the sweep).
@partial(jax.jit, static_argnums=(1,), compiler_options=TINY or None)
def _candidates(key, n):
    """For each of the ``n`` elements JAX's ``_gamma_impl`` splits ``key`` into: the normals
    [n, T, S], the accept uniforms [n, T] and the boost's uniform [n], as its loop draws them."""
    def one(k):
        k, boost_key = jax.random.split(k)

        def outer(k, _):
            k, x_key, u_key = jax.random.split(k, 3)

            def inner(xk, _):
                xk, sub = jax.random.split(xk)
                return xk, jax.random.normal(sub, (), dtype=float)

            _, xs = lax.scan(inner, x_key, None, length=NORMALS)
            return k, (xs, jax.random.uniform(u_key, (), dtype=float))

        _, (xs, us) = lax.scan(outer, k, None, length=TRIES)
        return xs, us, jax.random.uniform(boost_key, (), dtype=float)

    return jax.vmap(one)(jax.random.split(key, n))


def gamma(key, alpha, shape, log_space=False):
    """``jax.random.gamma(key, alpha, shape)`` (``jax.random.loggamma`` with ``log_space``),
    its candidates drawn once for the concrete ``key``; where they would exceed ``POOL_LIMIT``
    or ``key`` is not concrete, JAX's sampler itself.  Either way with :func:`_grad`'s
    gradient, which terminates at every shape (JAX's own does not above ~1e16)."""
    n = math.prod(shape)
    if n * TRIES * (NORMALS + 1) > POOL_LIMIT or isinstance(key, jax.core.Tracer):
        alpha = jnp.broadcast_to(jnp.asarray(alpha, dtype=float), shape)
        jax_draw = jax.random.loggamma if log_space else jax.random.gamma
        return _with_grad(lambda a: jax_draw(key, lax.stop_gradient(a), shape), log_space, alpha)
    with jax.ensure_compile_time_eval():
        raw = np.asarray(jax.random.key_data(key) if jnp.issubdtype(key.dtype, jax.dtypes.prng_key) else key)
        tag = (raw.tobytes(), raw.dtype.str, n, jax.dtypes.canonicalize_dtype(float).str)
        if tag not in _DRAWN:
            if len(_DRAWN) >= 32:
                _DRAWN.clear()
            _DRAWN[tag] = tuple(np.asarray(c) for c in _candidates(key, n))
        xs, us, u0 = _DRAWN[tag]
    alpha = jnp.broadcast_to(jnp.asarray(alpha, dtype=float), shape).reshape(-1)
    return _sample(xs, us, u0, log_space, alpha).reshape(shape)


def _sample(xs, us, u0, log_space, alpha):
    return _with_grad(lambda a: _accepted(xs, us, u0, log_space, a), log_space, alpha)


def _with_grad(sampler, log_space, alpha):
    """``sampler(alpha)`` with :func:`_grad`'s implicit reparameterisation gradient."""
    @jax.custom_jvp
    def draw(a):
        return sampler(a)

    @draw.defjvp
    def _jvp(primals, tangents):
        (a,), (da,) = primals, tangents
        z = draw(a)
        return z, da * _grad(z, a, log_space)

    return draw(alpha)


def _accepted(xs, us, u0, log_space, alpha):
    """JAX's ``_gamma_one`` on every candidate at once: the first accepted try's value."""
    one, boosted = jnp.ones_like(alpha), alpha >= 1.0
    a = jnp.where(boosted, alpha, alpha + one)
    d = a - 1.0 / 3.0
    c = (1.0 / 3.0) / jnp.sqrt(d)
    v = 1.0 + xs * c[:, None, None]  # [n, T, S]
    valid = v > 0.0
    first = jnp.argmax(valid, axis=-1)[..., None]  # JAX's inner loop: the first v > 0
    x = jnp.take_along_axis(xs, first, -1)[..., 0]
    v = jnp.take_along_axis(v, first, -1)[..., 0]
    X, V = x * x, v * v * v
    dd = d[:, None]
    reject = (us >= 1.0 - 0.0331 * (X * X)) & (jnp.log(us) >= X * 0.5 + dd * (1.0 - V + jnp.log(jnp.where(V > 0, V, 1.0))))
    ok = jnp.any(valid, axis=-1) & ~reject
    t = jnp.argmax(ok, axis=-1)[:, None]
    V = jnp.where(jnp.any(ok, axis=-1), jnp.take_along_axis(V, t, -1)[:, 0], 1.0)
    if log_space:
        log_u = -(-jnp.log1p(-u0))
        log_boost = jnp.where(boosted | (log_u == 0), 0.0, log_u * (1.0 / alpha))
        return jnp.log(d) + jnp.log(V) + log_boost
    boost = jnp.where(boosted, one, jnp.power(1 - u0, 1.0 / alpha))
    return d * V * boost


#: Above this shape the draw's gradient is Wilson–Hilferty's (:func:`_grad`), not JAX's.
LARGE_SHAPE = 1e6


def _grad(z, a, log_space):
    """dz/dα of a draw z ~ Gamma(α, 1) (of log z with ``log_space``), elementwise: JAX's jvp of
    ``random_gamma`` (``jax._src.random.core._gamma_grad``) up to ``LARGE_SHAPE``, and above it
    Wilson–Hilferty's.

    JAX's ``random_gamma_grad`` sums the series of P(α, z) (``_igamma_series``, for z ≤ α) in a
    ``while_loop`` with no iteration cap: its terms shrink by z/(α + k) ≈ 1 − O(1/√α) per
    step, so it runs ~√α·10 iterations, and above α ≈ 2^53 ``r + 1`` rounds to ``r`` and the
    ratio to exactly 1: the loop never ends (a natural-gradient step that took q(s) to shape
    4e37 hung the fit inside XLA).  It also loses accuracy long before (0.6 relative error at
    α = 1e10 against z/α).  Wilson–Hilferty's (z/α)^{1/3} ≈ 1 − 1/(9α) + ε/(3√α), ε ~ N(0, 1),
    differentiated at fixed ε, agrees with JAX's gradient to 1e-4 at α = 100, 5e-8 at 1e4 and
    1.2e-10 at 1e6 (``tests/test_gamma_pool.py``): its error falls as α^{-3/2}."""
    big = a > LARGE_SHAPE
    small_a = jnp.where(big, 1.0, a)  # JAX's loop only ever sees a shape it finishes
    s = z
    if log_space:
        s = jnp.exp(z)
        s = jnp.where(s == 0, jnp.finfo(s.dtype).tiny, s)
    jax_grad = lax.map(lambda p: lax.random_gamma_grad(*p), (small_a, jnp.where(big, 1.0, s)))
    big_a = jnp.where(big, a, LARGE_SHAPE)
    u = jnp.cbrt(jnp.where(big, s, big_a) / big_a)
    eps = (u - 1.0 + 1.0 / (9.0 * big_a)) * 3.0 * jnp.sqrt(big_a)
    du = 1.0 / (9.0 * big_a * big_a) - eps / (6.0 * big_a * jnp.sqrt(big_a))
    grad = jnp.where(big, u * u * (u + 3.0 * big_a * du), jax_grad)
    return grad / s if log_space else grad



def _mean_matched(z, alpha):
    """Draws of Gamma(α, 1) rescaled so that their average is α, q's mean: moment-matched
    sampling.  The fixed draws' estimate of E[f(x)] is then exact for an affine f, and the
    natural-gradient target no longer carries the draws' mean error times √α: at q(s) of shape
    4e37 (a point mass at s₀), ∂/∂E[log s] of the estimate was √α·mean(ε)·s₀·f'(s₀) (ε the draws'
    standardised values), a target of shape −25 outside the domain, and the line search only
    halved q's shape each sweep (309 sweeps for ``y[n] ~ Normal(m, scale = s)`` at the data's scale
    300, 500 unconverged with s ~ Gamma(2, 1); now 70 and 38, at the exact mean-field E[s] to
    2e-5).  Where every draw underflowed to 0 (α ~ 1e-3) they are left as they are."""
    m = jnp.mean(z, 0)
    return z * jnp.where(m > 0, jnp.broadcast_to(alpha, m.shape) / jnp.where(m > 0, m, 1.0), 1.0)


def rsample(q, key, n: int):
    """``q.rsample(key, (n,))`` for NumPyro's Gamma, Beta and Dirichlet, whose samplers are
    ``jax.random.gamma``/``dirichlet`` (their code, numpyro 0.22), with :func:`gamma`'s
    candidates drawn once (JAX's sampler beyond ``POOL_LIMIT``), a Gamma's ``n`` draws
    moment-matched (:func:`_mean_matched`); None for any other distribution."""
    import numpyro.distributions as dist

    if type(q) is dist.Beta and hasattr(q, "_dirichlet"):  # NumPyro's Beta samples its two-category Dirichlet
        z = rsample(q._dirichlet, key, n)
        return z[..., 0]
    if type(q) is dist.Gamma:
        z = gamma(key, q.concentration, (n,) + q.batch_shape)
        return _mean_matched(z, q.concentration) / q.rate
    if type(q) is dist.Dirichlet:
        alpha = jnp.asarray(q.concentration, dtype=float)
        log_z = gamma(key, alpha, (n,) + q.batch_shape + alpha.shape[-1:], log_space=True)
        z = jax.nn.softmax(log_z, -1)
        return jnp.clip(z, jnp.finfo(z.dtype).tiny, 1 - jnp.finfo(z.dtype).eps)
    return None


__all__ = ["LARGE_SHAPE", "POOL_LIMIT", "gamma", "rsample"]
