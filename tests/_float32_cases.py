"""The models and data of tests/test_float32.py, shared by its float64 side (in the test
process) and its float32 side (tests/_float32_fits.py, in a subprocess)."""

import numpy as np

import vemppl as vp
from dsl_models import MODELS_DIR, gmm


def cases():
    rng = np.random.default_rng(0)
    centres = np.array([[0.0, 0.0], [5.0, 0.0], [0.0, 5.0]])
    x = centres[rng.integers(3, size=600)] + rng.normal(size=(600, 2))
    z = np.zeros(400, int)
    for t in range(1, 400):
        z[t] = z[t - 1] if rng.random() < 0.9 else rng.integers(3)
    seq = centres[z] + rng.normal(size=(400, 2))
    doc = np.repeat(np.arange(20), 25)
    word = np.where(doc % 2 == 0, rng.integers(0, 6, doc.size), rng.integers(6, 12, doc.size))
    return {
        "gmm": (gmm(), {"x": x}, {"max_iter": 100, "tol": 1e-6}),
        "hmm": (vp.load(MODELS_DIR / "hmm.vem"), {"x": seq}, {"consts": {"K": 3}, "max_iter": 100, "tol": 1e-6}),
        "lda": (vp.load(MODELS_DIR / "lda.vem"), {"doc": doc, "word": word},
                {"consts": {"K": 2}, "dims": {"D": 20, "V": 12}, "max_iter": 100, "tol": 1e-6,
                 "algorithm": vp.cavi(start="random-globals", local_tol=1e-3)}),
    }


def underflowing_chain(T=6):
    """Two states that never switch, the data alternating between them 120 nats apart: in
    float32 (exp underflows below e^−87) every probability-space normaliser is zero."""
    rng = np.random.default_rng(5)
    psi = np.where(np.arange(T)[:, None] % 2 == np.arange(2)[None, :], 0.0, -120.0) + rng.normal(size=(T, 2))
    phi = np.broadcast_to(np.array([[0.0, -np.inf], [-np.inf, np.log(0.5)]]), (T - 1, 2, 2)).copy()
    return psi, phi
