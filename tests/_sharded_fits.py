"""Run by tests/test_sharding.py in a subprocess with 4 CPU devices (XLA_FLAGS set before
JAX starts): one model (argv[1]: gmm, hmm or lda) fitted on one device and sharded over 4;
the traces, the locals' sharding and whether the sweep's HLO all-reduces, as JSON."""

import json
import os
import sys
import time

assert "xla_force_host_platform_device_count" in os.environ.get("XLA_FLAGS", "")
sys.path.insert(0, os.path.dirname(__file__))

import numpy as np  # noqa: E402

import vemppl as vp  # noqa: E402
from dsl_models import gmm, lda  # noqa: E402
from test_svi import HMM_SEQS, gmm_data  # noqa: E402


def hmm_data(rng, S=8, T=20):
    states = np.zeros((S, T), int)
    trans = np.array([[0.9, 0.05, 0.05], [0.05, 0.9, 0.05], [0.05, 0.05, 0.9]])
    for s in range(S):
        for t in range(1, T):
            states[s, t] = rng.choice(3, p=trans[states[s, t - 1]])
    return np.array([[0, 0], [4, 4], [0, 5.0]])[states] + rng.normal(size=(S, T, 2))


def lda_data(rng, docs=8, tokens_per_doc=30, V=12):
    doc = np.repeat(np.arange(docs), tokens_per_doc)
    word = rng.integers(0, V, doc.size)
    return {"doc": doc, "word": word}


def main(name):
    rng = np.random.default_rng(0)
    cases = {
        "gmm": lambda: (gmm(), {"x": gmm_data(800, rng)}, {"max_iter": 20}),
        # the HMM converges in ~10 sweeps, where round-off decides when the ELBO stops moving
        "hmm": lambda: (vp.parse(HMM_SEQS), {"x": hmm_data(rng)}, {"max_iter": 8}),
        "lda": lambda: (lda(), lda_data(rng), {"consts": {"K": 3}, "max_iter": 20}),
        # local passes that stop on a test of q(theta)'s change: a reduction over the sharded plate
        "lda-settled": lambda: (lda(), lda_data(rng), {"consts": {"K": 3}, "max_iter": 20},
                                dict(start="random-globals", local_tol=1e-3)),
        # locals restarted in the first sweeps: the restarting and carried programs, and the host's guard
        "lda-restart": lambda: (lda(), lda_data(rng), {"consts": {"K": 3}, "max_iter": 20},
                                dict(start="random-globals", local_tol=1e-3, local_restart=5)),
    }
    model, data, kw, *options = cases[name]()
    options = options[0] if options else {}  # the schedule's options, beside compress= and devices=
    t0 = time.perf_counter()
    # Every row on one device too: a sharded fit does not merge repeated rows (engine/compress.py),
    # and from the default start merged rows are seeded differently (tests/test_compress.py).
    one = vp.fit(model, data, tol=0.0, algorithm=vp.cavi(compress=False, **options), **kw)
    four = vp.fit(model, data, tol=0.0, algorithm=vp.cavi(devices=4, **options), **kw)
    sweep = four.engine  # the sharded sweep's program: partitioned, with all-reduces over the plate
    from vemppl.engine.dataplate import data_plate
    from vemppl.engine.shard import Sharded

    sh = Sharded(sweep, data_plate(four.model, four.plan), 4)
    state = sh.place(four.state)
    sh.sweep(state)
    hlo = sh._sweep.lower(state, sh.data).compile().as_text()
    print(json.dumps({"one": one.elbo_trace.tolist(), "four": four.elbo_trace.tolist(),
                      "sharding": str(four.state.mu["z"].onehot.sharding.spec), "all_reduce": "all-reduce" in hlo,
                      "seconds": time.perf_counter() - t0}))


if __name__ == "__main__":
    main(sys.argv[1])
