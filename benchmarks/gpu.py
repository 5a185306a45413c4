"""vemppl on an accelerator: one prepared script, at most 8 minutes, one table.

    python benchmarks/gpu.py                 # on a machine with a GPU (the device tool's `run`)
    python benchmarks/gpu.py --quick         # the same steps at toy sizes, on any machine (smoke test)
    python benchmarks/gpu.py --budget 420    # stop starting new tasks after 420 s

Tasks, in order (each skipped, and said so, once the time budget is spent):

* ``gmm-1M``: the Bayesian GMM of ``models/gmm.vem`` (D = 10, K = 10) on N = 1M points, full batch,
  restarts = 4 with ``batch_restarts`` on (one vmapped program) and off (in turn);
* ``gmm-svi-10M``: the same model on N = 10M points by stochastic VI (``batch_size`` = 100k);
* ``hmm-1M``: a Gaussian HMM (K = 4, D = 3) on T = 1M steps, forward–backward sequential and parallel
  (``chain="parallel"``: the log2(T)-deep associative scan);
* ``lda``: LDA on Reuters (K = 20) with the schedule in ``models/lda.vem``'s header.

Each row: compile seconds, fit seconds, iterations, final ELBO, and the device's name.  The data are
drawn on the host with fixed seeds.  Results go to ``results_gpu.json`` / ``.md`` beside this script
(``--quick``: ``results_gpu_quick.*``); the figures belong in benchmarks/README.md with the card named.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
MODELS = HERE.parent / "models"
sys.path.insert(0, str(HERE))

from hmm import MODEL as GAUSSIAN_HMM  # noqa: E402  benchmarks/hmm.py's Normal–Wishart HMM, K = 4
from phases import lda_benchmark, write_atomic  # noqa: E402

import vemppl as vp  # noqa: E402


def clusters(n, d, k, seed):
    rng = np.random.default_rng(seed)
    centres = rng.normal(0.0, 3.0, size=(k, d))
    out = np.empty((n, d))
    for lo in range(0, n, 1_000_000):  # in chunks: 10M x 10 float64 is 800 MB, drawn without a second copy
        hi = min(n, lo + 1_000_000)
        out[lo:hi] = centres[rng.integers(0, k, hi - lo)] + rng.normal(size=(hi - lo, d))
    return out


def hmm_data(t, seed):
    rng = np.random.default_rng(seed)
    k, d = 4, 3
    means = rng.normal(0.0, 3.0, size=(k, d))
    stay = 0.95
    z = np.empty(t, int)
    z[0] = 0
    u = rng.random(t)
    jump = rng.integers(0, k - 1, t)
    for s in range(1, t):  # a sticky chain: leave with probability 1 - stay, to another state uniformly
        z[s] = z[s - 1] if u[s] < stay else (jump[s] + (jump[s] >= z[s - 1])) % k
    return means[z] + rng.normal(size=(t, d))


def row(task, variant, fit, wall):
    return dict(task=task, variant=variant, compile_seconds=round(fit.compile_seconds, 3),
                fit_seconds=round(fit.fit_seconds, 3), wall_seconds=round(wall, 3), iterations=int(fit.iterations),
                elbo=float(fit.elbo))


def timed_fit(*args, **kwargs):
    t0 = time.perf_counter()
    fit = vp.fit(*args, progress=False, **kwargs)
    return fit, time.perf_counter() - t0


def task_gmm(quick):
    n = 20_000 if quick else 1_000_000
    x = clusters(n, 10, 10, 0)
    model = vp.load(MODELS / "gmm.vem")
    out = []
    for batched in (True, False):
        fit, wall = timed_fit(model, {"x": x}, consts={"K": 10}, restarts=4,
                              algorithm=vp.cavi(batch_restarts=batched))
        out.append(row(f"gmm N={n}", f"restarts=4, batch_restarts={batched}", fit, wall))
    return out


def task_gmm_svi(quick):
    n, b = (200_000, 10_000) if quick else (10_000_000, 100_000)
    x = clusters(n, 10, 10, 1)
    fit, wall = timed_fit(vp.load(MODELS / "gmm.vem"), {"x": x}, consts={"K": 10}, algorithm=vp.svi(b),
                          max_iter=50 if quick else 300)
    return [row(f"gmm SVI N={n}", f"batch_size={b}", fit, wall)]


def task_hmm(quick):
    t = 20_000 if quick else 1_000_000
    x = hmm_data(t, 2)
    model = vp.parse(GAUSSIAN_HMM)
    out = []
    for chain in ("sequential", "parallel"):
        fit, wall = timed_fit(model, {"x": x}, algorithm=vp.cavi(chain=chain), max_iter=100)
        out.append(row(f"gaussian HMM T={t}", f"chain={chain}", fit, wall))
    return out


def task_lda(quick):
    lda = lda_benchmark()
    Xtr, _ = lda.reuters(60 if quick else None)
    doc, word = lda.tokens(Xtr)
    fit, wall = timed_fit(vp.load(MODELS / "lda.vem"), {"doc": doc, "word": word},
                          consts={"K": 20, "alpha": 0.1, "eta": 0.01}, dims={"D": Xtr.shape[0], "V": Xtr.shape[1]})
    return [row(f"lda Reuters D={Xtr.shape[0]}", "default schedule", fit, wall)]


TASKS = {"gmm-1M": task_gmm, "gmm-svi-10M": task_gmm_svi, "hmm-1M": task_hmm, "lda": task_lda}


def markdown(info, rows):
    lines = [f"# vemppl on {info['device']}", "", f"JAX {info['jax']}, {info['date']}; budget {info['budget']} s.", "",
             "| task | variant | compile s | fit s | wall s | iterations | ELBO |", "| --- | --- | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        if "skipped" in r:
            lines.append(f"| {r['task']} | skipped: {r['skipped']} | | | | | |")
        else:
            lines.append(f"| {r['task']} | {r['variant']} | {r['compile_seconds']} | {r['fit_seconds']} | "
                         f"{r['wall_seconds']} | {r['iterations']} | {r['elbo']:.6g} |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="toy sizes (a smoke test on any machine)")
    ap.add_argument("--budget", type=float, default=420.0, help="seconds after which no new task starts")
    a = ap.parse_args(argv)
    import datetime as dt

    import jax

    dev = jax.devices()[0]
    info = dict(device=f"{dev.platform}: {getattr(dev, 'device_kind', dev)}", jax=jax.__version__, budget=a.budget,
                date=dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"))
    start, rows = time.perf_counter(), []
    for name, task in TASKS.items():
        if time.perf_counter() - start > a.budget:
            rows.append(dict(task=name, skipped=f"the {a.budget:.0f} s budget was spent"))
            continue
        try:
            rows += task(a.quick)
        except Exception as e:  # one failed task must not lose the others' figures
            rows.append(dict(task=name, skipped=f"{type(e).__name__}: {e}"[:200]))
        print(markdown(info, rows), flush=True)
    suffix = "_quick" if a.quick else ""
    write_atomic(HERE / f"results_gpu{suffix}.json", json.dumps(dict(info, rows=rows), indent=1))
    write_atomic(HERE / f"results_gpu{suffix}.md", markdown(info, rows))


if __name__ == "__main__":
    main()
