"""Keep XLA's CPU runtime from deadlocking in batched LAPACK calls.

jaxlib runs ``jnp.linalg`` on the CPU as LAPACK custom calls that split their batch over
XLA's intra-op thread pool and wait for the pieces.  XLA's concurrency-optimised scheduler
also runs independent operations of one program at the same time on that pool; two batched
Cholesky or triangular solves running side by side can then each hold a pool thread while
waiting for work that needs the other's thread.  Seen here on jax 0.10.2 with 2 cores: the
digits GMM test (batched 64×64 Cholesky) hung CI, the VAE benchmark hung in a batched
triangular solve, and a 10-line program with four batched solves in one jit hung in 2 of 5
runs.  With the scheduler off, the same program finished in 8 runs of 8 (and no slower).

The flag is not enough on its own.  XLA's thunk executor still runs independent custom calls
side by side on the same pool, and two batched LAPACK calls then wait on each other (seen in
``gdb`` in a factor-analysis update with the flag set: two pool threads in
``lapack_dtrsm_ffi`` → ``ParallelBatchMap`` → ``BlockingCounter::Wait``).  The root fix is
that the engine calls no LAPACK at all: ``families/_linalg.py`` computes Cholesky factors and
triangular solves in plain JAX, and ``tests/test_cpu_runtime.py`` checks the compiled sweeps
for LAPACK custom calls.  The flag stays because a user's own code in a model's network or
in ``jnp.linalg`` may still call LAPACK, and it cost nothing measurable.

The flag must be in ``XLA_FLAGS`` before the CPU backend starts, which happens at the first
computation, so ``vemppl/__init__`` calls this right after importing JAX.  A user's own
``XLA_FLAGS`` are kept; this flag is only added when they do not mention it.
"""

from __future__ import annotations

import os

_FLAG = "--xla_cpu_enable_concurrency_optimized_scheduler"


def avoid_cpu_lapack_deadlock() -> None:
    flags = os.environ.get("XLA_FLAGS", "")
    if _FLAG not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} {_FLAG}=false".strip()
