"""JAX's default random keys made and split in NumPy, bit for bit.

A fit makes a key from its seed and splits it a few times before anything runs on the data
(``jax.random.PRNGKey``, ``jax.random.split`` and unpacking the pair: the compiler's
conjugacy trace, the restarts, the prior start).  Run eagerly, each is an XLA program of
its own: three programs and 0.3–0.6 s of a cold 10k-point ``vemppl fit`` on 2 cores, and a
cache read each on a warm one (issue #21).  On two 32-bit words they are a few dozen
integer operations, done here.

The keys are JAX's legacy raw keys (``uint32[2]``) of the default implementation,
``threefry2x32`` (Salmon et al., *Parallel random numbers: as easy as 1, 2, 3*, SC 2011),
with ``jax_threefry_partitionable`` on, JAX's default since 0.5: ``key(seed)`` is
``[seed >> 32, seed & 0xFFFFFFFF]``, and ``split(k, n)[i]`` is ``threefry2x32(k, (0, i))``
(the 64-bit counter ``i`` as two words).  Under any other setting the functions call JAX
itself.  ``tests/test_prng.py`` compares them with JAX on many seeds.
"""

from __future__ import annotations

import numpy as np

_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))
_PARITY = np.uint32(0x1BD11BDA)


def _numpy_ok() -> bool:
    import jax

    return jax.config.jax_default_prng_impl == "threefry2x32" and bool(jax.config.jax_threefry_partitionable)


def key(seed: int) -> np.ndarray:
    """``jax.random.PRNGKey(seed)`` as a NumPy ``uint32[2]``."""
    if not _numpy_ok():
        import jax

        return np.asarray(jax.random.PRNGKey(seed))
    seed = int(seed) & 0xFFFFFFFFFFFFFFFF  # int64 two's complement, as JAX converts it
    return np.array([seed >> 32, seed & 0xFFFFFFFF], dtype=np.uint32)


def _rotl(v, r):
    return (v << np.uint32(r)) | (v >> np.uint32(32 - r))


def threefry2x32(k: np.ndarray, x0: np.ndarray, x1: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Threefry-2x32 with 20 rounds (JAX's ``threefry_2x32``) of the words ``(x0, x1)`` under key ``k``."""
    k = np.asarray(k, dtype=np.uint32)
    ks = (k[0], k[1], k[0] ^ k[1] ^ _PARITY)
    with np.errstate(over="ignore"):
        x = [np.asarray(x0, dtype=np.uint32) + ks[0], np.asarray(x1, dtype=np.uint32) + ks[1]]
        for i in range(5):
            for r in _ROTATIONS[i % 2]:
                x[0] = x[0] + x[1]
                x[1] = _rotl(x[1], r) ^ x[0]
            x[0] = x[0] + ks[(i + 1) % 3]
            x[1] = x[1] + ks[(i + 2) % 3] + np.uint32(i + 1)
    return x[0], x[1]


def split(k, n: int = 2) -> np.ndarray:
    """``jax.random.split(k, n)`` as a NumPy ``uint32[n, 2]`` for a raw key (JAX's own split
    for a typed key, or under another PRNG setting)."""
    raw = getattr(k, "dtype", None) == np.uint32 and np.shape(k) == (2,)  # not a typed key (jax.random.key)
    if not (raw and _numpy_ok()):
        import jax

        return jax.random.split(k, n)
    counts = np.arange(n, dtype=np.uint64)
    hi, lo = (counts >> np.uint64(32)).astype(np.uint32), (counts & np.uint64(0xFFFFFFFF)).astype(np.uint32)
    b0, b1 = threefry2x32(np.asarray(k), hi, lo)
    return np.stack([b0, b1], axis=-1)


__all__ = ["key", "split", "threefry2x32"]
