"""Every benchmark task in one command: writes benchmarks/results.md and benchmarks/results.json.

    python benchmarks/run_all.py                       # every task (about 15 minutes on 2 cores)
    python benchmarks/run_all.py --tasks gmm10k,fa     # some tasks; the others keep their last results
    python benchmarks/run_all.py --quick               # smoke run (small sizes) -> results_quick.*

Before/after of a change to vemppl itself (vemppl only, every task re-run, HMM, LDA and vemppl's own
SVI included, which this script reads from files or runs through NumPyro): ``benchmarks/ab.py``.

Tasks (vemppl against its peer, same data, same process):

* ``gmm10k``, ``gmm100k``: Bayesian GMM (N = 10k, D = 5, K = 5; N = 100k, D = 10, K = 10; held out N/5)
  against scikit-learn's ``BayesianGaussianMixture`` with matched priors (``gmm.py``).  The model reads
  ``mu[k] ~ MvNormal(m0, precision = beta0 * Lam[k])``, so the plan makes ``(mu, Lam)`` one Normal–Wishart block,
  the same q(μ, Λ) as scikit-learn's.
* ``digits``: the same GMM on scikit-learn's digits (1797 × 64, 80/20 split), K = 10.
* ``svi``: the marginalised GMM (N = 10k, D = 5, K = 5, same priors) fitted by NumPyro SVI with an ``AutoNormal`` guide:
  full-batch Adam steps until the held-out log-likelihood of its plug-in mixture reaches vemppl's (within 1e-3
  relative), or the best it reaches within the step budget.
* ``fa``: factor analysis (``models/fa.vem``; N = 20k, D = 20, L = 5) against ``sklearn.decomposition.FactorAnalysis``.
* ``hmm``, ``lda``: not re-run here; the rows come from ``results_hmm.json``, ``results_lda.json`` and
  ``results_lda_curve.json`` (``hmm.py``, ``lda.py``, ``lda_curve.py``), with the date of their last commit.

Each run records the load average beside its result (the machine is shared).  The roofline line: the
machine's float64 matrix-multiply rate (JAX, one jitted ``n × n`` product) and, per CAVI fit, the multiply-adds
its E-step needs per iteration (GMM: N·K·D²; FA: N·D·L) divided by the measured seconds per iteration,
as a fraction of that rate.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import gmm as gmm_bench  # noqa: E402  benchmarks/gmm.py
from machine import machine  # noqa: E402

import vemppl as vp  # noqa: E402

TASKS = ("gmm10k", "gmm100k", "digits", "svi", "fa", "hmm", "lda")


def now():
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def load():
    return [round(x, 2) for x in os.getloadavg()]


def median(xs):
    return float(statistics.median(xs))


# ---- the machine's float64 matmul rate ------------------------------------------------


def matmul_rate(n=2000, reps=5):
    """Multiply-adds per second of a jitted float64 ``n × n`` matmul (best of ``reps``), and numpy's."""
    import jax
    import jax.numpy as jnp

    a = jax.random.normal(jax.random.PRNGKey(0), (n, n), dtype=jnp.float64)
    f = jax.jit(lambda a: a @ a)
    f(a).block_until_ready()
    best = min(_timed(lambda: f(a).block_until_ready()) for _ in range(reps))
    an = np.asarray(a)
    best_np = min(_timed(lambda: an @ an) for _ in range(reps))
    return dict(n=n, jax_macs_per_s=n**3 / best, numpy_macs_per_s=n**3 / best_np, loadavg=load())


def _timed(f):
    t0 = time.perf_counter()
    f()
    return time.perf_counter() - t0


# ---- GMM against scikit-learn ---------------------------------------------------------


def _vemppl_sweep_seconds(x, p, seed, n=5):
    """Steady-state seconds per CAVI sweep (n sweeps of the jitted step from a short fit)."""
    consts = {"K": p["k"], "alpha0": p["alpha0"], "beta0": p["beta0"], "nu0": p["nu0"], "m0": p["m0"],
              "W0": np.linalg.inv(p["cov_prior"])}
    fit = vp.fit(gmm_bench.gmm_model(), {"x": x}, consts=consts, seed=seed, max_iter=2, tol=0.0, progress=False)
    return _time_sweeps(fit.engine, fit.state, n)


def _time_sweeps(engine, state, n=5):
    t0 = time.perf_counter()
    for _ in range(n):
        state, elbo = engine.sweep(state)
        float(elbo)
    return (time.perf_counter() - t0) / n


def _sklearn_iteration_seconds(x, p, seed, n=5):
    sk = gmm_bench.BayesianGaussianMixture(
        n_components=p["k"], covariance_type="full", weight_concentration_prior_type="dirichlet_distribution",
        weight_concentration_prior=p["alpha0"], mean_precision_prior=p["beta0"], mean_prior=p["m0"],
        degrees_of_freedom_prior=p["nu0"], covariance_prior=p["cov_prior"], reg_covar=1e-9, max_iter=2, n_init=1,
        random_state=seed)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sk.fit(x)
    t0 = time.perf_counter()
    for _ in range(n):  # the body of scikit-learn's fit loop
        log_prob_norm, log_resp = sk._e_step(x)
        sk._m_step(x, log_resp)
        sk._compute_lower_bound(log_resp, log_prob_norm)
    return (time.perf_counter() - t0) / n


def gmm_task(name, x, y, x_test, y_test, k, repeats, seed=0, max_iter=500, tol=1e-8, ari_of="truth", size=None,
             cov_ridge=0.0):
    p = gmm_bench.priors(x, k)
    if cov_ridge:
        p["cov_prior"] = p["cov_prior"] + cov_ridge * np.eye(x.shape[1])
    lb = load()
    ours = [gmm_bench.run_vemppl(x, p, seed, max_iter, tol)]
    tol_sk = tol * abs(ours[0]["elbo"])
    theirs = []
    for r in range(repeats):  # alternating, so a change in load hits both
        theirs.append(gmm_bench.run_sklearn(x, p, seed, max_iter, tol_sk))
        if r + 1 < repeats:
            ours.append(gmm_bench.run_vemppl(x, p, seed, max_iter, tol))
    v_it = _time_sweeps_from(x, p, seed)
    s_it = _sklearn_iteration_seconds(x, p, seed)
    la = load()
    n, d = x.shape
    macs = n * k * d * d
    rows = []
    for system, runs, per_it in (("vemppl", ours, v_it), ("scikit-learn BayesianGaussianMixture", theirs, s_it)):
        ll, ari = gmm_bench.score(x_test, y_test, *runs[-1]["params"])
        rows.append(dict(
            system=system, compile_seconds=median([r["compile"] for r in runs]), fit_seconds=median([r["fit"] for r in runs]),
            fit_seconds_runs=[r["fit"] for r in runs], wall_seconds=median([r["wall"] for r in runs]),
            iterations=runs[-1]["iterations"], converged=runs[-1]["converged"], seconds_per_iteration=per_it,
            heldout_loglik_per_point=ll, ari=ari, elbo=runs[-1]["elbo"], estep_macs_per_iteration=macs,
        ))
    rows[1]["elbo_note"] = "scikit-learn's lower bound (the ELBO up to additive constants)"
    return dict(task=name, size=size or f"N={n} D={d} K={k}", n=n, n_test=len(x_test), d=d, k=k, date=now(),
                loadavg_before=lb, loadavg_after=la, repeats=repeats, quality=f"held-out log-lik / point; ARI vs {ari_of}",
                tol=tol, tol_sklearn=tol_sk, max_iter=max_iter, rows=rows, peer=rows[1]["system"])


def _time_sweeps_from(x, p, seed):
    return _vemppl_sweep_seconds(x, p, seed)


def digits_data(seed=0):
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    rng = np.random.default_rng(seed)
    idx = rng.permutation(len(X))
    cut = int(0.8 * len(X))
    return X[idx[:cut]].astype(float), y[idx[:cut]], X[idx[cut:]].astype(float), y[idx[cut:]]


# ---- NumPyro SVI on the marginalised GMM ----------------------------------------------


def svi_task(repeats, n=10_000, d=5, k=5, seed=0, max_steps=20_000, chunk=250, lr=0.05, budget=300.0, rel=1e-3):
    import jax
    import jax.numpy as jnp
    import numpyro
    import numpyro.distributions as dist
    from numpyro.infer import SVI, Trace_ELBO
    from numpyro.infer.autoguide import AutoNormal
    from numpyro.infer.initialization import init_to_value
    from sklearn.cluster import kmeans_plusplus

    x, y, x_test, y_test = gmm_bench.make_data(n, n // 5, d, k, seed)
    p = gmm_bench.priors(x, k)
    W0 = np.linalg.inv(p["cov_prior"])
    lb = load()
    ours = gmm_bench.run_vemppl(x, p, seed, 500, 1e-8)
    target, _ = gmm_bench.score(x_test, y_test, *ours["params"])
    threshold = target - rel * abs(target)

    def model(x):
        pi = numpyro.sample("pi", dist.Dirichlet(jnp.full(k, p["alpha0"])))
        with numpyro.plate("k", k):
            Lam = numpyro.sample("Lam", dist.Wishart(p["nu0"], scale_matrix=jnp.asarray(W0)))
            mu = numpyro.sample("mu", dist.MultivariateNormal(jnp.asarray(p["m0"]), precision_matrix=p["beta0"] * Lam))
        with numpyro.plate("n", x.shape[0]):
            numpyro.sample("x", dist.MixtureSameFamily(dist.Categorical(pi), dist.MultivariateNormal(mu, precision_matrix=Lam)),
                           obs=x)

    centres, _ = kmeans_plusplus(x, k, random_state=seed)
    init = dict(pi=jnp.full(k, 1.0 / k), mu=jnp.asarray(centres), Lam=jnp.broadcast_to(p["nu0"] * W0, (k, d, d)))
    guide = AutoNormal(model, init_loc_fn=init_to_value(values=init))
    svi = SVI(model, guide, numpyro.optim.Adam(lr), Trace_ELBO())
    xj = jnp.asarray(x)

    def run_chunk(state):
        def body(_, carry):
            s, _ = carry
            s, loss = svi.update(s, xj)
            return s, loss
        return jax.lax.fori_loop(0, chunk, body, (state, jnp.zeros(())))

    runs = []
    for r in range(repeats):
        state = svi.init(jax.random.PRNGKey(seed + r), xj)
        t0 = time.perf_counter()
        step = jax.jit(run_chunk).lower(state).compile()
        compile_s = time.perf_counter() - t0
        fit_s, steps, best, reached, trace = 0.0, 0, -np.inf, None, []
        best_at = (0, 0.0, float('nan'), float('nan'))
        while steps < max_steps and fit_s < budget:
            t0 = time.perf_counter()
            state, loss = step(state)
            loss = float(loss)
            fit_s += time.perf_counter() - t0
            steps += chunk
            med = guide.median(svi.get_params(state))
            ll, ari = gmm_bench.score(x_test, y_test, np.asarray(med["pi"]), np.asarray(med["mu"]),
                                      np.linalg.inv(np.asarray(med["Lam"])))
            trace.append((steps, fit_s, ll, -loss))
            if ll > best:
                best, best_at = ll, (steps, fit_s, ari, -loss)
            if ll >= threshold:
                reached = (steps, fit_s)
                break
        runs.append(dict(compile=compile_s, fit=fit_s, steps=steps, best=best, best_at=best_at, reached=reached, trace=trace))
    la = load()
    last = runs[-1]
    v_ll, v_ari = gmm_bench.score(x_test, y_test, *ours["params"])
    rows = [
        dict(system="vemppl (CAVI)", compile_seconds=ours["compile"], fit_seconds=ours["fit"], fit_seconds_runs=[ours["fit"]],
             iterations=ours["iterations"], converged=ours["converged"], heldout_loglik_per_point=v_ll, ari=v_ari,
             elbo=ours["elbo"]),
        dict(system="NumPyro SVI, AutoNormal", compile_seconds=median([r["compile"] for r in runs]),
             fit_seconds=median([r["fit"] for r in runs]), fit_seconds_runs=[r["fit"] for r in runs],
             iterations=last["steps"], converged=last["reached"] is not None, heldout_loglik_per_point=last["best"],
             ari=last["best_at"][2], elbo=last["best_at"][3], reached_target=last["reached"] is not None,
             steps_to_best=last["best_at"][0], seconds_to_best=last["best_at"][1], trace=last["trace"],
             elbo_note="minus the SVI loss (one-draw Monte Carlo ELBO) at the best held-out point"),
    ]
    return dict(task="svi", size=f"N={n} D={d} K={k}", n=n, n_test=len(x_test), d=d, k=k, date=now(), loadavg_before=lb,
                loadavg_after=la, repeats=repeats, rows=rows, peer=rows[1]["system"],
                quality="held-out log-lik / point; ARI vs truth",
                protocol=(f"full-batch Adam({lr}) steps in jitted chunks of {chunk}; held-out log-lik of the guide's median "
                          f"plug-in mixture after each chunk; stop when within {rel:g} relative of vemppl's "
                          f"({threshold:.4f}) or after {max_steps} steps / {budget:.0f} s; mu starts at k-means++ centres, "
                          "Lam at the prior mean, pi uniform"))


# ---- factor analysis ------------------------------------------------------------------


def fa_data(n, n_test, d, l, seed=0):
    rng = np.random.default_rng(seed)
    W = rng.normal(size=(d, l))
    noise = rng.uniform(0.2, 1.0, size=d)
    m = rng.normal(size=d)
    z = rng.normal(size=(n + n_test, l))
    x = m + z @ W.T + rng.normal(size=(n + n_test, d)) * np.sqrt(noise)
    return x[:n], x[n:]


def fa_loglik(x, W, noise_var, m):
    from scipy.stats import multivariate_normal

    return float(np.mean(multivariate_normal(m, W @ W.T + np.diag(noise_var)).logpdf(x)))


def fa_task(repeats, n=20_000, d=20, l=5, seed=0, max_iter=1000, tol=1e-8):
    from sklearn.decomposition import FactorAnalysis

    x, x_test = fa_data(n, n // 4, d, l, seed)
    model = vp.load(HERE.parent / "models" / "fa.vem")
    lb = load()

    def ours():
        t0 = time.perf_counter()
        f = vp.fit(model, {"x": x}, consts={"L": l}, seed=seed, max_iter=max_iter, tol=tol, progress=False)
        wall = time.perf_counter() - t0
        P = f.params
        W, psi, m = (np.asarray(P[k]) for k in ("W", "psi", "m"))
        return dict(compile=f.compile_seconds, fit=f.fit_seconds, wall=wall, iterations=int(f.iterations),
                    converged=bool(f.converged), elbo=float(f.elbo), ll=fa_loglik(x_test, W, 1 / psi, m), fit_obj=f)

    def theirs(tol_abs):
        fa = FactorAnalysis(n_components=l, tol=tol_abs, max_iter=max_iter, svd_method="lapack", random_state=seed)
        t0 = time.perf_counter()
        fa.fit(x)
        wall = time.perf_counter() - t0
        return dict(compile=0.0, fit=wall, wall=wall, iterations=int(fa.n_iter_), converged=fa.n_iter_ < max_iter,
                    elbo=float(fa.loglike_[-1]), ll=fa_loglik(x_test, fa.components_.T, fa.noise_variance_, fa.mean_))

    a = [ours()]
    tol_sk = tol * abs(a[0]["elbo"])
    b = []
    for r in range(repeats):
        b.append(theirs(tol_sk))
        if r + 1 < repeats:
            a.append(ours())
    f = a[-1].pop("fit_obj")
    for r in a:
        r.pop("fit_obj", None)
    # The fit runs on the plate's second moments (engine/moment_rows.py): its sweeps cost D², not N
    # rows, and f.engine is the every-row engine built after it (its sweep never ran and would time
    # its own compilation).  Seconds per iteration are the fit's own, and the N·D·L E-step roofline
    # does not apply.
    per_it = f.fit_seconds / max(int(f.iterations), 1)
    la = load()
    rows = []
    for system, runs, it_s in (("vemppl", a, per_it), ("scikit-learn FactorAnalysis", b, None)):
        rows.append(dict(system=system, compile_seconds=median([r["compile"] for r in runs]),
                         fit_seconds=median([r["fit"] for r in runs]), fit_seconds_runs=[r["fit"] for r in runs],
                         iterations=runs[-1]["iterations"], converged=runs[-1]["converged"],
                         heldout_loglik_per_point=runs[-1]["ll"], elbo=runs[-1]["elbo"], seconds_per_iteration=it_s,
                         estep_macs_per_iteration=None))
    rows[1]["elbo_note"] = "scikit-learn's final log-likelihood (vemppl's ELBO equals it at q(h) = p(h | x))"
    return dict(task="fa", size=f"N={n} D={d} L={l}", n=n, n_test=len(x_test), d=d, date=now(), loadavg_before=lb,
                loadavg_after=la, repeats=repeats, rows=rows, peer=rows[1]["system"], quality="held-out log-lik / point",
                tol=tol, tol_sklearn=tol_sk, max_iter=max_iter,
                protocol="W, psi, m point estimates (EM) in both; sklearn svd_method='lapack', tol = tol·|ELBO| absolute; "
                "vemppl with no options but tol, fitted on the data's second moments (engine/moment_rows.py), "
                "so seconds per iteration are its fit's and no E-step roofline applies")


# ---- HMM and LDA from their own scripts' results --------------------------------------


def _committed(path):
    try:
        date = subprocess.run(["git", "log", "-1", "--format=%ad", "--date=format:%Y-%m-%d %H:%M", "--", path.name],
                              cwd=path.parent, capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", path.name], cwd=path.parent, capture_output=True,
                               text=True).stdout.strip()
    except OSError:
        return "unknown"
    return (date or "uncommitted") + (" (working tree differs from that commit)" if dirty else "")


def hmm_rows():
    path = HERE / "results_hmm.json"
    res = json.loads(path.read_text())
    out = []
    for run in res["runs"]:
        rows = []
        for key, system in (("vemppl", "vemppl"), ("hmmlearn", "hmmlearn VariationalGaussianHMM")):
            r = run[key]
            rows.append(dict(system=system, compile_seconds=r["compile_seconds"], fit_seconds=r["fit_seconds"],
                             fit_seconds_runs=r["fit_seconds_runs"], iterations=r["iterations"], converged=r["converged"],
                             heldout_loglik_per_point=r["heldout_loglik_per_step"], elbo=r["elbo"],
                             seconds_per_iteration=r["seconds_per_iteration"]))
        out.append(dict(task="hmm", size=f"T={run['t']} K={res['config']['k']} D={res['config']['d']}", date=_committed(path),
                        source="results_hmm.json (benchmarks/hmm.py)", repeats=res["config"]["repeats"], rows=rows,
                        peer=rows[1]["system"], quality="held-out log-lik / step", loadavg_before=None))
    return out


def lda_rows():
    path = HERE / "results_lda.json"
    res = json.loads(path.read_text())
    c = res["config"]
    rows = []
    for key, system in (("vemppl", "vemppl"), ("sklearn_batch", "scikit-learn LDA, batch"),
                        ("sklearn_online", "scikit-learn LDA, online")):
        r = res[key]
        rows.append(dict(system=system, compile_seconds=r["compile_seconds"], fit_seconds=r["fit_seconds"],
                         fit_seconds_runs=[r["fit_seconds"]], iterations=r["iterations"], converged=r["converged"],
                         perplexity=r["heldout_plugin_perplexity"], bound_perplexity=r["heldout_bound_perplexity"],
                         elbo=r["train_bound"]))
    return [dict(task="lda", size=f"Reuters D={c['n_train']} V={c['v']} K={c['k']}", date=_committed(path),
                 source="results_lda.json (benchmarks/lda.py)", repeats=1, rows=rows, peer=rows[1]["system"],
                 quality="held-out plug-in perplexity (lower is better)", loadavg_before=None,
                 protocol=f"best of {c['restarts']} seeds, fit time summed over the seeds")]


def at_plateau(settings, within=1e-3):
    """The cheapest of one system's stopping settings whose mean held-out perplexity is within
    ``within`` (relative) of the best that system reached on the ladder."""
    best = min(r["mean_perplexity"] for r in settings)
    ok = [r for r in settings if r["mean_perplexity"] <= best * (1 + within)]
    return min(ok, key=lambda r: r["fit_seconds"])


def lda_curve_rows():
    """From results_lda_curve.json (benchmarks/lda_curve.py): each system at the cheapest stopping
    rule that puts its mean held-out perplexity within 0.1% of its own best on the ladder."""
    path = HERE / "results_lda_curve.json"
    if not path.exists():
        return []
    res = json.loads(path.read_text())
    c = res["config"]
    rows = []
    for system, name in (("vemppl", "vemppl"), ("sklearn_batch", "scikit-learn LDA, batch")):
        r = at_plateau([x for x in res["settings"] if x["system"] == system])
        stop = f"tol {r['setting']:g}" if system == "vemppl" else f"{r['setting']} iterations"
        rows.append(dict(system=f"{name} ({stop})", compile_seconds=r["compile_seconds"], fit_seconds=r["fit_seconds"],
                         fit_seconds_runs=[r["fit_seconds"]], iterations=round(r["mean_iterations"], 1), converged=True,
                         perplexity=r["mean_perplexity"], elbo=r["mean_score"]))
    return [dict(task="lda", size=f"Reuters D={c['n_train']} V={c['v']} K={c['k']}, each at its plateau",
                 date=_committed(path), source="results_lda_curve.json (benchmarks/lda_curve.py)", repeats=1, rows=rows,
                 peer=rows[1]["system"], quality="mean held-out plug-in perplexity over the seeds", loadavg_before=None,
                 protocol=(f"{c['seeds']} seeds; each system at the cheapest of its stopping rules whose mean held-out "
                           "perplexity is within 0.1% of its best on the ladder (vemppl tol "
                           f"{', '.join(f'{t:g}' for t in c['tols'])}; scikit-learn {', '.join(map(str, c['iters']))} "
                           "iterations); fit time summed over the seeds, compile time summed over vemppl's fits; ELBO "
                           "column: mean training bound by scikit-learn's score at each system's topics"))]


# ---- report ---------------------------------------------------------------------------


def _fmt(v, spec):
    return "–" if v is None else format(v, spec)


def markdown(res) -> str:
    mach, mm = res["machine"], res.get("matmul")
    lines = [
        "# Benchmarks: vemppl against its peers",
        "",
        f"Written by `python benchmarks/run_all.py`. Machine: {mach['nproc']} CPUs, {mach['cpu']}; JAX {mach['jax']} (CPU, "
        "float64). The machine is shared: the load average (1, 5, 15 min) before and after each task is in its row's "
        "last column, and timings taken under a load above the CPU count are indicative only.",
        "",
    ]
    if mm:
        same_cpu = [m for m in res.get("matmul_runs", [mm]) if m.get("cpu") == mm.get("cpu")] or [mm]
        lines += [f"**Roofline.** float64 matmul ({mm['n']}×{mm['n']}): {mm['jax_macs_per_s'] / 1e9:.2f} G multiply-adds/s "
                  f"with JAX, {mm['numpy_macs_per_s'] / 1e9:.2f} G with NumPy (the fastest of {len(same_cpu)} "
                  f"measurements on this CPU model, one per run_all call; this one {mm.get('date', '')}, load "
                  f"{', '.join(map(str, mm['loadavg']))}; under load it fell to "
                  f"{min(m['jax_macs_per_s'] for m in same_cpu) / 1e9:.2f} G on this CPU). *E-step fraction* = (multiply-adds the E-step needs per "
                  "iteration: N·K·D² for a full-covariance GMM, N·D·L for FA) / (seconds per iteration) / the JAX rate.", ""]
    lines += [
        "| task | size | system | compile s | fit s | iterations | s / iteration | E-step fraction | quality | ELBO | "
        "fit ratio vemppl / peer | date, load |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | --- |",
    ]
    notes = []
    for name in TASKS:
        for t in res["tasks"].get(name, []):
            rows = t["rows"]
            v = rows[0]
            for r in rows:
                if "perplexity" in r:
                    q = f"perplexity {r['perplexity']:.1f}"
                else:
                    q = f"{r['heldout_loglik_per_point']:.4f}"
                    if r.get("ari") is not None:
                        q += f", ARI {r['ari']:.3f}"
                runs = r.get("fit_seconds_runs") or []
                fit = f"{r['fit_seconds']:.2f}" + (f" (median of {len(runs)})" if len(runs) > 1 else " (1 run)")
                frac = None
                if r.get("estep_macs_per_iteration") and r.get("seconds_per_iteration") and mm:
                    frac = r["estep_macs_per_iteration"] / r["seconds_per_iteration"] / mm["jax_macs_per_s"]
                ratio = "" if r is v else f"{v['fit_seconds'] / r['fit_seconds']:.2g}"
                if r is not v and r.get("seconds_per_iteration") and v.get("seconds_per_iteration"):
                    ratio += f" (per iteration {v['seconds_per_iteration'] / r['seconds_per_iteration']:.2f})"
                when = t["date"] + (f"; load {'/'.join(map(str, t['loadavg_before']))} → "
                                    f"{'/'.join(map(str, t['loadavg_after']))}" if t.get("loadavg_before") else "")
                if t.get("matmul_at_run"):
                    when += f"; matmul then {t['matmul_at_run']['jax_macs_per_s'] / 1e9:.1f} G/s"
                if r is not v:
                    when = ""
                lines.append(
                    f"| {t['task'] if r is v else ''} | {t['size'] if r is v else ''} | {r['system']} | "
                    f"{r['compile_seconds']:.2f} | {fit} | {r['iterations']}{'' if r['converged'] else ' (not converged)'} | "
                    f"{_fmt(r.get('seconds_per_iteration'), '.4f')} | {_fmt(frac, '.1%' if frac is None or frac >= 0.001 else '.3%')} | {q} | {r['elbo']:.6g} | {ratio} | {when} |")
            if t.get("source"):
                notes.append(f"* **{t['task']} {t['size']}**: from `{t['source']}`, committed {t['date']}; not re-run by run_all.")
            if t.get("protocol"):
                notes.append(f"* **{t['task']} {t['size']}**: {t['protocol']}.")
            for r in rows:
                if r.get("elbo_note"):
                    notes.append(f"* {t['task']} {t['size']}, {r['system']} ELBO: {r['elbo_note']}.")
            if t["task"] == "svi":
                s = rows[1]
                notes.append(
                    f"* svi: NumPyro {'reached' if s['reached_target'] else 'did not reach'} vemppl's held-out "
                    f"log-likelihood; best {s['heldout_loglik_per_point']:.4f} after {s['steps_to_best']} steps "
                    f"({s['seconds_to_best']:.1f} s) against vemppl's {v['heldout_loglik_per_point']:.4f} in "
                    f"{v['fit_seconds']:.2f} s (+ {v['compile_seconds']:.2f} s compile).")
    lines += ["", "Fit seconds exclude compilation everywhere (vemppl: the first sweep and the first call of the prior start, traced and compiled; NumPyro: the "
              "ahead-of-time compile of its step). *s / iteration*: steady-state time of one more iteration from the fitted "
              "state (vemppl's jitted sweep; scikit-learn's E-step, M-step and bound). Ratios below 1: vemppl is faster.",
              "", *notes, ""]
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", default=",".join(TASKS), help=f"comma-separated subset of {','.join(TASKS)}")
    ap.add_argument("--repeats", type=int, default=3, help="timing repeats (gmm100k: --repeats-large)")
    ap.add_argument("--repeats-large", type=int, default=1, help="repeats for GMM N = 100k (each ~1-3 min per system)")
    ap.add_argument("--quick", action="store_true", help="smoke run: small sizes, one repeat, results_quick.*")
    ap.add_argument("--report-only", action="store_true", help="rewrite results.md from results.json, run nothing")
    args = ap.parse_args(argv)
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    unknown = set(tasks) - set(TASKS)
    if unknown:
        ap.error(f"unknown tasks: {sorted(unknown)}")
    stem = "results_quick" if args.quick else "results"
    path = HERE / f"{stem}.json"
    res = json.loads(path.read_text()) if path.exists() else {"tasks": {}}
    if args.report_only:
        (HERE / f"{stem}.md").write_text(markdown(res))
        return 0
    import sklearn

    res["machine"] = machine(sklearn=sklearn.__version__)
    mm = dict(matmul_rate(), date=now(), cpu=res["machine"]["cpu"])
    print(f"matmul: {mm['jax_macs_per_s'] / 1e9:.2f} G multiply-adds/s (JAX), load {mm['loadavg']}", flush=True)
    # The roofline is the machine's rate, not a loaded moment's: keep every measurement, use the fastest
    # taken on this CPU model (sessions may run on different machines; untagged runs are not this one's).
    res["matmul_runs"] = [m for m in res.get("matmul_runs", [res["matmul"]] if "matmul" in res else [])] + [mm]
    res["matmul"] = max((m for m in res["matmul_runs"] if m.get("cpu") == mm["cpu"]), key=lambda m: m["jax_macs_per_s"])
    rep = 1 if args.quick else args.repeats
    for name in tasks:
        t0 = time.perf_counter()
        if name == "gmm10k":
            n, d, k = (2000, 5, 5) if args.quick else (10_000, 5, 5)
            out = [gmm_task(name, *gmm_bench.make_data(n, n // 5, d, k, 0), k, rep)]
        elif name == "gmm100k":
            n, d, k = (5000, 10, 10) if args.quick else (100_000, 10, 10)
            out = [gmm_task(name, *gmm_bench.make_data(n, n // 5, d, k, 0), k, 1 if args.quick else args.repeats_large)]
        elif name == "digits":
            out = [gmm_task(name, *digits_data(), 10, rep, ari_of="digit labels", size="1437 train + 360 held out, D=64 K=10",
                            cov_ridge=1e-1)]
            out[0]["protocol"] = ("covariance_prior = data covariance + 0.1 I for both (the digits' covariance is singular: "
                                  "constant border pixels); ARI against the digit labels")
        elif name == "svi":
            out = [svi_task(1, n=2000, max_steps=1000) if args.quick else svi_task(1)]
        elif name == "fa":
            out = [fa_task(rep, n=2000, d=10, l=3) if args.quick else fa_task(rep)]
        elif name == "hmm":
            out = hmm_rows()
        else:
            out = lda_rows() + lda_curve_rows()
        for t in out if name not in ("hmm", "lda") else ():  # those two were run by their own scripts
            t.setdefault("matmul_at_run", mm)
        res["tasks"][name] = out
        print(f"{name}: {time.perf_counter() - t0:.1f} s", flush=True)
        path.write_text(json.dumps(res, indent=1, default=float) + "\n")
        (HERE / f"{stem}.md").write_text(markdown(res))
    print(markdown(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
