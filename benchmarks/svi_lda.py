"""Stochastic VI for LDA on a synthetic corpus of millions of tokens, streamed from memory maps,
against scikit-learn's online LDA (Hoffman, Blei & Bach 2010) on the same documents.

    python benchmarks/svi_lda.py            # 50k documents of 100-150 tokens (~6.2M tokens), K = 20, V = 5000
    python benchmarks/svi_lda.py --quick    # smoke run (2k documents)

The corpus: K topics drawn from Dir(``--topic-conc``) over V words, each document's θ from
Dir(α), its length uniform on [``--min-len``, ``--max-len``], fixed seed.  The last 2% of the
documents are held out.  The training documents are written to ``word.npy`` (``int32[D, L]``,
padded with word 0 to the longest document) and ``present.npy`` (``bool[D, L]``, False on the
padding) in a temporary folder and opened with ``mmap_mode="r"``.

The model is models/lda_docs.vem, LDA over documents: the same factors as models/lda.vem,
with the tokens of a document in a nested plate, ``z[d, l]`` and ``word[d, l]``, instead of one
flat plate of tokens read through ``theta[doc[i]]``.  The flat form cannot be minibatched by
document: its data plate is the tokens, so SVI would sample tokens and treat every document's
θ as a global (``plate="D"`` is refused: the token factors lie outside the document plate and
read θ).  The padding is marked absent with ``mask={"z": present}``: every factor that reads an
absent ``z`` drops out, so the ELBO and the updates are those of the unpadded documents.

SVI (``vemppl.fit(..., algorithm=vp.svi(B, step_size=(tau, kappa)))``): each step samples B documents,
fits their θ and z (``local_iter`` passes) with the topics fixed, and moves q(β) by
``λ ← (1−ρ_t)λ + ρ_t(η + (D/B) n̂)``, ρ_t = (t + τ)^(−κ).  scikit-learn's
``LatentDirichletAllocation(learning_method="online")`` runs the same update with the same
K, α, η, batch size, τ (``learning_offset``), κ (``learning_decay``), ``total_samples`` = D and
the same number of passes, on the sparse document-word count matrix, in the same process.

Quality, one procedure for every system (``heldout_perplexities`` of benchmarks/lda.py): each
held-out document's θ is folded in by scikit-learn's E-step with the system's E[log β] fixed,
and the plug-in perplexity ``exp(−Σ n_dw log Σ_k θ̂_dk β̂_kw / N)`` is reported beside the bound
perplexity; also with the true topics.  Topic recovery: the fitted topics E[β] matched to the
true ones by the Hungarian algorithm on their Hellinger distances; reported the mean Hellinger
distance and cosine similarity of the matched pairs and how many lie within Hellinger 0.3.

Memory: the peak resident set (``ru_maxrss``) is read after the vemppl fit, before scikit-learn
and its count matrix are built; generation runs in its own process.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from phases import child, lda_benchmark, peak_rss_mb, write_atomic  # benchmarks/phases.py, beside this script

HERE = Path(__file__).resolve().parent

LDA_DOCS = HERE.parent / "models" / "lda_docs.vem"


# ---- the corpus -------------------------------------------------------------------------------


def true_topics(a):
    return np.random.default_rng(a.seed).dirichlet(a.topic_conc * np.ones(a.v), a.k)


def draw_docs(rng, n, beta, alpha, lo, hi, width):
    """``n`` documents as (words int32[n, width], present bool[n, width])."""
    k, v = beta.shape
    lens = rng.integers(lo, hi + 1, n)
    present = np.arange(width) < lens[:, None]
    theta = rng.dirichlet(alpha * np.ones(k), n)
    z = (rng.random((n, width, 1)) > np.cumsum(theta, 1)[:, None, :]).sum(-1).clip(max=k - 1)
    u = rng.random((n, width))
    cdf = np.cumsum(beta, 1)
    words = np.empty((n, width), np.int32)
    for t in range(k):
        sel = z == t
        words[sel] = np.searchsorted(cdf[t], u[sel] * cdf[t, -1], side="right").clip(max=v - 1)
    words[~present] = 0
    return words, present


def generate(a):
    beta = true_topics(a)
    n_held = int(round(a.held_frac * a.docs))
    n_train = a.docs - n_held
    d = Path(a.dir)
    words = np.lib.format.open_memmap(d / "word.npy", mode="w+", dtype=np.int32, shape=(n_train, a.max_len))
    present = np.lib.format.open_memmap(d / "present.npy", mode="w+", dtype=bool, shape=(n_train, a.max_len))
    rng = np.random.default_rng(a.seed + 1)
    chunk = 5000
    for lo in range(0, a.docs, chunk):
        hi = min(lo + chunk, a.docs)
        w, p = draw_docs(rng, hi - lo, beta, a.alpha, a.min_len, a.max_len, a.max_len)
        tr = slice(lo, min(hi, n_train))
        m = tr.stop - tr.start
        if m > 0:
            words[tr], present[tr] = w[:m], p[:m]
        if hi > n_train:  # the held-out documents: the last ones drawn
            start = max(n_train - lo, 0)
            np.save(d / f"held_word_{lo}.npy", w[start:])
            np.save(d / f"held_present_{lo}.npy", p[start:])
    words.flush(), present.flush()
    train_tokens = int(np.asarray(present).sum())
    del words, present
    hw = np.concatenate([np.load(f) for f in sorted(d.glob("held_word_*.npy"), key=lambda f: int(f.stem.split("_")[-1]))])
    hp = np.concatenate([np.load(f) for f in sorted(d.glob("held_present_*.npy"),
                                                    key=lambda f: int(f.stem.split("_")[-1]))])
    np.save(d / "held_word.npy", hw), np.save(d / "held_present.npy", hp), np.save(d / "beta.npy", beta)
    return {"train_docs": n_train, "held_docs": n_held, "train_tokens": train_tokens, "held_tokens": int(hp.sum()),
            "width": a.max_len, "file_mb": n_train * a.max_len * 5 / 2**20, "seconds": None,
            "peak_rss_mb": peak_rss_mb()}


def counts(words, present, v):
    """The sparse document-word count matrix of padded documents."""
    from scipy.sparse import csr_matrix

    rows = np.nonzero(present)
    return csr_matrix((np.ones(len(rows[0])), (rows[0], np.asarray(words)[rows])), shape=(words.shape[0], v))


# ---- quality ------------------------------------------------------------------------------------


def hellinger(p, q):
    return np.sqrt(0.5 * ((np.sqrt(p)[:, None, :] - np.sqrt(q)[None, :, :]) ** 2).sum(-1))


def topic_recovery(true, lam):
    """Hungarian matching of the fitted topics E[β] to the true ones on Hellinger distance."""
    from scipy.optimize import linear_sum_assignment

    fit = lam / lam.sum(1, keepdims=True)
    h = hellinger(true, fit)
    r, c = linear_sum_assignment(h)
    cos = (true[r] * fit[c]).sum(1) / np.linalg.norm(true[r], axis=1) / np.linalg.norm(fit[c], axis=1)
    return {"mean_hellinger": float(h[r, c].mean()), "max_hellinger": float(h[r, c].max()),
            "mean_cosine": float(cos.mean()), "within_0.3": int((h[r, c] < 0.3).sum())}


# ---- the fits -----------------------------------------------------------------------------------


def fit_phase(a):
    import vemppl as vp
    from sklearn.decomposition import LatentDirichletAllocation

    lda_bench = lda_benchmark()
    d = Path(a.dir)
    words = np.load(d / "word.npy", mmap_mode="r")
    present = np.load(d / "present.npy", mmap_mode="r")
    n_train = words.shape[0]
    steps = int(np.ceil(a.passes * n_train / a.batch))
    consts = {"K": a.k, "alpha": a.alpha, "eta": a.eta}
    t0 = time.perf_counter()
    fit = vp.fit(vp.load(LDA_DOCS), {"word": words}, mask={"z": present}, consts=consts, dims={"V": a.v},
                 algorithm=vp.svi(a.batch, step_size=(a.tau, a.kappa), local_iter=a.local_iter, start=a.start),
                 max_iter=steps, seed=a.seed, progress=False)
    wall = time.perf_counter() - t0
    rss_vemppl = peak_rss_mb()
    lam_vemppl = np.asarray(fit.posterior["beta"].concentration)
    trace = np.asarray(fit.elbo_trace)
    mean_len = float(np.asarray(present).sum()) / n_train
    ours = {"compile_s": fit.compile_seconds, "fit_s": fit.fit_seconds, "wall_s": wall, "steps": fit.iterations,
            "batch": a.batch, "local_iter": a.local_iter, "docs_processed": fit.iterations * a.batch,
            "tokens_processed": int(round(fit.iterations * a.batch * mean_len)),
            "s_per_step": fit.fit_seconds / max(fit.iterations - 1, 1),
            "elbo_estimate_first": float(trace[0]), "elbo_estimate_last_10_mean": float(trace[-10:].mean()),
            "peak_rss_mb": rss_vemppl}
    ours["tokens_per_s"] = ours["tokens_processed"] / (ours["fit_s"] + ours["compile_s"])

    X = counts(words, present, a.v)
    sk = LatentDirichletAllocation(a.k, doc_topic_prior=a.alpha, topic_word_prior=a.eta, learning_method="online",
                                   learning_offset=a.tau, learning_decay=a.kappa, batch_size=a.batch,
                                   total_samples=n_train, max_iter=a.passes, evaluate_every=-1,
                                   random_state=a.seed)
    t0 = time.perf_counter()
    sk.fit(X)
    sk_s = time.perf_counter() - t0
    theirs = {"fit_s": sk_s, "passes": a.passes, "batch": a.batch, "n_batch_iter": int(sk.n_batch_iter_),
              "tokens_processed": int(X.sum()) * a.passes, "peak_rss_mb_after": peak_rss_mb()}
    theirs["tokens_per_s"] = theirs["tokens_processed"] / sk_s

    held = counts(np.load(d / "held_word.npy"), np.load(d / "held_present.npy"), a.v).toarray()
    beta = np.load(d / "beta.npy")
    out = {}
    for name, lam in (("vemppl", lam_vemppl), ("sklearn", sk.components_), ("true", beta * 1e6 + 1e-9)):
        plug, bound = lda_bench.heldout_perplexities(lda_bench.with_topics(sk, lam), held)
        out[name] = {"heldout_plugin_perplexity": plug, "heldout_bound_perplexity": bound}
        if name != "true":
            out[name]["topics"] = topic_recovery(beta, np.asarray(lam))
    ours.update(out["vemppl"]), theirs.update(out["sklearn"])
    return {"vemppl": ours, "sklearn_online": theirs, "true_topics": out["true"], "train_tokens": int(X.sum())}


def markdown(res) -> str:
    a, g, s, k, t = res["settings"], res["generate"], res["vemppl"], res["sklearn_online"], res["true_topics"]
    m = res["machine"]
    rows = [
        f"# SVI for LDA on a synthetic corpus ({g['train_docs']:,} training documents, "
        f"{g['train_tokens']:,} tokens, K = {a['k']}, V = {a['v']})", "",
        f"Machine: {m['nproc']} cores, {m['cpu']}; JAX {m['jax']}, scikit-learn {m.get('sklearn', '?')}; "
        f"load average {res['load_before']:.1f} before, {res['load_after']:.1f} after.", "",
        f"Corpus (seed {a['seed']}): topics from Dir({a['topic_conc']:g}) over {a['v']} words, θ from Dir({a['alpha']:g}), "
        f"{a['min_len']}-{a['max_len']} tokens per document; {g['held_docs']:,} documents ({g['held_tokens']:,} tokens) "
        f"held out. Training data: memory-mapped `word.npy` int32[{g['train_docs']}, {g['width']}] + `present.npy`, "
        f"{g['file_mb']:.0f} MB.", "",
        f"Both fits: α = {a['alpha']:g}, η = {a['eta']:g}, batch {a['batch']} documents, ρ_t = (t + {a['tau']:g})^-{a['kappa']:g}, "
        f"{a['passes']} passes. vemppl: {a['local_iter']} local passes per step over θ and z; scikit-learn: its E-step "
        "per document (up to 100 iterations, mean change < 1e-3).", "",
        "| fit | compile s | fit s | steps | tokens processed | tokens / s | peak RSS MB | held-out plug-in perplexity | "
        "held-out bound perplexity | topic Hellinger (mean / max) | topic cosine | topics within H 0.3 |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: |",
        f"| vemppl SVI | {s['compile_s']:.1f} | {s['fit_s']:.1f} ({s['s_per_step'] * 1e3:.0f} ms/step) | {s['steps']} | "
        f"{s['tokens_processed']:,} | {s['tokens_per_s']:,.0f} | {s['peak_rss_mb']:.0f} | "
        f"{s['heldout_plugin_perplexity']:.1f} | {s['heldout_bound_perplexity']:.1f} | "
        f"{s['topics']['mean_hellinger']:.3f} / {s['topics']['max_hellinger']:.3f} | {s['topics']['mean_cosine']:.3f} | "
        f"{s['topics']['within_0.3']} / {a['k']} |",
        f"| scikit-learn online | 0 | {k['fit_s']:.1f} | {k['n_batch_iter']} | {k['tokens_processed']:,} | "
        f"{k['tokens_per_s']:,.0f} | {k['peak_rss_mb_after']:.0f} (process, after both) | "
        f"{k['heldout_plugin_perplexity']:.1f} | {k['heldout_bound_perplexity']:.1f} | "
        f"{k['topics']['mean_hellinger']:.3f} / {k['topics']['max_hellinger']:.3f} | {k['topics']['mean_cosine']:.3f} | "
        f"{k['topics']['within_0.3']} / {a['k']} |",
        f"| true topics | | | | | | | {t['heldout_plugin_perplexity']:.1f} | {t['heldout_bound_perplexity']:.1f} | 0 | 1 | "
        f"{a['k']} / {a['k']} |",
        "",
        f"Ratios: held-out plug-in perplexity vemppl / true topics {res['ratio_perplexity_true']:.3f}, "
        f"scikit-learn / true topics {res['ratio_perplexity_true_sklearn']:.3f}, vemppl / scikit-learn "
        f"{res['ratio_perplexity_sklearn']:.3f}; time vemppl (compile + fit) / scikit-learn "
        f"{res['ratio_time_sklearn']:.2f} (fit only {res['ratio_fit_sklearn']:.2f}).",
        f"vemppl's ELBO estimate: {s['elbo_estimate_first']:.4g} at the first step, {s['elbo_estimate_last_10_mean']:.4g} "
        "averaged over the last 10.", "",
    ]
    return "\n".join(rows)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--docs", type=int, default=50_000)
    p.add_argument("--min-len", type=int, default=100)
    p.add_argument("--max-len", type=int, default=150)
    p.add_argument("--held-frac", type=float, default=0.02)
    p.add_argument("--k", type=int, default=20)
    p.add_argument("--v", type=int, default=5000)
    p.add_argument("--alpha", type=float, default=0.1)
    p.add_argument("--eta", type=float, default=0.01)
    p.add_argument("--topic-conc", type=float, default=0.05, help="Dirichlet concentration of the true topics")
    p.add_argument("--batch", type=int, default=512)
    p.add_argument("--passes", type=int, default=1)
    p.add_argument("--tau", type=float, default=10.0)
    p.add_argument("--kappa", type=float, default=0.7)
    p.add_argument("--local-iter", type=int, default=20)
    p.add_argument("--start", default="random-globals", help="vemppl's start: prior or random-globals")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dir", default="", help="where the .npy files go (default: a temporary folder)")
    p.add_argument("--phase", choices=("generate", "fit"))
    p.add_argument("--quick", action="store_true")
    a = p.parse_args()
    if a.phase:
        print(json.dumps({"generate": generate, "fit": fit_phase}[a.phase](a)))
        return
    if a.quick:
        a.docs, a.v, a.k, a.batch, a.passes = 2000, 500, 5, 128, 1
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(dir=a.dir or None) as tmp:
        a.dir = tmp
        t0 = time.perf_counter()
        gen = child(__file__, a, "generate")
        gen["seconds"] = time.perf_counter() - t0
        res = child(__file__, a, "fit")
    import sklearn

    from machine import machine

    s, k, t = res["vemppl"], res["sklearn_online"], res["true_topics"]
    out = {"settings": {k_: v for k_, v in vars(a).items() if k_ not in ("dir", "phase")}, "generate": gen, **res,
           "load_before": load_before, "load_after": os.getloadavg()[0], "machine": machine(sklearn=sklearn.__version__)}
    out["ratio_perplexity_true"] = s["heldout_plugin_perplexity"] / t["heldout_plugin_perplexity"]
    out["ratio_perplexity_true_sklearn"] = k["heldout_plugin_perplexity"] / t["heldout_plugin_perplexity"]
    out["ratio_perplexity_sklearn"] = s["heldout_plugin_perplexity"] / k["heldout_plugin_perplexity"]
    out["ratio_time_sklearn"] = (s["compile_s"] + s["fit_s"]) / k["fit_s"]
    out["ratio_fit_sklearn"] = s["fit_s"] / k["fit_s"]
    name = "results_svi_lda_quick" if a.quick else "results_svi_lda"
    write_atomic(HERE / f"{name}.json", json.dumps(out, indent=2) + "\n")
    md = markdown(out)
    write_atomic(HERE / f"{name}.md", md)
    print(md)


if __name__ == "__main__":
    main()
