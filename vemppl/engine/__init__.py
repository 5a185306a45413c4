from .. import _jax_setup  # noqa: F401  (float64, XLA flags and the compile cache before any JAX use)
