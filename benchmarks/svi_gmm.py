"""Stochastic VI on a Gaussian mixture streamed from a memory-mapped file.

    python benchmarks/svi_gmm.py                      # N = 10M, D = 10, K = 10; reference on a 1M subsample
    python benchmarks/svi_gmm.py --n 1000000 --subsample 100000 --steps 200   # a smaller run
    python benchmarks/svi_gmm.py --quick              # smoke run (N = 20k)

Three phases, each in its own process so that its peak resident memory
(``resource.getrusage(RUSAGE_SELF).ru_maxrss``) is its own:

1. *generate*: K Gaussian clusters in D dimensions (centres from N(0, 3²I), covariances
   ``AAᵀ/D + 0.3 I``, weights from Dir(5); as in ``benchmarks/gmm.py``) written in chunks of
   1M rows to ``x.npy`` with ``np.lib.format.open_memmap``, plus an in-memory held-out set;
2. *svi*: ``vemppl.fit(model, {"x": np.load("x.npy", mmap_mode="r")}, algorithm=vemppl.svi(B), ...)``:
   each step reads only its batch's rows of the file;
3. *full*: the full-batch CAVI fit on the first ``--subsample`` rows (in memory).

Quality: held-out log-likelihood per point under the plug-in posterior means
(``Fit.predict(held_out, plug_in=True)``), for both fits; the target is SVI within 1% of
the full-batch fit.  Results go to ``results_svi_gmm.json`` / ``.md`` beside the script
(``--quick``: ``results_svi_gmm_quick.*``).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from phases import child, peak_rss_mb, write_atomic  # benchmarks/phases.py, beside this script

HERE = Path(__file__).resolve().parent
MODEL = Path(__file__).resolve().parents[1] / "models" / "gmm.vem"


def truth(d, k, seed):
    rng = np.random.default_rng(seed)
    centres = rng.normal(0.0, 3.0, size=(k, d))
    chols = []
    for _ in range(k):
        a = rng.normal(size=(d, d))
        chols.append(np.linalg.cholesky(a @ a.T / d + 0.3 * np.eye(d)))
    weights = rng.dirichlet(5.0 * np.ones(k))
    return centres, np.stack(chols), weights


def draw(rng, n, centres, chols, weights):
    z = rng.choice(len(weights), size=n, p=weights)
    eps = rng.normal(size=(n, centres.shape[1]))
    return centres[z] + np.einsum("nij,nj->ni", chols[z], eps)


def generate(a):
    centres, chols, weights = truth(a.d, a.k, a.seed)
    out = np.lib.format.open_memmap(Path(a.dir) / "x.npy", mode="w+", dtype=np.float64, shape=(a.n, a.d))
    rng = np.random.default_rng(a.seed + 1)
    chunk = 1_000_000
    for lo in range(0, a.n, chunk):
        hi = min(lo + chunk, a.n)
        out[lo:hi] = draw(rng, hi - lo, centres, chols, weights)
        out.flush()
    del out
    np.save(Path(a.dir) / "held.npy", draw(np.random.default_rng(a.seed + 2), a.held, centres, chols, weights))
    return {"peak_rss_mb": peak_rss_mb(), "file_mb": a.n * a.d * 8 / 2**20}


def _model(k):
    import vemppl as vp

    return vp.load(MODEL), {"K": k}


def svi(a):
    import vemppl as vp

    model, consts = _model(a.k)
    x = np.load(Path(a.dir) / "x.npy", mmap_mode="r")
    t0 = time.perf_counter()
    fit = vp.fit(model, {"x": x}, consts=consts, algorithm=vp.svi(a.batch, step_size=(a.tau, a.kappa)),
                 max_iter=a.steps, seed=a.seed, progress=False)
    wall = time.perf_counter() - t0
    rss_fit = peak_rss_mb()
    held = np.load(Path(a.dir) / "held.npy")
    ll = fit.predict({"x": held}, plug_in=True).log_likelihood_per_point
    return {"held_out_ll": ll, "compile_s": fit.compile_seconds, "fit_s": fit.fit_seconds, "wall_s": wall,
            "steps": fit.iterations, "batch": a.batch, "points_seen": fit.iterations * a.batch,
            "s_per_step": fit.fit_seconds / max(fit.iterations - 1, 1), "final_elbo_estimate": fit.elbo,
            "peak_rss_mb_fit": rss_fit, "peak_rss_mb": peak_rss_mb()}


def full(a):
    import vemppl as vp

    model, consts = _model(a.k)
    x = np.array(np.load(Path(a.dir) / "x.npy", mmap_mode="r")[: a.subsample])
    t0 = time.perf_counter()
    fit = vp.fit(model, {"x": x}, consts=consts, max_iter=a.max_iter, tol=a.tol, seed=a.seed, progress=False)
    wall = time.perf_counter() - t0
    held = np.load(Path(a.dir) / "held.npy")
    ll = fit.predict({"x": held}, plug_in=True).log_likelihood_per_point
    return {"held_out_ll": ll, "compile_s": fit.compile_seconds, "fit_s": fit.fit_seconds, "wall_s": wall,
            "iterations": fit.iterations, "n": a.subsample, "elbo": fit.elbo, "peak_rss_mb": peak_rss_mb()}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=10_000_000)
    p.add_argument("--d", type=int, default=10)
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--subsample", type=int, default=1_000_000, help="rows of the full-batch reference fit")
    p.add_argument("--held", type=int, default=100_000)
    p.add_argument("--batch", type=int, default=10_000)
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--tau", type=float, default=10.0)
    p.add_argument("--kappa", type=float, default=0.7)
    p.add_argument("--max-iter", type=int, default=300)
    p.add_argument("--tol", type=float, default=1e-8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dir", default="", help="where x.npy goes (default: a temporary folder)")
    p.add_argument("--phase", choices=("generate", "svi", "full"))
    p.add_argument("--quick", action="store_true")
    a = p.parse_args()
    if a.phase:
        print(json.dumps({"generate": generate, "svi": svi, "full": full}[a.phase](a)))
        return
    if a.quick:
        a.n, a.subsample, a.held, a.batch, a.steps, a.d, a.k = 20_000, 20_000, 5_000, 1_000, 60, 5, 5
    with tempfile.TemporaryDirectory(dir=a.dir or None) as tmp:
        a.dir = tmp
        gen = child(__file__, a, "generate")
        s = child(__file__, a, "svi")
        f = child(__file__, a, "full")
    from machine import machine

    rel = (s["held_out_ll"] - f["held_out_ll"]) / abs(f["held_out_ll"])  # > 0: SVI is better
    res = {"settings": {k: v for k, v in vars(a).items() if k not in ("dir", "phase")}, "generate": gen, "svi": s,
           "full_batch": f, "held_out_ll_rel_gain": rel, "machine": machine()}
    name = "results_svi_gmm_quick" if a.quick else "results_svi_gmm"
    write_atomic(HERE / f"{name}.json", json.dumps(res, indent=2))
    md = [
        f"# SVI on a GMM streamed from a memory map (N = {a.n:,}, D = {a.d}, K = {a.k})", "",
        f"Machine: {res['machine']['nproc']} cores, {res['machine']['cpu']}; JAX {res['machine']['jax']}.", "",
        "| fit | data | compile s | fit s | steps / iterations | held-out log-lik / point | peak RSS MB |",
        "| --- | --- | --- | --- | --- | --- | --- |",
        f"| SVI, batch {a.batch:,}, rho_t = (t + {a.tau:g})^-{a.kappa:g} | memmap, {gen['file_mb']:.0f} MB file | "
        f"{s['compile_s']:.1f} | {s['fit_s']:.1f} ({s['s_per_step'] * 1e3:.1f} ms/step) | {s['steps']} "
        f"({s['points_seen']:,} points seen) | {s['held_out_ll']:.5f} | {s['peak_rss_mb']:.0f} |",
        f"| full-batch CAVI | first {a.subsample:,} rows, in memory | {f['compile_s']:.1f} | {f['fit_s']:.1f} | "
        f"{f['iterations']} | {f['held_out_ll']:.5f} | {f['peak_rss_mb']:.0f} |",
        "", f"Held-out log-likelihood of SVI relative to the full-batch fit: {rel:+.2e} (target: > -1e-2; "
        "positive: SVI is better, e.g. when the single full-batch run stops at a poorer local optimum).",
        f"Peak RSS of the SVI process after fitting (before predicting): {s['peak_rss_mb_fit']:.0f} MB.", "",
    ]
    write_atomic(HERE / f"{name}.md", "\n".join(md))
    print("\n".join(md))


if __name__ == "__main__":
    main()
