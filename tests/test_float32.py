"""float32 as an option (``VEMPPL_X64=0``, read when vemppl is imported, so the float32 side
runs in a subprocess: tests/_float32_fits.py).  The same models and data in float32 and
float64 reach the same optimum, the float32 ELBO never decreases beyond float32 round-off,
and a chain whose probability-space normalisers underflow in float32 (where exp underflows
at e^−87, not e^−745) takes the log-space recursions and still matches enumeration."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import vemppl as vp
from _float32_cases import cases, underflowing_chain
from conftest import assert_elbo_monotone
from test_hmm import brute_force

HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def float32_results():
    env = {**os.environ, "VEMPPL_X64": "0"}
    out = subprocess.run([sys.executable, str(HERE / "_float32_fits.py")], env=env, capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("name", ["gmm", "hmm", "lda"])
def test_float32_fit_reaches_the_float64_optimum(float32_results, name):
    r = float32_results[name]
    assert r["dtype"] == "float32"
    assert_elbo_monotone(r["trace"], rtol=1e-5)  # float32 round-off: ~1e-7 per operation, summed
    model, data, kw = cases()[name]
    ref = vp.fit(model, data, progress=False, **kw)
    assert ref.elbo_trace.dtype == np.float64
    np.testing.assert_allclose(r["trace"][-1], ref.elbo, rtol=1e-4)


def test_float32_chain_beyond_probability_space_matches_enumeration(float32_results):
    psi, phi = underflowing_chain()
    marg, pair, _ = brute_force(psi, phi)
    np.testing.assert_allclose(float32_results["chain"]["onehot"], marg, atol=1e-5)
    np.testing.assert_allclose(float32_results["chain"]["pair"], pair, atol=1e-5)


def test_float32_fits_request_no_float64(float32_results):
    # Before: a fixed MvNormal location was cast to the dtype of a NumPy float64 precision, and JAX
    # warned "Explicitly requested dtype float64 ... will be truncated to dtype float32" on every GMM fit
    # (tests/test_outsider_models9.py's round).
    assert float32_results["dtype_warnings"] == []
