"""Importing vemppl turns off XLA's concurrency-optimised CPU scheduler, under which batched
LAPACK calls running side by side deadlocked (see ``vemppl/_threads.py``).  The program below
hung in 2 of 5 plain runs on a 2-core machine; run here in a subprocess (the flag must be set
before the backend starts) with a deadline, it must finish every time."""

import os
import subprocess
import sys

PROGRAM = """
import jax, jax.numpy as jnp
import vemppl  # sets the flag before the first computation
from jax.scipy.linalg import solve_triangular

@jax.jit
def f(a, b):
    la, lb = jnp.linalg.cholesky(a), jnp.linalg.cholesky(b)
    i = jnp.broadcast_to(jnp.eye(a.shape[-1]), a.shape)
    return sum(s.sum() for s in (solve_triangular(la, i, lower=True), solve_triangular(lb, i, lower=True),
                                 solve_triangular(la, b, lower=True), solve_triangular(lb, a, lower=True)))

x = jax.random.normal(jax.random.PRNGKey(0), (1437, 10, 10))
a = x @ jnp.swapaxes(x, -1, -2) + jnp.eye(10)
for i in range(300):
    float(f(a, a + (1.0 + i) * jnp.eye(10)))
import os
print(os.environ["XLA_FLAGS"])
"""


def test_import_sets_the_flag_and_batched_lapack_does_not_hang():
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    for _ in range(2):
        r = subprocess.run([sys.executable, "-c", PROGRAM], capture_output=True, text=True, timeout=240, env=env)
        assert r.returncode == 0, r.stderr[-2000:]
        assert "--xla_cpu_enable_concurrency_optimized_scheduler=false" in r.stdout


def test_a_users_own_setting_is_kept():
    env = {**os.environ, "XLA_FLAGS": "--xla_cpu_enable_concurrency_optimized_scheduler=true"}
    r = subprocess.run([sys.executable, "-c", "import vemppl, os; print(os.environ['XLA_FLAGS'])"],
                       capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip() == "--xla_cpu_enable_concurrency_optimized_scheduler=true"


# ---- no LAPACK custom calls in the compiled sweeps ------------------------------------
# The flag above was not enough: XLA's thunk executor still ran two batched LAPACK calls of
# one factor-analysis sweep side by side, and they deadlocked (4 hangs in 4 runs).  The
# matrix families now factorise and solve in plain JAX (families/_linalg.py); these tests
# fail if a LAPACK call creeps back into a sweep.

from pathlib import Path

import numpy as np
import pytest

import vemppl as vp

ROOT = Path(__file__).resolve().parent.parent
MODELS = {  # model file, data, consts: a Normal-Wishart block ([K, D, D]) and Gaussian locals ([N, L, L])
    "gmm": (lambda rng: {"x": rng.normal(size=(40, 3))}, {"K": 2}),
    "fa": (lambda rng: {"x": rng.normal(size=(40, 6))}, {"L": 2}),
}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_the_compiled_sweep_calls_no_lapack(name):
    data, consts = MODELS[name]
    fit = vp.fit(vp.load(ROOT / "models" / f"{name}.vem"), data(np.random.default_rng(0)), consts=consts, max_iter=2, progress=False)
    hlo = fit.engine._sweep.lower(fit.state, fit.engine.data).as_text()
    assert "custom_call" not in hlo or "lapack" not in hlo.lower(), "a LAPACK custom call is back in the sweep"
    # The same check would see one if it were there: a Cholesky through jnp.linalg.
    import jax
    import jax.numpy as jnp

    probe = jax.jit(lambda a: jnp.linalg.cholesky(a)).lower(np.eye(3)[None].repeat(2, 0)).as_text()
    assert "lapack" in probe.lower()
