"""Before/after of one change of vemppl: the same vemppl-only tasks, run against two source trees in turns.

    # one run of every task against the vemppl on PYTHONPATH, appended to OUT (JSON lines)
    PYTHONPATH=/path/to/tree python benchmarks/ab.py --label after --out /tmp/ab.jsonl
    # the table: per task and label, median fit/compile seconds, iterations, ELBO, quality
    python benchmarks/ab.py --report /tmp/ab.jsonl

``run_all.py`` compares vemppl with its peers and reads HMM and LDA from their own scripts'
results; this script answers a narrower question (issue #19, point 5): does a restructuring
leave every task's fit time and quality where they were?  It fits, with vemppl only and the
same options in both trees (old keywords, which every version since b2a0b8f accepts):

* ``gmm``: Bayesian GMM, N = 10k, D = 5, K = 5 (``gmm.py``'s data and priors; held-out log-lik / point);
* ``fa``: factor analysis, N = 20k, D = 20, L = 5 (``models/fa.vem``; held-out log-lik / point);
* ``hmm``: Gaussian HMM, T = 20k, K = 4, D = 3 (``hmm.py``'s sticky HMM; held-out log-lik / step);
* ``lda``: Reuters, K = 20 (``lda.py``'s split), with its header options (random globals,
  local_tol 1e-3, local_restart 25, tol 1e-3); quality: the training bound per token;
* ``svi_gmm``: the GMM by stochastic VI, N = 50k, batches of 1000, 200 steps (held-out log-lik / point);
* ``svi_lda``: LDA's tokens by stochastic VI, batches of 5000 tokens, 100 steps (the last step's
  ELBO estimate per token).

Every task's ELBO (or, for SVI, its last estimate) should be equal in both trees when the change
keeps the ELBO traces; the fit seconds should agree within the spread of the repeats.  Run the
two trees alternately in a quiet window (``--tasks`` for a subset); each record keeps the load
average and the machine's multiply-add rate (``machine.py``) beside its times.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
warnings.simplefilter("ignore", DeprecationWarning)  # the old keywords, kept for the older tree

TASKS = ("gmm", "fa", "hmm", "lda", "svi_gmm", "svi_lda")


def _tree():
    import vemppl as vp

    root = Path(vp.__file__).resolve().parents[1]
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True)
    return str(root), head.stdout.strip() or "unknown"


def _fit_record(f, wall, quality):
    return dict(compile_seconds=float(f.compile_seconds), fit_seconds=float(f.fit_seconds), wall_seconds=wall,
                iterations=int(f.iterations), elbo=float(f.elbo), quality=quality)


def gmm(scale):
    import gmm as g
    import vemppl as vp

    n = int(10_000 * scale)
    x, y, xt, yt = g.make_data(n, n // 5, 5, 5, 0)
    p = g.priors(x, 5)
    consts = {"K": 5, "alpha0": p["alpha0"], "beta0": p["beta0"], "nu0": p["nu0"], "m0": p["m0"],
              "W0": np.linalg.inv(p["cov_prior"])}
    t0 = time.perf_counter()
    f = vp.fit(g.gmm_model(), {"x": x}, consts=consts, seed=0, max_iter=500, tol=1e-8, progress=False)
    wall = time.perf_counter() - t0
    params = (np.asarray(f.posterior["pi"].mean), np.asarray(f.posterior["mu"].mean),
              np.linalg.inv(np.asarray(f.mean_params["Lam"]["mean"])))
    return _fit_record(f, wall, g.score(xt, yt, *params)[0])


def fa(scale):
    import vemppl as vp
    from run_all import fa_data, fa_loglik

    x, xt = fa_data(int(20_000 * scale), int(5_000 * scale), 20, 5, 0)
    t0 = time.perf_counter()
    f = vp.fit(vp.load(HERE.parent / "models" / "fa.vem"), {"x": x}, consts={"L": 5}, seed=0, max_iter=1000,
               tol=1e-8, progress=False)
    wall = time.perf_counter() - t0
    W, psi, m = (np.asarray(f.params[k]) for k in ("W", "psi", "m"))
    return _fit_record(f, wall, fa_loglik(xt, W, 1 / psi, m))


def hmm(scale):
    import hmm as h

    params = h.make_hmm(4, 3, 0)
    t = int(20_000 * scale)
    x, xt = h.sample(params, t, 1), h.sample(params, t // 5, 2)
    r = h.run_vemppl(x, 4, 0, 500, 1e-8)
    return dict(compile_seconds=r["compile"], fit_seconds=r["fit"], wall_seconds=r["wall"], iterations=r["iterations"],
                elbo=r["elbo"], quality=h.heldout_loglik(xt, *r["params"]))


_LDA_SCRIPT = []


def _lda_script():
    """benchmarks/lda.py, imported once: loading Reuters puts the `lda` package under its name."""
    if not _LDA_SCRIPT:
        import lda

        _LDA_SCRIPT.append(lda)
    return _LDA_SCRIPT[0]


def lda(scale):
    benchmark_lda = _lda_script()
    xtr, _ = benchmark_lda.reuters(None if scale >= 1 else int(395 * scale))
    r = benchmark_lda.fit_vemppl_seed(xtr, 20, 0.1, 0.01, 0, 500, 1e-3, start="random-globals", local_iter=10,
                                      local_tol=1e-3, local_restart=25)
    return dict(compile_seconds=r["compile_seconds"], fit_seconds=r["fit_seconds"], wall_seconds=r["wall"],
                iterations=r["iterations"], elbo=r["bound"], quality=r["bound"] / xtr.sum())


def svi_gmm(scale):
    import gmm as g
    import vemppl as vp

    n = int(50_000 * scale)
    x, y, xt, yt = g.make_data(n, 2_000, 5, 5, 0)
    p = g.priors(x, 5)
    consts = {"K": 5, "alpha0": p["alpha0"], "beta0": p["beta0"], "nu0": p["nu0"], "m0": p["m0"],
              "W0": np.linalg.inv(p["cov_prior"])}
    t0 = time.perf_counter()
    f = vp.fit(g.gmm_model(), {"x": x}, consts=consts, seed=0, max_iter=200,
               algorithm=vp.svi(min(1000, n // 2), step_size=(10.0, 0.7)), progress=False)
    wall = time.perf_counter() - t0
    params = (np.asarray(f.posterior["pi"].mean), np.asarray(f.posterior["mu"].mean),
              np.linalg.inv(np.asarray(f.mean_params["Lam"]["mean"])))
    return _fit_record(f, wall, g.score(xt, yt, *params)[0])


def svi_lda(scale):
    import vemppl as vp

    benchmark_lda = _lda_script()
    xtr, _ = benchmark_lda.reuters(None if scale >= 1 else int(395 * scale))
    doc, word = benchmark_lda.tokens(xtr)
    t0 = time.perf_counter()
    f = vp.fit(vp.load(HERE.parent / "models" / "lda.vem"), {"doc": doc, "word": word},
               consts={"K": 20, "alpha": 0.1, "eta": 0.01}, dims={"D": xtr.shape[0], "V": xtr.shape[1]}, seed=0,
               max_iter=100, algorithm=vp.svi(min(5000, len(doc) // 2), step_size=(10.0, 0.7)), progress=False)
    wall = time.perf_counter() - t0
    return _fit_record(f, wall, float(f.elbo) / len(doc))


def run(label, out, tasks, scale):
    from machine import machine
    from run_all import matmul_rate

    tree, head = _tree()
    info = machine()
    for name in tasks:
        load_before = [round(x, 2) for x in os.getloadavg()]
        rec = globals()[name](scale)
        rec.update(task=name, label=label, tree=tree, commit=head, scale=scale, loadavg_before=load_before,
                   loadavg_after=[round(x, 2) for x in os.getloadavg()], machine=info,
                   date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))
        with open(out, "a") as fh:
            fh.write(json.dumps(rec, default=float) + "\n")
        print(f"{label} {name}: fit {rec['fit_seconds']:.2f} s, compile {rec['compile_seconds']:.2f} s, "
              f"{rec['iterations']} it, ELBO {rec['elbo']:.10g}, quality {rec['quality']:.6g}", flush=True)
    # The machine's float64 multiply-add rate (after the fits: vemppl turns float64 on at its first fit).
    rate = matmul_rate(n=1000, reps=3)
    with open(out, "a") as fh:
        fh.write(json.dumps(dict(task="_matmul", label=label, commit=head, **rate), default=float) + "\n")
    print(f"{label} matmul: {rate['jax_macs_per_s'] / 1e9:.2f} G multiply-adds/s, load {rate['loadavg']}", flush=True)


def report(path) -> str:
    recs = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    labels = list(dict.fromkeys(r["label"] for r in recs))
    lines = ["| task | label | commit | runs | fit s (median; runs) | compile s | iterations | ELBO | quality |",
             "| --- | --- | --- | ---: | --- | ---: | ---: | ---: | ---: |"]
    for r in recs:
        if r["task"] == "_matmul":
            lines.append(f"<!-- {r['label']} {r['commit']}: {r['jax_macs_per_s'] / 1e9:.2f} G multiply-adds/s, "
                         f"load {r['loadavg']} -->")
    for task in TASKS:
        for label in labels:
            rs = [r for r in recs if r["task"] == task and r["label"] == label]
            if not rs:
                continue
            fits = [r["fit_seconds"] for r in rs]
            lines.append(
                f"| {task} | {label} | {rs[0]['commit']} | {len(rs)} | {statistics.median(fits):.3f} "
                f"({', '.join(f'{x:.2f}' for x in fits)}) | {statistics.median(r['compile_seconds'] for r in rs):.2f} | "
                f"{'/'.join(sorted({str(r['iterations']) for r in rs}))} | "
                f"{'/'.join(sorted({format(r['elbo'], '.10g') for r in rs}))} | "
                f"{'/'.join(sorted({format(r['quality'], '.6g') for r in rs}))} |")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--label", help="this tree's name in the table (before, after)")
    ap.add_argument("--out", help="JSON-lines file to append to")
    ap.add_argument("--tasks", default=",".join(TASKS), help=f"comma-separated subset of {','.join(TASKS)}")
    ap.add_argument("--scale", type=float, default=1.0, help="data sizes times this (0.1: a smoke run)")
    ap.add_argument("--report", metavar="FILE", help="print the table of FILE's runs and exit")
    a = ap.parse_args(argv)
    if a.report:
        print(report(a.report))
        return 0
    if not (a.label and a.out):
        ap.error("--label and --out are needed to run")
    tasks = [t.strip() for t in a.tasks.split(",") if t.strip()]
    if set(tasks) - set(TASKS):
        ap.error(f"unknown tasks: {sorted(set(tasks) - set(TASKS))}")
    run(a.label, a.out, tasks, a.scale)
    return 0


if __name__ == "__main__":
    sys.exit(main())
