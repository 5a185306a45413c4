"""Variational autoencoder on binarised digits: vemppl against a NumPyro SVI reference.

    python benchmarks/vae.py              # latent 2 and 10, one hidden layer of 256, 2000 steps
    python benchmarks/vae.py --steps 500  # another number of steps
    python benchmarks/vae.py --quick      # a smoke run (latent 2, hidden 32, 50 steps)

Data: scikit-learn's digits (1797 images of 8 x 8 pixels), binarised at pixel > 8, split
80/20 into training and test sets with a fixed seed.

Model (Kingma & Welling 2014, appendix C.1): z_n ~ N(0, I_L), x_n | z_n ~ Bernoulli(logits =
dec(z_n)) with dec an MLP L -> H -> D (tanh), and an amortised posterior q(z_n | x_n) =
N(m, diag(σ²)) with (m, log σ) = enc(x_n), enc an MLP D -> H -> 2L (tanh).  vemppl fits
``models/vae.vem``; the reference is the same model written in NumPyro and fitted with
``numpyro.infer.SVI`` and ``Trace_ELBO`` with the encoder as guide.  Both start from the same
Glorot-normal weights (drawn once from the seed), take the same number of full-batch
Adam steps with the same step size, one Monte Carlo draw per step.

The test-set ELBO of both is computed by one function, :func:`test_elbo`: for each test
image, E_q[log p(x | z)] by ``samples`` reparameterised draws plus the exact
−KL(q(z | x) || N(0, I)), averaged over the test images (nats per image).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from functools import partial
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import vemppl as vp
from vemppl.engine.networks import apply_mlp, init_mlp

HERE = Path(__file__).resolve().parent
MODEL = HERE.parent / "models" / "vae.vem"


def digits(seed: int = 0):
    """Binarised digits (pixel > 8), split 80/20 with ``seed``: (train, test) as float arrays."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x = (load_digits().data > 8).astype(float)
    return train_test_split(x, test_size=0.2, random_state=seed)


def initial_weights(seed: int, D: int, H: int, L: int) -> dict:
    """The starting weights both systems use."""
    rng = np.random.default_rng(seed)
    return {"enc": init_mlp(rng, (D, H, 2 * L)), "dec": init_mlp(rng, (L, H, D))}


def test_elbo(weights: dict, x, L: int, seed: int = 0, samples: int = 200) -> float:
    """Mean over images of E_q[log p(x | z)] (Monte Carlo) − KL(q(z | x) || N(0, I)) (exact)."""
    weights = jax.tree_util.tree_map(jnp.asarray, weights)
    return float(_test_elbo(weights, jnp.asarray(x), L, seed, samples))


@partial(jax.jit, static_argnums=(2, 3, 4))
def _test_elbo(weights, x, L, seed, samples):
    out = apply_mlp(weights["enc"], x, "tanh")
    loc, log_scale = out[:, :L], out[:, L:]
    eps = jax.random.normal(jax.random.PRNGKey(seed), (samples,) + loc.shape)
    z = loc + jnp.exp(log_scale) * eps
    logits = apply_mlp(weights["dec"], z, "tanh")
    rec = jnp.mean(jnp.sum(x * logits - jnp.logaddexp(0.0, logits), axis=-1), axis=0)
    kl = 0.5 * jnp.sum(jnp.exp(2 * log_scale) + loc**2 - 1.0 - 2 * log_scale, axis=-1)
    return jnp.mean(rec - kl)


def fit_vemppl(x, L: int, H: int, steps: int, lr: float, seed: int, init: dict):
    """vemppl on ``models/vae.vem``: (weights, fit)."""
    model = vp.load(MODEL)
    fit = vp.fit(
        model, {"x": x}, consts={"L": L, "H": H}, init=init, max_iter=steps, tol=0.0,
        algorithm=vp.cavi(learning_rate=lr), seed=seed, progress=False,
    )
    return {"enc": fit.params["enc"], "dec": fit.params["dec"]}, fit


def fit_numpyro(x, L: int, H: int, steps: int, lr: float, seed: int, init: dict):
    """The reference: NumPyro SVI, Trace_ELBO, the encoder as guide; (weights, final loss)."""
    import numpyro
    import numpyro.distributions as dist
    from numpyro.infer import SVI, Trace_ELBO

    def model(x):
        dec = numpyro.param("dec", init["dec"])
        with numpyro.plate("n", x.shape[0]):
            z = numpyro.sample("z", dist.Normal(jnp.zeros(L), 1.0).to_event(1))
            numpyro.sample("x", dist.Bernoulli(logits=apply_mlp(dec, z, "tanh")).to_event(1), obs=x)

    def guide(x):
        enc = numpyro.param("enc", init["enc"])
        out = apply_mlp(enc, x, "tanh")
        with numpyro.plate("n", x.shape[0]):
            numpyro.sample("z", dist.Normal(out[:, :L], jnp.exp(out[:, L:])).to_event(1))

    svi = SVI(model, guide, numpyro.optim.Adam(lr), Trace_ELBO())
    res = svi.run(jax.random.PRNGKey(seed), steps, jnp.asarray(x), progress_bar=False)
    return {"enc": res.params["enc"], "dec": res.params["dec"]}, float(res.losses[-1])


def compare(L: int, H: int, steps: int, lr: float = 1e-2, seed: int = 0, samples: int = 200) -> dict:
    """Both systems on the same data, start and steps; test-set ELBOs by one function."""
    train, test = digits(seed)
    init = initial_weights(seed, train.shape[1], H, L)
    out = {"config": dict(L=L, H=H, steps=steps, lr=lr, seed=seed, n_train=len(train), n_test=len(test))}
    t = time.perf_counter()
    w_vp, fit = fit_vemppl(train, L, H, steps, lr, seed, init)
    out["vemppl"] = dict(
        wall_seconds=time.perf_counter() - t, compile_seconds=fit.compile_seconds, fit_seconds=fit.fit_seconds,
        iterations=int(fit.iterations), train_elbo_last_step=fit.elbo / len(train),
        train_elbo=test_elbo(w_vp, train, L, seed, samples), test_elbo=test_elbo(w_vp, test, L, seed, samples),
    )
    t = time.perf_counter()
    w_np, loss = fit_numpyro(train, L, H, steps, lr, seed, init)
    out["numpyro"] = dict(
        wall_seconds=time.perf_counter() - t, train_elbo_last_step=-loss / len(train),
        train_elbo=test_elbo(w_np, train, L, seed, samples), test_elbo=test_elbo(w_np, test, L, seed, samples),
    )
    out["test_elbo_difference"] = out["vemppl"]["test_elbo"] - out["numpyro"]["test_elbo"]
    return out


def _markdown(results: list[dict], info: dict) -> str:
    lines = [
        "# VAE on binarised digits: vemppl vs NumPyro SVI",
        "",
        "`python benchmarks/vae.py` (see the script's docstring for the protocol). Test-set ELBO in nats per image",
        "(Monte Carlo reconstruction term with "
        f"{info['samples']} draws + exact KL, one function for both); higher is better.",
        "",
        f"Machine: {info['machine']}.",
        "",
        "| L | H | steps | vemppl test ELBO | NumPyro test ELBO | difference | vemppl train ELBO | NumPyro train ELBO "
        "| vemppl wall s | NumPyro wall s |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        c, v, n = r["config"], r["vemppl"], r["numpyro"]
        lines.append(
            f"| {c['L']} | {c['H']} | {c['steps']} | {v['test_elbo']:.2f} | {n['test_elbo']:.2f} "
            f"| {r['test_elbo_difference']:+.2f} | {v['train_elbo']:.2f} | {n['train_elbo']:.2f} "
            f"| {v['wall_seconds']:.1f} | {n['wall_seconds']:.1f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None):
    from machine import machine  # benchmarks/machine.py, beside this script

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--latents", type=int, nargs="+", default=[2, 10])
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--lr", type=float, default=1e-2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--samples", type=int, default=200)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", type=Path, default=HERE)
    a = ap.parse_args(argv)
    if a.quick:
        a.latents, a.hidden, a.steps = [2], 32, 50
    results = []
    for L in a.latents:
        r = compare(L, a.hidden, a.steps, a.lr, a.seed, a.samples)
        print(f"L={L} H={a.hidden} steps={a.steps}: vemppl {r['vemppl']['test_elbo']:.3f}, "
              f"NumPyro {r['numpyro']['test_elbo']:.3f} nats/image (test)", flush=True)
        results.append(r)
    import numpyro

    info = {"machine": machine(numpyro=numpyro.__version__), "samples": a.samples}
    stem = "results_vae_quick" if a.quick else "results_vae"
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / f"{stem}.json").write_text(json.dumps({"info": info, "results": results}, indent=2) + "\n")
    (a.out / f"{stem}.md").write_text(_markdown(results, info))


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    main()
