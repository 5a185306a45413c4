"""engine/warm.py: a program compiled on the side thread is the one the main thread's call runs,
traced once; an error on the side thread is met again, and reported, by the main call."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vemppl.engine import programs
from vemppl.engine.warm import SweepWarmup


def abstract(tree):
    """``tree``'s arrays as ``jax.ShapeDtypeStruct`` (weak types kept): the signature JAX traces
    (the fit itself builds it from the lowered start, engine/init.py ``start_signature``)."""
    return jax.tree_util.tree_map(
        lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, weak_type=getattr(a, "weak_type", False)), tree)


def test_the_warmed_program_is_traced_once_and_gives_the_call_its_value():
    progs = []
    f = programs.jit(progs, lambda s, d: (s["a"] * d).sum() + s["b"])
    state, data = {"a": jnp.ones(3), "b": jnp.asarray(0.5)}, jnp.arange(3.0)
    warm = SweepWarmup(f, data)
    warm(abstract(state))
    warm.join()
    assert programs.traces(progs) == 1
    assert float(f(state, data)) == 0 + 1 + 2 + 0.5  # by hand
    assert programs.traces(progs) == 1  # the call found the warmed program


def test_a_weak_type_is_part_of_the_signature():
    s = abstract({"w": jnp.asarray(1.0), "x": jnp.ones(2)})
    assert s["w"].weak_type and not s["x"].weak_type and s["x"].shape == (2,)


def test_an_error_on_the_side_thread_is_raised_by_the_main_call():
    def bad(s, d):
        raise ValueError("refused")

    f = programs.jit([], bad)
    warm = SweepWarmup(f, np.zeros(2))
    warm(abstract({"a": jnp.ones(1)}))
    warm.join()  # does not raise
    with pytest.raises(ValueError, match="refused"):
        f({"a": jnp.ones(1)}, np.zeros(2))
