"""Shared test setup: float64, and the ELBO-monotonicity assertion used by every CAVI test."""

import jax
import numpy as np

jax.config.update("jax_enable_x64", True)


def assert_elbo_monotone(trace, rtol=1e-9):
    """The ELBO never decreases under CAVI (relative tolerance ``rtol`` for round-off)."""
    trace = np.asarray(trace, dtype=float)
    drops = trace[:-1] - trace[1:]
    scale = np.maximum(np.abs(trace[1:]), 1.0)
    worst = int(np.argmax(drops / scale)) if len(drops) else 0
    assert np.all(drops <= rtol * scale), (
        f"ELBO decreased at iteration {worst + 1}: {trace[worst]:.12g} -> {trace[worst + 1]:.12g}"
    )
