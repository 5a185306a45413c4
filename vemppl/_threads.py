"""Keep the BLAS that XLA's CPU LAPACK kernels call single-threaded.

jaxlib runs ``jnp.linalg`` on the CPU through LAPACK from SciPy's bundled OpenBLAS, called
from XLA's own worker threads.  When that OpenBLAS also runs its own thread pool, two
concurrent calls can deadlock: seen here on jax 0.10.2 with a 2-core machine, a batched
Cholesky (``dpotrf`` on 64×64 matrices) never returned and the process waited forever in
the next device-to-host copy.  XLA already parallelises over the batch, so OpenBLAS's
threads buy nothing here.

Only SciPy's OpenBLAS is limited (through threadpoolctl, the library made for this); the
one NumPy bundles, which scikit-learn and NumPy use, is left alone.
"""

from __future__ import annotations


def limit_xla_lapack_threads() -> None:
    try:
        import scipy.linalg  # noqa: F401  (loads SciPy's OpenBLAS so it can be found)
        from threadpoolctl import ThreadpoolController
    except ImportError:  # pragma: no cover - both are dependencies
        return
    for lib in ThreadpoolController().lib_controllers:
        if lib.internal_api == "openblas" and "scipy.libs" in lib.filepath.replace("\\", "/"):
            lib.set_num_threads(1)
