"""Bayesian Gaussian mixture: vemppl against scikit-learn's BayesianGaussianMixture.

    python benchmarks/gmm.py            # N = 100k train + 20k held out, D = 10, K = 10
    python benchmarks/gmm.py --n 20000  # another training size
    python benchmarks/gmm.py --quick    # a smoke run (N = 2000, D = 5, K = 5, one timing run)

Both systems fit the same model with the same priors (Bishop, PRML §10.2):
π ~ Dir(α0 1), Λ_k ~ W(ν0, W0), μ_k | Λ_k ~ N(m0, (β0 Λ_k)⁻¹), with W0 = covariance_prior⁻¹
and scikit-learn's defaults for m0 (the data mean) and covariance_prior (the data
covariance).  Both use the joint Normal–Wishart q(μ_k, Λ_k): vemppl derives it from the
graph (μ_k's prior precision is β0 Λ_k), so an iteration of each is the same fixed-point map
and their sweep counts differ only by the start (each system's own k-means).

Stopping rule: vemppl stops by its default rule at tol (engine/loop.py::converged: the change
and the gain its rate forecasts within tol·|ELBO| at two consecutive sweeps; |ΔELBO| <=
tol·|ELBO| alone before 2026-12-07); scikit-learn when |Δ lower bound| < tol_sk, its bound
being the ELBO up to additive constants.  tol_sk = tol·|ELBO| (vemppl's final ELBO of the
first run) puts the same absolute threshold on the change.  Same
iteration budget, one initialisation each (n_init = 1, restarts = 1), same seed.

Reported per system: compile seconds (vemppl: the first sweep, which includes tracing and
XLA compilation; scikit-learn: 0), fit seconds (median of the runs; vemppl's
``fit.fit_seconds`` excludes the first sweep), the whole call's wall time (vemppl: building
the plan, binding the data, compiling and fitting), iterations,
held-out log-likelihood per point under the plug-in posterior means (one function for both)
and the adjusted Rand index of the MAP assignments against the true labels.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from scipy.special import logsumexp
from sklearn.metrics import adjusted_rand_score
from sklearn.mixture import BayesianGaussianMixture

import vemppl as vp
from machine import machine  # benchmarks/machine.py, beside this script

HERE = Path(__file__).resolve().parent


def gmm_model() -> vp.Model:
    """The Bayesian GMM with scikit-learn's Normal–Wishart prior structure, priors as consts."""
    m = vp.Model("gmm")
    N, D = m.dim("N", "D")
    K = m.const("K", 3)
    alpha0 = m.const("alpha0", 1.0)
    m0 = m.const("m0", vp.zeros(D))
    beta0 = m.const("beta0", 1.0)
    nu0 = m.const("nu0", D + 2)
    W0 = m.const("W0", vp.eye(D))
    m.data("x", vp.real[N, D])
    pi = m.sample("pi", vp.Dirichlet(vp.fill(alpha0, K)))
    with m.plate("k", K):
        Lam = m.sample("Lam", vp.Wishart(nu0, W0))
        mu = m.sample("mu", vp.MvNormal(m0, precision=beta0 * Lam))
    with m.plate("n", N):
        z = m.sample("z", vp.Categorical(pi))
        m.sample("x", vp.MvNormal(mu[z], precision=Lam[z]))
    return m


# ---- data -----------------------------------------------------------------------------


def make_data(n_train: int, n_test: int, d: int, k: int, seed: int):
    """K Gaussian clusters with random full covariances; centres spread so that they are
    well separated but not trivially so."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0.0, 3.0, size=(k, d))
    covs = []
    for _ in range(k):
        a = rng.normal(size=(d, d))
        covs.append(a @ a.T / d + 0.3 * np.eye(d))
    weights = rng.dirichlet(np.full(k, 5.0))
    n = n_train + n_test
    labels = rng.choice(k, size=n, p=weights)
    chol = np.linalg.cholesky(np.stack(covs))
    x = centres[labels] + np.einsum("nij,nj->ni", chol[labels], rng.normal(size=(n, d)))
    return x[:n_train], labels[:n_train], x[n_train:], labels[n_train:]


# ---- one scoring function for both ----------------------------------------------------


def plug_in_scores(x, weights, means, covs):
    """Per-point log-likelihood and MAP component of a Gaussian mixture with these parameters."""
    d = x.shape[1]
    chol = np.linalg.cholesky(covs)  # [K, D, D]
    logdet = 2.0 * np.sum(np.log(np.diagonal(chol, axis1=-2, axis2=-1)), -1)
    comp = []
    for k in range(len(weights)):
        r = np.linalg.solve(chol[k], (x - means[k]).T)  # [D, N]
        comp.append(-0.5 * (np.sum(r * r, 0) + logdet[k] + d * np.log(2 * np.pi)))
    joint = np.stack(comp, -1) + np.log(weights)
    return logsumexp(joint, -1), np.argmax(joint, -1)


def score(x_test, y_test, weights, means, covs):
    ll, assign = plug_in_scores(x_test, np.asarray(weights), np.asarray(means), np.asarray(covs))
    return float(np.mean(ll)), float(adjusted_rand_score(y_test, assign))


# ---- the two systems ------------------------------------------------------------------


def priors(x, k):
    d = x.shape[1]
    cov_prior = np.atleast_2d(np.cov(x.T))
    return dict(alpha0=1.0, beta0=1.0, nu0=float(d + 2), m0=x.mean(0), cov_prior=cov_prior, k=k)


def run_vemppl(x, p, seed, max_iter, tol):
    consts = {"K": p["k"], "alpha0": p["alpha0"], "beta0": p["beta0"], "nu0": p["nu0"], "m0": p["m0"],
              "W0": np.linalg.inv(p["cov_prior"])}
    t0 = time.perf_counter()
    fit = vp.fit(gmm_model(), {"x": x}, consts=consts, seed=seed, restarts=1, max_iter=max_iter, tol=tol,
                 progress=False)
    wall = time.perf_counter() - t0
    weights = np.asarray(fit.posterior["pi"].mean)
    means = np.asarray(fit.posterior["mu"].mean)
    covs = np.linalg.inv(np.asarray(fit.mean_params["Lam"]["mean"]))
    return dict(compile=fit.compile_seconds, fit=fit.fit_seconds, wall=wall, iterations=int(fit.iterations),
                converged=bool(fit.converged), elbo=float(fit.elbo), params=(weights, means, covs))


def run_sklearn(x, p, seed, max_iter, tol_abs):
    sk = BayesianGaussianMixture(
        n_components=p["k"], covariance_type="full", weight_concentration_prior_type="dirichlet_distribution",
        weight_concentration_prior=p["alpha0"], mean_precision_prior=p["beta0"], mean_prior=p["m0"],
        degrees_of_freedom_prior=p["nu0"], covariance_prior=p["cov_prior"], reg_covar=1e-9,
        max_iter=max_iter, tol=tol_abs, n_init=1, random_state=seed,
    )
    t0 = time.perf_counter()
    sk.fit(x)
    wall = time.perf_counter() - t0
    return dict(compile=0.0, fit=wall, wall=wall, iterations=int(sk.n_iter_), converged=bool(sk.converged_),
                elbo=float(sk.lower_bound_), params=(sk.weights_, sk.means_, sk.covariances_))


def summarise(runs, x_test, y_test):
    last = runs[-1]
    ll, ari = score(x_test, y_test, *last["params"])
    med = lambda key: float(statistics.median(r[key] for r in runs))  # noqa: E731
    return dict(
        compile_seconds=med("compile"), fit_seconds=med("fit"), wall_seconds=med("wall"),
        fit_seconds_runs=[r["fit"] for r in runs], iterations=last["iterations"], converged=last["converged"],
        heldout_loglik_per_point=ll, heldout_ari=ari,
    )


# ---- machine and report ---------------------------------------------------------------


def across_seeds(x, p, x_test, y_test, seed, count, max_iter, tol, tol_sk):
    """One fit per initialisation seed for each system on the same data: a mixture's optimum
    and its number of sweeps depend on the start, so one seed is a draw, not a measurement."""
    rows = []
    for s in range(seed, seed + count):
        row = dict(seed=s)
        for name, run in (("vemppl", lambda: run_vemppl(x, p, s, max_iter, tol)),
                          ("sklearn", lambda: run_sklearn(x, p, s, max_iter, tol_sk))):
            r = run()
            ll, ari = score(x_test, y_test, *r["params"])
            row[name] = dict(fit_seconds=r["fit"], iterations=r["iterations"], heldout_loglik_per_point=ll, heldout_ari=ari)
        rows.append(row)
        print(f"seed {s}: " + ", ".join(f"{n} {row[n]['iterations']} its {row[n]['fit_seconds']:.1f} s "
                                        f"ll {row[n]['heldout_loglik_per_point']:.4f}" for n in ("vemppl", "sklearn")),
              flush=True)
    total = {n: sum(r[n]["fit_seconds"] for r in rows) for n in ("vemppl", "sklearn")}
    its = {n: sum(r[n]["iterations"] for r in rows) for n in ("vemppl", "sklearn")}
    return dict(rows=rows, total_fit_seconds=total, total_iterations=its,
                ratio_total_fit=total["vemppl"] / total["sklearn"],
                ratio_per_iteration=(total["vemppl"] / its["vemppl"]) / (total["sklearn"] / its["sklearn"]),
                mean_heldout_loglik={n: float(np.mean([r[n]["heldout_loglik_per_point"] for r in rows]))
                                     for n in ("vemppl", "sklearn")},
                best_heldout_loglik={n: float(max(r[n]["heldout_loglik_per_point"] for r in rows))
                                     for n in ("vemppl", "sklearn")})


def machine_info():
    import sklearn

    return machine(python=platform.python_version(), sklearn=sklearn.__version__, platform=platform.platform())


def markdown(res) -> str:
    v, s, cfg, mach = res["vemppl"], res["sklearn"], res["config"], res["machine"]
    rows = [
        ("compile (s)", f"{v['compile_seconds']:.2f}", f"{s['compile_seconds']:.2f}"),
        (f"fit (s), median of {cfg['repeats']}", f"{v['fit_seconds']:.2f}", f"{s['fit_seconds']:.2f}"),
        (f"fit (s), fastest of {cfg['repeats']}", f"{min(v['fit_seconds_runs']):.2f}", f"{min(s['fit_seconds_runs']):.2f}"),
        ("fit (s), each repeat", " / ".join(f"{t:.1f}" for t in v["fit_seconds_runs"]),
         " / ".join(f"{t:.1f}" for t in s["fit_seconds_runs"])),
        ("whole call (s), median", f"{v['wall_seconds']:.2f}", f"{s['wall_seconds']:.2f}"),
        ("iterations", str(v["iterations"]), str(s["iterations"])),
        ("converged", str(v["converged"]), str(s["converged"])),
        ("held-out log-lik / point", f"{v['heldout_loglik_per_point']:.4f}", f"{s['heldout_loglik_per_point']:.4f}"),
        ("held-out ARI", f"{v['heldout_ari']:.4f}", f"{s['heldout_ari']:.4f}"),
    ]
    load = mach.get("loadavg_before")
    lines = [
        "# GMM benchmark: vemppl vs scikit-learn BayesianGaussianMixture",
        "",
        f"N = {cfg['n_train']} train + {cfg['n_test']} held out, D = {cfg['d']}, K = {cfg['k']}, seed {cfg['seed']}, "
        f"max_iter {cfg['max_iter']}, tol {cfg['tol']:g} relative (scikit-learn: {cfg['tol_sklearn']:.4g} absolute), "
        "one initialisation each.",
        "",
        f"Machine: {mach['nproc']} CPUs, {mach['cpu']}; Python {mach['python']}, JAX {mach['jax']}, "
        f"scikit-learn {mach['sklearn']}. Load average before the run: "
        + (", ".join(f"{x:.2f}" for x in load) if load else "unknown")
        + ("." if not res.get("noisy") else f". {res['noisy']}"),
        "",
        "| | vemppl | scikit-learn |",
        "| --- | ---: | ---: |",
        *[f"| {a} | {b} | {c} |" for a, b, c in rows],
        "",
        f"Fit-time ratio vemppl / scikit-learn: {res['ratio_fit']:.2f} (fit only, medians), "
        f"{res['ratio_fit_fastest']:.2f} (fit only, fastest repeats), "
        f"{res['ratio_wall']:.2f} (whole call, vemppl including compilation).",
        "",
    ]
    if "seeds" in res:
        sd = res["seeds"]
        lines += [
            f"## Across {len(sd['rows'])} initialisation seeds (same data, one fit per seed and system)",
            "",
            "| seed | vemppl sweeps | vemppl fit (s) | vemppl held-out ll | scikit-learn iterations | scikit-learn fit (s) | scikit-learn held-out ll |",
            "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
            *[f"| {r['seed']} | {r['vemppl']['iterations']} | {r['vemppl']['fit_seconds']:.1f} | "
              f"{r['vemppl']['heldout_loglik_per_point']:.4f} | {r['sklearn']['iterations']} | "
              f"{r['sklearn']['fit_seconds']:.1f} | {r['sklearn']['heldout_loglik_per_point']:.4f} |" for r in sd["rows"]],
            "",
            f"Total fit time vemppl / scikit-learn: **{sd['ratio_total_fit']:.2f}** "
            f"({sd['total_fit_seconds']['vemppl']:.0f} s / {sd['total_fit_seconds']['sklearn']:.0f} s; "
            f"{1 / sd['ratio_total_fit']:.1f}x faster); per iteration {sd['ratio_per_iteration']:.2f}. "
            f"Held-out log-likelihood per point, mean over seeds: vemppl {sd['mean_heldout_loglik']['vemppl']:.4f}, "
            f"scikit-learn {sd['mean_heldout_loglik']['sklearn']:.4f}; best seed: "
            f"{sd['best_heldout_loglik']['vemppl']:.4f} / {sd['best_heldout_loglik']['sklearn']:.4f}.",
            "",
        ]
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000, help="training points (held out: n/5)")
    ap.add_argument("--d", type=int, default=10)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-iter", type=int, default=500)
    ap.add_argument("--tol", type=float, default=1e-8, help="vemppl's relative ELBO tolerance")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seeds", type=int, default=1,
                    help="also fit once per initialisation seed seed..seed+S-1 (same data) and report the spread")
    ap.add_argument("--quick", action="store_true", help="smoke run: N = 2000, D = 5, K = 5, one repeat")
    ap.add_argument("--out", type=Path, default=HERE, help="directory for results_gmm.{json,md} (results_gmm_quick.* with --quick)")
    args = ap.parse_args(argv)
    if args.quick:
        args.n, args.d, args.k, args.repeats, args.max_iter = 2000, 5, 5, 1, 200

    load_before = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    x, y, x_test, y_test = make_data(args.n, max(args.n // 5, 1), args.d, args.k, args.seed)
    p = priors(x, args.k)

    # Repeats alternate between the systems, so a change in the machine's load hits both.
    ours, theirs = [run_vemppl(x, p, args.seed, args.max_iter, args.tol)], []
    tol_sk = args.tol * abs(ours[0]["elbo"])
    for r in range(args.repeats):
        theirs.append(run_sklearn(x, p, args.seed, args.max_iter, tol_sk))
        if r + 1 < args.repeats:
            ours.append(run_vemppl(x, p, args.seed, args.max_iter, args.tol))
    load_after = list(os.getloadavg()) if hasattr(os, "getloadavg") else None

    res = dict(
        config=dict(n_train=args.n, n_test=len(x_test), d=args.d, k=args.k, seed=args.seed, max_iter=args.max_iter,
                    tol=args.tol, tol_sklearn=tol_sk, repeats=args.repeats, quick=args.quick),
        machine=dict(machine_info(), loadavg_before=load_before, loadavg_after=load_after),
        vemppl=summarise(ours, x_test, y_test),
        sklearn=summarise(theirs, x_test, y_test),
    )
    res["vemppl"]["elbo"] = ours[-1]["elbo"]
    if args.seeds > 1:
        res["seeds"] = across_seeds(x, p, x_test, y_test, args.seed, args.seeds, args.max_iter, args.tol, tol_sk)
    res["ratio_fit"] = res["vemppl"]["fit_seconds"] / res["sklearn"]["fit_seconds"]
    res["ratio_fit_fastest"] = min(res["vemppl"]["fit_seconds_runs"]) / min(res["sklearn"]["fit_seconds_runs"])
    res["ratio_wall"] = res["vemppl"]["wall_seconds"] / res["sklearn"]["wall_seconds"]
    busy = [a for a in (load_before or []) + (load_after or [])[:1] if a > 0.5 * (os.cpu_count() or 1)]
    spread = max((max(r["fit_seconds_runs"]) / max(min(r["fit_seconds_runs"]), 1e-9)) for r in (res["vemppl"], res["sklearn"]))
    if busy or spread > 1.25:
        res["noisy"] = (
            "Timings may be noisy: another process was loading the CPU during the run "
            f"(load average up to {max((load_before or [0]) + (load_after or [0])):.2f} on {os.cpu_count()} CPUs; "
            f"slowest/fastest repeat up to {spread:.2f}x)."
        )
    md = markdown(res)
    print(md)
    args.out.mkdir(parents=True, exist_ok=True)
    stem = "results_gmm_quick" if args.quick else "results_gmm"  # a smoke run never overwrites the results
    (args.out / f"{stem}.json").write_text(json.dumps(res, indent=2) + "\n")
    (args.out / f"{stem}.md").write_text(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
