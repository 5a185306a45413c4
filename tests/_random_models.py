"""Random well-typed models of the language, with matching random data (tests/test_random_models.py).

A model is drawn statement by statement from the grammar's constructs (docs/language.md): dims
and consts, data of each type (observed, with missing entries, and as covariates), latents of
every distribution of the language's list under every keyword it documents (and with defaulted
arguments left out), params of every type (with and without initialisers, matrices, networks),
deterministic nodes, plates over k, n and j and nested plates ``y[n, j]``, gates by categorical
latents (over n, unplated ``lam[s]``, a change point ``side[s, n]``), gathers by data, rows and
plates read whole; and, from tests/_random_constructs.py, Markov chains of categoricals and of
Normals/MvNormals, lagged-data autoregressions and amortised posteriors.  Each argument is an
expression of the support and shape the argument needs (a positive scale, a simplex, a D × D
positive definite matrix), built from literals, consts, params, latents, deterministic nodes and
data, combined with ``+ - * / ** unary-``, ``exp``, ``log``, ``sigmoid``, ``softmax``, ``sum``,
``dot``, ``transpose``, ``diag``, ``@``, networks and indexing.  "Well typed" means supports and
shapes agree; whether vemppl can fit the model is what the test asks.

Sizes are tiny (``K = D = 2``, ``N`` in 2..4) so that a model's check and short fit take about a
second.  Constructs that are owned by open work (issue #20) are drawn only when their name is
in the ``enabled`` set (:data:`PENDING` lists them).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from _random_data import D, K, random_data  # noqa: F401  (random_data: the tests import it here)

#: Constructs of issue #20 whose fits are other engineers' work in progress; the generator
#: leaves them out until the lead switches them on (test_random_models.PENDING).
CONSTRUCTS = {
    "param_in_prior": "a param as an argument of a latent's prior (issue #20, params)",
    "nonconj": "a nonlinear function (exp, log, sigmoid, softmax, logits) of latents, or a latent in a "
               "non-conjugate position of a likelihood (issue #20, nonconj)",
    "latent_products": "'@' of two latents, or a latent scalar times a matrix precision (issue #20, products)",
    "continuous_chain": "a Normal read at its previous step x[t-1] (issue #20, kalman)",
}


# family -> (value support, value event, ((argument keyword or None for positional, support, event), ...))
FAMILIES = {
    "Normal": ("real", "", (("loc", "real", ""), ("scale|precision", "pos", ""))),
    "MvNormal": ("real", "D", (("loc", "real", "D"),
                               ("covariance_matrix|precision|cov|precision_matrix|scale_tril", "spd", "DD"))),
    "Gamma": ("pos", "", (("concentration", "pos!", ""), ("rate", "pos", ""))),
    "InverseGamma": ("pos", "", (("concentration", "pos!", ""), ("rate", "pos", ""))),
    "Beta": ("unit", "", (("concentration1", "pos!", ""), ("concentration0", "pos!", ""))),
    "Dirichlet": ("simplex", "K", (("concentration", "pos!", "K"),)),
    "Bernoulli": ("bool", "", (("probs|logits", "unit", ""),)),
    "Binomial": ("count", "", (("total_count", "total", ""), ("probs|logits", "unit", ""))),
    "Categorical": ("cat", "", (("probs|logits", "simplex", "K"),)),
    "Multinomial": ("count", "K", (("total_count", "total", ""), ("probs|logits", "simplex", "K"))),
    "Poisson": ("count", "", (("rate", "pos", ""),)),
    "Exponential": ("pos", "", (("rate", "pos", ""),)),
    "Wishart": ("spd", "DD", (("concentration", "wdf", ""), ("scale_matrix|rate_matrix|scale_tril", "spd", "DD"))),
    "StudentT": ("real", "", (("df", "df", ""), ("loc", "real", ""), ("scale", "pos!", ""))),
    "Laplace": ("real", "", (("loc", "real", ""), ("scale", "pos", ""))),
    "LogNormal": ("pos", "", (("loc", "real", ""), ("scale|precision", "pos", ""))),
}

#: Families refused as latents: a likelihood only (no variational family), or count-valued.
RARE_LATENTS = ("StudentT", "Laplace", "LogNormal", "InverseGamma", "Poisson", "Binomial", "Multinomial")

#: The data type that holds a family's values.
DATA_TYPE = {"real": "real", "pos": "pos", "unit": "unit", "bool": "bool", "count": "count", "cat": "cat(K)",
             "simplex": "simplex", "spd": "spd"}

#: Supports a value may have where an argument needs a support.
ACCEPTS = {"real": ("real", "pos", "unit", "int"), "pos": ("pos",), "unit": ("unit",), "simplex": ("simplex",),
           "spd": ("spd",)}

LITERALS = {
    ("real", ""): ["0.0", "-0.5", "1.5"],
    ("pos", ""): ["1.0", "2.5", "0.5"],
    ("unit", ""): ["0.5", "0.25"],
    ("simplex", "K"): ["fill(0.5, K)", "softmax(zeros(K))"],
    ("pos", "K"): ["ones(K)", "fill(2.0, K)"],
    ("pos", "D"): ["ones(D)", "fill(2.0, D)"],
    ("real", "D"): ["zeros(D)", "fill(0.5, D)", "eye(D)[0]"],
    ("real", "K"): ["zeros(K)", "-ones(K)"],
    ("spd", "DD"): ["eye(D)", "2.0 * eye(D)", "diag(fill(2.0, D))"],
    ("tril", "DD"): ["eye(D)", "0.5 * eye(D)", "diag(ones(D))"],
    ("total", ""): ["5"],
    ("wdf", ""): ["D + 2", "4.0"],
    ("df", ""): ["4.0", "3.0"],
}

#: The loop variables of each scope, and the loops and target index that open it.
SCOPE_VARS = {"": (), "k": ("k",), "n": ("n",), "j": ("j",), "nj": ("n", "j")}
LOOPS = {"": ("", ""), "k": ("for k in range(K) { ", " }"), "n": ("for n in range(N) { ", " }"),
         "j": ("for j in range(D) { ", " }"), "nj": ("for n in range(N) { for j in range(D) { ", " } }")}
TARGET = {"": "", "k": "[k]", "n": "[n]", "j": "[j]", "nj": "[n, j]"}
#: The data shape of an array observed in a scope, by the family's event.
DATA_SHAPE = {"": "", "k": "[K]", "n": "[N]", "j": "[D]", "nj": "[N, D]"}


def statement(scope, text):
    """``text`` inside the loops of ``scope``."""
    open_, close = LOOPS[scope]
    return f"{open_}{text}{close}"


@dataclass
class Value:
    """A readable node: its support and value shape (event: '', 'K', 'D' or 'DD'), the plate it
    is defined over (a key of SCOPE_VARS, or 'kn': one chain over n per k), its kind and whether
    it is a chain over n."""

    name: str
    support: str
    event: str
    plate: str
    kind: str
    chain: bool = False
    random: bool = False


@dataclass
class Model:
    """The statements drawn so far."""

    enabled: frozenset
    decls: list = field(default_factory=list)
    body: list = field(default_factory=list)
    values: list = field(default_factory=list)
    data: dict = field(default_factory=dict)  # name -> (type base, shape key[, "nan" | "multi"])
    used: set = field(default_factory=set)  # constructs drawn
    count: int = 0

    def fresh(self, prefix):
        self.count += 1
        return f"{prefix}{self.count}"


class Drawer:
    """Draws a model with hypothesis' ``draw``; every choice is one draw, so examples shrink."""

    def __init__(self, draw, st, enabled):
        self.draw, self.st = draw, st
        self.m = Model(frozenset(enabled))

    # ---- choices -----------------------------------------------------------------------------
    def pick(self, options):
        return self.draw(self.st.sampled_from(list(options)))

    def coin(self, p_true=0.5):
        return self.draw(self.st.integers(0, 99)) < int(100 * p_true)

    def allowed(self, construct):
        return construct in self.m.enabled

    # ---- reads -------------------------------------------------------------------------------
    def reads(self, v: Value, scope: str) -> list[tuple[str, str]]:
        """``(text, event)`` for each way value ``v`` can be read in ``scope``."""
        out, vars_ = [], SCOPE_VARS[scope]
        if v.plate == "":
            out.append((v.name, v.event))
            if v.event == "K":  # a vector over the categories, indexed like a plate over k
                out.append((f"{v.name}[{self.pick(['0', '1'])}]", ""))
                if "k" in vars_:
                    out.append((f"{v.name}[k]", ""))
                out += [(f"{v.name}[{g}]", "") for g in self.gates(scope)]
            if v.event == "D":  # a coordinate of a vector
                out.append((f"{v.name}[{self.pick(['0', '1'])}]", ""))
                if "j" in vars_:
                    out.append((f"{v.name}[j]", ""))
            if v.event == "DD":  # a row of a matrix, or an entry
                out.append((f"{v.name}[{self.pick(['0', '1'])}]", "D"))
                if "j" in vars_:
                    out.append((f"{v.name}[j, {self.pick(['0', '1'])}]", ""))
        elif v.plate == "k":
            if "k" in vars_:
                out.append((f"{v.name}[k]", v.event))
            out.append((f"{v.name}[{self.pick(['0', '1'])}]", v.event))
            out += [(f"{v.name}[{g}]", v.event) for g in self.gates(scope)]
            if v.event == "" and v.kind in ("latent", "const"):
                out.append((v.name, "K"))  # a plate of scalars read whole, as a vector
        elif v.plate == "j":
            if "j" in vars_:
                out.append((f"{v.name}[j]", v.event))
            out.append((f"{v.name}[{self.pick(['0', '1'])}]", v.event))
            if v.event == "" and v.kind in ("latent", "const"):
                out.append((v.name, "D"))  # w[j] ~ Normal read whole: dot(X[n], w)
            if v.event == "D" and v.kind == "latent":
                out.append((v.name, "DD"))  # rows W[j] ~ MvNormal read whole: W @ h
        elif v.plate == "n" and "n" in vars_:
            out.append((f"{v.name}[n]", v.event))
            if v.event == "D" and "j" in vars_:
                out.append((f"{v.name}[n][j]" if self.coin() else f"{v.name}[n, j]", ""))
        elif v.plate == "nj" and "n" in vars_:
            if "j" in vars_:
                out.append((f"{v.name}[n, j]", v.event))
            if v.event == "":
                out.append((f"{v.name}[n]", "D"))  # a row read whole
        elif v.plate == "kn" and "n" in vars_:
            out.append((f"{v.name}[{self.pick(['0', '1'])}, n]", v.event))
        return out

    def gates(self, scope):
        """What indexes a plate over k in ``scope``: a categorical latent or data array over n (read
        at n, or at the same step of one chain per k), an unplated categorical latent (a mixture
        ``lam[s]``), and a change point ``side[s, n]`` (data ``side`` indexed by latent ``s``)."""
        out, vars_ = [], SCOPE_VARS[scope]
        for g in self.m.values:
            if g.support != "cat" or g.event != "" or g.kind not in ("latent", "data"):
                continue
            if g.plate == "" and g.kind == "latent":
                out.append(g.name)
                if "n" in vars_ and "side" in self.m.data:
                    out.append(f"side[{g.name}, n]")
            elif g.plate == "n" and "n" in vars_:
                out.append(f"{g.name}[n]")
            elif g.plate == "kn" and "n" in vars_:
                out.append(f"{g.name}[{self.pick(['0', '1'])}, n]")
        return out

    def readable(self, support, event, scope, fixed=False):
        cands = []
        for v in self.m.values:
            if v.support not in ACCEPTS.get(support, (support,)) or (fixed and v.random):
                continue
            for text, ev in self.reads(v, scope):
                if ev == event:
                    cands.append((text, v))
        return cands

    # ---- expressions -------------------------------------------------------------------------
    def expr(self, support, event, scope, depth=0, prior=False, fixed=False) -> str:
        """An expression of ``support`` and value shape ``event`` readable in ``scope``; ``prior``:
        it is an argument of a latent's distribution; ``fixed``: it reads no latent."""
        if support.endswith("!"):  # a shape parameter: a latent there is not conjugate
            support, fixed = support[:-1], fixed or not self.allowed("nonconj")
        if support == "tril":  # a Cholesky factor: literals only (no expression of the language is one)
            return self.pick(LITERALS[("tril", "DD")])
        options = ["literal"]
        if (support, event) in (("pos", ""), ("real", ""), ("real", "D")):
            options.append("const")
        if (support, event) in (("pos", ""), ("real", ""), ("unit", ""), ("pos", "D"), ("real", "D"),
                                ("pos", "K")) and (not prior or self.allowed("param_in_prior")):
            options.append("param")
        reads = self.readable(support, event, scope, fixed)
        if reads:
            options += ["read", "read"]
        if depth < 2 and support in ("real", "pos", "unit", "simplex", "spd"):
            options += ["compound", "det"]
        if (support, event) in LITERALS and len(options) == 1:
            return self.pick(LITERALS[(support, event)])
        how = self.pick(options)
        if how == "literal":
            return self.pick(LITERALS.get((support, event), ["1.0"]))
        if how == "const":
            return self.const(support, event)
        if how == "param":
            return self.param(support, event, prior)
        if how == "read":
            text, v = self.pick(reads)
            return text
        if how == "det":
            return self.det(support, event, scope, depth, prior, fixed)
        return self.compound(support, event, scope, depth, prior, fixed)

    def const(self, support, event):
        name = self.m.fresh("c")
        if event == "":
            value = self.pick(["1.5", "0.5", "2.0"]) if support == "pos" else self.pick(["-0.5", "0.5"])
            self.m.decls.append(f"const {name} = {value}")
        else:
            self.m.decls.append(f"const {name}: real[D] = {self.pick(['0.5', '-1.0'])}")
        return name

    def param(self, support, event, prior):
        name = self.m.fresh("p")
        if prior:
            self.m.used.add("param_in_prior")
        shape = {"": "", "D": "[D]", "K": "[K]"}[event]
        init = {"real": " = 0.5", "pos": " = 1.5", "unit": " = 0.25"}[support] if self.coin(0.3) else ""
        self.m.decls.append(f"param {name}: {support}{shape}{init}")
        return name

    def det(self, support, event, scope, depth, prior, fixed=False):
        """A deterministic node defined in a plate whose loop variables ``scope`` has, read here
        (or a plate over k, read by a constant or a gate)."""
        vars_ = SCOPE_VARS[scope]
        plates = [p for p in SCOPE_VARS if set(SCOPE_VARS[p]) <= set(vars_)] + ["k"] * (scope not in ("k", ""))
        plate = self.pick(plates)
        name = self.m.fresh("d")
        value = self.expr(support, event, plate, depth + 1, prior, fixed)
        self.m.body.append(statement(plate, f"{name}{TARGET[plate]} = {value}"))
        v = Value(name, support, event, plate, "det", random=self.random(value))
        self.m.values.append(v)
        reads = [t for t, ev in self.reads(v, scope) if ev == event]
        return self.pick(reads) if reads else self.pick(LITERALS.get((support, event), ["1.0"]))

    def random(self, text):
        """Whether ``text`` reads a latent (or a deterministic node of one)."""
        ids = set(re.findall(r"[A-Za-z_]\w*", text))
        return any(v.name in ids and v.random for v in self.m.values)

    def compound(self, support, event, scope, depth, prior, fixed=False):
        e = lambda s, ev: self.expr(s, ev, scope, depth + 1, prior, fixed)  # noqa: E731
        forms = {("real", ""): ["sum", "diff", "scale", "div", "prod", "dot", "log", "neg", "pow", "sumv"]
                               + ["dotX"] * ("n" in SCOPE_VARS[scope]),
                 ("pos", ""): ["pscale", "psum", "exp", "pprod", "ppow", "psumv"],
                 ("unit", ""): ["sigmoid", "udiv"],
                 ("real", "D"): ["vsum", "vscale", "matvec", "neg", "tmatvec", "vecmat", "net"],
                 ("pos", "D"): ["pexp"],
                 ("simplex", "K"): ["softmax"],
                 ("spd", "DD"): ["sscale", "diag", "ssum", "cscale"]}.get((support, event))
        if not forms:
            return self.pick(LITERALS.get((support, event), ["1.0"]))
        form = self.pick(forms)
        simple = {
            "sum": lambda: f"{e('real', '')} + {e('real', '')}",
            "diff": lambda: f"{e('real', '')} - ({e('real', '')})",
            "scale": lambda: f"{self.pick(['2.0', '0.5', '-1.0'])} * ({e('real', '')})",
            "div": lambda: f"({e('real', '')}) / {self.pick(['2.0', '4.0'])}",
            "prod": lambda: f"({e('real', '')}) * ({e('real', '')})",
            "dot": lambda: f"dot({e('real', 'D')}, {e('real', 'D')})",
            "neg": lambda: f"-({e(support, event)})",
            "pow": lambda: f"({e('real', '')}) ** 2",
            "sumv": lambda: f"sum({e('real', self.pick(['D', 'K']))})",
            "pscale": lambda: f"{self.pick(['2.0', '0.5'])} * ({e('pos', '')})",
            "psum": lambda: f"{e('pos', '')} + {self.pick(['1.0', '0.5'])}",
            "pprod": lambda: f"({e('pos', '')}) * ({e('pos', '')})",
            "ppow": lambda: f"({e('pos', '')}) ** {self.pick(['2', '0.5'])}",
            "psumv": lambda: f"sum({e('pos', self.pick(['D', 'K']))})",
            "udiv": lambda: f"1.0 / (1.0 + {e('pos', '')})",
            "vsum": lambda: f"{e('real', 'D')} + {e('real', 'D')}",
            "vscale": lambda: f"{self.pick(['2.0', '-1.0'])} * ({e('real', 'D')})",
            "ssum": lambda: f"{e('spd', 'DD')} + eye(D)",
            "cscale": lambda: f"{self.pick(['2.0', '0.5'])} * ({e('spd', 'DD')})",  # c * Lam[k]: Normal–Wishart
        }
        if form in simple:
            return simple[form]()
        if form == "dotX":
            self.covariate("X")
            return f"dot(X[n], {e('real', 'D')})"
        if form in ("log", "exp", "sigmoid", "softmax", "pexp", "diag"):
            arg = {"log": ("pos", ""), "exp": ("real", ""), "sigmoid": ("real", ""), "softmax": ("real", "K"),
                   "pexp": ("real", "D"), "diag": ("pos", "D")}[form]
            inner, func = e(*arg), {"pexp": "exp"}.get(form, form)
            if self.random(inner) and form != "diag":
                if not self.allowed("nonconj"):
                    return self.pick(LITERALS.get((support, event), ["1.0"]))
                self.m.used.add("nonconj")
            return f"{func}({inner})"
        if form in ("matvec", "tmatvec", "vecmat"):
            a, b = (self.const_matrix() if fixed else self.matrix(scope)), e("real", "D")
            if form == "tmatvec":
                a = f"transpose({a})"
            if self.random(a) and self.random(b):
                if not self.allowed("latent_products"):
                    return f"{self.const_matrix()} @ ({b})"
                self.m.used.add("latent_products")
            return f"({b}) @ {a}" if form == "vecmat" else f"{a} @ ({b})"
        if form == "net":
            return self.network(scope, fixed)
        if form == "sscale":
            c = e("pos", "")
            if self.random(c):
                if not self.allowed("latent_products"):
                    return f"{self.pick(['2.0', '0.5'])} * eye(D)"
                self.m.used.add("latent_products")
            return f"{c} * eye(D)"
        raise AssertionError(form)

    def const_matrix(self):
        name = "Wc"
        if not any(d.startswith("const Wc") for d in self.m.decls):
            self.m.decls.append("const Wc: real[D, D] = 0.5")
        return name

    def matrix(self, scope):
        """A D × D matrix: a const, a param, a Wishart latent or latent Gaussian rows read whole."""
        mats = [t for t, v in self.readable("real", "DD", scope) + self.readable("spd", "DD", scope)]
        if mats and self.coin(0.4):
            return self.pick(mats)
        if self.coin(0.2):
            name = self.m.fresh("P")
            self.m.decls.append(f"param {name}: real[D, D]")
            return name
        return self.const_matrix()

    def network(self, scope, fixed):
        """A network param applied to a D-vector: data (a regression) or, rarely, a latent (refused
        unless it has an amortised posterior)."""
        name = self.m.fresh("net")
        self.m.decls.append(f"param {name}: mlp({self.pick(['tanh', 'relu', 'softplus'])})[D, 3, D]")
        if "n" in SCOPE_VARS[scope] and self.coin(0.7):
            self.covariate("X")
            return f"{name}(X[n])"
        if fixed or not self.allowed("nonconj"):
            return f"{name}(zeros(D))" if self.coin(0.3) else self.pick(LITERALS[("real", "D")])
        return f"{name}({self.expr('real', 'D', scope, 2)})"

    def covariate(self, name):
        shapes = {"X": ("real", "[N, D]"), "grp": ("cat(K)", "[N]"), "w": ("pos", "[N]"), "m": ("int", "[N]"),
                  "side": ("cat(K)", "[K, N]")}
        if name not in self.m.data:
            self.m.data[name] = shapes[name]
            self.m.decls.append(f"data {name}: {shapes[name][0]}{shapes[name][1]}")
            if name in ("w", "m", "grp", "X"):
                support = {"w": "pos", "m": "int", "grp": "cat", "X": "real"}[name]
                self.m.values.append(Value(name, support, "", "nj" if name == "X" else "n", "data"))

    # ---- statements --------------------------------------------------------------------------
    def args(self, fam, scope, prior):
        from _random_constructs import DEFAULTS  # noqa: PLC0415  (the second half of the generator)

        out, keywords = [], self.coin(0.3)
        specs = FAMILIES[fam][2]
        # Arguments with defaults may be left out: trailing ones positionally, any by keyword.
        drop = {a for a in DEFAULTS.get(fam, ()) if self.coin(0.15)}
        for spec, support, event in specs:
            names = spec.split("|")
            kw = self.pick(names) if len(names) > 1 else names[0]
            keywords = keywords or kw != names[0]
            if kw == "logits":
                support = "real"
            if kw == "scale_tril":
                support = "tril"
            if support in ("total", "wdf", "df"):
                text = self.pick(LITERALS[(support, "")])
            else:
                text = self.expr(support, event, scope, 0, prior)
                if kw == "logits" and self.random(text):
                    if not self.allowed("nonconj"):
                        text = self.pick(LITERALS[("real", event)])
                    else:
                        self.m.used.add("nonconj")
            out.append((kw, text, names[0] in drop))
        if not keywords:  # positionally only a trailing run of defaulted arguments may go
            while out and out[-1][2]:
                out.pop()
            return ", ".join(text for _, text, _ in out)
        return ", ".join(f"{kw} = {text}" for kw, text, dropped in out if not dropped)

    def latent(self):
        scope = self.pick(["", "k", "n", "k", "n", "j", "nj"])
        # One draw in five from the whole list: the families refused as latents (RARE_LATENTS)
        # would crowd out the rest.
        fam = self.pick(list(FAMILIES) if self.coin(0.2) else [f for f in FAMILIES if f not in RARE_LATENTS])
        name = self.m.fresh("z" if fam == "Categorical" else "u")
        args = self.args(fam, scope, prior=True)
        self.m.body.append(statement(scope, f"{name}{TARGET[scope]} ~ {fam}({args})"))
        support, event, _ = FAMILIES[fam]
        self.m.values.append(Value(name, support, event, scope, "latent", random=True))

    def observed(self):
        fam = self.pick(list(FAMILIES))
        scope = self.pick(["n"] * 4 + ["nj", "", "k", "j"])
        name = self.m.fresh("y")
        support, event, _ = FAMILIES[fam]
        base = DATA_TYPE[support]
        shape = DATA_SHAPE[scope]
        if event:
            shape = (shape[:-1] + ", " if shape else "[") + {"K": "K]", "D": "D]", "DD": "D]"}[event]  # spd[D]: D × D
        extra = "multi" if fam == "Multinomial" else "nan" if base in ("real", "pos", "unit") and self.coin(0.3) else ""
        self.m.data[name] = (base, shape, extra)
        self.m.decls.append(f"data {name}: {base}{shape}")
        args = self.args(fam, scope, prior=False)
        self.m.body.append(statement(scope, f"{name}{TARGET[scope]} ~ {fam}({args})"))
        if support in ("real", "pos", "unit", "cat", "int", "count") and event == "" and scope in ("n", "nj"):
            # observed values are readable as covariates further down
            self.m.values.append(Value(name, {"count": "int"}.get(support, support), "", scope, "data"))

    def model(self):
        from _random_constructs import STATEMENTS  # noqa: PLC0415

        if self.coin(0.3):
            self.covariate("grp")
        if self.coin(0.2):
            self.covariate("w")
        if self.coin(0.1):
            self.covariate("m")
        if self.coin(0.1):
            self.covariate("side")
        # A chain costs twice a mixture to compile (its forward algorithm), and an amortised
        # posterior (networks, Adam) more: about one statement in five is one of STATEMENTS, the
        # amortised one a quarter as often (the CI test's cost per model stays as it was).
        for _ in range(self.draw(self.st.integers(1, 3))):
            which = self.pick(["latent"] * 12 + [w for w in STATEMENTS if w != "vae"] + ["vae"] * self.coin(0.25))
            if which == "latent":
                self.latent()
            else:
                STATEMENTS[which](self)
        for _ in range(1 + self.coin(0.3)):
            self.observed()
        if not any("N" in spec[1] for spec in self.m.data.values()):
            self.covariate("w")  # a dim is bound by a data array's shape
        head = ["model rnd", "dim N", f"const K = {K}", f"const D = {D}"]
        return "\n".join(head + self.m.decls + self.m.body) + "\n"
