"""Every model the grammar accepts checks and fits, or is refused with a located error (issue #20).

Hypothesis draws random well-typed models from the language's constructs (tests/_random_models.py:
dims, consts, data of each type, latents of every distribution of the list, params, deterministic
expressions with ``+ - * / exp log sigmoid softmax dot @`` and indexing, plates, gates by
categorical latents, gathers by data, Markov chains ``z[t-1]``) with matching seeded data.  For
each, ``compile_model`` (what ``vemppl check`` runs, plan printed) and a short ``fit``
(``max_iter=3``) must either succeed or raise a :class:`~vemppl.VemError` located at a line of
the model's text: an internal error (any other exception) fails the test with the model.

:data:`PENDING` names the constructs the generator leaves out for now: each is issue #20 work in
another engineer's hands, and fails today with the error quoted beside it.  Remove a name once
its work is merged.
"""

from __future__ import annotations

import os
import warnings

import jax
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import vemppl as vp
from _random_models import CONSTRUCTS, Drawer, random_data
from vemppl.compiler import compile_model

#: Constructs left out of the generator until their issue #20 work lands (one name a line, with
#: what a model with the construct raised).  Empty since main was merged with the params,
#: nonconj, products and kalman work (a param in a prior and nonlinear functions of latents were
#: refused with located errors before it; these two raised internal errors):
#:   "latent_products"   issue #20 row 6: u ~ Gamma(...); y[n] ~ MvNormal(zeros(D), precision = u * eye(D))
#:                       -> internal error IndexError: tuple index out of range (elj/moments.py, Scaled.logdet)
#:   "continuous_chain"  issue #20 row 5: s[0] ~ Normal(0, 1); s[t] ~ Normal(s[t-1], precision = 1.0)
#:                       -> internal error KeyError: 's' (elj/evaluate.py, _Context._name)
PENDING: set[str] = set()
ENABLED = frozenset(CONSTRUCTS) - PENDING

@pytest.fixture(autouse=True, scope="module")
def _fast_compiles():
    """XLA's optimisation passes off for these fits: a quarter of the test's time is compiling
    tiny programs run three times, and what is tested (no exception but a located VemError)
    happens in Python and in tracing, before XLA."""
    old = jax.config.read("jax_disable_most_optimizations")
    jax.config.update("jax_disable_most_optimizations", True)
    yield
    jax.config.update("jax_disable_most_optimizations", old)
    # The option is not part of jit's cache key: a module-level jitted helper compiled here
    # (families/_linalg.py's chol, 2×2) kept its unoptimised program for the rest of the
    # process, and test_centred_quad.py, run after this file on one CI worker, read a
    # 1e13-conditioned quadratic 8× less accurately than optimised code does.
    jax.clear_caches()


#: Examples per half: the test runs in two files (this one and test_random_models_more.py, each its
#: own hypothesis seed, so the two CI workers share it), and each half must draw at least
#: DISTINCT different models (hypothesis repeats about a third of its draws of the generator
#: of tests/_random_constructs.py: 249 different models in 370 draws): 500 in all, the number
#: issue #20 asks of CI.  `VEMPPL_RANDOM_MODELS=N` draws N per half (DISTINCT scales with it).
EXAMPLES = int(os.environ.get("VEMPPL_RANDOM_MODELS", "385"))
DISTINCT = EXAMPLES * 250 // 385

@st.composite
def cases(draw, enabled=ENABLED):
    d = Drawer(draw, st, enabled)
    text = d.model()
    return text, dict(d.m.data), draw(st.integers(2, 4))


#: Outcomes by (model text, N): (internal error or None, the located VemError or None).
#: Hypothesis draws some models more than once (a quarter of them among the first 500),
#: and the same model, data and seed give the same outcome.
OUTCOMES: dict = {}
_CHECKED: dict = {}


#: The distinct (model text, N) each half drew, by the half's test name.
DRAWN: dict[str, set] = {}


def check_and_fit(text, spec, n, half="first"):
    """None, or the internal error (an exception other than a located VemError) with the model."""
    DRAWN.setdefault(half, set()).add((text, n))
    if (text, n) not in OUTCOMES:
        OUTCOMES[(text, n)] = _check_and_fit(text, spec, n)
    return OUTCOMES[(text, n)][0]


def _check_and_fit(text, spec, n):
    data = random_data(spec, n, seed=0)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = vp.parse(text, filename="random.vem")
            if text not in _CHECKED:  # what `vemppl check` does: the plan, printed
                _CHECKED[text] = str(compile_model(model))
            vp.fit(model, data=data, seed=0, max_iter=3)
    except vp.VemError as err:
        if err.line is None or err.file != "random.vem":
            return f"a VemError without a place in the model: {err}", err
        return None, err
    except Exception as exc:  # noqa: BLE001  (the point of the test: nothing else may escape)
        return f"internal error {type(exc).__name__}: {exc}", None
    return None, None


# No shrinking: each example is a fit (about a second), and shrinking one failure took over five
# minutes; a failure reports the model as drawn, which is small already.  derandomize: the seed
# is the test function's source, so each half draws its own fixed models.
RANDOM_MODELS = settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
                         suppress_health_check=list(HealthCheck), phases=(Phase.explicit, Phase.generate))


@RANDOM_MODELS
@given(case=cases())
# Measured (issue #20, on the shared 2-core machine under load): 500 models in 725 s of wall time,
# 378 s of CPU; above the suite's 600 s default when the machine is shared, so its own limit.
@pytest.mark.timeout(1500)
def test_random_models_check_and_fit_or_raise_a_located_error(case):
    text, spec, n = case
    problem = check_and_fit(text, spec, n)
    assert problem is None, f"{problem}\n--- model (N = {n}) ---\n{text}"


def test_the_first_half_drew_enough_different_models():
    assert len(DRAWN.get("first", ())) >= DISTINCT, f"{len(DRAWN.get('first', ()))} different models drawn"
