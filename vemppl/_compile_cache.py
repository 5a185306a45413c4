"""JAX's persistent compilation cache: across processes with ``VEMPPL_CACHE_DIR=folder`` or
``vemppl.use_compilation_cache(folder)``; within one process by default.

XLA compilation is most of the wall time of a small fit (1.5–5 s per model and data shape,
README "Benchmarks"), and a user who refits the same model, from Python or with ``vemppl fit``,
pays it again in every process.  JAX can keep the compiled executables on disk, keyed by the
program, the backend and the compiler flags; a later process compiling the same sweep for the
same shapes reads the executable back and only traces.  Measured on the Gaussian HMM benchmark
(T = 100k, K = 4, D = 3): compile 5.5 s in the first process, 1.6 s in the second.

A folder kept across processes is opt-in, as in JAX: it grows with every model and data shape,
and where it lives is the user's choice.  JAX writes its entries atomically, so processes may
share a folder.

Within one process the cache is on by default, in a temporary folder removed when the process
exits.  Every ``fit`` builds its own engine, whose sweep is a new jitted function, so without it
a second fit of the same model and shapes (another seed, a cross-validation fold) compiles
again.  Measured on LDA (Reuters, K = 20): compile 1.25 s for each later fit without, 0.5 s
with (the rest is tracing).  ``VEMPPL_CACHE_DIR=off`` turns it off; a cache folder the user has
given JAX itself (``jax_compilation_cache_dir``) is left as it is.

The command line asks for a folder kept across processes by default (:func:`request`): the
user's cache folder, ``$XDG_CACHE_HOME/vemppl/xla`` or ``~/.cache/vemppl/xla``, capped at
``VEMPPL_CACHE_MAX_MB`` megabytes (default 1024; JAX evicts the least recently used programs),
so a second ``vemppl fit`` of the same model and shapes reads its programs back.
``vemppl fit --no-cache`` asks for none.  ``VEMPPL_CACHE_DIR`` still wins.
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile

#: Within one process, programs that compile faster than this are not worth a disk write
#: (JAX's default is 1 s, which would leave out the prior start and the seeding helpers).
MIN_COMPILE_SECONDS = 0.2
#: Across processes (the user's folder, ``VEMPPL_CACHE_DIR``) every program is kept: a warm
#: ``vemppl fit`` of a 10k-point GMM otherwise still compiled about a dozen small programs
#: (eagerly dispatched operations, and a sweep that compiled in 0.18 s).  Keeping them took
#: the warm whole process to 0.88x the wall time and 0.93x the CPU time of 0.2 s (paired
#: runs, 4 pairs, on a loaded 2-core machine), at 30 files in the folder instead of 12.
MIN_COMPILE_SECONDS_KEPT = 0.0


def use_compilation_cache(folder: str | os.PathLike, max_bytes: int | None = None,
                          min_seconds: float = MIN_COMPILE_SECONDS_KEPT) -> str:
    """Keep compiled XLA programs in ``folder`` (created if missing) for later processes.

    Call it before the first fit of the process: JAX decides at its first compilation
    whether a cache is in use.  ``max_bytes`` caps the folder's size: JAX then evicts the
    least recently used programs (this needs the ``filelock`` package; without it, no cap).
    Programs that compiled in under ``min_seconds`` are not written.  The folder also keeps
    the compiler's conjugacy readings (``compiler/probe_cache.py``, ``vemppl-probe-*.json``).
    Returns the folder's absolute path.
    """
    import jax

    path = os.path.abspath(os.path.expanduser(os.fspath(folder)))
    os.makedirs(path, exist_ok=True)
    if max_bytes is not None and _can_evict():
        jax.config.update("jax_compilation_cache_max_size", int(max_bytes))
    jax.config.update("jax_compilation_cache_dir", path)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", float(min_seconds))
    _SET.add(path)
    return path


#: The folders :func:`use_compilation_cache` gave JAX.
_SET: set[str] = set()


def kept_folder() -> str | None:
    """The folder JAX keeps compiled programs in across processes, where vemppl set it (the
    user's folder, ``VEMPPL_CACHE_DIR``, :func:`use_compilation_cache`); None for this
    process's temporary folder, a folder the user set in JAX itself, or none."""
    import jax

    folder = jax.config.jax_compilation_cache_dir
    return folder if folder in _SET and folder not in _TEMPORARY else None


#: ``VEMPPL_CACHE_DIR`` values that turn every cache off, the per-process one included.
OFF = ("off", "0", "none", "false")


#: What the program asked for before JAX started (:func:`request`): None, "user" or "off".
_REQUEST: str | None = None


def request(what: str | None) -> None:
    """Ask, before vemppl first imports JAX, for the user's cache folder (``"user"``), no
    cache (``"off"``) or the default (None).  Once JAX is set up, the process keeps its cache."""
    global _REQUEST
    if "vemppl._jax_setup" not in sys.modules:
        _REQUEST = what


def user_folder() -> str:
    """``$XDG_CACHE_HOME/vemppl/xla``, or ``~/.cache/vemppl/xla``."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "vemppl", "xla")


def _can_evict() -> bool:
    try:
        import filelock  # noqa: F401  (JAX's evicting cache locks the folder with it)
    except ImportError:
        return False
    return True


def from_environment() -> str | None:
    """At JAX's setup: ``VEMPPL_CACHE_DIR`` when set (a folder kept across processes, or
    ``off``); else what :func:`request` asked for; else a folder of this process's own,
    removed at exit, unless JAX already has one."""
    import jax

    folder = os.environ.get("VEMPPL_CACHE_DIR", "")
    if folder.strip().lower() in OFF or (not folder and _REQUEST == "off"):
        return None
    if folder:
        return use_compilation_cache(folder)
    if jax.config.jax_compilation_cache_dir:  # the user's own JAX setting
        return None
    if _REQUEST == "user":
        megabytes = os.environ.get("VEMPPL_CACHE_MAX_MB", "1024")
        try:
            return use_compilation_cache(user_folder(), max_bytes=int(float(megabytes) * 2**20))
        except (OSError, ValueError):  # no home folder, read-only: the per-process cache below
            pass
    folder = _process_folder()
    return use_compilation_cache(folder, min_seconds=MIN_COMPILE_SECONDS) if folder else None


def _process_folder() -> str | None:
    """A fresh temporary folder removed at exit; None where none can be made (a read-only
    temporary directory): the fits then compile as without a cache, import does not fail."""
    try:
        path = tempfile.mkdtemp(prefix="vemppl-xla-")
    except OSError:
        return None
    if not _TEMPORARY:
        atexit.register(cleanup)
    _TEMPORARY.append(path)
    return path


#: This process's temporary cache folders, removed by :func:`cleanup`.
_TEMPORARY: list[str] = []


def cleanup() -> None:
    """Remove this process's temporary cache folders (at exit, or on a signal before a hard exit)."""
    while _TEMPORARY:
        shutil.rmtree(_TEMPORARY.pop(), ignore_errors=True)
