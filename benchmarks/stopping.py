"""The stopping rule (engine/loop.py): the change-only rule against the rule that reads the trace's rate.

    python benchmarks/stopping.py noncentred,crossed,...   # rows appended to results_stopping.json
    python benchmarks/stopping.py table                    # results_stopping.md from the JSON

Each case is fitted with no options twice, under the change-only rule (``|ΔELBO| ≤ tol·|ELBO|``,
the rule before; the accelerator's ``sweeps_left`` counted to it too) and under the current
rule, and once plain at ``tol=1e-13`` (20 000 sweeps at most; at that tol both rules are the
change-only one) for the reference ELBO.  Cases: ``benchmarks/slow`` and the shipped models on
the small data of ``benchmarks/slow/shipped.py`` (``benchmarks/accel.py slow``'s set), and
``benchmarks/defaults.py``'s LDA (Reuters, K = 20; document-completion perplexity), factor
analysis (N = 20k, D = 30, L = 5), categorical HMM (T = 10k) and Bernoulli mixture (digits),
with their quality measures.
"""

from __future__ import annotations

import json
import math
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
from vemppl.engine import accel, fit as efit, loop  # noqa: E402

OUT = HERE / "results_stopping.json"
RULE, LEFT = loop.converged, accel.sweeps_left


def change_only(trace, tol, rate=True):
    return len(trace) > 1 and abs(trace[-1] - trace[-2]) <= tol * abs(trace[-1])


def change_only_left(elbos, rho, tol):
    change, floor = elbos[-1] - elbos[-2], tol * abs(elbos[-1])
    if change <= floor:
        return 0.0
    if rho >= 1.0 or floor <= 0.0:
        return math.inf
    return math.log(floor / change) / math.log(rho)


def use(before: bool):
    loop.converged = efit.loop_converged = change_only if before else RULE
    accel.sweeps_left = change_only_left if before else LEFT


def slow_case(name):
    import data as slow_data
    import shipped

    make = {**slow_data.CASES, **shipped.CASES}[name]
    d, dims = make()
    path = HERE / "slow" / f"{name}.vem"
    path = path if path.exists() else HERE.parent / "models" / f"{name}.vem"
    return vp.load(path), d, None, dims, None


def defaults_case(name):
    import defaults as dfl

    if name == "reuters_lda":
        lda = dfl.lda_benchmark()
        Xtr, Xte = lda.reuters(None)
        X_obs, X_held = dfl.completion_split(Xte)
        doc, word = lda.tokens(Xtr)
        return (vp.load(dfl.MODELS / "lda.vem"), {"doc": doc, "word": word}, {"K": 20, "alpha": 0.1, "eta": 0.01},
                {"D": Xtr.shape[0], "V": Xtr.shape[1]},
                lambda f: dfl.completion_perplexity(np.asarray(f.posterior["beta"].concentration), 0.1, X_obs, X_held))
    if name == "defaults_fa":
        n, d, l = 20000, 30, 5
        rng = np.random.default_rng(0)
        W, sd, m = rng.normal(size=(d, l)), rng.uniform(0.3, 1.5, size=d), rng.normal(size=d)
        X = m + rng.normal(size=(n + n // 5, l)) @ W.T + sd * rng.normal(size=(n + n // 5, d))

        def q(f):
            p = f.params
            return dfl.gaussian_loglik(p["m"], p["W"] @ p["W"].T + np.diag(1.0 / p["psi"]), X[n:])
        return vp.load(dfl.MODELS / "fa.vem"), {"x": X[:n]}, {"L": l}, None, q
    if name == "defaults_hmm":
        rng = np.random.default_rng(0)
        t, k, v = 10000, 3, 8
        A = np.full((k, k), 0.05 / (k - 1)) + np.eye(k) * (0.95 - 0.05 / (k - 1))
        B, pi0 = rng.dirichlet(np.full(v, 0.5), size=k), np.full(k, 1.0 / k)
        x, x_te = dfl.sample_hmm(pi0, A, B, t, rng), dfl.sample_hmm(pi0, A, B, t // 5, rng)
        return (vp.load(dfl.MODELS / "hmm_categorical.vem"), {"x": x}, {"K": k}, {"V": v},
                lambda f: dfl.hmm_loglik(*(np.asarray(f.posterior[s].mean) for s in ("pi0", "A", "B")), x_te))
    if name == "defaults_bmm":
        from sklearn.datasets import load_digits

        digits = load_digits()
        X, perm = (digits.data > 7).astype(float), np.random.default_rng(0).permutation(len(digits.data))
        tr, te = perm[:int(0.8 * len(perm))], perm[int(0.8 * len(perm)):]
        return (vp.load(dfl.MODELS / "bernoulli_mixture.vem"), {"x": X[tr].astype(bool)}, {"K": 10}, None,
                lambda f: dfl.bernoulli_mixture_loglik(np.asarray(f.posterior["pi"].mean),
                                                       np.asarray(f.posterior["mu"].mean), X[te]))
    return slow_case(name)


def run(name):
    model, data, consts, dims, quality = defaults_case(name)
    row = dict(model=name)
    use(True)
    t0 = time.perf_counter()
    ref = vp.fit(model, data, consts=consts, dims=dims, progress=False, tol=1e-13, max_iter=20000,
                 algorithm=vp.cavi(accelerate=False))
    row.update(reference=float(ref.elbo_trace[-1]), reference_sweeps=len(ref.elbo_trace),
               reference_seconds=time.perf_counter() - t0)
    for arm, before in (("before", True), ("after", False)):
        use(before)
        f = vp.fit(model, data, consts=consts, dims=dims, progress=False)
        row[arm] = dict(sweeps=len(f.elbo_trace), elbo=float(f.elbo_trace[-1]), converged=bool(f.converged),
                        gap=row["reference"] - float(f.elbo_trace[-1]), fit_seconds=float(f.fit_seconds),
                        quality=None if quality is None else float(quality(f)))
    use(False)
    return row


NOTE = ("LDA's default (lda, reuters_lda: an admixture's local/global schedule, tol=1e-3) stops on the change "
        "alone under both rules, where held-out perplexity stops improving; its gap is that tolerance's. Quality: "
        "reuters_lda document-completion perplexity (lower is better); defaults_fa, defaults_hmm, defaults_bmm "
        "held-out log-likelihood per point (higher is better), as benchmarks/defaults.py measures them.")


def table():
    rows = json.loads(OUT.read_text())["rows"]
    lines = ["Written by `python benchmarks/stopping.py` (2 shared CPUs). No options; gap = ELBO of a plain "
             "`tol=1e-13` run minus the fit's (negative: above it). Before: the change-only rule.", "",
             "| model | sweeps before → after | gap before → after (nats) | quality before → after | reference sweeps |",
             "|---|---|---|---|---|"]
    for r in rows:
        b, a = r["before"], r["after"]
        q = "–" if b["quality"] is None else f"{b['quality']:.8g} → {a['quality']:.8g}"
        lines.append(f"| {r['model']} | {b['sweeps']} → {a['sweeps']} | {b['gap']:.2e} → {a['gap']:.2e} | {q} | "
                     f"{r['reference_sweeps']} |")
    lines += ["", NOTE]
    OUT.with_suffix(".md").write_text("\n".join(lines) + "\n")


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "table":
        return table()
    have = json.loads(OUT.read_text()) if OUT.exists() else {"rows": []}
    for name in argv[0].split(","):
        row = run(name)
        print(json.dumps(row), flush=True)
        have["rows"] = [r for r in have["rows"] if r["model"] != name] + [row]
        OUT.write_text(json.dumps(have, indent=1))
    table()


if __name__ == "__main__":
    main()
