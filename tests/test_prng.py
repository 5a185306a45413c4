"""vemppl/_prng.py: JAX's keys made and split in NumPy equal JAX's own, bit for bit."""

import jax
import numpy as np
import pytest

import vemppl.families  # noqa: F401  (JAX's process settings, as a fit has them)
from vemppl import _prng

SEEDS = [0, 1, 2, 7, 42, 2**31 - 1, 2**32 - 1, 2**32, 2**32 + 5, 123456789012, 2**63 - 1, -1, -12345]


@pytest.mark.parametrize("seed", SEEDS)
def test_key_and_split_are_jaxs(seed):
    ours, theirs = _prng.key(seed), np.asarray(jax.random.PRNGKey(seed))
    assert ours.dtype == np.uint32 and np.array_equal(ours, theirs)
    for n in (1, 2, 3, 8):
        np.testing.assert_array_equal(_prng.split(ours, n), np.asarray(jax.random.split(theirs, n)))
    # a chain of splits, as the restarts and the prior start take them
    k_ours, k_theirs = ours, theirs
    for _ in range(4):
        k_ours, _ = _prng.split(k_ours)
        k_theirs, _ = jax.random.split(k_theirs)
    np.testing.assert_array_equal(k_ours, np.asarray(k_theirs))


def test_threefry_matches_the_published_known_answer():
    """Random123's known-answer vector for Threefry-2x32-20: key and counter all ones."""
    ones = np.uint32(0xFFFFFFFF)
    b0, b1 = _prng.threefry2x32(np.array([ones, ones]), np.array([ones]), np.array([ones]))
    assert (int(b0[0]), int(b1[0])) == (0x1CB996FC, 0xBB002BE7)


def test_a_typed_key_is_split_by_jax():
    k = jax.random.key(5)
    np.testing.assert_array_equal(jax.random.key_data(_prng.split(k)), jax.random.key_data(jax.random.split(k)))
