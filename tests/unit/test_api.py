"""fit's signature and its algorithm objects: twelve named parameters, options checked
where the algorithm is made, the old keywords mapped onto the algorithm with a warning."""

import inspect

import numpy as np
import pytest

import vemppl as vp
from vemppl.engine.algorithms import Cavi, Svi

MODEL = """model m
dim N
data x: real[N]
mu ~ Normal(0, 1)
for n in range(N) { x[n] ~ Normal(mu, precision = 1) }
"""
X = np.array([0.5, 1.5, -0.2, 0.9])


def test_fit_has_at_most_twelve_parameters():
    params = inspect.signature(vp.fit).parameters
    assert len(params) <= 12
    assert list(params)[-1] == "algorithm"


@pytest.mark.parametrize("make, words", [
    (lambda: vp.cavi(chain="zigzag"), ["chain must be one of", "zigzag"]),
    (lambda: vp.cavi(start="anywhere"), ["start must be one of", "anywhere"]),
    (lambda: vp.cavi(local_iter=0), ["local_iter must be at least 1"]),
    (lambda: vp.cavi(local_tol=-1.0), ["local_tol must be a non-negative number"]),
    (lambda: vp.cavi(local_restart=True, start="prior"), ["needs start='random-globals'"]),
    (lambda: vp.cavi(learning_rate=0), ["learning_rate must be a positive number"]),
    (lambda: vp.cavi(compress=True, devices=2), ["compress=True with devices="]),
    (lambda: vp.svi(0), ["batch_size must be at least 1"]),
    (lambda: vp.svi(10, step_size=(1.0, 2.0)), ["kappa in (0.5, 1]"]),
    (lambda: vp.svi(10, step_size="fast"), ["step_size must be a pair"]),
])
def test_an_algorithm_checks_its_own_options(make, words):
    with pytest.raises(vp.VemError) as err:
        make()
    assert all(w in err.value.message for w in words), err.value.message


def test_old_keywords_map_onto_the_algorithm_with_a_warning_and_the_same_fit():
    new = vp.fit(vp.parse(MODEL), {"x": X}, algorithm=vp.cavi(local_iter=2, compress=False), progress=False)
    with pytest.warns(DeprecationWarning, match=r"local_iter=.*vp\.cavi"):
        old = vp.fit(vp.parse(MODEL), {"x": X}, local_iter=2, compress=False, progress=False)
    np.testing.assert_array_equal(new.elbo_trace, old.elbo_trace)


def test_old_keywords_with_an_algorithm_or_unknown_keywords_are_refused():
    with pytest.raises(vp.VemError, match="belong to the algorithm"):
        vp.fit(vp.parse(MODEL), {"x": X}, local_iter=2, algorithm=vp.cavi())
    with pytest.raises(TypeError, match="bogus"):
        vp.fit(vp.parse(MODEL), {"x": X}, bogus=1)
    with pytest.raises(vp.VemError, match="algorithm must be"):
        vp.fit(vp.parse(MODEL), {"x": X}, algorithm="cavi")


@pytest.mark.parametrize("old, words", [
    (dict(local_tol=1e-3, batch_size=50), "local_tol= is for batch fits"),
    (dict(local_restart=True, batch_size=50), "local_restart= is for batch fits"),
    (dict(compress=True, batch_size=50), "compress=True is for batch fits"),
    (dict(devices=2, batch_size=50), "devices= and batch_size= together"),
])
def test_old_batch_only_keywords_beside_batch_size_are_refused_by_name(old, words):
    with pytest.raises(vp.VemError, match=words):
        vp.fit(vp.parse(MODEL), {"x": X}, progress=False, **old)


def test_the_factories_make_frozen_option_objects():
    a, s = vp.cavi(local_iter=3), vp.svi(50, step_size=(2.0, 0.6))
    assert isinstance(a, Cavi) and a.local_iter == 3 and a.scheduled
    assert isinstance(s, Svi) and (s.batch_size, s.step_size) == (50, (2.0, 0.6))
    with pytest.raises(AttributeError):
        a.local_iter = 4


#: A value of each old keyword that differs from every default (and so would change a fit).
OLD_VALUES = {"strict": True, "learning_rate": 0.1, "batch_size": 50, "step_size": (2.0, 0.8), "local_iter": 3,
              "local_tol": 1e-3, "local_restart": 5, "plate": "N", "devices": 2, "batch_restarts": True,
              "start": "random-globals", "chain": "parallel", "compress": True, "screen": 2}


@pytest.mark.parametrize("batch_size", [None, 50])
def test_every_old_keyword_is_carried_or_refused(batch_size):
    """Each old keyword lands in the algorithm's option of its name, or is refused by name:
    fit(batch_size=, learning_rate=) dropped the learning rate, and step_size= without
    batch_size= was dropped, both without a word."""
    from vemppl.engine.algorithms import LEGACY, from_keywords

    assert set(OLD_VALUES) == set(LEGACY)
    for k, v in OLD_VALUES.items():
        kw = {k: v} if batch_size is None or k == "batch_size" else {"batch_size": batch_size, k: v}
        try:
            made = from_keywords(kw)
        except vp.VemError as err:
            assert f"{k}=" in err.message or k == "local_restart", err.message  # local_restart: needs start=
            continue
        assert getattr(made, k, "missing") == v, (k, made)
