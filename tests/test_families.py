"""Laws every exponential family in the registry must satisfy (STYLE.md, pattern 6).

Each family has a row of example parameters below; the table must cover the registry, so a
new family without examples fails ``test_table_covers_registry``.  For every row:

1. the closed-form ``E[T]`` equals the autodiff ``∇A`` and a Monte Carlo mean of ``T(x)``;
2. ``⟨η, T(x)⟩ − A(η) + log h(x)`` equals NumPyro's ``log_prob``;
3. η ↔ parameters and η ↔ μ round-trip;
4. ``expected_log_prob`` with point-mass arguments equals NumPyro's ``log_prob``;
5. the entropy equals NumPyro's (or a Monte Carlo estimate where NumPyro has none);
6. ``mode`` maximises ``⟨η, T(x)⟩ + log h(x)``.

Likelihood-only distributions (StudentT) have their own table: ``expected_log_prob`` with
point masses equals NumPyro's ``log_prob``, and with a Gaussian location (quadrature) a
Monte Carlo average of it.
"""

from __future__ import annotations

import functools
import inspect
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jax.scipy.special import gammaln

from vemppl.families import REGISTRY, ExpFamily, MomentSource, fixed

jax.config.update("jax_enable_x64", True)

MC_SAMPLES = 20_000
MC_SIGMAS = 6.0  # z-score allowed for a Monte Carlo mean (fixed key, ~10² comparisons)
# Compiling, not running, dominates this file: XLA's lowest backend optimisation level
# compiles the rejection samplers and the digamma-heavy maps about 40% faster.
FAST_COMPILE = {"xla_backend_optimization_level": 0}


class Example(NamedTuple):
    settings: list[dict]
    #: keyword arguments that x-only or μ-only methods need and cannot infer (K, n).
    extra: Callable[[tuple], dict] = lambda eta: {}
    #: tolerance of natural_from_mean ∘ expected_stats where the inverse is iterative.
    inverse_rtol: float = 1e-8
    #: tolerance against NumPyro's entropy (looser only where NumPyro's is inexact).
    entropy_rtol: float = 1e-8


def _spd(seed, shape, d):
    a = np.random.default_rng(seed).normal(size=shape + (d, d))
    return a @ np.swapaxes(a, -1, -2) / d + np.eye(d)


def _normalised_logits(seed, shape):
    # Normalised so that natural_from_mean (which returns log p) round-trips exactly.
    return jax.nn.log_softmax(np.random.default_rng(seed).normal(size=shape), axis=-1)


EXAMPLES: dict[str, Example] = {
    "Normal": Example([
        {"loc": 0.3, "scale": 1.7},
        {"loc": np.array([-1.0, 0.0, 2.0]), "precision": np.array([4.0, 1.0, 0.25])},
    ]),
    "Gamma": Example([
        {"concentration": 2.5, "rate": 0.7},
        {"concentration": np.array([1.5, 4.0, 9.0]), "rate": np.array([1.0, 2.0, 0.5])},
    ], inverse_rtol=1e-6),
    "MvNormal": Example([
        {"loc": np.array([1.0, -1.0]), "covariance_matrix": np.array([[2.0, 0.5], [0.5, 1.0]])},
        {"loc": np.random.default_rng(1).normal(size=(3, 2)), "precision_matrix": _spd(2, (3,), 2)},
        {"loc": 0.0, "scale_tril": np.array([[1.0, 0.0], [0.3, 0.8]])},
    ]),
    "Wishart": Example([
        {"concentration": 5.0, "scale_matrix": _spd(3, (), 2)},
        {"concentration": np.array([4.0, 6.0, 9.0]), "rate_matrix": _spd(4, (3,), 2)},
        {"concentration": 4.5, "scale_tril": np.linalg.cholesky(_spd(5, (), 3))},
    ], inverse_rtol=1e-6),
    "Dirichlet": Example([
        {"concentration": np.array([2.0, 3.0, 1.5])},
        {"concentration": np.array([[1.2, 5.0, 2.0, 8.0], [3.0, 3.0, 1.1, 1.5]])},
    ], inverse_rtol=1e-6),
    "Beta": Example([
        {"concentration1": 2.0, "concentration0": 3.0},
        {"concentration1": np.array([1.5, 4.0, 8.0]), "concentration0": np.array([2.0, 1.2, 3.0])},
    # NumPyro's Beta entropy goes through jax.scipy.special.betaln, off by ~1e-6 at
    # B(8, 3) (scipy agrees with ours to 1e-14).
    ], inverse_rtol=1e-6, entropy_rtol=1e-5),
    "Categorical": Example([
        {"probs": np.array([0.2, 0.5, 0.3])},
        {"logits": _normalised_logits(6, (3, 4))},
    ], extra=lambda eta: {"num_categories": eta.onehot.shape[-1]}),
    "Bernoulli": Example([{"probs": 0.3}, {"logits": np.array([-2.0, 0.5, 1.0])}]),
    "Binomial": Example([
        {"total_count": 10, "probs": 0.3},
        {"total_count": np.array([5.0, 12.0, 20.0]), "logits": np.array([-1.0, 0.0, 1.5])},
    ], extra=lambda eta: {"total_count": eta.total_count}),
    "Poisson": Example([{"rate": 3.5}, {"rate": np.array([0.5, 4.0, 12.0])}]),
    "Multinomial": Example([
        {"total_count": 10, "probs": np.array([0.2, 0.3, 0.5])},
        {"total_count": np.array([4.0, 9.0]), "logits": _normalised_logits(7, (2, 3))},
    ]),
}

CASES = [(name, i) for name, ex in EXAMPLES.items() for i in range(len(ex.settings))]

#: Distributions that are never a q themselves: likelihood-only ones (``variational =
#: False``) and priors whose posterior is another family (an Exponential's is a Gamma), so
#: only the factor laws apply, with observed values ``y``.
LIKELIHOODS: dict[str, list[dict]] = {
    "Exponential": [
        {"y": np.array([0.01, 0.5, 2.0, 9.0]), "rate": 1.3},
        {"y": np.array([0.2, 1.0, 3.0]), "rate": np.array([0.5, 2.0, 7.0])},
    ],
    "InverseGamma": [
        {"y": np.array([0.05, 0.5, 2.0, 9.0]), "concentration": 2.5, "rate": 1.5},
        {"y": np.array([0.3, 1.0, 4.0]), "concentration": np.array([1.0, 3.0, 8.0]), "rate": np.array([0.5, 2.0, 6.0])},
    ],
    "LogNormal": [
        {"y": np.array([0.05, 0.5, 2.0, 9.0]), "loc": 0.3, "scale": 0.8},
        {"y": np.array([0.3, 1.0, 4.0]), "loc": np.array([-1.0, 0.0, 1.5]), "precision": np.array([0.5, 2.0, 6.0])},
    ],
    "Laplace": [
        {"y": np.array([-3.0, 0.2, 1.0, 8.0]), "loc": 0.5, "scale": 1.5},
        {"y": np.array([-1.0, 0.0, 2.5]), "loc": np.array([0.0, -1.0, 2.5]), "scale": np.array([0.5, 1.0, 2.0])},
    ],
    "StudentT": [
        {"y": np.array([-3.0, 0.2, 1.0, 8.0]), "df": 4.0, "loc": 0.5, "scale": 1.5},
        {"y": np.array([-1.0, 0.0, 2.5]), "df": np.array([1.0, 3.0, 30.0]),
         "loc": np.array([0.0, -1.0, 2.0]), "scale": np.array([0.5, 1.0, 2.0])},
    ],
}
LIKELIHOOD_CASES = [(name, i) for name, rows in LIKELIHOODS.items() for i in range(len(rows))]
#: The rows whose distribution has a location, for the Gaussian-location law.
LOCATION_CASES = [(name, i) for name, i in LIKELIHOOD_CASES if "loc" in LIKELIHOODS[name][i]]


def _case(name, i):
    fam, params = REGISTRY[name], EXAMPLES[name].settings[i]
    eta = fam.natural_from_params(**params)
    return fam, params, eta, EXAMPLES[name].extra(eta)


def _call(fn, *args, extra):
    """Call ``fn`` with the structural keywords (K, n) that its signature asks for."""
    accepted = inspect.signature(fn).parameters
    return fn(*args, **{k: v for k, v in extra.items() if k in accepted})


def _objective(fam, eta, x, extra):
    """⟨η, T(x)⟩ + log h(x), the function whose argmax is the mode."""
    stats = _call(fam.stats, x, extra=extra)
    return fam.inner(eta, stats) + _call(fam.log_base_measure, x, extra=extra)


def _with_defaults(fam, params):
    """Fill omitted argument groups from the defaults, as the compiler's caller does."""
    filled = dict(params)
    for group in fam.args.groups:
        if not any(n in params for n in group):
            filled.update({n: fam.args.defaults[n] for n in group if n in fam.args.defaults})
    return filled


def _perturb(support, x, noise, eps):
    """A point near ``x`` that stays in the support."""
    if support == "real":
        return x + eps * noise
    if support == "pos":
        return x * jnp.exp(eps * noise)
    if support == "unit":
        return jax.nn.sigmoid(jnp.log(x) - jnp.log1p(-x) + eps * noise)
    if support == "simplex":
        return jax.nn.softmax(jnp.log(x) + eps * noise, axis=-1)
    if support == "spd":
        return x + eps * 0.5 * (noise + jnp.swapaxes(noise, -1, -2))
    raise AssertionError(support)


def _candidates(fam, eta, extra):
    """Every value of a scalar discrete family worth comparing, shaped [M, *batch]."""
    m = {"cat": extra.get("num_categories"), "bool": 2}.get(fam.support, 60)
    batch = jnp.shape(fam.log_normalizer(eta))  # the example counts have modes below 60
    return jnp.broadcast_to(jnp.arange(m).reshape((m,) + (1,) * len(batch)), (m,) + batch)


def _try(fn):
    try:
        return fn()
    except NotImplementedError:
        return None


def _run(fn, *args):
    """Compile ``fn`` for ``args`` with FAST_COMPILE and run it."""
    return jax.jit(fn).lower(*args).compile(compiler_options=FAST_COMPILE)(*args)


@functools.cache
def _draws(name, i):
    """MC_SAMPLES draws from an example's q, one compiled sampler per example.

    η's natural parameters are traced, and its fixed trailing fields (``total_count``)
    closed over so that NumPyro's Multinomial sampler sees a concrete n.
    """
    fam, _, eta0, _ = _case(name, i)
    n_stats = len(fam.Stats._fields)

    def sample(key, natural):
        return fam.to_numpyro(type(eta0)(*natural, *eta0[n_stats:])).sample(key, (MC_SAMPLES,))

    return _run(sample, jax.random.PRNGKey(CASES.index((name, i))), tuple(eta0[:n_stats]))


@functools.cache
def _laws(name, i):
    """Both sides of every law for one example, computed in one jitted program.

    Eager JAX compiles each operation afresh for each new shape, so one program per
    example keeps the file fast.  η's natural parameters are traced (closed-over constants
    would let XLA constant-fold the iterative inverse maps at compile time, which is very
    slow); its fixed trailing fields (``total_count``) are closed over, so that the
    enumerations over ``0..n`` see a concrete n.
    """
    fam, params, eta0, extra = _case(name, i)
    n_stats = len(fam.Stats._fields)

    def compute(x, natural):
        eta = type(eta0)(*natural, *eta0[n_stats:])
        q = fam.to_numpyro(eta)
        point, root_n = x[:1000], np.sqrt(MC_SAMPLES)  # points of the support; MC scale
        stats = _call(fam.stats, x, extra=extra)
        out = {
            "closed": fam.expected_stats(eta),
            "autodiff": ExpFamily.expected_stats.__func__(fam, eta),
            "mc_mean": [s.mean(0) for s in stats],
            "mc_se": [s.std(0) / root_n for s in stats],
            "density": _objective(fam, eta, point, extra) - fam.log_normalizer(eta),
            "log_prob": q.log_prob(point),
            "params_round_trip": fam.natural_from_params(**fam.params_from_natural(eta)),
            "mean_round_trip": _call(fam.natural_from_mean, fam.expected_stats(eta), extra=extra),
            "entropy": _try(lambda: fam.entropy(eta)),
            # The engine passes the state's μ; a family may use it (Categorical: no exp per category).
            "entropy_given_mu": _try(lambda: fam.entropy(eta, fam.expected_stats(eta))),
            "numpyro_entropy": _try(q.entropy),
        }
        if out["numpyro_entropy"] is None:
            log_p = q.log_prob(x)
            out["mc_entropy"], out["mc_entropy_se"] = -log_p.mean(0), log_p.std(0) / root_n
        full = _with_defaults(fam, params)
        out["factor"] = fam.expected_log_prob(fixed(point), **{k: fixed(v) for k, v in full.items()})
        out["factor_log_prob"] = fam.numpyro_dist(**full).log_prob(point)
        mode = _try(lambda: fam.mode(eta))
        if mode is not None:
            out["at_mode"] = _objective(fam, eta, mode, extra)
            if fam.support in ("cat", "bool", "count"):
                if fam.event_rank == 0:
                    out["best"] = jnp.nanmax(_objective(fam, eta, _candidates(fam, eta, extra),
                                                        extra), axis=0)
            else:
                noise = jax.random.normal(jax.random.PRNGKey(4), (16,) + jnp.shape(mode))
                # ± each direction, so that a non-stationary point fails one of them.
                noise = jnp.concatenate([noise, -noise])
                out["near_mode"] = _objective(fam, eta, _perturb(fam.support, mode, noise, 1e-3),
                                              extra)
        return out

    # Sampling is its own program, and NumPyro's log_prob only sees 1000 points: on the CPU
    # backend of jax 0.10.2, a jitted Wishart log_prob of 100k × 3 matrices deadlocks.
    return jax.device_get(_run(compute, _draws(name, i), tuple(eta0[:n_stats])))


def _assert_tree_close(actual, expected, rtol, atol=1e-10):
    assert type(actual) is type(expected)
    for field, a, e in zip(expected._fields, actual, expected):
        np.testing.assert_allclose(a, e, rtol=rtol, atol=atol, err_msg=field)


def test_table_covers_registry():
    assert set(EXAMPLES) == {n for n, fam in REGISTRY.items() if fam.variational and not fam.posterior_family}
    assert set(LIKELIHOODS) == {n for n, fam in REGISTRY.items() if not fam.variational or fam.posterior_family}


@pytest.mark.parametrize("name,i", LIKELIHOOD_CASES)
def test_likelihood_with_point_masses_is_log_prob(name, i):
    row = dict(LIKELIHOODS[name][i])
    y, fam = row.pop("y"), REGISTRY[name]
    ours = fam.expected_log_prob(fixed(y), **{k: fixed(v) for k, v in _with_defaults(fam, row).items()})
    np.testing.assert_allclose(ours, fam.numpyro_dist(**row).log_prob(y), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name,i", LOCATION_CASES)
def test_likelihood_with_gaussian_location_matches_monte_carlo(name, i):
    """E over a Gaussian q(loc) as the engine supplies it (quadrature) against Monte Carlo."""
    from vemppl.elj.moments import BlockMoments

    row = dict(LIKELIHOODS[name][i])
    y, fam, normal = row.pop("y"), REGISTRY[name], REGISTRY["Normal"]
    eta = normal.natural_from_params(loc=row["loc"] * np.ones_like(y), scale=0.7)
    loc = BlockMoments("loc", normal, normal.expected_stats(eta), eta, None)
    args = {k: fixed(v) for k, v in row.items() if k != "loc"}
    ours = fam.expected_log_prob(fixed(y), loc=loc, **args)
    draws = normal.to_numpyro(eta).sample(jax.random.PRNGKey(i), (MC_SAMPLES,))
    log_p = fam.numpyro_dist(**{**row, "loc": draws}).log_prob(y)
    mc, se = log_p.mean(0), log_p.std(0) / np.sqrt(MC_SAMPLES)
    assert np.all(np.abs(ours - mc) <= MC_SIGMAS * se), (ours, mc, se)


@pytest.mark.parametrize("name,i", CASES)
def test_expected_stats_is_grad_of_log_normalizer(name, i):
    laws = _laws(name, i)
    _assert_tree_close(laws["closed"], laws["autodiff"], rtol=1e-8)


@pytest.mark.parametrize("name,i", CASES)
def test_expected_stats_matches_monte_carlo(name, i):
    laws = _laws(name, i)
    for field, mean, se, mu in zip(laws["closed"]._fields, laws["mc_mean"], laws["mc_se"],
                                   laws["closed"]):
        err = np.abs(mean - mu)
        assert np.all(err <= MC_SIGMAS * se + 1e-10), f"{field}: error {err.max():.3g}"


@pytest.mark.parametrize("name,i", CASES)
def test_density_is_exponential_family_form(name, i):
    laws = _laws(name, i)
    np.testing.assert_allclose(laws["density"], laws["log_prob"], rtol=1e-8, atol=1e-8)


@pytest.mark.parametrize("name,i", CASES)
def test_parameter_and_mean_maps_round_trip(name, i):
    laws, (_, _, eta, _) = _laws(name, i), _case(name, i)
    _assert_tree_close(laws["params_round_trip"], eta, rtol=1e-8)
    _assert_tree_close(laws["mean_round_trip"], eta, rtol=EXAMPLES[name].inverse_rtol)


@pytest.mark.parametrize("name,i", CASES)
def test_expected_log_prob_with_point_masses_is_log_prob(name, i):
    laws = _laws(name, i)
    np.testing.assert_allclose(laws["factor"], laws["factor_log_prob"], rtol=1e-8, atol=1e-8)


@pytest.mark.parametrize("name,i", CASES)
def test_entropy_matches_numpyro(name, i):
    laws = _laws(name, i)
    if laws["entropy"] is None:
        pytest.skip(f"{name} has no closed-form entropy (E[log h] is not closed form)")
    if laws["numpyro_entropy"] is not None:
        rtol = EXAMPLES[name].entropy_rtol
        np.testing.assert_allclose(laws["entropy"], laws["numpyro_entropy"], rtol=rtol, atol=1e-10)
        np.testing.assert_allclose(laws["entropy_given_mu"], laws["numpyro_entropy"], rtol=rtol, atol=1e-10)
    else:  # NumPyro has none: −E[log p(x)] by Monte Carlo instead.
        err = np.abs(laws["mc_entropy"] - laws["entropy"])
        assert np.all(err <= MC_SIGMAS * laws["mc_entropy_se"] + 1e-10)
        np.testing.assert_allclose(laws["entropy_given_mu"], laws["entropy"], rtol=1e-10, atol=1e-10)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(-700, 700), min_size=1, max_size=12), st.floats(-1e6, 1e6))
def test_categorical_entropy_from_its_mean_is_logsumexps(logits, shift):
    """max η − log max μ − ⟨η, μ⟩ is A(η) − ⟨η, μ⟩ for any logits (spreads of 1400 nats,
    a common shift of a million: η and η + c are one q), against NumPyro's entropy."""
    import numpyro.distributions as dist

    fam = REGISTRY["Categorical"]
    eta = fam.Stats(jnp.asarray(logits) + shift)
    h = fam.entropy(eta, fam.expected_stats(eta))
    ref = dist.Categorical(logits=jnp.asarray(logits)).entropy()
    np.testing.assert_allclose(h, ref, rtol=1e-9, atol=1e-9 * (1 + abs(shift)))


@pytest.mark.parametrize("name,i", CASES)
def test_mode_maximises_natural_objective(name, i):
    laws = _laws(name, i)
    if "at_mode" not in laws:
        pytest.skip(f"{name} has no mode (no M-step needs one)")
    best = laws["at_mode"]
    if "best" in laws:  # discrete: the maximum over every value
        np.testing.assert_allclose(best, laws["best"], rtol=1e-12, atol=1e-12)
    else:  # continuous: no nearby point does better
        assert np.all(laws["near_mode"] <= best + 1e-12 * np.abs(best))


# ---- the same laws on random parameters --------------------------------------------------

_pos = st.floats(0.2, 30.0)


@st.composite
def _random_family_params(draw):
    name = draw(st.sampled_from(["Normal", "Gamma", "Beta", "Dirichlet"]))
    if name == "Normal":
        return name, {"loc": draw(st.floats(-10.0, 10.0)), "scale": draw(st.floats(0.05, 20.0))}
    if name == "Gamma":
        return name, {"concentration": draw(_pos), "rate": draw(_pos)}
    if name == "Beta":
        return name, {"concentration1": draw(_pos), "concentration0": draw(_pos)}
    return name, {"concentration": np.array(draw(st.lists(_pos, min_size=2, max_size=6)))}


@settings(max_examples=15, deadline=None)
@given(_random_family_params())
def test_random_parameters_round_trip(case):
    name, params = case
    fam = REGISTRY[name]
    eta = fam.natural_from_params(**params)
    mu = fam.expected_stats(eta)
    _assert_tree_close(mu, ExpFamily.expected_stats.__func__(fam, eta), rtol=1e-8)
    _assert_tree_close(fam.natural_from_params(**fam.params_from_natural(eta)), eta, rtol=1e-8)
    _assert_tree_close(fam.natural_from_mean(mu), eta, rtol=1e-6, atol=1e-8)


# ---- latent (non-point-mass) arguments ---------------------------------------------------


class _Latent(MomentSource):
    """Moments of a latent with variational factor ``fam(η)``, as the engine supplies them."""

    def __init__(self, fam, eta):
        self._fam, self._eta, self._mu = fam, eta, fam.expected_stats(eta)

    @property
    def is_fixed(self):
        return False

    def moment(self, name):
        if name in self._mu._fields:
            return getattr(self._mu, name)
        return self._fam.derived_moment(self._eta, name)


for _name in ("mean", "sq", "outer", "log", "log1m", "logdet", "onehot"):
    setattr(_Latent, _name, property(lambda self, name=_name: self.moment(name)))


def _factor_vs_monte_carlo(family, value, value_log_base=None, **args):
    """``expected_log_prob`` with independent latent value and arguments against a Monte
    Carlo average of NumPyro's ``log_prob`` (minus ``value_log_base(x)``, the term a count
    family leaves out for a latent value).  Each source is a row ``(name, i)`` of the table,
    whose draws are already compiled; distinct rows have independent draws."""
    sources = {"value": value, **args}
    latent = {k: _Latent(REGISTRY[n], _case(n, i)[2]) for k, (n, i) in sources.items()}
    draws = {k: _draws(*src)[:20_000] for k, src in sources.items()}  # NumPyro log_prob cost
    log_p = REGISTRY[family].numpyro_dist(**{k: draws[k] for k in args}).log_prob(draws["value"])
    if value_log_base is not None:
        log_p = log_p - value_log_base(draws["value"])
    mc, se = log_p.mean(0), log_p.std(0) / np.sqrt(log_p.shape[0])
    ours = REGISTRY[family].expected_log_prob(latent.pop("value"), **latent)
    assert np.all(np.abs(ours - mc) <= MC_SIGMAS * se), (ours, mc, se)


def test_mvnormal_factor_with_latent_value_location_and_wishart_precision():
    _factor_vs_monte_carlo("MvNormal", value=("MvNormal", 0), loc=("MvNormal", 2),
                           precision_matrix=("Wishart", 0))


def test_categorical_factor_with_latent_value_and_dirichlet_probs():
    _factor_vs_monte_carlo("Categorical", value=("Categorical", 0), probs=("Dirichlet", 0))


def test_poisson_factor_with_latent_count_and_gamma_rate_leaves_out_log_factorial():
    _factor_vs_monte_carlo("Poisson", value=("Poisson", 1), rate=("Gamma", 1),
                           value_log_base=lambda x: -gammaln(x + 1.0))


@pytest.mark.parametrize("table_shape, index", [
    ((1, 20, 50), np.random.default_rng(0).integers(0, 50, (7, 1))),  # LDA's beta[z[i]] at word[i]
    ((9, 1, 5), np.arange(5).reshape(1, 5)),  # theta[doc[i]] at each enumerated category
    ((1, 9, 5), np.arange(5).reshape(5, 1)),
    ((9, 1, 5), np.arange(5)),
    ((4, 1, 3), np.random.default_rng(1).integers(0, 3, (1, 6))),
    ((4, 6, 3), np.random.default_rng(2).integers(0, 3, (4, 6))),  # long in both: element gather
    ((9, 5, 5), np.arange(5).reshape(1, 5)),  # an arange where the table is long: a diagonal
    ((2, 1, 3, 4), np.random.default_rng(3).integers(0, 4, (1, 5, 1))),
    ((3,), np.array(2)),
])
def test_categorical_table_lookup_is_take_along_the_broadcast(table_shape, index):
    """Categorical's ``out[b] = table[b, index[b]]`` by each of its three routes (transpose,
    row gather, element gather), with a NumPy or a JAX index, against NumPy, value and gradient."""
    from vemppl.families.categorical import _take_last

    rng = np.random.default_rng(4)
    table = rng.normal(size=table_shape)
    batch = np.broadcast_shapes(index.shape, table_shape[:-1])
    expected = np.take_along_axis(np.broadcast_to(table, batch + table_shape[-1:]),
                                  np.broadcast_to(index, batch)[..., None], -1)[..., 0]
    w = rng.normal(size=batch)
    for idx in (index, jnp.asarray(index)):
        np.testing.assert_array_equal(_take_last(jnp.asarray(table), idx), expected)
        g = jax.grad(lambda t: jnp.sum(_take_last(t, idx) * w))(jnp.asarray(table))
        full = np.zeros(batch + table_shape[-1:])
        np.put_along_axis(full, np.broadcast_to(index, batch)[..., None], w[..., None], -1)
        pad = (1,) * (len(batch) + 1 - len(table_shape)) + table_shape
        summed = full.sum(axis=tuple(a for a in range(len(batch)) if pad[a] == 1), keepdims=True).reshape(table_shape)
        np.testing.assert_allclose(g, summed, atol=1e-14)


@pytest.mark.parametrize("name,i", CASES)
def test_a_posterior_returned_by_a_compiled_program_is_the_eager_one(name, i):
    """``Fit.posterior`` builds every q in one jitted program (NumPyro's distributions are
    pytrees): the distribution it returns must be the eagerly built one, the same class, the
    same log density and the same draws for a key (a Wishart's degrees of freedom survive the
    trip out of the program; a Multinomial, whose count is a static field, is built eagerly)."""
    from types import SimpleNamespace

    from vemppl.results.posterior import compiled_posterior

    fam, _, eta0, _ = _case(name, i)
    plan = SimpleNamespace(block=lambda j: SimpleNamespace(family=name, members=()))
    compiled, eager = compiled_posterior(plan, {"q": eta0})["q"], fam.to_numpyro(eta0)
    assert type(compiled) is type(eager)
    points = np.asarray(_draws(name, i))[:200]
    np.testing.assert_allclose(compiled.log_prob(points), eager.log_prob(points), rtol=1e-10, atol=1e-10)
    key = jax.random.PRNGKey(7)
    np.testing.assert_allclose(compiled.sample(key, (3,)), eager.sample(key, (3,)), rtol=1e-10, atol=1e-12)
