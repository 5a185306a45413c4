"""Time per CAVI iteration against N, K, D (GMM) and T (HMM), with the peers beside it.

    python benchmarks/scaling.py          # writes results_scaling.json and docs/scaling.png (~10 min on 2 cores)
    python benchmarks/scaling.py --quick  # small sizes, results_scaling_quick.json, no plot

vemppl: a short fit (two sweeps, the first compiles), then the steady-state seconds of ``--sweeps`` more
sweeps of the jitted step.  scikit-learn / hmmlearn: the body of their fit loop (E-step, M-step, bound)
timed the same way from a two-iteration fit.  The load average is recorded before and after each sweep of
sizes (the machine is shared).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import gmm as gmm_bench  # noqa: E402
import hmm as hmm_bench  # noqa: E402
from machine import machine  # noqa: E402
from run_all import _sklearn_iteration_seconds, _time_sweeps, load, matmul_rate, now  # noqa: E402

import vemppl as vp  # noqa: E402


def gmm_point(n, d, k, sweeps, peer=True):
    x, _, _, _ = gmm_bench.make_data(n, 1, d, k, 0)
    p = gmm_bench.priors(x, k)
    consts = {"K": k, "alpha0": p["alpha0"], "beta0": p["beta0"], "nu0": p["nu0"], "m0": p["m0"],
              "W0": np.linalg.inv(p["cov_prior"])}
    f = vp.fit(gmm_bench.gmm_model(), {"x": x}, consts=consts, seed=0, max_iter=2, tol=0.0, progress=False)
    out = dict(n=n, d=d, k=k, vemppl=_time_sweeps(f.engine, f.state, sweeps), compile=f.compile_seconds)
    if peer:
        out["sklearn"] = _sklearn_iteration_seconds(x, p, 0, n=max(1, sweeps // 2))
    return out


def hmm_point(t, sweeps, k=4, d=3, peer=True):
    from hmmlearn.vhmm import VariationalGaussianHMM

    x = hmm_bench.sample(hmm_bench.make_hmm(k, d, 0), t, 1)
    f = vp.fit(vp.parse(hmm_bench.MODEL), {"x": x}, consts={"K": k}, seed=0, max_iter=2, tol=0.0, progress=False)
    out = dict(t=t, k=k, d=d, vemppl=_time_sweeps(f.engine, f.state, sweeps), compile=f.compile_seconds)
    if peer:
        h = VariationalGaussianHMM(k, covariance_type="full", n_iter=2, random_state=0, implementation="log")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            h.fit(x)
        lengths = np.asarray([len(x)])
        t0 = time.perf_counter()
        n = max(1, sweeps // 2)
        for _ in range(n):
            stats, logprob = h._do_estep(x, lengths)
            h._compute_lower_bound(logprob)
            h._do_mstep(stats)
        out["hmmlearn"] = (time.perf_counter() - t0) / n
    return out


def slope(xs, ys):
    return float(np.polyfit(np.log(xs), np.log(ys), 1)[0])


def plot(res, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    fig, axes = plt.subplots(1, 4, figsize=(16, 3.8))
    panels = [("N", "n", res["gmm_n"], "sklearn", "GMM, D = 10, K = 10"),
              ("K", "k", res["gmm_k"], "sklearn", f"GMM, N = {res['gmm_k'][0]['n']}, D = 10"),
              ("D", "d", res["gmm_d"], "sklearn", f"GMM, N = {res['gmm_d'][0]['n']}, K = 10"),
              ("T", "t", res["hmm_t"], "hmmlearn", "HMM, K = 4, D = 3")]
    for ax, (label, key, pts, peer, title) in zip(axes, panels):
        for sys_, style in (("vemppl", "o-"), (peer, "s--")):
            xs = [p[key] for p in pts if sys_ in p]
            ys = [p[sys_] for p in pts if sys_ in p]
            if len(ys) > 1:
                ax.loglog(xs, ys, style, label=f"{sys_} (log-log slope {slope(xs, ys):.2f})")
        ax.set_xticks([p[key] for p in pts])
        ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:,.0f}"))
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.tick_params(axis="x", labelsize=7)
        ax.set_xlabel(label)
        ax.set_title(title, fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    axes[0].set_ylabel("seconds per iteration")
    load = max(max(res[k + "_load"]["before"][0], res[k + "_load"]["after"][0]) for k in ("gmm_n", "gmm_k", "gmm_d", "hmm_t"))
    fig.suptitle(f"Time per CAVI iteration, {res['machine']['nproc']} CPU cores, float64 ({res['date']}, shared machine: "
                 f"1-min load average up to {load:.1f})", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sweeps", type=int, default=4)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--plot-only", action="store_true", help="redraw docs/scaling.png from results_scaling.json")
    args = ap.parse_args(argv)
    if args.plot_only:
        plot(json.loads((HERE / "results_scaling.json").read_text()), HERE.parent / "docs" / "scaling.png")
        return 0
    if args.quick:
        ns, ks, ds, ts, nk, nd = [1000, 3000], [2, 4], [2, 4], [1000, 3000], 2000, 2000
    else:
        ns = [10_000, 30_000, 100_000, 300_000, 1_000_000]
        ks, ds = [2, 5, 10, 20, 40], [2, 5, 10, 20, 40]
        nk = nd = 30_000
        ts = [1_000, 3_000, 10_000, 30_000, 100_000, 300_000]
    res = dict(machine=machine(), date=now(), matmul=matmul_rate(), sweeps=args.sweeps)
    for name, fn in (("gmm_n", lambda: [gmm_point(n, 10, 10, args.sweeps, peer=n <= 300_000) for n in ns]),
                     ("gmm_k", lambda: [gmm_point(nk, 10, k, args.sweeps) for k in ks]),
                     ("gmm_d", lambda: [gmm_point(nd, d, 10, args.sweeps) for d in ds]),
                     ("hmm_t", lambda: [hmm_point(t, args.sweeps) for t in ts])):
        lb, t0 = load(), time.perf_counter()
        res[name] = fn()
        res[name + "_load"] = dict(before=lb, after=load(), seconds=time.perf_counter() - t0)
        print(name, json.dumps(res[name]), res[name + "_load"], flush=True)
    stem = "results_scaling_quick" if args.quick else "results_scaling"
    (HERE / f"{stem}.json").write_text(json.dumps(res, indent=1) + "\n")
    if not args.quick:
        plot(res, HERE.parent / "docs" / "scaling.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
