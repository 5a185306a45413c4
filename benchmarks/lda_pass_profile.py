"""Where the time of one LDA sweep goes, and what an exp-domain local pass would save.

    python benchmarks/lda_pass_profile.py [--repeats 40]

The default fit of ``models/lda.vem`` on the Reuters split of ``benchmarks/defaults.py``
(355 documents, 54 380 merged (document, word) rows, K = 20) ran 15 sweeps of 10 local passes
(since 2026-12-07: about 10 sweeps of at most 20; engine/algorithms.py::ADMIXTURE_LOCAL_ITER).
This script takes the engine that fit ran on (its merged rows, engine/compress.py) at a
random-globals start and times, each jitted and ``block_until_ready`` (median and min of
``--repeats`` calls; the machine is shared, so the load is printed beside):

* the loop-invariant part of z's target (the [U, K] gather of E[log β], once a sweep);
* one local pass (z then θ): 11 passes in one ``fori_loop`` divided by 11 (an upper bound: the
  call's overhead and a variant's once-a-sweep prologue included), and the difference of 11 and
  1 passes over 10 (unreliable where XLA compiles the one-pass loop differently: the split
  prototype's one-pass program is the slower of its two);
* the global update with the log joint (the sweep's last step), and the entropies;
* the whole sweep.

Then a prototype of the exp-domain pass (as scikit-learn's batch E-step): with
B = exp(ι − max ι) for z's loop-invariant target ι (once a sweep) and P = exp(E[log θ] − max),
a [D, K] array, each pass is ``n_u = Σ_k P[doc_u, k] B_uk``, ``S = P ⊙ segment_sum(c_u B_u / n_u)``
and θ's target α − 1 + S: no [U, K] exp.  It is run from the same state for the same
10 passes and compared with the engine's θ and z (max |difference|), and timed the same way.
A second prototype keeps the engine's updates and changes only z's mean map: z's target
ι + v with v = E[log θ][doc] computed by autodiff as now, exp taken of v at one row per document
(a [D, K] exp) and of ι once a sweep, μ_z = B ⊙ P[doc] / n materialised, θ updated by the
engine from it (``split``): the part of the lever a categorical local's update could take
without knowing how θ's update reads μ_z.  Both prototypes read the LDA structure off this
engine's data by hand.

Measured 2026-12-07 (2 shared CPUs, load 2-7; minima of the repeats, in ms): a local pass 4.3-6.3 in
the engine, of which the [U, K] softmax's exps are 1.1-2.3 (``exp`` alone on a 54 380×20 float64
array: 1.7-2.4; the [U, K] gather-and-add 0.4-0.5, the scatter of w·μ into [D, K] 0.6-0.7,
digamma of [D, K] 0.2); 10 passes are about 3/4 of a sweep (42-80 ms), the global update with the
log joint 4-9 and the entropies 2-4 the rest.  Both prototypes give the engine's θ and z to
1e-13; 11 passes took 36-44 ms (exp domain) and 32-39 ms (split, whose loop drops z's η, unused
there) against the engine's 62-64 (load 3.9).  The split form is now the engine's
(engine/factored.py, docs/engine.md "The local passes in the exp domain"): the "engine" pass
rows below time ``Engine.update_block``'s softmax path, which the sweep took before, and the
whole sweep is timed both ways.  With a
``lax.cond`` fallback inside each pass it was slower than the softmax (XLA:CPU copies the [U, K]
operands in and out of the conditional), so the engine tests each sweep on the host instead.
The full factorisation (scikit-learn's, without μ_z in each pass) needs θ's update to read
μ_z as a segment sum, which the engine's autodiff update does not expose.

Since then θ's update does read it so (engine/summed.py, docs/engine.md "The passes on the
groups' sums"): the ``summed`` rows time 1 and 11 of those passes, and the whole sweep (which
now runs them) is timed returning its state, as the fit calls it.  Measured 2026-12-07 on one
pinned core (``taskset -c 0``, ``XLA_FLAGS=--xla_cpu_multi_thread_eigen=false``, load 3.5-4.5;
minima of 40 alternated calls, ms): the parts of a restarted sweep are ι and its exp 2.7, the
blocks' layout 1.3, ten summed passes 7, q(z)'s means and η after them 1.8, the global update
with the log joint 9.3, the entropies 4.8; the whole sweep 24 against 32 for the sweep whose
passes form q(z) at every row (medians of 60 alternated calls: 23.7 against 33.7).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from phases import lda_benchmark  # noqa: E402  benchmarks/phases.py

import vemppl as vp  # noqa: E402


def load():
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=40)
    a = ap.parse_args()
    import jax
    import jax.numpy as jnp

    from vemppl.engine import cavi, fit as efit

    built = []

    class Capturing(cavi.Engine):  # the engine the fit runs its sweeps on
        def __init__(self, *args, **kw):
            super().__init__(*args, **kw)
            built.append(self)

    efit.Engine = Capturing
    lda = lda_benchmark()
    Xtr, _ = lda.reuters(None)
    doc, word = lda.tokens(Xtr)
    model = vp.load(HERE.parent / "models" / "lda.vem")
    t0 = time.perf_counter()
    fit = vp.fit(model, {"doc": doc, "word": word}, consts={"K": 20, "alpha": 0.1, "eta": 0.01},
                 dims={"D": Xtr.shape[0], "V": Xtr.shape[1]}, progress=False)
    print(f"fit: {fit.fit_seconds:.3f} s + compile {fit.compile_seconds:.2f} s, {fit.iterations} sweeps "
          f"(wall {time.perf_counter() - t0:.2f} s, load {load()})")
    E = next(e for e in built if e.unit_weights is not None and e.merged_rows is None)
    LG, data = E.local_global, E.data
    j_cat, j_grp = LG.locals_
    g = LG.globals_[-1]
    key = jax.random.PRNGKey(0)
    state = LG.counting(LG.randomise_globals(E, E.init(key, None), jax.random.PRNGKey(1)))
    U, K = state.mu[j_cat].onehot.shape
    print(f"rows U = {U}, K = {K}, groups D = {state.mu[j_grp].log.shape[0]}; locals {LG.locals_}, globals {LG.globals_}")

    def bench(name, f, n=a.repeats):
        jf = jax.jit(f)
        jax.block_until_ready(jf(state, data))
        ts = []
        for _ in range(n):
            t = time.perf_counter()
            jax.block_until_ready(jf(state, data))
            ts.append(time.perf_counter() - t)
        print(f"  {name:34s} median {np.median(ts) * 1e3:8.3f} ms   min {np.min(ts) * 1e3:8.3f} ms")
        return np.median(ts), np.min(ts)

    def engine_passes(n):
        def f(state, data):
            inv = {j: (fs, E.target_part(state, j, fs, data)) for j, fs in LG.invariant.items()}

            def body(_, st):
                for j in LG.locals_:
                    st = E.update_block(st, j, data, inv.get(j))
                return st
            st = jax.lax.fori_loop(0, n, body, state)
            return st.eta[j_grp].log, st.mu[j_cat].onehot
        return f

    w = jnp.asarray(E.unit_weights.weights)

    def exp_domain_passes(n):
        """The same n passes in the exp domain (the last one also forms z's η and μ)."""
        def f(state, data):
            (fs, raw), = [(fs, E.target_part(state, j_cat, fs, data)) for j, fs in LG.invariant.items() if j == j_cat]
            iota = raw.onehot / w[:, None]
            Bx = jnp.exp(iota - jnp.max(iota, axis=1, keepdims=True))
            d = data["doc"]
            prior = E._prior_natural(j_grp, state.mu, state.eta, state.params, data).log  # α − 1

            def stat(elog):
                P = jnp.exp(elog - jnp.max(elog, axis=1, keepdims=True))
                norm = jnp.sum(P[d] * Bx, axis=1)
                S = P * jax.ops.segment_sum(Bx * (w / norm)[:, None], d, P.shape[0])
                return prior + S

            fam = E.families[j_grp]

            def body(_, elog):
                return fam.expected_stats(fam.Stats(stat(elog))).log
            elog = jax.lax.fori_loop(0, n - 1, body, state.mu[j_grp].log)
            P = jnp.exp(elog - jnp.max(elog, axis=1, keepdims=True))
            phi = P[d] * Bx
            phi = phi / jnp.sum(phi, axis=1, keepdims=True)
            eta_grp = prior + jax.ops.segment_sum(phi * w[:, None], d, P.shape[0])
            return eta_grp, phi
        return f

    fam_c = E.families[j_cat]
    rest = tuple(f for f in E.plan.factors if f not in LG.invariant[j_cat])

    def split_passes(n):
        """The engine's passes with z's softmax taken in the exp domain ([D, K] exps a pass)."""
        def f(state, data):
            inv = {j: (fs, E.target_part(state, j, fs, data)) for j, fs in LG.invariant.items()}
            iota = inv[j_cat][1].onehot / w[:, None]
            Bx = jnp.exp(iota - jnp.max(iota, axis=1, keepdims=True))
            d = data["doc"].astype(jnp.int32)
            reps = jnp.zeros(state.mu[j_grp].log.shape[0], jnp.int32).at[d].set(jnp.arange(d.shape[0], dtype=jnp.int32))

            def body(_, st):
                v = jax.grad(E._as_function_of(st, j_cat, data, rest))(st.mu[j_cat]).onehot / w[:, None]
                V = v[reps]
                phi = Bx * jnp.exp(V - jnp.max(V, axis=1, keepdims=True))[d]
                st = st._replace(eta={**st.eta, j_cat: fam_c.Stats(iota + V[d])},
                                 mu={**st.mu, j_cat: fam_c.Stats(phi / jnp.sum(phi, axis=1, keepdims=True))})
                return E.update_block(st, j_grp, data, inv.get(j_grp))
            st = jax.lax.fori_loop(0, n, body, state)
            return st.eta[j_grp].log, st.mu[j_cat].onehot
        return f

    ref = jax.jit(engine_passes(10))(state, data)
    new = jax.jit(exp_domain_passes(10))(state, data)
    print(f"exp-domain prototype vs engine after 10 passes: max|Δη_{j_grp}| = "
          f"{float(jnp.max(jnp.abs(ref[0] - new[0]))):.2e} (of max {float(jnp.max(jnp.abs(ref[0]))):.1f}), "
          f"max|Δμ_{j_cat}| = {float(jnp.max(jnp.abs(ref[1] - new[1]))):.2e}")
    new = jax.jit(split_passes(10))(state, data)
    print(f"split prototype vs engine after 10 passes: max|Δη_{j_grp}| = "
          f"{float(jnp.max(jnp.abs(ref[0] - new[0]))):.2e}, max|Δμ_{j_cat}| = {float(jnp.max(jnp.abs(ref[1] - new[1]))):.2e}")
    for rep in range(2):
        print(f"repeat {rep + 1} (load {load()})")
        bench("invariant part of z's target", lambda s, d: (lambda t: jnp.sum(t.onehot))(
            E.target_part(s, j_cat, LG.invariant[j_cat], d)))
        one, one_min = bench("engine: 1 pass", engine_passes(1))
        eleven, eleven_min = bench("engine: 11 passes", engine_passes(11))
        print(f"  -> engine: one local pass ~ {eleven / 11 * 1e3:.2f} ms (11 passes / 11, median; "
              f"min {eleven_min / 11 * 1e3:.2f}), (11 − 1 passes) / 10 = {(eleven - one) / 10 * 1e3:.2f} ms")
        one, one_min = bench("exp domain: 1 pass", exp_domain_passes(1))
        eleven, eleven_min = bench("exp domain: 11 passes", exp_domain_passes(11))
        print(f"  -> exp domain: one local pass ~ {eleven / 11 * 1e3:.2f} ms (11 passes / 11, median; "
              f"min {eleven_min / 11 * 1e3:.2f}), (11 − 1 passes) / 10 = {(eleven - one) / 10 * 1e3:.2f} ms")
        one, one_min = bench("split: 1 pass", split_passes(1))
        eleven, eleven_min = bench("split: 11 passes", split_passes(11))
        print(f"  -> split: one local pass ~ {eleven / 11 * 1e3:.2f} ms (11 passes / 11, median; "
              f"min {eleven_min / 11 * 1e3:.2f}), (11 − 1 passes) / 10 = {(eleven - one) / 10 * 1e3:.2f} ms")
        pair = LG.pair

        def summed_passes(n):
            def f(state, data):
                inv = E.target_part(state, j_cat, LG.invariant[j_cat], data)
                prepared = LG.grouped[j_cat].prepare(E, state, data, inv)
                laid = pair.prepare(E, state, data, prepared)
                inv_t = E.target_part(state, j_grp, LG.invariant[j_grp], data)
                carry = (state.eta[j_grp], state.mu[j_grp], pair.rows.empty(state), jnp.asarray(True), pair.rows.empty(state))
                return jax.lax.fori_loop(0, n, lambda _, c: pair.update(E, state, data, laid, c, inv_t), carry)
            return f
        if pair is not None:
            one, _ = bench("summed: 1 pass", summed_passes(1))
            eleven, eleven_min = bench("summed: 11 passes", summed_passes(11))
            print(f"  -> summed: (11 − 1 passes) / 10 = {(eleven - one) / 10 * 1e3:.2f} ms")
        bench("global update + log joint", lambda s, d: (lambda r: (jnp.sum(r[0].eta[g].log), r[1]))(
            E.update_block_and_log_joint(s, g, d)))
        bench("entropies", lambda s, d: E.entropy(s))
        for grouped in (False, True):
            bench(f"whole sweep (restarted, grouped={grouped})",
                  lambda s, d, g=grouped: E._sweep_impl(s, d, restart=jnp.asarray(True), grouped=g),
                  max(5, a.repeats // 2))
    print(f"load at the end {load()}")


if __name__ == "__main__":
    main()
