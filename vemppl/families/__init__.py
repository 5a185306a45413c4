"""Exponential families, one module each; importing this package registers them all."""

from .. import _jax_setup  # noqa: F401  (float64, XLA flags and the compile cache before any JAX use)
from .base import REGISTRY, ArgSpec, ExpFamily, MomentSource, fixed, get_family

# Registration happens by subclassing; import every family module once.
from . import (  # noqa: F401  (imported for registration)
    bernoulli,
    beta,
    binomial,
    categorical,
    dirichlet,
    exponential,
    gaussian_chain,
    gamma,
    inverse_gamma,
    laplace,
    lognormal,
    markov_chain,
    markov_chain_homogeneous,
    markov_chain_parallel,
    multinomial,
    mvnormal,
    normal,
    normal_wishart,
    poisson,
    student_t,
    wishart,
)

__all__ = ["REGISTRY", "ArgSpec", "ExpFamily", "MomentSource", "fixed", "get_family"]
