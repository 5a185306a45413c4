"""Shared test setup: float64, the order of the longest files, and the ELBO-monotonicity assertion
used by every CAVI test."""

import os

# XLA:CPU splits each program's LLVM module into parts compiled on a thread pool (32 parts by
# default).  The tests run two processes on two cores (.ci/test), so the threads buy no wall
# time and each part repeats the module's fixed costs: one part cut the CPU of 21 random
# models (tests/test_random_models.py) by 5-20% (24.5 -> 19.9 s; in alternating runs under a
# load of 6, 26.0 and 24.7 -> 23.4 and 23.6 s) and of the digits GMM and parallel-chain
# tests by a tenth (96.3 -> 86.6 s).  The kernels are the same code in one
# module or many (a GMM's 42-sweep ELBO trace is bitwise equal).  Set before JAX's CPU
# backend starts (the first computation); subprocesses inherit it; a user's own XLA_FLAGS
# that name the option win.
_SPLIT = "--xla_cpu_parallel_codegen_split_count"
if _SPLIT not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {_SPLIT}=1".strip()

# NumPy's and SciPy's OpenBLAS (and OpenMP) start a thread per core, which spin while they
# wait: with two test processes on two cores, scikit-learn's digits mixture took 34.6 s of CPU
# (72 s of wall time) with 2 threads and 0.8 s (1.6 s) with one, to the same lower bound bit
# for bit.  One thread each, set before the libraries load (here and in subprocesses), and
# limited at once where one has loaded already.  JAX's CPU runtime does not use them.
_BLAS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
if not any(v in os.environ for v in _BLAS):  # a caller's own setting wins
    os.environ.update(dict.fromkeys(_BLAS, "1"))
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # scikit-learn's dependency; without it the variables above do the work
        pass
    else:
        threadpool_limits(1)

import jax  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_enable_x64", True)


@pytest.fixture(autouse=True)
def _own_engines_when_patched(request):
    """A test that patches vemppl (``monkeypatch``) builds its engines afresh and leaves none
    behind: an engine kept from an earlier fit (engine/reuse.py) was built and traced before
    the patch, and one built under the patch must not serve a later test."""
    patched = "monkeypatch" in request.fixturenames
    if patched:
        from vemppl.engine.reuse import forget

        forget()
    yield
    if patched:
        forget()


def assert_elbo_monotone(trace, rtol=1e-9):
    """The ELBO never decreases under CAVI (relative tolerance ``rtol`` for round-off)."""
    trace = np.asarray(trace, dtype=float)
    drops = trace[:-1] - trace[1:]
    scale = np.maximum(np.abs(trace[1:]), 1.0)
    worst = int(np.argmax(drops / scale)) if len(drops) else 0
    assert np.all(drops <= rtol * scale), (
        f"ELBO decreased at iteration {worst + 1}: {trace[worst]:.12g} -> {trace[worst + 1]:.12g}"
    )


#: The test files that take longest on CI (pytest --durations on a clean clone), started first:
#: under ``-n 2 --dist loadfile`` a long file that starts last runs alone on one core while the
#: other waits (longest-processing-time-first scheduling).  The rest keep their order.
SLOW_FIRST = (
    "test_random_models.py", "test_random_models_more.py", "test_select.py", "test_arviz.py", "test_chain_parallel.py",
    "test_chain_homogeneous.py", "test_results_and_cli.py", "test_elbo_property.py", "test_compress.py",
    "test_gmm_vs_sklearn.py", "test_float32.py", "test_general_path.py", "test_svi.py", "test_sharding.py",
    "test_latent_products.py", "test_student_t.py", "test_nonconjugate.py", "test_hmm.py",
    "test_moment_rows.py", "test_cli_startup.py", "test_data_checks.py", "test_default_schedule.py",
)


def pytest_collection_modifyitems(session, config, items):
    rank = {name: i for i, name in enumerate(SLOW_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))
