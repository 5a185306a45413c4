"""Variational Gaussian HMM: vemppl against hmmlearn's VariationalGaussianHMM.

    python benchmarks/hmm.py             # T = 10k and 100k training steps, K = 4, D = 3
    python benchmarks/hmm.py --t 50000   # one other length
    python benchmarks/hmm.py --quick     # a smoke run (T = 2000, one timing run)
    python benchmarks/hmm.py --seeds 5   # and, at the longest T, one fit per seed 0..4 for each system
    python benchmarks/hmm.py --chain parallel   # vemppl's log2(T)-deep tree forward-backward

Both systems fit the same model with the same priors (Beal 2003, ch. 3; hmmlearn's
Normal–Wishart form): π0 ~ Dir(1), A_k ~ Dir(1), Λ_k ~ W(D + 2, I), μ_k | Λ_k ~ N(0, (Λ_k)⁻¹).
Both use the joint Normal–Wishart q(μ_k, Λ_k): vemppl derives it from the graph (μ_k's prior
precision is Λ_k), so an iteration of each is the same fixed-point map and the sweep counts
differ by the start alone (tests/test_hmm.py: the two bounds agree to 1e-5).

Stopping rule: vemppl stops by its default rule at tol (engine/loop.py::converged: the change
and the gain its rate forecasts within tol·|ELBO| at two consecutive sweeps; |ΔELBO| <=
tol·|ELBO| alone before 2026-12-07); hmmlearn when its bound gains less than tol_hmmlearn =
tol·|ELBO| (vemppl's final ELBO), the same absolute threshold on the change; the same
max_iter.  One initialisation each with the same seed: vemppl's k-means++ seeding of q(z),
hmmlearn's k-means of the means.

Reported per system and length: compile seconds (vemppl: its first sweep, which includes
tracing and XLA compilation; hmmlearn: 0), fit seconds (vemppl's ``fit.fit_seconds``, the
sweeps after the first, with the initialisation; hmmlearn's ``fit``, with its k-means),
seconds per iteration at steady state (5 more iterations timed from the fitted state),
iterations, and the held-out log-likelihood per
step of a second sequence of T/5 steps under the plug-in posterior means (E[π0], E[A], E[μ],
E[Λ]⁻¹), computed by one function (the forward algorithm of hmmlearn's GaussianHMM) for both.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from hmmlearn.hmm import GaussianHMM
from hmmlearn.vhmm import VariationalGaussianHMM

from machine import float32_from_argv, machine  # benchmarks/machine.py, beside this script

float32_from_argv(sys.argv)  # before vemppl is imported
import vemppl as vp  # noqa: E402

HERE = Path(__file__).resolve().parent

MODEL = """
model hmm_nw
dim T, D
const K = 4
data x: real[T, D]

pi0 ~ Dirichlet(ones(K))
for k in range(K) {
    A[k]   ~ Dirichlet(ones(K))
    Lam[k] ~ Wishart(D + 2, eye(D))
    mu[k]  ~ MvNormal(zeros(D), precision = Lam[k])
}
z[0] ~ Categorical(pi0)
for t in range(1, T) { z[t] ~ Categorical(A[z[t-1]]) }
for t in range(T)    { x[t] ~ MvNormal(mu[z[t]], precision = Lam[z[t]]) }
"""


def make_hmm(k: int, d: int, seed: int):
    """A sticky HMM with means 2.5 standard deviations apart on average and random covariances."""
    rng = np.random.default_rng(seed)
    trans = np.full((k, k), 0.1 / (k - 1)) + np.eye(k) * (0.9 - 0.1 / (k - 1))
    means = rng.normal(0.0, 2.0, size=(k, d))
    covs = []
    for _ in range(k):
        a = rng.normal(size=(d, d))
        covs.append(a @ a.T / d + 0.3 * np.eye(d))
    return np.full(k, 1.0 / k), trans, means, np.stack(covs)


def sample(params, t: int, seed: int):
    start, trans, means, covs = params
    rng = np.random.default_rng(seed)
    k, d = means.shape
    u = rng.random(t)
    z = np.empty(t, int)
    z[0] = rng.choice(k, p=start)
    cum = np.cumsum(trans, 1)
    for i in range(1, t):
        z[i] = min(int(np.searchsorted(cum[z[i - 1]], u[i])), k - 1)
    chol = np.linalg.cholesky(covs)
    return means[z] + np.einsum("tij,tj->ti", chol[z], rng.normal(size=(t, d)))


def heldout_loglik(x, start, trans, means, covs):
    """log p(x) per step under an HMM with these parameters (hmmlearn's forward algorithm)."""
    h = GaussianHMM(len(start), covariance_type="full")
    h.n_features = x.shape[1]
    h.startprob_, h.transmat_, h.means_, h.covars_ = start, trans, means, covs
    return float(h.score(x)) / len(x)


def run_vemppl(x, k, seed, max_iter, tol, chain="sequential"):
    t0 = time.perf_counter()
    fit = vp.fit(vp.parse(MODEL), {"x": x}, consts={"K": k}, seed=seed, max_iter=max_iter, tol=tol, progress=False,
                 algorithm=vp.cavi(chain=chain))
    wall = time.perf_counter() - t0
    per_iteration = _time_sweeps(fit)
    post = fit.posterior
    params = (
        np.asarray(post["pi0"].mean), np.asarray(post["A"].mean), np.asarray(fit.mean_params["mu"]["mean"]),
        np.linalg.inv(np.asarray(fit.mean_params["Lam"]["mean"])),
    )
    return dict(compile=fit.compile_seconds, fit=fit.fit_seconds, wall=wall, iterations=int(fit.iterations),
                converged=bool(fit.converged), elbo=float(fit.elbo), params=params, per_iteration=per_iteration)


def _time_sweeps(fit, n=5):
    """Steady-state seconds per iteration: n more sweeps from the fitted state."""
    state = fit.state
    t0 = time.perf_counter()
    for _ in range(n):
        state, elbo = fit.engine.sweep(state)
        float(elbo)
    return (time.perf_counter() - t0) / n


def run_hmmlearn(x, k, seed, max_iter, tol_abs):
    d = x.shape[1]
    h = VariationalGaussianHMM(
        k, covariance_type="full", startprob_prior=1.0, transmat_prior=1.0, means_prior=np.zeros((k, d)),
        beta_prior=np.ones(k), dof_prior=np.full(k, d + 2.0), scale_prior=np.broadcast_to(np.eye(d), (k, d, d)).copy(),
        n_iter=max_iter, tol=tol_abs, random_state=seed, implementation="log",
    )
    t0 = time.perf_counter()
    h.fit(x)
    wall = time.perf_counter() - t0
    bound = h.monitor_.history[-1] - len(x) * d / 2 * np.log(2 * np.pi)  # hmmlearn drops this constant
    params = (h.startprob_, h.transmat_, h.means_posterior_, h.covars_)
    res = dict(compile=0.0, fit=wall, wall=wall, iterations=len(h.monitor_.history), converged=bool(h.monitor_.converged),
               elbo=float(bound), params=params)
    # Steady-state seconds per iteration: 5 more iterations of fit's loop body from the fitted
    # state (hmmlearn's fit would rerun its k-means even with init_params="").
    lengths = np.asarray([len(x)])
    t0 = time.perf_counter()
    for _ in range(5):
        stats, logprob = h._do_estep(x, lengths)
        h._compute_lower_bound(logprob)
        h._do_mstep(stats)
    res["per_iteration"] = (time.perf_counter() - t0) / 5
    return res


def summarise(runs, x_test):
    last = runs[-1]
    med = lambda key: float(statistics.median(r[key] for r in runs))  # noqa: E731
    return dict(
        compile_seconds=med("compile"), fit_seconds=med("fit"), wall_seconds=med("wall"),
        fit_seconds_runs=[r["fit"] for r in runs], iterations=last["iterations"], converged=last["converged"],
        elbo=last["elbo"], heldout_loglik_per_step=heldout_loglik(x_test, *last["params"]),
        seconds_per_iteration=med("per_iteration"),
    )


def across_seeds(x, x_test, k, seed, count, max_iter, tol):
    """One fit per initialisation seed for each system on the same sequence: which optimum a
    start reaches, and in how many sweeps, depends on the seed, so one seed is a draw."""
    rows = []
    for s in range(seed, seed + count):
        ours = run_vemppl(x, k, s, max_iter, tol)
        theirs = run_hmmlearn(x, k, s, max_iter, tol * abs(ours["elbo"]))
        row = dict(seed=s)
        for name, r in (("vemppl", ours), ("hmmlearn", theirs)):
            row[name] = dict(fit_seconds=r["fit"], iterations=r["iterations"], elbo=r["elbo"],
                             heldout_loglik_per_step=heldout_loglik(x_test, *r["params"]))
        rows.append(row)
        print(f"seed {s}: " + ", ".join(f"{n} {row[n]['iterations']} its {row[n]['fit_seconds']:.2f} s "
                                        f"ELBO {row[n]['elbo']:.1f}" for n in ("vemppl", "hmmlearn")), flush=True)
    names = ("vemppl", "hmmlearn")
    total = {n: sum(r[n]["fit_seconds"] for r in rows) for n in names}
    best = max(r[n]["elbo"] for r in rows for n in names)
    return dict(t=len(x), rows=rows, total_fit_seconds=total, ratio_total_fit=total["vemppl"] / total["hmmlearn"],
                best_elbo=best,
                # a fit 'reached the best optimum' when its ELBO is within the stopping threshold of the best
                at_best={n: sum(abs(r[n]["elbo"] - best) <= 10 * tol * abs(best) for r in rows) for n in names},
                mean_heldout_loglik={n: float(np.mean([r[n]["heldout_loglik_per_step"] for r in rows])) for n in names})


def machine_info():
    import hmmlearn

    return machine(hmmlearn=hmmlearn.__version__)


def markdown(res) -> str:
    cfg, mach = res["config"], res["machine"]
    lines = [
        "# HMM benchmark: vemppl vs hmmlearn VariationalGaussianHMM",
        "",
        f"K = {cfg['k']}, D = {cfg['d']}, seed {cfg['seed']}, max_iter {cfg['max_iter']}, tol {cfg['tol']:g} relative "
        f"(hmmlearn: the same absolute threshold), one initialisation each; vemppl in {cfg.get('vemppl_dtype', 'float64')}, "
        f"chain={cfg.get('chain', 'sequential')}; "
        "held out: a second sequence of T/5 steps. "
        f"Machine: {mach['nproc']} CPUs, {mach['cpu']}; JAX {mach['jax']}, hmmlearn {mach['hmmlearn']}.",
        "",
        "| T | system | compile (s) | fit (s) | s / iteration | iterations | converged | ELBO | held-out log-lik / step |",
        "| ---: | --- | ---: | ---: | ---: | ---: | --- | ---: | ---: |",
    ]
    for run in res["runs"]:
        for name in ("vemppl", "hmmlearn"):
            r = run[name]
            lines.append(
                f"| {run['t']} | {name} | {r['compile_seconds']:.2f} | {r['fit_seconds']:.2f} | {r['seconds_per_iteration']:.4f} | "
                f"{r['iterations']} | {r['converged']} | {r['elbo']:.6g} | {r['heldout_loglik_per_step']:.4f} |"
            )
    lines.append("")
    for run in res["runs"]:
        lines.append(
            f"T = {run['t']}: fit-time ratio vemppl / hmmlearn {run['ratio_fit']:.2f} (fit only), "
            f"{run['ratio_wall']:.2f} (whole call, vemppl including compilation); per iteration "
            f"{run['ratio_per_iteration']:.2f}; held-out log-lik / step difference {run['heldout_diff']:+.4f}."
        )
    lines.append("")
    if "seeds" in res:
        sd = res["seeds"]
        lines += [
            f"## Across {len(sd['rows'])} initialisation seeds at T = {sd['t']} (same data, one fit per seed and system)",
            "",
            "| seed | vemppl sweeps | vemppl fit (s) | vemppl ELBO | hmmlearn iterations | hmmlearn fit (s) | hmmlearn ELBO |",
            "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
            *[f"| {r['seed']} | {r['vemppl']['iterations']} | {r['vemppl']['fit_seconds']:.2f} | {r['vemppl']['elbo']:.1f} | "
              f"{r['hmmlearn']['iterations']} | {r['hmmlearn']['fit_seconds']:.2f} | {r['hmmlearn']['elbo']:.1f} |"
              for r in sd["rows"]],
            "",
            f"Total fit time vemppl / hmmlearn: **{sd['ratio_total_fit']:.2f}** "
            f"({sd['total_fit_seconds']['vemppl']:.1f} s / {sd['total_fit_seconds']['hmmlearn']:.1f} s). "
            f"Seeds reaching the best ELBO found ({sd['best_elbo']:.1f}): vemppl {sd['at_best']['vemppl']}, "
            f"hmmlearn {sd['at_best']['hmmlearn']} of {len(sd['rows'])}. Held-out log-lik / step, mean over seeds: "
            f"vemppl {sd['mean_heldout_loglik']['vemppl']:.4f}, hmmlearn {sd['mean_heldout_loglik']['hmmlearn']:.4f}.",
            "",
        ]
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--t", type=int, nargs="*", default=[10_000, 100_000], help="training lengths")
    ap.add_argument("--k", type=int, default=4)
    ap.add_argument("--d", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-iter", type=int, default=200)
    ap.add_argument("--tol", type=float, default=1e-7, help="vemppl's relative ELBO tolerance")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--seeds", type=int, default=1,
                    help="also fit the longest T once per seed (seed, seed+1, ...) for each system")
    ap.add_argument("--float32", action="store_true", help="vemppl in float32 (VEMPPL_X64=0); results_hmm_float32.*")
    ap.add_argument("--chain", choices=("sequential", "parallel"), default="sequential",
                    help="vemppl's forward-backward (vp.cavi(chain=)); results_hmm_parallel.* for parallel")
    ap.add_argument("--quick", action="store_true", help="smoke run: T = 2000")
    ap.add_argument("--out", type=Path, default=HERE)
    args = ap.parse_args(argv)
    if args.quick:
        args.t, args.repeats, args.max_iter = [2000], 1, 100

    truth = make_hmm(args.k, args.d, args.seed)
    runs = []
    for t in args.t:
        x = sample(truth, t, args.seed + 1)
        x_test = sample(truth, max(t // 5, 2), args.seed + 2)
        ours = [run_vemppl(x, args.k, args.seed, args.max_iter, args.tol, args.chain) for _ in range(args.repeats)]
        tol_abs = args.tol * abs(ours[0]["elbo"])
        theirs = [run_hmmlearn(x, args.k, args.seed, args.max_iter, tol_abs) for _ in range(args.repeats)]
        run = dict(t=t, t_test=len(x_test), tol_hmmlearn=tol_abs, vemppl=summarise(ours, x_test),
                   hmmlearn=summarise(theirs, x_test))
        v, h = run["vemppl"], run["hmmlearn"]
        run["ratio_fit"] = v["fit_seconds"] / h["fit_seconds"]
        run["ratio_wall"] = v["wall_seconds"] / h["wall_seconds"]
        run["ratio_per_iteration"] = v["seconds_per_iteration"] / h["seconds_per_iteration"]
        run["heldout_diff"] = v["heldout_loglik_per_step"] - h["heldout_loglik_per_step"]
        runs.append(run)
        print(f"T = {t}: vemppl fit {v['fit_seconds']:.2f}s ({v['iterations']} it), hmmlearn {h['fit_seconds']:.2f}s "
              f"({h['iterations']} it); held-out {v['heldout_loglik_per_step']:.4f} vs {h['heldout_loglik_per_step']:.4f}",
              flush=True)
    res = dict(
        config=dict(t=args.t, k=args.k, d=args.d, seed=args.seed, max_iter=args.max_iter, tol=args.tol,
                    repeats=args.repeats, quick=args.quick, seeds=args.seeds,
                    vemppl_dtype="float32" if args.float32 else "float64", chain=args.chain),
        machine=machine_info(), runs=runs,
    )
    if args.seeds > 1:
        t = max(args.t)
        res["seeds"] = across_seeds(sample(truth, t, args.seed + 1), sample(truth, max(t // 5, 2), args.seed + 2),
                                    args.k, args.seed, args.seeds, args.max_iter, args.tol)
    md = markdown(res)
    print(md)
    args.out.mkdir(parents=True, exist_ok=True)
    stem = (("results_hmm_quick" if args.quick else "results_hmm") + ("_float32" if args.float32 else "")
            + ("_parallel" if args.chain == "parallel" else ""))
    (args.out / f"{stem}.json").write_text(json.dumps(res, indent=2) + "\n")
    (args.out / f"{stem}.md").write_text(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
