"""The guarded extrapolation of the CAVI sweep (engine/accel.py): plain against accelerated CAVI.

    python benchmarks/accel.py slow     # benchmarks/slow/*.vem and models/*.vem: sweeps and ELBO
    python benchmarks/accel.py fast --repeats 3   # paired A/B of the fast default tasks (times)

``slow``: each model of ``benchmarks/slow`` (mean-field CAVI's slow cases: crossed random
effects, a non-centred and a centred two-level model, correlated scalar coefficients) and the
shipped models of ``models/`` (small data, ``benchmarks/slow/shipped.py``) fitted with no
options twice, plain (``vp.cavi(accelerate=False)``) and accelerated (the default): sweeps kept,
sweeps run (refused tries included), tries and acceptances, converged, final ELBO; and a
reference ELBO of a long plain run (``tol=1e-13``, 20 000 sweeps at most).

``fast``: the vemppl rows of ``benchmarks/defaults.py``'s bmm, fa and hmm tasks (the same data
and quality measures) and ``benchmarks/ab.py``'s GMM (N = 10k, D = 5, K = 5), each fitted
plain and accelerated in alternation in one process, ``--repeats`` pairs after one warm-up
pair; median fit seconds (compilation excluded), iterations, ELBO, quality, the load average
and the float64 multiply-add rate.  LDA is not run: its default schedule (random globals,
local restarts) is never accelerated (``engine/fit.py`` builds no ``Accelerated`` for it).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE / "slow"))
warnings.simplefilter("ignore")

import vemppl as vp  # noqa: E402
from vemppl.engine import accel  # noqa: E402

from machine import machine  # noqa: E402

MADE: list = []
_init = accel.Accelerated.__init__


def _record(self, *a, **k):
    _init(self, *a, **k)
    MADE.append(self)


accel.Accelerated.__init__ = _record  # the benchmark reads each fit's tries and sweeps run


def arm(accelerate: bool):
    return vp.cavi(accelerate=accelerate)


def one(model, data, consts=None, dims=None, accelerate=True, **kw):
    MADE.clear()
    t0 = time.perf_counter()
    f = vp.fit(model, data, consts=consts, dims=dims, progress=False, algorithm=arm(accelerate), **kw)
    wall = time.perf_counter() - t0
    tr = np.asarray(f.elbo_trace)
    a = MADE[0] if MADE else None
    return f, dict(sweeps=len(tr), run=a.sweeps if a else len(tr), tried=a.acc.tried if a else 0,
                   kept=a.acc.accepted if a else 0, converged=bool(f.converged), elbo=float(tr[-1]),
                   monotone=bool(np.all(np.diff(tr) >= -1e-9 * abs(tr[-1]))), fit_seconds=float(f.fit_seconds),
                   compile_seconds=float(f.compile_seconds), wall_seconds=wall)


def slow(out):
    import data as slow_data
    import shipped

    cases = [(n, HERE / "slow" / f"{n}.vem", make) for n, make in slow_data.CASES.items()]
    cases += [(n, HERE.parent / "models" / f"{n}.vem", make) for n, make in shipped.CASES.items()]
    rows = []
    for name, path, make in cases:
        d, dims = make()
        m = vp.load(path)
        ref = one(m, d, accelerate=False, tol=1e-13, max_iter=20000)[1]
        for acc in (False, True):
            r = one(m, d, accelerate=acc)[1]
            rows.append(dict(model=name, arm="accelerated" if acc else "plain", reference_elbo=ref["elbo"],
                             reference_sweeps=ref["sweeps"], **r))
            print(json.dumps(rows[-1]), flush=True)
    info = machine()
    Path(out).write_text(json.dumps(dict(machine=info, rows=rows), indent=1))
    lines = [f"Machine: {info['cpu']}, {info['nproc']} CPUs, load {info['load_average']} (shared).", "",
             "| model | arm | sweeps kept | sweeps run | tries (kept) | converged | final ELBO | gap to reference |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['arm']} | {r['sweeps']} | {r['run']} | {r['tried']} ({r['kept']}) | "
                     f"{r['converged']} | {r['elbo']:.8f} | {r['reference_elbo'] - r['elbo']:.2e} |")
    lines.append("")
    lines.append("Reference: a plain run to tol=1e-13 (20 000 sweeps at most): "
                 + ", ".join(f"{r['model']} {r['reference_elbo']:.8f} ({r['reference_sweeps']} sweeps)"
                             for r in rows if r["arm"] == "plain"))
    lines.append("")
    lines.append(NOTE)
    Path(out).with_suffix(".md").write_text("\n".join(lines) + "\n")


NOTE = ("LDA's default (an admixture: random globals, local restarts) stops at tol=1e-3 and is never "
        "accelerated; its gap to the tol=1e-13 reference is that tolerance's. PPCA with ARD does not converge "
        "in 20 000 plain sweeps (the unused components' precisions drift toward infinity).")


def fast_tasks():
    import defaults as dfl
    import gmm as g
    from sklearn.datasets import load_digits

    digits = load_digits()
    X, perm = (digits.data > 7).astype(float), np.random.default_rng(0).permutation(len(digits.data))
    n_train = int(0.8 * len(perm))
    tr, te = perm[:n_train], perm[n_train:]

    def bmm(acc):
        f, r = one(vp.load(HERE.parent / "models" / "bernoulli_mixture.vem"), {"x": X[tr].astype(bool)}, {"K": 10},
                   accelerate=acc)
        return r, dfl.bernoulli_mixture_loglik(np.asarray(f.posterior["pi"].mean), np.asarray(f.posterior["mu"].mean),
                                               X[te])

    rng = np.random.default_rng(0)
    n, d, l = 20000, 30, 5
    W, sd, m = rng.normal(size=(d, l)), rng.uniform(0.3, 1.5, size=d), rng.normal(size=d)
    Xf = m + rng.normal(size=(n + n // 5, l)) @ W.T + sd * rng.normal(size=(n + n // 5, d))

    def fa(acc):
        f, r = one(vp.load(HERE.parent / "models" / "fa.vem"), {"x": Xf[:n]}, {"L": l}, accelerate=acc)
        p = f.params
        return r, dfl.gaussian_loglik(p["m"], p["W"] @ p["W"].T + np.diag(1.0 / p["psi"]), Xf[n:])

    rng = np.random.default_rng(0)
    t, k, v = 10000, 3, 8
    A = np.full((k, k), 0.05 / (k - 1)) + np.eye(k) * (0.95 - 0.05 / (k - 1))
    B = rng.dirichlet(np.full(v, 0.5), size=k)
    pi0 = np.full(k, 1.0 / k)
    x, x_te = dfl.sample_hmm(pi0, A, B, t, rng), dfl.sample_hmm(pi0, A, B, t // 5, rng)

    def hmm(acc):
        f, r = one(vp.load(HERE.parent / "models" / "hmm_categorical.vem"), {"x": x}, {"K": k}, {"V": v},
                   accelerate=acc)
        return r, dfl.hmm_loglik(*(np.asarray(f.posterior[q].mean) for q in ("pi0", "A", "B")), x_te)

    xg, yg, xt, yt = g.make_data(10_000, 2_000, 5, 5, 0)
    p = g.priors(xg, 5)
    consts = {"K": 5, "alpha0": p["alpha0"], "beta0": p["beta0"], "nu0": p["nu0"], "m0": p["m0"],
              "W0": np.linalg.inv(p["cov_prior"])}

    def gmm(acc):
        f, r = one(g.gmm_model(), {"x": xg}, consts, seed=0, accelerate=acc)
        params = (np.asarray(f.posterior["pi"].mean), np.asarray(f.posterior["mu"].mean),
                  np.linalg.inv(np.asarray(f.mean_params["Lam"]["mean"])))
        return r, g.score(xt, yt, *params)[0]

    return dict(bmm=bmm, fa=fa, hmm=hmm, gmm=gmm)


def fast(out, repeats, only=None):
    from run_all import matmul_rate

    tasks = fast_tasks()
    rows = []
    for name, task in tasks.items():
        if only and name not in only:
            continue
        for rep in range(repeats + 1):  # the first pair warms the caches: not counted
            for acc in ((False, True) if rep % 2 == 0 else (True, False)):
                r, q = task(acc)
                row = dict(task=name, arm="accelerated" if acc else "plain", rep=rep, quality=q,
                           load=[round(x, 2) for x in __import__("os").getloadavg()], **r)
                print(json.dumps(row), flush=True)
                if rep:
                    rows.append(row)
    rate = matmul_rate(n=1000, reps=3)
    info = machine()
    Path(out).write_text(json.dumps(dict(machine=info, matmul=rate, repeats=repeats, rows=rows), indent=1))
    fast_table(out)


def fast_table(out):
    """``out``'s markdown table beside it, from its JSON."""
    rec = json.loads(Path(out).read_text())
    info, rate, rows = rec["machine"], rec["matmul"], rec["rows"]
    lines = [f"Machine: {info['cpu']}, {info['nproc']} CPUs (shared); float64 matmul "
             f"{rate['jax_macs_per_s'] / 1e9:.2f} G multiply-adds/s at load {rate['loadavg']}; "
             f"{rec.get('repeats', 3)} alternating pairs after a warm-up pair (not counted).", "",
             "| task | arm | median fit s | fit s (each) | load (1 min) | sweeps kept / run | tries (kept) | final ELBO | quality |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name in dict.fromkeys(r["task"] for r in rows):
        for a in ("plain", "accelerated"):
            rs = [r for r in rows if r["task"] == name and r["arm"] == a]
            if not rs:
                continue
            lines.append(f"| {name} | {a} | {statistics.median(r['fit_seconds'] for r in rs):.3f} | "
                         f"{', '.join('%.3f' % r['fit_seconds'] for r in rs)} | "
                         f"{', '.join(str(r['load'][0]) for r in rs)} | {rs[0]['sweeps']} / {rs[0]['run']} | "
                         f"{rs[0]['tried']} ({rs[0]['kept']}) | {rs[0]['elbo']:.12g} | {rs[0]['quality']:.6g} |")
    Path(out).with_suffix(".md").write_text("\n".join(lines) + "\n")


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=("slow", "fast", "table"))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--tasks", default="")
    ap.add_argument("--out", default=None)
    a = ap.parse_args(argv)
    out = a.out or str(HERE / f"results_accel_{a.what}.json")
    if a.what == "table":  # re-render the fast table from its JSON
        fast_table(a.out or str(HERE / "results_accel_fast.json"))
    elif a.what == "slow":
        slow(out)
    else:
        fast(out, a.repeats, [t for t in a.tasks.split(",") if t])


if __name__ == "__main__":
    main()
