"""LDA on the Reuters corpus shipped with the `lda` package: vemppl against scikit-learn.

    python benchmarks/lda.py            # 395 documents, 4258 words, K = 20, 90/10 document split
    python benchmarks/lda.py --quick    # a smoke run (60 documents, K = 5, few iterations)

The model is models/lda.vem (token form: one categorical z per token) with K = 20,
α = 0.1 (doc_topic_prior), η = 0.01 (topic_word_prior), the same for every system:
vemppl, scikit-learn's ``LatentDirichletAllocation(learning_method="batch")`` and
``learning_method="online"``.  Each system is run from ``--restarts`` seeds and the run
with the best training bound is kept (vemppl: ``restarts=``, best ELBO; scikit-learn: its
``score``, the same variational bound).

Held-out evaluation, one procedure for every system: the topics are q(β) = Dir(λ)
(scikit-learn's ``components_``, vemppl's posterior concentration), put into one
scikit-learn estimator; each held-out document's θ is folded in by scikit-learn's E-step
(``exp E[log β]`` fixed, its default iterations and tolerance).  Reported:

* *plug-in perplexity*: ``exp(−Σ_dw n_dw log Σ_k θ̂_dk β̂_kw / N)`` with θ̂ the normalised
  fold-in γ and β̂ = E[β];
* *bound perplexity*: ``exp(−Σ_d ELBO_d / N)``, ELBO_d the document's variational bound
  with E[log β] (Blei, Ng & Jordan 2003, §7.1) — scikit-learn's ``perplexity`` without
  its topic-level term, which it divides by the held-out word count only.

Times: vemppl's compile (first sweep) separately from its fit (the sweeps after it,
with the initialisation); scikit-learn's ``fit``.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
from scipy.special import digamma, gammaln, logsumexp

from machine import float32_from_argv, machine  # benchmarks/machine.py, beside this script
from phases import write_atomic  # benchmarks/phases.py

float32_from_argv(sys.argv)  # before vemppl is imported
import vemppl as vp  # noqa: E402

HERE = Path(__file__).resolve().parent
MODELS = HERE.parent / "models"


def e_log_dirichlet(c):
    return digamma(c) - digamma(c.sum(-1, keepdims=True))


def with_topics(sk, lam):
    """A copy of a fitted scikit-learn LDA whose q(β) is Dir(lam)."""
    m = copy.deepcopy(sk)
    m.components_ = np.asarray(lam, dtype=float)
    m.exp_dirichlet_component_ = np.exp(e_log_dirichlet(m.components_))
    return m


def heldout_perplexities(model, X):
    """(plug-in perplexity, bound perplexity) of the documents X under ``model``'s topics."""
    gamma = model._unnormalized_transform(X)  # the fold-in E-step, gamma_d per document
    elog_theta, elog_beta = e_log_dirichlet(gamma), e_log_dirichlet(model.components_)
    alpha, k = model.doc_topic_prior_, gamma.shape[1]
    bound = 0.0
    for d in range(X.shape[0]):
        ids = np.nonzero(X[d])[0]
        bound += X[d, ids] @ logsumexp(elog_theta[d][:, None] + elog_beta[:, ids], axis=0)
    bound += np.sum((alpha - gamma) * elog_theta) + np.sum(gammaln(gamma) - gammaln(alpha))
    bound += np.sum(gammaln(alpha * k) - gammaln(gamma.sum(1)))
    theta = gamma / gamma.sum(1, keepdims=True)
    beta = model.components_ / model.components_.sum(1, keepdims=True)
    n = X.sum()
    return float(np.exp(-np.sum(X * np.log(theta @ beta)) / n)), float(np.exp(-bound / n))


def scored(shell, topics, Xtr, Xte):
    """(held-out plug-in perplexity, training bound) at ``topics``, one procedure for every
    system: the topics put into the scikit-learn estimator ``shell``, the bound its ``score``."""
    m = with_topics(shell, topics)
    return heldout_perplexities(m, Xte)[0], float(m.score(Xtr))


def _lda_package():
    """The `lda` package, not this script (which has its name and sits first on sys.path)."""
    import importlib

    saved_path, saved_mod = sys.path[:], sys.modules.pop("lda", None)
    sys.path[:] = [p for p in sys.path if Path(p or os.getcwd()).resolve() != HERE]
    try:
        return importlib.import_module("lda.datasets")
    finally:
        sys.path[:] = saved_path
        if saved_mod is not None and not hasattr(saved_mod, "datasets"):
            sys.modules["lda_benchmark_script"] = saved_mod


def reuters(n_docs=None, seed=0):
    X = _lda_package().load_reuters().astype(float)
    if n_docs is not None:
        X = X[:n_docs]
        X = X[:, X.sum(0) > 0]
    perm = np.random.default_rng(seed).permutation(X.shape[0])
    n_train = int(0.9 * X.shape[0])
    return X[perm[:n_train]], X[perm[n_train:]]


def tokens(X):
    d, w = np.nonzero(X)
    c = X[d, w].astype(int)
    return np.repeat(d, c), np.repeat(w, c)


def fit_vemppl_seed(Xtr, k, alpha, eta, seed, max_iter, tol, start="random-globals", local_iter=10, local_tol=None,
                    local_restart=False):
    """One vemppl fit from ``seed``."""
    doc, word = tokens(Xtr)
    t0 = time.perf_counter()
    fit = vp.fit(vp.load(MODELS / "lda.vem"), {"doc": doc, "word": word},
                 consts={"K": k, "alpha": alpha, "eta": eta}, dims={"D": Xtr.shape[0], "V": Xtr.shape[1]},
                 seed=seed, max_iter=max_iter, tol=tol, progress=False,
                 algorithm=vp.cavi(start=start, local_iter=local_iter, local_tol=local_tol, local_restart=local_restart))
    import jax.numpy as jnp

    rounding = 1e-9 if jnp.asarray(1.0).dtype == np.float64 else 1e-5  # relative ELBO round-off allowed
    trace = np.asarray(fit.elbo_trace)
    return dict(wall=time.perf_counter() - t0, compile_seconds=fit.compile_seconds, fit_seconds=fit.fit_seconds,
                iterations=int(fit.iterations), converged=bool(fit.converged), bound=float(fit.elbo),
                monotone=bool(np.all(np.diff(trace) >= -rounding * np.abs(trace[1:]))),
                topics=np.asarray(fit.posterior["beta"].concentration))


def summarise_vemppl(runs):
    """The runs of several seeds as one row: times summed, the best ELBO's fit kept."""
    best = max(runs, key=lambda r: r["bound"])
    return dict(compile_seconds=runs[0]["compile_seconds"], fit_seconds=sum(r["fit_seconds"] for r in runs),
                wall_seconds=sum(r["wall"] for r in runs), iterations=best["iterations"],
                converged=best["converged"], train_bound=best["bound"],
                elbo_monotone=all(r["monotone"] for r in runs),
                topics=best["topics"], seed_topics=[r["topics"] for r in runs], seed_bounds=[r["bound"] for r in runs])


def run_vemppl(Xtr, k, alpha, eta, seed, restarts, max_iter, tol, start="random-globals", local_iter=10, local_tol=None,
               local_restart=False):
    """One fit per seed (``seed, seed+1, ...``, as scikit-learn's ``random_state``); the best ELBO is kept."""
    return summarise_vemppl([fit_vemppl_seed(Xtr, k, alpha, eta, seed + r, max_iter, tol, start, local_iter, local_tol,
                                             local_restart) for r in range(restarts)])


def fit_sklearn_seed(Xtr, k, alpha, eta, seed, max_iter, method):
    """One scikit-learn fit from ``random_state=seed``; its bound is its ``score``."""
    from sklearn.decomposition import LatentDirichletAllocation

    sk = LatentDirichletAllocation(k, doc_topic_prior=alpha, topic_word_prior=eta, learning_method=method,
                                   max_iter=max_iter, random_state=seed)
    t0 = time.perf_counter()
    sk.fit(Xtr)
    seconds = time.perf_counter() - t0
    return dict(estimator=sk, fit_seconds=seconds, bound=float(sk.score(Xtr)))


def summarise_sklearn(runs):
    best = max(runs, key=lambda r: r["bound"])
    seconds = sum(r["fit_seconds"] for r in runs)
    sk = best["estimator"]
    return dict(compile_seconds=0.0, fit_seconds=seconds, wall_seconds=seconds, iterations=int(sk.n_iter_),
                converged=None, train_bound=best["bound"], topics=sk.components_, estimator=sk,
                seed_topics=[r["estimator"].components_ for r in runs], seed_bounds=[r["bound"] for r in runs])


def run_sklearn(Xtr, k, alpha, eta, seed, restarts, max_iter, method):
    return summarise_sklearn([fit_sklearn_seed(Xtr, k, alpha, eta, seed + r, max_iter, method) for r in range(restarts)])


def markdown(res) -> str:
    cfg = res["config"]
    lines = [
        "# LDA benchmark: vemppl vs scikit-learn LatentDirichletAllocation (Reuters, `lda` package)",
        "",
        f"{cfg['n_train']} training + {cfg['n_test']} held-out documents, V = {cfg['v']}, {cfg['train_tokens']} training tokens; "
        f"K = {cfg['k']}, α = {cfg['alpha']}, η = {cfg['eta']}; best of {cfg['restarts']} seeds by training bound; "
        f"vemppl: start={cfg.get('start', 'prior')}, local_iter={cfg.get('local_iter', 1)}, local_tol={cfg.get('local_tol')}, local_restart={cfg.get('local_restart', False)}, at most {cfg['max_iter']} sweeps "
        f"(relative tol {cfg['tol']}), {cfg.get('vemppl_dtype', 'float64')}; scikit-learn: {cfg['max_iter_sklearn']} EM iterations (no early stop). Machine: {res['machine']['nproc']} CPUs, {res['machine']['cpu']}"
        + (f", load average {res['machine']['load_average'][1]:.1f} over the last 5 minutes at the end." if 'load_average' in res['machine'] else "."),
        "",
        "| system | compile (s) | fit (s), all seeds | iterations (best) | training bound (best) | held-out plug-in perplexity | held-out bound perplexity |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name in ("vemppl", "sklearn_batch", "sklearn_online"):
        r = res[name]
        lines.append(
            f"| {name.replace('_', ' ')} | {r['compile_seconds']:.2f} | {r['fit_seconds']:.2f} | {r['iterations']} | "
            f"{r['train_bound']:.6g} | {r['heldout_plugin_perplexity']:.1f} | {r['heldout_bound_perplexity']:.1f} |"
        )
    lines += [
        "",
        "Every seed (vemppl and scikit-learn both seeded `seed, seed+1, ...`): held-out plug-in perplexity, and the "
        "training bound by one function for all (scikit-learn's `score` at the system's topics, θ re-inferred):",
        "",
        "| system | perplexity per seed | mean | min | score per seed |",
        "| --- | --- | ---: | ---: | --- |",
    ]
    for name in ("vemppl", "sklearn_batch", "sklearn_online"):
        r = res[name]
        p = r["seed_plugin_perplexity"]
        lines.append(f"| {name.replace('_', ' ')} | {', '.join(f'{x:.1f}' for x in p)} | {np.mean(p):.1f} | {min(p):.1f} | "
                     f"{', '.join(f'{x:.6g}' for x in r['seed_score'])} |")
    lines += [
        "",
        f"Ratios vemppl / scikit-learn batch: fit time {res['ratio_fit_batch']:.2f}, held-out plug-in perplexity "
        f"{res['ratio_perplexity_batch']:.3f}; vemppl / online: fit time {res['ratio_fit_online']:.2f}, perplexity "
        f"{res['ratio_perplexity_online']:.3f}; mean over seeds of the held-out perplexity, vemppl / batch: "
        f"{res['ratio_mean_seed_perplexity_batch']:.3f}.",
        "",
    ]
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--k", type=int, default=20)
    ap.add_argument("--alpha", type=float, default=0.1)
    ap.add_argument("--eta", type=float, default=0.01)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--restarts", type=int, default=3)
    ap.add_argument("--max-iter", type=int, default=300)
    ap.add_argument("--tol", type=float, default=1e-7, help="vemppl's relative ELBO tolerance")
    ap.add_argument("--start", default="random-globals", help="vemppl's start: prior or random-globals")
    ap.add_argument("--local-iter", type=int, default=10, help="vemppl's local passes per sweep (at most, with --local-tol)")
    ap.add_argument("--local-tol", type=float, default=1e-3,
                    help="vemppl's local passes stop once θ moves by at most this (relative); negative: always --local-iter")
    ap.add_argument("--local-restart", nargs="?", const=True, default=False, type=int, metavar="S",
                    help="vemppl's locals start afresh in every sweep (or in the first S sweeps), guarded")
    ap.add_argument("--float32", action="store_true", help="vemppl in float32 (VEMPPL_X64=0); results_lda_float32.*")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", type=Path, default=HERE)
    args = ap.parse_args(argv)
    n_docs = None
    if args.quick:
        n_docs, args.k, args.restarts, args.max_iter = 60, 5, 1, 20
    Xtr, Xte = reuters(n_docs, args.seed)

    local_tol = args.local_tol if args.local_tol >= 0 else None
    # The systems take turns seed by seed, so a change in the shared machine's load during the run
    # falls on all three alike rather than on whichever happened to be running.
    runs = {"vemppl": [], "batch": [], "online": []}
    for r in range(args.restarts):
        seed = args.seed + r
        runs["vemppl"].append(fit_vemppl_seed(Xtr, args.k, args.alpha, args.eta, seed, args.max_iter, args.tol,
                                              args.start, args.local_iter, local_tol, args.local_restart))
        for method in ("batch", "online"):
            runs[method].append(fit_sklearn_seed(Xtr, args.k, args.alpha, args.eta, seed, min(args.max_iter, 100), method))
    ours = summarise_vemppl(runs["vemppl"])
    batch, online = summarise_sklearn(runs["batch"]), summarise_sklearn(runs["online"])
    shell = batch["estimator"]
    res = dict(
        config=dict(n_train=Xtr.shape[0], n_test=Xte.shape[0], v=Xtr.shape[1], train_tokens=int(Xtr.sum()),
                    test_tokens=int(Xte.sum()), k=args.k, alpha=args.alpha, eta=args.eta, seed=args.seed,
                    restarts=args.restarts, max_iter=args.max_iter, max_iter_sklearn=min(args.max_iter, 100),
                    tol=args.tol, quick=args.quick, start=args.start, local_iter=args.local_iter, local_tol=local_tol,
                    local_restart=args.local_restart,
                    vemppl_dtype="float32" if args.float32 else "float64"),
        machine=machine(),
    )
    for name, r in (("vemppl", ours), ("sklearn_batch", batch), ("sklearn_online", online)):
        plug, bound = heldout_perplexities(with_topics(shell, r.pop("topics")), Xte)
        r.pop("estimator", None)
        r["heldout_plugin_perplexity"], r["heldout_bound_perplexity"] = plug, bound
        # every seed, and every system's training bound by one function: scikit-learn's score at its topics
        topics = r.pop("seed_topics")
        per_seed = [scored(shell, t, Xtr, Xte) for t in topics]
        r["seed_plugin_perplexity"] = [p for p, _ in per_seed]
        r["seed_score"] = [b for _, b in per_seed]
        res[name] = r
    res["ratio_fit_batch"] = ours["fit_seconds"] / batch["fit_seconds"]
    res["ratio_fit_online"] = ours["fit_seconds"] / online["fit_seconds"]
    res["ratio_perplexity_batch"] = ours["heldout_plugin_perplexity"] / batch["heldout_plugin_perplexity"]
    res["ratio_perplexity_online"] = ours["heldout_plugin_perplexity"] / online["heldout_plugin_perplexity"]
    res["ratio_mean_seed_perplexity_batch"] = (np.mean(ours["seed_plugin_perplexity"])
                                               / np.mean(batch["seed_plugin_perplexity"]))
    md = markdown(res)
    print(md)
    args.out.mkdir(parents=True, exist_ok=True)
    stem = ("results_lda_quick" if args.quick else "results_lda") + ("_float32" if args.float32 else "")
    write_atomic(args.out / f"{stem}.json", json.dumps(res, indent=2) + "\n")
    write_atomic(args.out / f"{stem}.md", md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
