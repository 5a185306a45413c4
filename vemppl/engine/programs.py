"""Jitted programs that count how often JAX traced them.

A fit compiles its sweep once per model and data shape; a second trace means a recompilation
(a changed dtype, a weak type, a Python scalar in the state), and tests and the progress line
read the count.  The count is kept here, when JAX traces, rather than read from JAX's own
per-function cache (``jitted._cache_size()``): that cache is a process-wide LRU of 8192 jitted
functions, and once a process has made that many (the random-model test makes thousands) a
new function's count reads 0 although it compiled (measured with jax 0.10).
"""

from __future__ import annotations

import functools
import time

import jax

#: XLA:CPU's loop emitters for every program of a fit (``_jax_setup.py`` says why and what
#: was measured); kept there, beside the other process-wide settings, so the data layer's
#: few-operation programs (``_jax_setup.TINY``) share it.
from .._jax_setup import FAST_COMPILE, TINY


class Program:
    """``jax.jit(fn, **options)`` and ``traces``, how many input signatures it was traced for;
    ``compiler_options`` default to :data:`FAST_COMPILE`."""

    def __init__(self, fn, **options):
        options.setdefault("compiler_options", FAST_COMPILE or None)
        self.traces = 0

        @functools.wraps(fn)
        def traced(*args, **kwargs):
            # Runs only while JAX traces: once per input signature, each then compiled once.
            self.traces += 1
            return fn(*args, **kwargs)

        self.jitted = jax.jit(traced, **options)


def jit(programs: list, fn, **options):
    """``fn`` jitted, its :class:`Program` appended to ``programs`` (whose traces are summed)."""
    program = Program(fn, **options)
    programs.append(program)
    return program.jitted


#: XLA options for programs a fit runs once (the prior start, the random globals): LLVM's
#: level-1 passes instead of its default level 3.  Their compile is most of their cost (LDA on
#: Reuters, the random Dirichlet start: 4.1 s at the default level, 3.0 s at level 1 under a
#: load of 11 on 2 cores), their run the same (0.04 s), and the results equal bit for bit
#: (level 0 compiled in 2.1 s but ran 0.3 s and moved them by 4e-15).  Not for the sweep,
#: which runs hundreds of times.
ONE_SHOT = {**FAST_COMPILE, "xla_backend_optimization_level": 1}

#: XLA options for the prior start (``engine/init.py``: every block at its prior, one
#: elementwise pass over the data plate): no LLVM optimisation at all.  Its run does not
#: move (GMM N = 1M, D = 5, K = 5: 0.063 s at level 0, 0.068 s at level 1, best of 5) while
#: its compile, in a cold 10k GMM process, went from 2.3 to 1.4 s under a load of 6 on
#: 2 cores; the fit's arrays are bitwise equal.  Paired whole cold processes: see
#: benchmarks/results_defaults_process.md.  The options are the data layer's few-operation ones.
PRIOR_START = TINY


def traces(programs: list) -> int:
    """How many times the programs in ``programs`` were traced, all input signatures together."""
    return sum(p.traces for p in programs)


def built_on_first_use(engine, key, build):
    """``engine.lazy_programs[key]``, the program ``build()`` makes, built on first use; that
    first call (tracing, XLA's compile or the cache's read, then one run) is compile time,
    added to ``engine.init_compile_seconds`` and reported with the first sweep's.  For the
    programs a fit may never need (the accelerated sweep's extrapolation, the rotation step,
    the seeded start's first updates), each compiled once per engine and shared by its
    restarts and later fits (engine/reuse.py)."""
    program = engine.lazy_programs.get(key)
    if program is not None:
        return program
    program = build()

    def first_call(*args, **kwargs):
        t0 = time.perf_counter()
        out = jax.block_until_ready(program(*args, **kwargs))
        engine.init_compile_seconds += time.perf_counter() - t0
        engine.lazy_programs[key] = program
        return out

    return first_call
