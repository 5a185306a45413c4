"""The local/global schedule (engine/schedule.py): which blocks are local to the data
plate is read off the graph, and fits with start="random-globals" and several local
passes per sweep stay CAVI (the ELBO never decreases).  The models are written here, so
the general path is what is tested; LDA's use of it is in tests/test_lda.py."""

import numpy as np

import vemppl
from conftest import assert_elbo_monotone
from vemppl.compiler import compile_model
from vemppl.engine.schedule import local_blocks

GROUPED = """
model grouped_poisson_mixture
dim N, G
const K = 3
data grp: cat(G)[N]
data x: count[N]

for k in range(K) { rate[k] ~ Gamma(1, 0.1) }
for g in range(G) { pi[g] ~ Dirichlet(fill(0.5, K)) }
for n in range(N) {
    z[n] ~ Categorical(pi[grp[n]])
    x[n] ~ Poisson(rate[z[n]])
}
"""


def test_locals_are_read_by_units_or_through_data():
    m = vemppl.parse(GROUPED)
    # pi[grp[n]] is read through data (a group of units), z[n] by its unit; rate[z[n]] through a latent.
    assert set(local_blocks(m, compile_model(m))) == {"pi", "z"}


def test_random_globals_with_local_passes_is_monotone_and_separates_rates():
    rng = np.random.default_rng(0)
    n, g = 600, 6
    grp = rng.integers(g, size=n)
    truth = np.array([1.0, 8.0, 30.0])
    x = rng.poisson(truth[rng.integers(3, size=n)])
    fit = vemppl.fit(vemppl.parse(GROUPED), data={"grp": grp, "x": x}, dims={"G": g}, seed=0, max_iter=200,
                     algorithm=vemppl.cavi(start="random-globals", local_iter=5), progress=False)
    assert_elbo_monotone(fit.elbo_trace)
    rates = np.sort(np.asarray(fit.posterior["rate"].mean))
    np.testing.assert_allclose(rates, truth, rtol=0.15)


def _grouped_fit(restarts=1, **options):
    """The grouped model fitted by ``vp.cavi(start="random-globals", **options)``."""
    rng = np.random.default_rng(1)
    n, g = 400, 5
    grp = rng.integers(g, size=n)
    x = rng.poisson(np.array([2.0, 10.0, 25.0])[rng.integers(3, size=n)])
    return vemppl.fit(vemppl.parse(GROUPED), data={"grp": grp, "x": x}, dims={"G": g}, seed=3, max_iter=60, tol=0,
                      restarts=restarts, algorithm=vemppl.cavi(start="random-globals", **options), progress=False)


def test_local_tol_bounds_the_passes_between_one_and_local_iter():
    """local_tol=0 never settles, so every sweep takes all local_iter passes: the fixed
    schedule's trace; a tolerance no change reaches below takes one pass: local_iter=1's."""
    fixed = _grouped_fit(local_iter=4)
    never_settled = _grouped_fit(local_iter=4, local_tol=0.0)
    np.testing.assert_allclose(never_settled.elbo_trace, fixed.elbo_trace, rtol=1e-12)
    one = _grouped_fit(local_iter=1)
    settled = _grouped_fit(local_iter=4, local_tol=np.inf)
    # With several passes z's mean map runs in the exp domain (engine/factored.py), the same to
    # rounding: tol=0 then ends the fit where the ELBO repeats exactly, a few sweeps apart.
    # (measured: the settled fit stops at sweep 30 where its ELBO repeats, local_iter=1's runs to 60.)
    m = min(len(settled.elbo_trace), len(one.elbo_trace))
    assert m >= 25
    np.testing.assert_allclose(settled.elbo_trace[:m], one.elbo_trace[:m], rtol=1e-12)
    np.testing.assert_allclose(settled.elbo_trace[-1], one.elbo_trace[-1], rtol=1e-12)
    n = min(len(fixed.elbo_trace), len(one.elbo_trace))  # tol=0 ends a fit whose ELBO repeats exactly
    assert not np.allclose(fixed.elbo_trace[:n], one.elbo_trace[:n], rtol=1e-6)  # the two schedules differ


def test_local_tol_stops_early_and_stays_monotone():
    """Between the two: the ELBO never decreases and the fit ends where the fixed schedule's does."""
    fixed = _grouped_fit(local_iter=10)
    early = _grouped_fit(local_iter=10, local_tol=1e-4)
    assert_elbo_monotone(early.elbo_trace)
    np.testing.assert_allclose(early.elbo_trace[-1], fixed.elbo_trace[-1], rtol=1e-5)
    np.testing.assert_allclose(np.sort(early.posterior["rate"].mean), np.sort(fixed.posterior["rate"].mean), rtol=1e-3)


def test_bad_local_tol_is_a_clear_error():
    import pytest

    from vemppl.diagnostics import VemError

    with pytest.raises(VemError, match="local_tol must be a non-negative number"):
        _grouped_fit(local_tol=-1.0)
    with pytest.raises(TypeError, match="local_tol"):  # not an option of stochastic VI
        vemppl.svi(50, local_tol=1e-3)


def test_local_tol_under_batched_restarts_is_each_restart_alone():
    """vmap of the stopping loop: each restart stops its own passes (a batched predicate),
    so the batched fit's traces are the restarts' traces run in turn."""
    batched = _grouped_fit(local_iter=10, local_tol=1e-4, restarts=3, batch_restarts=True)
    in_turn = _grouped_fit(local_iter=10, local_tol=1e-4, restarts=3, batch_restarts=False)
    np.testing.assert_allclose(batched.elbo_trace, in_turn.elbo_trace, rtol=1e-10)
    assert batched.best_restart == in_turn.best_restart


def test_local_restart_forgets_the_carried_locals():
    """With local_restart a sweep starts the locals at their prior, so its result does not
    depend on the locals it is given: two states that differ only there give one sweep."""
    import jax

    fit = _grouped_fit(local_iter=10, local_tol=1e-6, local_restart=True)
    state = fit.state
    eta_pi = state.eta["pi"]
    shuffled = jax.tree_util.tree_map(lambda a: a[::-1], eta_pi)  # another group's proportions
    other = state._replace(eta={**state.eta, "pi": shuffled},
                           mu={**state.mu, "pi": fit.engine.families["pi"].expected_stats(shuffled)})
    # The restarted sweep itself (the guard may swap in the carried one, which remembers).
    a, elbo_a = fit.engine._sweep_body(state, fit.engine.data, restart=True)
    b, elbo_b = fit.engine._sweep_body(other, fit.engine.data, restart=True)
    np.testing.assert_allclose(float(elbo_a), float(elbo_b), rtol=1e-12)
    for x, y in zip(jax.tree_util.tree_leaves(a.eta), jax.tree_util.tree_leaves(b.eta)):
        np.testing.assert_allclose(x, y, rtol=1e-10, atol=1e-12)
    carried = _grouped_fit(local_iter=10, local_tol=1e-6)  # without: the carried locals matter
    a, _ = carried.engine.sweep(carried.state)
    s2 = carried.state._replace(eta={**carried.state.eta, "pi": shuffled},
                                mu={**carried.state.mu, "pi": carried.engine.families["pi"].expected_stats(shuffled)})
    b, _ = carried.engine.sweep(s2)
    assert not np.allclose(a.eta["pi"][0], b.eta["pi"][0], rtol=1e-6)


def test_local_restart_is_guarded_so_the_elbo_never_decreases():
    """One local pass from the prior leaves the locals far from their optimum, so the
    restarted sweep alone lowers the ELBO of a fitted state; the guarded sweep then takes
    the carried one, and a whole fit stays monotone."""
    fit = _grouped_fit(local_iter=1, local_restart=True)
    assert_elbo_monotone(fit.elbo_trace)
    engine, state = fit.engine, fit.state
    before = float(engine.elbo(state))
    _, restarted = engine._sweep_body(state, engine.data, restart=True)
    _, carried = engine._sweep_body(state, engine.data, restart=False)
    _, guarded = engine.sweep(state)
    assert float(restarted) < before - 0.1, (float(restarted), before)  # measured: 0.41 nats lower
    np.testing.assert_allclose(float(guarded), float(carried), rtol=1e-12)  # jitted and not: rounding apart
    assert float(guarded) >= before - 1e-9 * abs(before)


def test_local_restart_for_the_first_sweeps_then_carried():
    """local_restart=S restarts the locals in sweeps 1..S (the trace of local_restart=True
    there) and carries them after; S = 0 is the carried schedule."""
    every = _grouped_fit(local_iter=5, local_restart=True).elbo_trace
    carried = _grouped_fit(local_iter=5).elbo_trace
    first = _grouped_fit(local_iter=5, local_restart=4).elbo_trace
    np.testing.assert_allclose(first[:4], every[:4], rtol=1e-12)
    assert not np.allclose(first[4:8], every[4:8], rtol=1e-9)
    np.testing.assert_allclose(_grouped_fit(local_iter=5, local_restart=0).elbo_trace, carried, rtol=1e-12)
    assert_elbo_monotone(first)


def test_local_restart_needs_random_globals_and_batch_fits():
    import pytest

    from vemppl.diagnostics import VemError

    with pytest.raises(VemError, match="it needs start='random-globals'"):
        vemppl.cavi(start="prior", local_restart=True)  # an admixture's default start is random-globals
    with pytest.raises(VemError, match="a number of sweeps"):
        _grouped_fit(local_restart=-1)
    with pytest.raises(TypeError, match="local_restart"):  # not an option of stochastic VI
        vemppl.svi(50, local_restart=True)


def test_loop_invariant_factors_read_no_other_local_block():
    """A local block's factors that read no other local block (here z's likelihood, which
    reads the global rates, and pi's prior) are its loop-invariant part, from the graph."""
    from vemppl.engine.schedule import LocalGlobal

    fit = vemppl.fit(vemppl.parse(GROUPED), data={"grp": np.zeros(10, int), "x": np.ones(10, int)}, dims={"G": 1}, max_iter=1,
                     algorithm=vemppl.cavi(start="random-globals", local_iter=3), progress=False)
    inv = LocalGlobal(fit.engine, "random-globals", 3).invariant
    assert {j: sorted(f.target for f in fs) for j, fs in inv.items()} == {"z": ["x"], "pi": ["pi"]}
    assert LocalGlobal(fit.engine, "random-globals", 1).invariant == {}  # one pass: nothing to hoist


def test_loop_invariant_parts_computed_once_give_the_same_trace(monkeypatch):
    """The part of η_j from the loop-invariant factors, computed before the passes, gives
    the trace of evaluating every factor in every pass: with the rows merged (weighted
    factors) and without, with a fixed number of passes and with local_tol."""
    from vemppl.engine.schedule import LocalGlobal

    def both(**kw):
        hoisted = _grouped_fit(**kw).elbo_trace
        with monkeypatch.context() as mp:
            mp.setattr(LocalGlobal, "_loop_invariant", lambda self, engine: {})
            every_pass = _grouped_fit(**kw).elbo_trace
        return hoisted, every_pass

    for kw in (dict(local_iter=4), dict(local_iter=4, compress=False), dict(local_iter=10, local_tol=1e-4)):
        hoisted, every_pass = both(**kw)
        assert len(hoisted) == len(every_pass) > 10
        np.testing.assert_allclose(hoisted, every_pass, rtol=1e-12)


def test_cli_local_restart_takes_an_optional_number_of_sweeps():
    from vemppl.cli import build_parser

    base = ["fit", "m.vem", "--data", "d.npz"]
    parser = build_parser()
    assert parser.parse_args(base).local_restart is False
    assert parser.parse_args(base + ["--local-restart"]).local_restart is True
    assert parser.parse_args(base + ["--local-restart", "25"]).local_restart == 25
