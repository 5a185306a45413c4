"""`vemppl updates` writes each closed-form update as its formula: the expectations each
block's update reads, checked by hand against Bishop PRML (10.46, 10.58), Blei et al.
(2003, eq. 6-7) and Beal (2003, ch. 3) on several models, in Markdown and LaTeX."""

import re

import vemppl as vp
from dsl_models import MODELS_DIR
from vemppl.render.updates import derived_updates, to_latex


def updates(name):
    return derived_updates(vp.load(MODELS_DIR / f"{name}.vem"))


def test_gmm_responsibilities_are_bishop_10_46():
    text = updates("gmm")
    assert ("`log r[z[n] = k] = E[log pi[k]] + E[log MvNormal(x[n] | mu[k], precision_matrix = Lam[k])] + const`"
            in text)
    assert "∂/∂r" not in text
    assert "`η(pi) = η_Dirichlet(fill(1.0, K)) + Σ_n Σ_k r[z[n] = k] · ∇_{E[T(pi)]} E[log pi[k]]`" in text


def test_lda_token_topics_are_blei_eq_6():
    text = updates("lda")
    assert "`log r[z[i] = k] = E[log theta[doc[i], k]] + E[log beta[k, word[i]]] + const`" in text
    assert "η(beta[k]) = Σ_i r[z[i] = k] · ∇_{E[T(beta[k])]} E[log beta[k, word[i]]] + η_Dirichlet(fill(eta, V))" in text


def test_hmm_potentials_and_forward_backward():
    text = updates("hmm_categorical")
    assert "`log ψ[z[t] = k] = E[log B[k, x[t]]]`" in text
    assert "`log ψ[z[0] = k] = E[log pi0[k]] + E[log B[k, x[0]]]`" in text
    assert "`log Ψ(j, k) = E[log A[j, k]]`" in text
    assert "forward–backward" in text
    # the pairwise marginal forward–backward gives, not a product of the two steps' marginals
    assert "Σ_t Σ_l r[z[t - 1] = k, z[t] = l] · ∇_{E[T(A[k])]} E[log A[k, l]]" in text


def test_linreg_messages_and_priors():
    text = updates("linreg")
    assert "`η(tau) = Σ_n ∇_{E[T(tau)]} E[log Normal(y[n] | dot(X[n], w), precision = tau)] + η_Gamma(0.01, 0.0001)`" in text
    assert "∇_{E[T(alpha[j])]} E[log Normal(w[j] | 0, precision = alpha[j])]" in text


def test_non_conjugate_block_is_a_damped_step():
    text = updates("logreg")
    assert "η(w[j]) ← (1 − ρ) η(w[j]) + ρ (" in text


def test_every_update_has_latex_and_every_shipped_model_renders():
    for path in sorted(MODELS_DIR.glob("*.vem")):
        text = derived_updates(vp.load(path))
        for line in text.splitlines():
            if line.startswith("- update") and "η(" in line or line.startswith("- update: `log"):
                assert f"$$ {to_latex(line.split('`')[1])} $$" in text
    latex = to_latex("log r[z[n] = k] = E[log pi[k]] + Σ_n E[log Normal(x_1[n] | mu[k], precision = tau)] + const")
    assert latex == (r"\log r[z[n] = k] = \mathbb{E}[\log pi[k]] + \sum_{n} \mathbb{E}[\log \operatorname{Normal}"
                     r"(x\_1[n] \mid  mu[k], precision = tau)] + \text{const}")
    assert not re.search(r"[ΣηψΨ∇]", latex)
