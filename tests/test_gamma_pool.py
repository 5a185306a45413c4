"""``elj/gamma_pool.py``: the general path's Gamma/Beta/Dirichlet draws with JAX's rejection
loop replaced by candidates drawn once.  The references are JAX's and NumPyro's own samplers
at the same key: the draws must be theirs (to rounding, not merely the same law) and so must
the gradients (JAX's implicit reparameterisation), and the compiled draw must hold no loop."""

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist

from vemppl.elj import gamma_pool

KEY = jax.random.fold_in(jax.random.PRNGKey(0), 7)


def _value_and_grad(draw, alpha):
    """(the draws at ``alpha``, the gradient of a nonlinear function of them): one program."""
    def f(a):
        z = draw(a)
        return jnp.sum(jnp.sin(z)), z

    (_, z), g = jax.jit(jax.value_and_grad(f, has_aux=True))(alpha)
    return z, g


def test_gamma_matches_jax_sampler_and_gradient():
    # Shapes below 1 (the boost), at 1 and above, as the sampler branches on them.
    alpha = jnp.array([0.3, 1.0, 4.5])
    ref_z, ref_g = _value_and_grad(lambda a: jax.random.gamma(KEY, a, (64, 3)), alpha)
    z, g = _value_and_grad(lambda a: gamma_pool.gamma(KEY, a, (64, 3)), alpha)
    np.testing.assert_allclose(z, ref_z, rtol=1e-13, atol=0)
    np.testing.assert_allclose(g, ref_g, rtol=1e-11)
    # The draw's program has no loop (JAX's sampler: two nested ones per element).
    def program(draw):
        return jax.jit(lambda a: draw(KEY, a, (64, 3))).lower(alpha).as_text()

    assert "while" not in program(gamma_pool.gamma) and "while" in program(jax.random.gamma)


def test_numpyro_beta_draws_and_gradients():
    # NumPyro's Beta draws its two-category Dirichlet, i.e. JAX's log-space sampler and a
    # softmax: both of rsample's branches besides the Gamma's.
    c = jnp.array([[0.4, 2.0], [3.0, 0.8], [1.0, 6.0]])  # (concentration1, concentration0)
    ref_z, ref_g = _value_and_grad(lambda c: dist.Beta(c[:, 0], c[:, 1]).rsample(KEY, (64,)), c)
    z, g = _value_and_grad(lambda c: gamma_pool.rsample(dist.Beta(c[:, 0], c[:, 1]), KEY, 64), c)
    np.testing.assert_allclose(z, ref_z, rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(g, ref_g, rtol=1e-9, atol=1e-12)
    assert gamma_pool.rsample(dist.Exponential(1.0), KEY, 64) is None  # not JAX's Gamma sampler: the caller's
