"""`vemppl demo`: the Bayesian Gaussian mixture of LANGUAGE.md on synthetic data made with
a fixed seed, fitted end to end: summary, results folder, plate diagram and ELBO plot."""

from __future__ import annotations

from pathlib import Path

import numpy as np

GMM = """\
# gmm.vem: Bayesian Gaussian mixture (Bishop, PRML section 10.2)
model gmm

dim N, D                       # sizes: read off the data's shapes
const K = 3                    # a constant; `--set K=5` or fit(..., consts={"K": 5}) overrides it
data x: real[N, D]             # observed

pi ~ Dirichlet(fill(1.0, K))
for k in range(K) {
    mu[k]  ~ MvNormal(zeros(D), precision = 0.01 * eye(D))
    Lam[k] ~ Wishart(D + 2, eye(D))
}
for n in range(N) {
    z[n] ~ Categorical(pi)
    x[n] ~ MvNormal(mu[z[n]], precision = Lam[z[n]])
}
"""


def demo_data(n: int = 600, seed: int = 0):
    """Three Gaussian clusters in the plane (fixed seed)."""
    rng = np.random.default_rng(seed)
    centres = np.array([[-4.0, 0.0], [3.0, 3.0], [3.0, -3.0]])
    covs = [np.array([[1.0, 0.6], [0.6, 1.0]]), np.eye(2) * 0.6, np.array([[1.2, -0.4], [-0.4, 0.5]])]
    labels = rng.choice(3, size=n, p=[0.4, 0.35, 0.25])
    x = np.stack([rng.multivariate_normal(centres[c], covs[c]) for c in labels])
    return x, labels


def run(out="demo-results", quiet: bool = False):
    """Write the model and data to ``out``, fit, save; print the plan, the summary and the
    files written (a file that could not be written is named with the reason)."""
    from .cli_runtime import Status
    from .cli_output import files_line, write_extras
    from .results.io import arrays_file

    out = Path(out)
    with Status(not quiet) as status:
        status("starting JAX")
        import vemppl as vp

        out.mkdir(parents=True, exist_ok=True)
        (out / "gmm.vem").write_text(GMM)
        model = vp.parse(GMM, filename=str(out / "gmm.vem"))
        x, labels = demo_data()
        np.savez(out / "data.npz", x=x)
        status("compiling and fitting (the first sweep compiles)")
        fit = vp.fit(model, {"x": x}, seed=0, restarts=3, progress=False if quiet else None)
        status(f"writing results to {out}/results/")
        fit.save(out / "results")
        written, skipped = write_extras(fit, model, out, status)
    if quiet:
        for s in skipped:
            print(f"note: skipped {s}")
        return fit
    print(vp.compile_model(model))
    print()
    print(fit.summary())
    print()
    print(files_line(out, ["gmm.vem", "data.npz", "results/manifest.json", f"results/{arrays_file(out / 'results')}", *written], skipped))
    return fit
