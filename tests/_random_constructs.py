"""The random-model generator's structured statements (tests/_random_models.py draws the rest).

Each entry of :data:`STATEMENTS` adds one construct of docs/language.md that is more than one
statement: Markov chains of categoricals (one chain, or one per sequence ``z[k, t]``), chains of
Normals (``x[t-1]`` times a constant, a param or a latent coefficient, plus an offset, under a
fixed, param or Gamma precision; one chain or one per sequence; rarely the refused ``x[t-2]``),
with a factor reading two adjacent steps; chains of MvNormals (``A @ x[t-1]`` with ``A`` a const, a
param or latent Gaussian rows, under a fixed or Wishart precision); observed autoregressions on
lagged data (``y[t-1]``, ``y[t-2]``); and an amortised posterior (``q(h[n]) = enc(y[n])`` with a
network decoder).  Each registers what it defines as a readable :class:`Value`.
"""

from __future__ import annotations

from _random_models import Value, statement

#: Arguments that have defaults, by family (docs/language.md, "Parameterisations"; NumPyro's).
DEFAULTS = {
    "Normal": ("loc", "scale"), "Gamma": ("rate",), "InverseGamma": ("rate",), "Exponential": ("rate",),
    "Laplace": ("loc", "scale"), "LogNormal": ("loc", "scale"), "StudentT": ("loc", "scale"),
    "MvNormal": ("loc",),  # (a total_count left out is 1: the data's five trials would not match)
}


def categorical_chain(d):
    """``z[0] ~ Categorical(p0)``, ``z[t] ~ Categorical(A[z[t-1]])``; or one chain per k."""
    m = d.m
    name = m.fresh("z")
    p0 = d.expr("simplex", "K", "", 0, True)
    trans = [v for v in m.values if v.plate == "k" and v.support == "simplex" and v.event == "K"]
    if trans and d.coin(0.7):
        a = d.pick(trans).name
    else:
        a = m.fresh("A")
        conc = d.expr("pos", "K", "k", 0, True)
        m.body.append(f"for k in range(K) {{ {a}[k] ~ Dirichlet({conc}) }}")
        m.values.append(Value(a, "simplex", "K", "k", "latent", random=True))
    if d.coin(0.7):
        m.body.append(f"{name}[0] ~ Categorical({p0})")
        m.body.append(f"for t in range(1, N) {{ {name}[t] ~ Categorical({a}[{name}[t-1]]) }}")
        m.values.append(Value(name, "cat", "", "n", "latent", chain=True, random=True))
    else:
        m.body.append(f"for k in range(K) {{ {name}[k, 0] ~ Categorical({p0}) }}")
        m.body.append(f"for k in range(K) {{ for t in range(1, N) {{ {name}[k, t] ~ Categorical({a}[{name}[k, t-1]]) }} }}")
        m.values.append(Value(name, "cat", "", "kn", "latent", chain=True, random=True))


def _coefficient(d):
    """A chain's coefficient on its previous step: none, a constant, a param or a Normal latent."""
    how = d.pick(["none", "const", "param", "latent"])
    if how == "none":
        return ""
    if how == "const":
        return d.pick(["0.5 * ", "0.9 * "])
    name = d.m.fresh("phi")
    if how == "param":
        d.m.decls.append(f"param {name}: real")
    else:
        d.m.body.append(f"{name} ~ Normal(0.0, 1.0)")
        d.m.values.append(Value(name, "real", "", "", "latent", random=True))
    return f"{name} * "


def _precision(d, matrix=False):
    """A chain's noise precision: fixed, a param or a Gamma (Wishart) latent."""
    how = d.pick(["fixed", "param", "latent"])
    if how == "fixed":
        return d.pick(["eye(D)", "4.0 * eye(D)"] if matrix else ["1.0", "4.0"])
    name = d.m.fresh("q")
    if how == "param":
        d.m.decls.append(f"param {name}: {'spd[D]' if matrix else 'pos'}")
    elif matrix:
        d.m.body.append(f"{name} ~ Wishart(D + 2, eye(D))")
        d.m.values.append(Value(name, "spd", "DD", "", "latent", random=True))
    else:
        d.m.body.append(f"{name} ~ Gamma(2.0, 1.0)")
        d.m.values.append(Value(name, "pos", "", "", "latent", random=True))
    return name


def normal_chain(d):
    """``x[0] ~ Normal``, ``x[t] ~ Normal(c * x[t-1] + b, precision = q)``, read by later statements;
    one chain or one per k; a factor on two adjacent steps; rarely the refused ``x[t-2]``; a
    third of the time a chain of MvNormals instead (:func:`mv_chain`)."""
    if not d.allowed("continuous_chain"):
        return
    if d.coin(0.33):
        return mv_chain(d)
    m = d.m
    m.used.add("continuous_chain")
    name = m.fresh("s")
    coef, prec = _coefficient(d), _precision(d)
    offset = d.pick(["", " + 0.1", " - w[t]", " + b"])
    if offset == " - w[t]":
        d.covariate("w")
    if offset == " + b":
        offset = f" + {m.fresh('b')}"
        m.body.append(f"{offset[3:]} ~ Normal(0.0, 1.0)")
    lag = "t-2" if d.coin(0.05) else "t-1"
    noise = d.pick([f"precision = {prec}", "1.0"])
    seq = d.coin(0.3)
    at = (lambda t: f"{name}[k, {t}]") if seq else (lambda t: f"{name}[{t}]")
    first = f"{at(0)} ~ Normal(0.0, {d.pick(['1.0', '10.0'])})"
    step = f"{at('t')} ~ Normal({coef}{at(lag)}{offset}, {noise})"
    m.body.append(statement("k", first) if seq else first)
    m.body.append(("for k in range(K) { " if seq else "") + f"for t in range(1, N) {{ {step} }}" + (" }" if seq else ""))
    m.values.append(Value(name, "real", "", "kn" if seq else "n", "latent", chain=True, random=True))
    if not seq and d.coin(0.3):  # a factor reading two adjacent steps: their cross moment
        y = m.fresh("dy")
        m.decls.append(f"data {y}: real[N]")
        m.data[y] = ("real", "[N]")
        m.body.append(f"for t in range(1, N) {{ {y}[t] ~ Normal({name}[t] - {name}[t-1], precision = 2.0) }}")


def mv_chain(d):
    """``x[t] ~ MvNormal(A @ x[t-1] + b, precision = Q)``."""
    if not d.allowed("continuous_chain"):
        return
    m = d.m
    m.used.add("continuous_chain")
    name = m.fresh("v")
    how = d.pick(["const", "param", "rows"])
    if how == "const":
        a = d.const_matrix()
    elif how == "param":
        a = m.fresh("PA")
        m.decls.append(f"param {a}: real[D, D]")
    else:
        a = m.fresh("R")
        m.body.append(f"for j in range(D) {{ {a}[j] ~ MvNormal(zeros(D), precision = eye(D)) }}")
        m.values.append(Value(a, "real", "D", "j", "latent", random=True))
    prec = _precision(d, matrix=True)
    offset = d.pick(["", " + fill(0.1, D)"])
    m.body.append(f"{name}[0] ~ MvNormal(zeros(D), eye(D))")
    m.body.append(f"for t in range(1, N) {{ {name}[t] ~ MvNormal({a} @ {name}[t-1]{offset}, precision = {prec}) }}")
    m.values.append(Value(name, "real", "D", "n", "latent", chain=True, random=True))


def autoregression(d):
    """An observed series regressed on its own lags: ``y[n] ~ Normal(a * y[n-1] + b * y[n-2], ...)``."""
    m = d.m
    name = m.fresh("ar")
    m.decls.append(f"data {name}: real[N]")
    m.data[name] = ("real", "[N]")
    a, b = d.expr("real", "", "n", 1), d.expr("real", "", "n", 1)
    prec = d.expr("pos", "", "n", 1)
    lags = d.pick([1, 2])
    loc = f"({a}) * {name}[n-1]" + (f" + ({b}) * {name}[n-2]" if lags == 2 else "")
    m.body.append(f"for n in range({lags}, N) {{ {name}[n] ~ Normal({loc}, precision = {prec}) }}")


def amortised(d):
    """A variational autoencoder's three statements, the decoder a network param."""
    m = d.m
    h, y, dec, enc = m.fresh("h"), m.fresh("yv"), m.fresh("dec"), m.fresh("enc")
    m.decls += [f"data {y}: real[N, D]", f"param {dec}: mlp(tanh)[D, 3, D]", f"param {enc}: mlp(tanh)[D, 3, 2 * D]"]
    m.data[y] = ("real", "[N, D]")
    lik = d.pick([f"MvNormal({dec}({h}[n]), precision = eye(D))", f"MvNormal({dec}({h}[n]), eye(D))"])
    m.body.append(f"for n in range(N) {{ {h}[n] ~ MvNormal(zeros(D), eye(D)) }}")
    m.body.append(f"for n in range(N) {{ {y}[n] ~ {lik} }}")
    m.body.append(f"for n in range(N) {{ q({h}[n]) = {enc}({y}[n]) }}")
    m.values.append(Value(h, "real", "D", "n", "latent", random=True))


STATEMENTS = {"chain": categorical_chain, "cchain": normal_chain, "ar": autoregression, "vae": amortised}
