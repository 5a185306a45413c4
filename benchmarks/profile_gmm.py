"""Where one CAVI sweep of the GMM (N = 100k, D = 10, K = 10) spends its time.

    python benchmarks/profile_gmm.py [--n 100000 --d 10 --k 10]

Times the jitted sweep and, each jitted on its own, its pieces (each block's update, the ELBO, one
evaluation of the expected log joint), reads XLA's cost analysis (flops, bytes) of each, and counts the
passes over the data in the optimised HLO (ops whose operand or result has N rows).  Findings:
benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

import jax
import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import gmm as gmm_bench  # noqa: E402
from run_all import load, matmul_rate  # noqa: E402

import vemppl as vp  # noqa: E402


def best_time(f, *a, reps=5):
    jax.block_until_ready(f(*a))
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        jax.block_until_ready(f(*a))
        ts.append(time.perf_counter() - t0)
    return min(ts)


def cost(f, *a):
    c = jax.jit(f).lower(*a).compile()
    ca = c.cost_analysis()
    ca = ca[0] if isinstance(ca, list) else ca
    return c, float(ca.get("flops", np.nan)), float(ca.get("bytes accessed", np.nan))


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--d", type=int, default=10)
    ap.add_argument("--k", type=int, default=10)
    a = ap.parse_args(argv)
    x, _, _, _ = gmm_bench.make_data(a.n, 1, a.d, a.k, 0)
    p = gmm_bench.priors(x, a.k)
    consts = {"K": a.k, "alpha0": p["alpha0"], "beta0": p["beta0"], "nu0": p["nu0"], "m0": p["m0"],
              "W0": np.linalg.inv(p["cov_prior"])}
    f = vp.fit(gmm_bench.gmm_model(), {"x": x}, consts=consts, seed=0, max_iter=3, tol=0.0, progress=False)
    eng, state, data = f.engine, f.state, f.engine.data
    rate = matmul_rate()["jax_macs_per_s"]
    print(f"load {load()}; matmul {rate / 1e9:.1f} G MAC/s; E-step needs N·K·D² = {a.n * a.k * a.d ** 2 / 1e6:.0f} M MAC")
    pieces = {"whole sweep": lambda s, d: eng._sweep_impl(s, d)}
    for j in eng.plan.schedule:
        pieces[f"update q({j})"] = (lambda j: lambda s, d: eng.update_block(s, j, d))(j)
    pieces["ELBO"] = lambda s, d: eng.elbo(s, d)
    pieces["expected log joint (forward only)"] = lambda s, d: eng.expected_log_joint(s.mu, s.eta, s.params, d, key=s.key)
    n_re = re.compile(rf"\b{a.n}\b")
    print(f"| piece | seconds | GFLOP (XLA) | GB accessed (XLA) | HLO ops over N rows |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, fn in pieces.items():
        c, flops, by = cost(fn, state, data)
        hlo = c.as_text()
        big = sum(1 for line in hlo.splitlines() if "=" in line and n_re.search(line.split("=", 1)[1].split("(", 1)[0] + "(")
                  and not line.strip().startswith("ROOT") and "parameter(" not in line)
        t = best_time(jax.jit(fn), state, data)
        print(f"| {name} | {t:.4f} | {flops / 1e9:.2f} | {by / 1e9:.2f} | {big} |", flush=True)
    print(f"load {load()}")


if __name__ == "__main__":
    sys.exit(main())
