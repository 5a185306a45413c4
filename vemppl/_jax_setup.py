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



#: Modules that numpyro's import loads for what a fit never calls: ``numpyro.diagnostics``
#: imports ``scipy.fft`` (and through it ``scipy.special`` and scipy's array-API layer) for
#: autocorrelations; ``numpyro.distributions.continuous`` imports ``jax.experimental.sparse``,
#: which imports ``scipy.sparse`` and ``scipy.sparse.linalg`` (and through it ``scipy.linalg``)
#: for a host solve.  All are used only inside functions, as ``scipy.fft.rfft`` and
#: ``scipy.sparse.linalg.spsolve``.  ``scipy.sparse`` alone took 0.1 s of every process.
#: ``numpyro.ops.provenance`` imports ``jax.extend``, whose ``__init__`` imports
#: ``jax.extend.pallas`` and with it Pallas's kernel language (30-60 ms), never used by a fit.
DEFERRED = ("scipy.sparse", "scipy.sparse.linalg", "scipy.fft", "jax.extend.pallas")

#: The two modules of ``scipy.linalg`` that jaxlib reads its CPU LAPACK kernels from, the first
#: time a program with a linear-algebra operation is lowered (``jaxlib/cpu/_lapack``'s
#: ``initialize`` imports them by name).  Importing them by name runs ``scipy.linalg``'s
#: ``__init__`` first, which parses the docstrings of ~70 functions: 0.23-0.36 s of every fit
#: of a model with a Cholesky factor (a Wishart, an MvNormal), warm compile cache or not.
#: Both are compiled extension modules that import nothing from their package, so they are
#: loaded here from their files under their own names (4 ms): jaxlib then finds them in
#: ``sys.modules`` and reads the same kernels.  ``scipy.linalg`` itself loads as usual when
#: something imports it.
LAPACK_MODULES = ("scipy.linalg.cython_blas", "scipy.linalg.cython_lapack")


def _spec(name):
    """``name``'s module spec, found without importing its parent packages (``importlib.util.
    find_spec`` imports them: ``scipy.sparse.linalg``'s parent was the 0.1 s to save).  None
    where it cannot be found."""
    import importlib.machinery
    import importlib.util
    import sys

    parent, _, _ = name.rpartition(".")
    if not parent:
        try:
            return importlib.util.find_spec(name)
        except (ImportError, ValueError):
            return None
    if parent in sys.modules:
        path = getattr(sys.modules[parent], "__path__", None)
    else:
        spec = _spec(parent)
        path = spec.submodule_search_locations if spec is not None else None
    return importlib.machinery.PathFinder.find_spec(name, list(path)) if path else None


def _defer(names=DEFERRED):
    """Load each of ``names`` on its first use instead of at import.  A placeholder module
    stands in ``sys.modules`` until an attribute is read from it; that read imports the real
    module (then in ``sys.modules`` and on its package, where scipy's own ``__getattr__``
    finds it) and reads it there.  A placeholder package has its ``__path__``, so a placeholder
    submodule below it (``scipy.sparse.linalg``) is found without loading it.  Not
    ``importlib.util.LazyLoader``: the import system reads ``__spec__`` of a module already in
    ``sys.modules``, which loads a lazy module at once.  Skipped for a module that is already
    loaded or cannot be found."""
    import importlib
    import sys
    import types

    for name in names:
        if name in sys.modules:
            continue
        spec = _spec(name)
        if spec is None:
            continue
        stub = types.ModuleType(name)
        stub.__spec__ = spec
        if spec.submodule_search_locations is not None:
            stub.__path__ = list(spec.submodule_search_locations)

        def __getattr__(attr, name=name, stub=stub):
            if sys.modules.get(name) is stub:
                del sys.modules[name]
            return getattr(importlib.import_module(name), attr)

        stub.__getattr__ = __getattr__
        sys.modules[name] = stub


def _load_apart(names=LAPACK_MODULES):
    """Load each of ``names`` (extension modules) from its file without running its package's
    ``__init__``; skipped when the package is already loaded (nothing to save) or a module
    cannot be found or loaded (jaxlib then imports it as it always did)."""
    import importlib.util
    import sys

    for name in names:
        if name in sys.modules or name.rpartition(".")[0] in sys.modules:
            continue
        spec = _spec(name)
        if spec is None or spec.loader is None:
            continue
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except Exception:  # noqa: BLE001 - left to jaxlib's own import
            del sys.modules[name]


_defer()
_load_apart()

import jax  # noqa: E402

if os.environ.get("VEMPPL_X64", "1") != "0":
    jax.config.update("jax_enable_x64", True)

from ._compile_cache import from_environment  # noqa: E402

from_environment()

#: XLA options for every program of a fit (the sweep, the SVI step, the programs run once):
#: XLA:CPU's loop emitters instead of its MLIR fusion emitters, which build and run an MLIR
#: pipeline for each of a program's ~100-200 fusions.  Measured with jax 0.10.2 on 2 cores
#: (paired in one process, compile CPU seconds, median of 2-3 rounds, load 6-8): the 10k GMM's
#: sweep 3.3 -> 2.7 s, GMM N = 1M 2.8 -> 2.2 s, FA N = 20k 2.3 -> 1.6 s, Gaussian HMM
#: T = 10k 4.1 -> 2.9 s, LDA on Reuters 1.2 -> 1.0 s; the steady sweep the same within the
#: rounds' spread on each (e.g. 23.0 and 23.1 ms for FA, 0.66 and 0.63 s for GMM 1M).  The
#: ELBO traces are bitwise equal except the HMM's (7e-12 of 4.4e4).  Only for the JAX this
#: was measured on (0.10.x): an XLA that does not know an option refuses the compile, so a
#: later JAX, whose XLA may have dropped the option, compiles with its defaults until measured.
FAST_COMPILE = {"xla_cpu_use_fusion_emitters": False} if jax.__version_info__[:2] == (0, 10) else {}

#: XLA options for the few-operation programs on constants that a fit runs once before its
#: data reach JAX (the priors' domain check, engine/bind.py; the priors' moments,
#: data_scale.py): no LLVM optimisation, whose passes are most of such a program's compile.
#: They decide a refusal or a warning, never a value of the fit.
TINY = {**FAST_COMPILE, "xla_backend_optimization_level": 0}
