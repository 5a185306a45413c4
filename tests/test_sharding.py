"""Data-parallel execution (engine/shard.py): the fit sharded over 4 CPU devices gives the
single-device ELBO trace to 1e-10 relative, for a GMM, an HMM over sequences and LDA.

XLA_FLAGS must be set before JAX initialises, so the fits run in a subprocess
(tests/_sharded_fits.py)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import vemppl as vp

HERE = Path(__file__).resolve().parent


def sharded_fit(model):
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4"}
    out = subprocess.run([sys.executable, str(HERE / "_sharded_fits.py"), model], env=env, capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("model", ["gmm", "hmm", "lda", "lda-settled", "lda-restart"])
def test_sharded_trace_is_the_single_device_trace(model):
    r = sharded_fit(model)
    one, four = np.asarray(r["one"]), np.asarray(r["four"])
    assert len(one) == len(four)
    np.testing.assert_allclose(four, one, rtol=1e-10, atol=0)  # measured: 1.5e-16 (one ulp, a few steps)
    assert "'data'" in r["sharding"]  # the locals live split over the devices
    assert r["all_reduce"]  # the sums over the plate are all-reduces of the partitioned program


def test_more_devices_than_jax_sees_is_an_error():
    from dsl_models import gmm

    x = np.zeros((8, 2))
    with pytest.raises(vp.VemError, match="xla_force_host_platform_device_count"):
        vp.fit(gmm(), {"x": x}, algorithm=vp.cavi(devices=64), max_iter=1)
