"""Python-DSL twins of every model in ``models/``: each builds the IR its ``.vem`` file gives.

``MODELS`` maps a model's name to the function that builds it; the file is
``models/<name>.vem``.  Engine tests import these to compare a fit of the text model
with a fit of its twin.
"""

from __future__ import annotations

from pathlib import Path

import vemppl as vp

MODELS_DIR = Path(__file__).resolve().parents[1] / "models"


def gmm() -> vp.Model:
    m = vp.Model("gmm")
    N, D = m.dim("N", "D")
    K = m.const("K", 3)
    m.data("x", vp.real[N, D])
    pi = m.sample("pi", vp.Dirichlet(vp.fill(1.0, K)))
    with m.plate("k", K):
        mu = m.sample("mu", vp.MvNormal(vp.zeros(D), precision=0.01 * vp.eye(D)))
        Lam = m.sample("Lam", vp.Wishart(D + 2, vp.eye(D)))
    with m.plate("n", N):
        z = m.sample("z", vp.Categorical(pi))
        m.sample("x", vp.MvNormal(mu[z], precision=Lam[z]))
    return m


def hmm() -> vp.Model:
    m = vp.Model("hmm")
    T, D = m.dim("T", "D")
    K = m.const("K", 4)
    m.data("x", vp.real[T, D])
    pi0 = m.sample("pi0", vp.Dirichlet(vp.ones(K)))
    with m.plate("k", K):
        A = m.sample("A", vp.Dirichlet(vp.ones(K)))
        mu = m.sample("mu", vp.MvNormal(vp.zeros(D), precision=0.01 * vp.eye(D)))
        Lam = m.sample("Lam", vp.Wishart(D + 2, vp.eye(D)))
    z = m.sample("z", vp.Categorical(pi0), index=0)
    with m.plate("t", T, start=1) as t:
        m.sample("z", vp.Categorical(A[z[t - 1]]))
    with m.plate("t", T) as t:
        m.sample("x", vp.MvNormal(mu[z[t]], precision=Lam[z[t]]))
    return m


def lda() -> vp.Model:
    m = vp.Model("lda")
    M, D, V = m.dim("M", "D", "V")
    K = m.const("K", 10)
    alpha = m.const("alpha", 0.1)
    eta = m.const("eta", 0.01)
    doc = m.data("doc", vp.cat(D)[M])
    m.data("word", vp.cat(V)[M])
    with m.plate("k", K):
        beta = m.sample("beta", vp.Dirichlet(vp.fill(eta, V)))
    with m.plate("d", D):
        theta = m.sample("theta", vp.Dirichlet(vp.fill(alpha, K)))
    with m.plate("i", M) as i:
        z = m.sample("z", vp.Categorical(theta[doc[i]]))
        m.sample("word", vp.Categorical(beta[z]))
    return m


def lda_docs() -> vp.Model:
    m = vp.Model("lda_docs")
    D, L, V = m.dim("D", "L", "V")
    K = m.const("K", 10)
    alpha = m.const("alpha", 0.1)
    eta = m.const("eta", 0.01)
    m.data("word", vp.cat(V)[D, L])
    with m.plate("k", K):
        beta = m.sample("beta", vp.Dirichlet(vp.fill(eta, V)))
    with m.plate("d", D) as d:
        theta = m.sample("theta", vp.Dirichlet(vp.fill(alpha, K)))
        with m.plate("l", L) as l:
            z = m.sample("z", vp.Categorical(theta[d]))
            m.sample("word", vp.Categorical(beta[z[d, l]]))
    return m


def fa() -> vp.Model:
    m = vp.Model("fa")
    N, D = m.dim("N", "D")
    L = m.const("L", 2)
    m.data("x", vp.real[N, D])
    W = m.param("W", vp.real[D, L])
    psi = m.param("psi", vp.pos[D])
    mean = m.param("m", vp.real[D])
    with m.plate("n", N):
        h = m.sample("h", vp.MvNormal(vp.zeros(L), vp.eye(L)))
        with m.plate("j", D) as j:
            m.sample("x", vp.Normal(mean[j] + vp.dot(W[j], h), precision=psi[j]))
    return m


def logreg() -> vp.Model:
    m = vp.Model("logreg")
    N, P = m.dim("N", "P")
    X = m.data("X", vp.real[N, P])
    m.data("y", vp.bool_[N])
    tau = m.sample("tau", vp.Gamma(1, 1))
    with m.plate("j", P):
        w = m.sample("w", vp.Normal(0, precision=tau))
    with m.plate("n", N) as n:
        m.sample("y", vp.Bernoulli(logits=vp.dot(X[n], w)))
    return m


def ppca() -> vp.Model:
    m = vp.Model("ppca")
    N, D = m.dim("N", "D")
    L = m.const("L", 3)
    m.data("x", vp.real[N, D])
    with m.plate("l", L):
        alpha = m.sample("alpha", vp.Gamma(1e-3, 1e-3))
    with m.plate("j", D):
        mean = m.sample("m", vp.Normal(0, precision=1e-3))
        with m.plate("l", L) as col:
            W = m.sample("W", vp.Normal(0, precision=alpha[col]))
    tau = m.sample("tau", vp.Gamma(1e-3, 1e-3))
    with m.plate("n", N):
        z = m.sample("z", vp.MvNormal(vp.zeros(L), vp.eye(L)))
        with m.plate("j", D) as j:
            m.sample("x", vp.Normal(mean[j] + vp.dot(W[j], z), precision=tau))
    return m


def poisson_mixture() -> vp.Model:
    m = vp.Model("poisson_mixture")
    N = m.dim("N")
    K = m.const("K", 3)
    m.data("x", vp.count[N])
    pi = m.sample("pi", vp.Dirichlet(vp.ones(K)))
    with m.plate("k", K):
        lam = m.sample("lam", vp.Gamma(1, 0.1))
    with m.plate("n", N):
        z = m.sample("z", vp.Categorical(pi))
        m.sample("x", vp.Poisson(lam[z]))
    return m


def bernoulli_mixture() -> vp.Model:
    m = vp.Model("bernoulli_mixture")
    N, D = m.dim("N", "D")
    K = m.const("K", 3)
    m.data("x", vp.bool_[N, D])
    pi = m.sample("pi", vp.Dirichlet(vp.ones(K)))
    with m.plate("k", K):
        with m.plate("j", D):
            mu = m.sample("mu", vp.Beta(1, 1))
    with m.plate("n", N):
        z = m.sample("z", vp.Categorical(pi))
        with m.plate("j", D) as j:
            m.sample("x", vp.Bernoulli(mu[z, j]))
    return m


def linreg() -> vp.Model:
    m = vp.Model("linreg")
    N, P = m.dim("N", "P")
    X = m.data("X", vp.real[N, P])
    m.data("y", vp.real[N])
    with m.plate("j", P):
        alpha = m.sample("alpha", vp.Gamma(1e-2, 1e-4))
        w = m.sample("w", vp.Normal(0, precision=alpha))
    tau = m.sample("tau", vp.Gamma(1e-2, 1e-4))
    with m.plate("n", N) as n:
        m.sample("y", vp.Normal(vp.dot(X[n], w), precision=tau))
    return m


def hierarchical() -> vp.Model:
    m = vp.Model("hierarchical")
    J = m.dim("J")
    m.data("y", vp.real[J])
    sigma = m.data("sigma", vp.pos[J])
    mu = m.sample("mu", vp.Normal(0, precision=1e-4))
    tau = m.sample("tau", vp.Gamma(1, 1))
    with m.plate("j", J) as j:
        theta = m.sample("theta", vp.Normal(mu, precision=tau))
        m.sample("y", vp.Normal(theta, sigma[j]))
    return m


def robust() -> vp.Model:
    m = vp.Model("robust")
    N, P = m.dim("N", "P")
    nu = m.const("nu", 4.0)
    X = m.data("X", vp.real[N, P])
    m.data("y", vp.real[N])
    sigma = m.param("sigma", vp.pos)
    tau = m.sample("tau", vp.Gamma(1, 1))
    with m.plate("j", P):
        w = m.sample("w", vp.Normal(0, precision=tau))
    with m.plate("n", N) as n:
        m.sample("y", vp.StudentT(nu, vp.dot(X[n], w), sigma))
    return m


def hmm_categorical() -> vp.Model:
    m = vp.Model("hmm_categorical")
    T, V = m.dim("T", "V")
    K = m.const("K", 3)
    m.data("x", vp.cat(V)[T])
    pi0 = m.sample("pi0", vp.Dirichlet(vp.ones(K)))
    with m.plate("k", K):
        A = m.sample("A", vp.Dirichlet(vp.ones(K)))
        B = m.sample("B", vp.Dirichlet(vp.ones(V)))
    z = m.sample("z", vp.Categorical(pi0), index=0)
    with m.plate("t", T, start=1) as t:
        m.sample("z", vp.Categorical(A[z[t - 1]]))
    with m.plate("t", T) as t:
        m.sample("x", vp.Categorical(B[z[t]]))
    return m


def vae() -> vp.Model:
    m = vp.Model("vae")
    N, D = m.dim("N", "D")
    L = m.const("L", 2)
    H = m.const("H", 64)
    x = m.data("x", vp.bool_[N, D])
    dec = m.param("dec", vp.mlp("tanh")[L, H, D])
    enc = m.param("enc", vp.mlp("tanh")[D, H, 2 * L])
    with m.plate("n", N) as n:
        z = m.sample("z", vp.MvNormal(vp.zeros(L), vp.eye(L)))
        m.sample("x", vp.Bernoulli(logits=dec(z)))
        m.q(z, enc(x[n]))
    return m


MODELS = {
    f.__name__: f
    for f in (gmm, hmm, lda, lda_docs, fa, logreg, ppca, poisson_mixture, bernoulli_mixture, linreg, hierarchical, hmm_categorical, vae, robust)
}


def path(name: str) -> Path:
    """The ``.vem`` file of a model."""
    return MODELS_DIR / f"{name}.vem"
