"""Run by tests/test_float32.py in a subprocess with VEMPPL_X64=0 (read when vemppl is
imported): a GMM, an HMM and LDA fitted in float32, and a chain whose probability-space
normalisers underflow in float32; the results as JSON, for comparison with float64."""

import json
import os
import sys

assert os.environ.get("VEMPPL_X64") == "0"
sys.path.insert(0, os.path.dirname(__file__))

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import vemppl as vp  # noqa: E402
from _float32_cases import cases, underflowing_chain  # noqa: E402
from vemppl.families.markov_chain import ChainStats, MarkovChain  # noqa: E402


def main():
    import warnings

    out = {}
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        fits = {name: vp.fit(model, data, progress=False, **kw) for name, (model, data, kw) in cases().items()}
    # JAX's "Explicitly requested dtype float64 ... truncated to float32": a float64 request left in the code
    out["dtype_warnings"] = sorted({str(w.message)[:80] for w in seen if "dtype float64" in str(w.message)})
    for name, fit in fits.items():
        out[name] = {"trace": fit.elbo_trace.tolist(), "dtype": str(fit.state.mu[next(iter(fit.state.mu))][0].dtype)}
    psi, phi = underflowing_chain()
    stats = MarkovChain.expected_stats(ChainStats(jnp.asarray(psi, jnp.float32), jnp.asarray(phi, jnp.float32)))
    out["chain"] = {"onehot": np.asarray(stats.onehot, float).tolist(), "pair": np.asarray(stats.pair, float).tolist()}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
