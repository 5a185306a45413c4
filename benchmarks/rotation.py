"""The rotation step's cost (engine/rotation.py): Bayesian PCA with ARD, ``models/ppca.vem`` with no
options, one case per process (compile seconds are a cold process's).

    python benchmarks/rotation.py digits20 digits8 wine8 test3 shipped3
    python benchmarks/rotation.py --profile digits20     # the step's gain at each step too

Cases: ``digits20``/``digits8``: scikit-learn's digits (1797 × 64, the 3 constant columns dropped,
standardised), L = 20 / 8; ``wine8``: wine (178 × 13, standardised), L = 8; ``test3``: the
synthetic set of ``tests/test_rotation.py`` (N = 300, D = 5, rank 2), L = 3; ``shipped3``: the
PPCA case of ``benchmarks/slow/shipped.py`` (N = 500, D = 8, rank 2), L = 3.

Each line: sweeps, final ELBO, converged, fit and compile seconds (``Fit``), and the steps taken,
the first step's seconds (almost all its compilation; counted in the compile seconds) and the
other steps' seconds in all.  To time another checkout, run this file with ``PYTHONPATH`` set to it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def _standardised(x):
    x = x[:, x.std(0) > 0]
    return (x - x.mean(0)) / x.std(0)


def _test3():
    r = np.random.default_rng(0)  # tests/test_rotation.py::_data()
    w = r.normal(size=(5, 2)) * np.array([3.0, 1.5])
    return r.normal(size=(300, 2)) @ w.T + 1.0 + r.normal(0, 0.5, (300, 5))


def _shipped3():
    sys.path.insert(0, str(ROOT / "benchmarks" / "slow"))
    import shipped

    return shipped.ppca()[0]["x"]


def _sklearn(name):
    import sklearn.datasets as ds

    return _standardised(getattr(ds, f"load_{name}")().data)


CASES = {
    "digits20": (lambda: _sklearn("digits"), 20),
    "digits8": (lambda: _sklearn("digits"), 8),
    "wine8": (lambda: _sklearn("wine"), 8),
    "test3": (_test3, 3),
    "shipped3": (_shipped3, 3),
}


def one(case: str, profile: bool = False) -> dict:
    import jax

    import vemppl as vp
    from vemppl.engine import rotation as rt

    steps, call = [], rt.Rotated._step

    def timed(self, state):
        t = time.perf_counter()
        out = jax.block_until_ready(call(self, state))
        steps.append((time.perf_counter() - t, float(out[1])))
        return out

    rt.Rotated._step = timed
    data, L = CASES[case]
    x = data()
    text = (ROOT / "models" / "ppca.vem").read_text().replace("const L = 3", f"const L = {L}")
    f = vp.fit(vp.parse(text), {"x": x})
    out = dict(case=case, N=x.shape[0], D=x.shape[1], L=L, sweeps=int(f.iterations), elbo=float(f.elbo_trace[-1]),
               converged=bool(f.converged), fit_s=round(f.fit_seconds, 3), compile_s=round(f.compile_seconds, 3),
               steps=len(steps), first_step_s=round(steps[0][0], 3) if steps else None,
               other_steps_s=round(sum(t for t, _ in steps[1:]), 3))
    if profile:
        out["gains"] = [g for _, g in steps]
    return out


def main(argv):
    profile = "--profile" in argv
    cases = [a for a in argv if not a.startswith("--")] or list(CASES)
    if len(cases) == 1:
        print(json.dumps(one(cases[0], profile)), flush=True)
        return
    for c in cases:  # one process each: cold compilation
        subprocess.run([sys.executable, __file__, c, *(["--profile"] if profile else [])], check=True)


if __name__ == "__main__":
    main(sys.argv[1:])
