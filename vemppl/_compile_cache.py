"""JAX's persistent compilation cache, opt-in: ``VEMPPL_CACHE_DIR=folder`` or
``vemppl.use_compilation_cache(folder)``.

XLA compilation is most of the wall time of a small fit (1.5–5 s per model and data shape,
README "Benchmarks"), and a user who refits the same model, from Python or with ``vemppl fit``,
pays it again in every process.  JAX can keep the compiled executables on disk, keyed by the
program, the backend and the compiler flags; a later process compiling the same sweep for the
same shapes reads the executable back and only traces.  Measured on the Gaussian HMM benchmark
(T = 100k, K = 4, D = 3): compile 5.5 s in the first process, 1.6 s in the second.

Off by default, as in JAX: the folder grows with every model and data shape, and where it lives
is the user's choice.  JAX writes its entries atomically, so processes may share a folder.
"""

from __future__ import annotations

import os

import jax

#: Programs that compile faster than this are not worth a disk read (JAX's default is 1 s,
#: which would leave out the prior start and the seeding helpers).
MIN_COMPILE_SECONDS = 0.2


def use_compilation_cache(folder) -> str:
    """Keep compiled XLA programs in ``folder`` (created if missing) for later processes.

    Call it before the first fit of the process: JAX decides at its first compilation
    whether a cache is in use.  Returns the folder's absolute path.
    """
    path = os.path.abspath(os.path.expanduser(os.fspath(folder)))
    os.makedirs(path, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", path)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", MIN_COMPILE_SECONDS)
    return path


def from_environment() -> str | None:
    """``VEMPPL_CACHE_DIR``, when set and not empty, turns the cache on at import."""
    folder = os.environ.get("VEMPPL_CACHE_DIR", "")
    return use_compilation_cache(folder) if folder else None
