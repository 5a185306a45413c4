"""JAX's process-wide settings, applied once where vemppl first imports JAX.

``import vemppl`` does not import JAX (``vemppl/__init__.py`` loads its submodules on first
use), so the settings every computation relies on cannot live there.  The packages whose
modules use JAX (``families``, ``engine``, ``results``) import this module first; it runs once:

- ``XLA_FLAGS`` gets the CPU scheduler flag of ``_threads.py`` (it must be set before the
  CPU backend starts, at the first computation);
- float64 is on (GUIDE §2, "Numerics"), unless ``VEMPPL_X64=0``;
- the compilation cache of ``_compile_cache.py`` (``VEMPPL_CACHE_DIR``) is set up.
"""

import os

from ._threads import avoid_cpu_lapack_deadlock

avoid_cpu_lapack_deadlock()

import jax  # noqa: E402

if os.environ.get("VEMPPL_X64", "1") != "0":
    jax.config.update("jax_enable_x64", True)

from ._compile_cache import from_environment  # noqa: E402

from_environment()
