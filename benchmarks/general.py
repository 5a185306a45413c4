"""The general (non-conjugate) path with no options, against NumPyro's NUTS and SVI on the same data.

    python benchmarks/general.py            # both tasks (about 2-4 minutes on 2 cores)
    python benchmarks/general.py --quick    # a smoke run (small sizes, short chains)

vemppl fits a model that is not conjugate-exponential by natural-gradient steps on the blocks
whose expected log joint is not affine in their statistics (docs/engine.md).  This asks how good
and how fast that fit is when a user writes the model and calls ``vp.fit`` with nothing else:

* **the posterior** against NumPyro's NUTS on the same model and data (1 chain, the reference):
  each coefficient's posterior mean off NUTS's by how many NUTS standard deviations (mean and
  largest over coefficients), and the ratio of standard deviations (mean-field VI is expected
  to under-disperse where the posterior correlates, so the ratio is reported, not judged);
* **held-out log-likelihood per point** of a 20% split, by one function for every system:
  log of the posterior predictive probability, averaged over 400 draws of the coefficients from
  each system's posterior (vemppl's q, SVI's guide, NUTS's samples);
* **time**: vemppl's fit and compile seconds; SVI with ``AutoNormal`` (the same mean-field
  Gaussian family) and Adam(0.01) for ``--svi-steps`` steps, its time including its own
  compilation; NUTS's time.

Tasks:

* ``logreg``: ``models/logreg.vem`` (Bayesian logistic regression with a Gamma precision on the
  weights) on scikit-learn's breast-cancer data (569 × 30, standardised, an intercept column).
* ``glmm``: a Poisson regression with group random intercepts, written below, on data drawn with
  a fixed seed (N = 2000, 40 groups, 3 covariates).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from machine import machine  # noqa: E402
from phases import write_atomic  # noqa: E402

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpyro  # noqa: E402
import numpyro.distributions as dist  # noqa: E402
from numpyro.infer import MCMC, NUTS, SVI, Trace_ELBO  # noqa: E402
from numpyro.infer.autoguide import AutoNormal  # noqa: E402

import vemppl as vp  # noqa: E402

GLMM = """model glmm
dim N, P, J
data X: real[N, P]
data g: int[N]
data y: count[N]
tau ~ Gamma(2, 1)
b0 ~ Normal(0, precision = 0.1)
for j in range(P) { beta[j] ~ Normal(0, precision = 1.0) }
for k in range(J) { u[k] ~ Normal(0, precision = tau) }
for n in range(N) { y[n] ~ Poisson(exp(b0 + dot(X[n], beta) + u[g[n]])) }
"""


def load():
    return [round(x, 2) for x in os.getloadavg()]


# ---- the data --------------------------------------------------------------------------------
def logreg_data(seed=0):
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import train_test_split

    X, y = load_breast_cancer(return_X_y=True)
    X = (X - X.mean(0)) / X.std(0)
    X = np.hstack([np.ones((len(X), 1)), X])
    Xtr, Xte, ytr, yte = train_test_split(X, y.astype(float), test_size=0.2, random_state=seed)
    return dict(X=Xtr, y=ytr), dict(X=Xte, y=yte)


def glmm_data(n=2000, groups=40, p=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    g = rng.integers(0, groups, n)
    u = rng.normal(0, 0.5, groups)
    y = rng.poisson(np.exp(0.3 + X @ np.array([0.5, -0.3, 0.2]) + u[g])).astype(float)
    cut = int(0.8 * n)
    return dict(X=X[:cut], g=g[:cut], y=y[:cut]), dict(X=X[cut:], g=g[cut:], y=y[cut:]), groups


# ---- the same models in NumPyro ------------------------------------------------------------------
def logreg_numpyro(X, y=None):
    tau = numpyro.sample("tau", dist.Gamma(1.0, 1.0))
    w = numpyro.sample("w", dist.Normal(0.0, 1.0 / jnp.sqrt(tau)).expand([X.shape[1]]).to_event(1))
    numpyro.sample("y", dist.Bernoulli(logits=X @ w), obs=y)


def glmm_numpyro(X, g, J, y=None):
    tau = numpyro.sample("tau", dist.Gamma(2.0, 1.0))
    b0 = numpyro.sample("b0", dist.Normal(0.0, 1.0 / np.sqrt(0.1)))
    beta = numpyro.sample("beta", dist.Normal(0.0, 1.0).expand([X.shape[1]]).to_event(1))
    u = numpyro.sample("u", dist.Normal(0.0, 1.0 / jnp.sqrt(tau)).expand([J]).to_event(1))
    numpyro.sample("y", dist.Poisson(jnp.exp(b0 + X @ beta + u[g])), obs=y)


# ---- one held-out measure for every system -------------------------------------------------------
def heldout_logreg(w, test):
    """Mean over test points of log (1/S) Σ_s p(y | x, w_s), ``w``: [S, P] draws."""
    logits = test["X"] @ w.T  # [M, S]
    logp = np.where(test["y"][:, None] > 0, -np.logaddexp(0, -logits), -np.logaddexp(0, logits))
    return float(np.mean(np.logaddexp.reduce(logp, axis=1) - np.log(w.shape[0])))


def heldout_glmm(draws, test):
    """The same for the GLMM; ``draws``: dict of b0 [S], beta [S, P], u [S, J]."""
    from scipy.special import gammaln

    eta = draws["b0"][None, :] + test["X"] @ draws["beta"].T + draws["u"][:, test["g"]].T  # [M, S]
    y = test["y"][:, None]
    logp = y * eta - np.exp(eta) - gammaln(y + 1)
    return float(np.mean(np.logaddexp.reduce(logp, axis=1) - np.log(eta.shape[1])))


def compare(mean, sd, ref_mean, ref_sd) -> dict:
    z = np.abs(mean - ref_mean) / ref_sd
    return dict(mean_z=float(z.mean()), max_z=float(z.max()), sd_ratio=float(np.mean(sd / ref_sd)))


# ---- the systems ---------------------------------------------------------------------------------
def run_vemppl(model, data, consts=None, dims=None):
    t0 = time.perf_counter()
    fit = vp.fit(model, data, consts=consts, dims=dims, progress=False)
    wall = time.perf_counter() - t0
    trace = np.asarray(fit.elbo_trace)
    return fit, dict(fit_seconds=fit.fit_seconds, compile_seconds=fit.compile_seconds, wall_seconds=wall,
                     iterations=int(fit.iterations), converged=bool(fit.converged), elbo=float(fit.elbo),
                     elbo_monotone=bool(np.all(np.diff(trace) >= -1e-9 * np.abs(trace[1:]))))


def run_svi(model, steps, seed, **kw):
    guide = AutoNormal(model)
    svi = SVI(model, guide, numpyro.optim.Adam(0.01), Trace_ELBO())
    t0 = time.perf_counter()
    result = svi.run(jax.random.PRNGKey(seed), steps, progress_bar=False, **kw)
    jax.block_until_ready(result.params)
    seconds = time.perf_counter() - t0
    tail = np.asarray(result.losses[-max(steps // 20, 1):])
    return guide, result.params, dict(fit_seconds=seconds, iterations=steps, elbo=float(-tail.mean()))


def run_nuts(model, warmup, samples, seed, **kw):
    mcmc = MCMC(NUTS(model), num_warmup=warmup, num_samples=samples, progress_bar=False)
    t0 = time.perf_counter()
    mcmc.run(jax.random.PRNGKey(seed), **kw)
    seconds = time.perf_counter() - t0
    return {k: np.asarray(v) for k, v in mcmc.get_samples().items()}, dict(fit_seconds=seconds,
                                                                           iterations=warmup + samples)


def vemppl_draws(fit, names, S, seed=0):
    key = jax.random.PRNGKey(seed)
    out = {}
    for i, n in enumerate(names):
        out[n] = np.asarray(fit.posterior[n].sample(jax.random.fold_in(key, i), (S,)))
    return out


def guide_draws(guide, params, S, seed=0):
    return {k: np.asarray(v) for k, v in guide.sample_posterior(jax.random.PRNGKey(seed), params,
                                                                 sample_shape=(S,)).items()}


# ---- tasks -----------------------------------------------------------------------------------
def task_logreg(quick, svi_steps, S=400):
    train, test = logreg_data()
    if quick:
        train = {k: v[:120, :8] if v.ndim == 2 else v[:120] for k, v in train.items()}
        test = {k: v[:, :8] if v.ndim == 2 else v for k, v in test.items()}
    model = vp.load(HERE.parent / "models" / "logreg.vem")
    ref, nuts_row = run_nuts(logreg_numpyro, *((100, 100) if quick else (1000, 2000)), 0, X=train["X"], y=train["y"])
    fit, row = run_vemppl(model, train)
    guide, params, svi_row = run_svi(logreg_numpyro, svi_steps, 0, X=train["X"], y=train["y"])
    ref_m, ref_s = ref["w"].mean(0), ref["w"].std(0)
    q = fit.posterior["w"]
    svi = guide_draws(guide, params, S)
    rows = [
        dict(system="vemppl (defaults)", **row, **compare(np.asarray(q.mean), np.sqrt(np.asarray(q.variance)), ref_m, ref_s),
             heldout=heldout_logreg(vemppl_draws(fit, ["w"], S)["w"], test)),
        dict(system=f"NumPyro SVI AutoNormal, Adam(0.01), {svi_steps} steps", **svi_row,
             **compare(svi["w"].mean(0), svi["w"].std(0), ref_m, ref_s), heldout=heldout_logreg(svi["w"], test)),
        dict(system="NumPyro NUTS (reference)", **nuts_row, heldout=heldout_logreg(ref["w"][:: max(len(ref["w"]) // S, 1)], test)),
    ]
    return [dict(task="logreg", data=f"breast cancer, N={len(train['y'])}, P={train['X'].shape[1]}", **r) for r in rows]


def task_glmm(quick, svi_steps, S=400):
    train, test, J = glmm_data(n=400 if quick else 2000, groups=10 if quick else 40)
    model = vp.parse(GLMM)
    kw = dict(X=train["X"], g=train["g"], J=J, y=train["y"])
    ref, nuts_row = run_nuts(glmm_numpyro, *((100, 100) if quick else (1000, 2000)), 0, **kw)
    fit, row = run_vemppl(model, train, dims={"J": J})
    guide, params, svi_row = run_svi(glmm_numpyro, svi_steps, 0, **kw)
    svi = guide_draws(guide, params, S)

    def coef(d):  # b0, beta and u side by side: every coefficient of the linear predictor
        return np.concatenate([np.atleast_2d(d["b0"]).reshape(len(d["b0"]), -1), d["beta"], d["u"]], axis=1)

    ref_c = coef(ref)
    mine = vemppl_draws(fit, ["b0", "beta", "u"], S)
    q_mean = np.concatenate([np.atleast_1d(np.asarray(fit.posterior[n].mean)).ravel() for n in ("b0", "beta", "u")])
    q_sd = np.concatenate([np.sqrt(np.atleast_1d(np.asarray(fit.posterior[n].variance))).ravel()
                           for n in ("b0", "beta", "u")])
    thin = {k: v[:: max(len(v) // S, 1)] for k, v in ref.items()}
    rows = [
        dict(system="vemppl (defaults)", **row, **compare(q_mean, q_sd, ref_c.mean(0), ref_c.std(0)),
             heldout=heldout_glmm(mine, test)),
        dict(system=f"NumPyro SVI AutoNormal, Adam(0.01), {svi_steps} steps", **svi_row,
             **compare(coef(svi).mean(0), coef(svi).std(0), ref_c.mean(0), ref_c.std(0)), heldout=heldout_glmm(svi, test)),
        dict(system="NumPyro NUTS (reference)", **nuts_row, heldout=heldout_glmm(thin, test)),
    ]
    return [dict(task="glmm", data=f"Poisson, N={len(train['y'])}, J={J}, P=3", **r) for r in rows]


def fmt(x, spec):
    return "" if x is None else format(x, spec)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--svi-steps", type=int, default=None, help="default 5000 (300 with --quick)")
    args = ap.parse_args(argv)
    steps = args.svi_steps or (300 if args.quick else 5000)
    rows = []
    for task in (task_logreg, task_glmm):
        before = load()
        for r in task(args.quick, steps):
            r["load"] = f"{before} → {load()}"
            rows.append(r)
            print(json.dumps(r), flush=True)
    name = "results_general_quick" if args.quick else "results_general"
    meta = machine(numpyro=numpyro.__version__)
    lines = [f"# The general path with no options against NumPyro ({name})", "",
             f"Machine: {json.dumps(meta)}", "",
             "| task | data | system | fit s | compile s | iterations | held-out log-lik / point | "
             "posterior mean off NUTS (mean / max, NUTS sds) | sd / NUTS sd | ELBO | load |",
             "| --- | --- | --- | ---: | ---: | ---: | ---: | --- | ---: | ---: | --- |"]
    for r in rows:
        off = f"{r['mean_z']:.3f} / {r['max_z']:.3f}" if "mean_z" in r else "(reference)"
        lines.append(f"| {r['task']} | {r['data']} | {r['system']} | {r['fit_seconds']:.2f} | "
                     f"{fmt(r.get('compile_seconds'), '.2f')} | {r['iterations']} | {r['heldout']:.5f} | {off} | "
                     f"{fmt(r.get('sd_ratio'), '.3f')} | {fmt(r.get('elbo'), '.3f')} | {r['load']} |")
    write_atomic(HERE / f"{name}.md", "\n".join(lines) + "\n")
    write_atomic(HERE / f"{name}.json", json.dumps(dict(machine=meta, rows=rows), indent=1))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
