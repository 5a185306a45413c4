"""Model selection over one const or dim of a model (a mixture's K, an HMM's states, LDA's
topics): fit every value with restarts, report the bound (and a held-out log-likelihood),
pick one, plot the curve, and align component labels across restarts and values.

**The rule.**  The ELBO of a model with a prior on every component is a lower bound on
the log evidence ``log p(x | K)``, so comparing it across K is Bayesian model selection
with an Occam factor built in (Bishop, PRML §10.2.4; Beal 2003, ch. 2).  Two facts shape
the rule:

* above the true K the bound is nearly *flat*, not falling: a superfluous component is
  emptied, its q returns to its prior and costs almost nothing (with the shipped
  ``gmm.vem``'s ``pi ~ Dirichlet(fill(1.0, K))`` a few tenths of a nat for the larger
  simplex); so the exact argmax among near-ties is decided by optimisation noise, and the
  ``+ log K!`` correction Bishop gives for the K! equivalent labellings (valid only when
  every component is used) would push it upward;
* differences of a nat or less are not evidence (Kass & Raftery 1995: a Bayes factor
  below e is "not worth more than a bare mention").

So the chosen value is the **smallest** value whose criterion is within ``tolerance``
(default 1 nat) of the best: the held-out log-likelihood ``Σ_n log p(x_n | data)`` when
``heldout`` data are given (it does not reward an emptied component either), else the
best ELBO over the restarts.

**Labels.**  Components are the rows of every latent or parameter whose first index runs
over ``range(NAME)`` (``mu[k]``, ``Lam[k]``); each is described by the posterior means of
those rows, each feature scaled by its spread over the components.  Each restart is
matched to the best restart of its value, and the best fit of each value to the previous
value's labels, by the Hungarian algorithm (``scipy.optimize.linear_sum_assignment``) on
squared distances; components left unmatched (the new ones when K grows) take the next
free labels.
"""

from __future__ import annotations

import json
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .api import fit as fit_model
from .diagnostics import VemError
from .ir.expr import Name, names as expr_names
from .ir.graph import as_ir


@dataclass
class Selection:
    """The sweep's results; ``table`` has one row per value, ``labels[v][k]`` is the aligned
    label of component ``k`` of the best fit at ``v``."""

    name: str
    criterion: str  # 'elbo' or 'heldout'
    tolerance: float
    table: list[dict]
    best: object
    fits: dict = field(repr=False)
    labels: dict = field(default_factory=dict)
    restart_labels: dict = field(default_factory=dict)

    @property
    def fit(self):
        """The best fit at the chosen value."""
        return self.fits[self.best]

    def to_json(self) -> dict:
        return {"name": self.name, "criterion": self.criterion, "tolerance": self.tolerance,
                "best": _plain(self.best), "table": self.table,
                "labels": {str(k): v for k, v in self.labels.items()},
                "restart_labels": {str(k): v for k, v in self.restart_labels.items()}}

    def save_json(self, path) -> Path:
        path = Path(path)
        path.write_text(json.dumps(self.to_json(), indent=2) + "\n")
        return path

    def plot(self, path=None):
        """The criterion against the swept value (every restart as a dot, the best as a line),
        the chosen value marked; saved as PNG when ``path`` is given."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        values = [r["value"] for r in self.table]
        fig, ax = plt.subplots(figsize=(5.5, 3.4), dpi=120)
        for r in self.table:
            ax.plot([r["value"]] * len(r["elbos"]), r["elbos"], ".", color="0.6", ms=5)
        ax.plot(values, [r["elbo"] for r in self.table], "-o", color="C0", ms=4, label="ELBO (best restart)")
        ax.set_xlabel(self.name)
        ax.set_ylabel("ELBO")
        if any(r.get("heldout") is not None for r in self.table):
            ax2 = ax.twinx()
            ax2.plot(values, [r.get("heldout") for r in self.table], "-s", color="C1", ms=4,
                     label="held-out log-likelihood")
            ax2.set_ylabel("held-out log-likelihood")
            ax2.legend(loc="lower right", fontsize=8)
        ax.axvline(self.best, color="C3", ls="--", lw=1, label=f"chosen {self.name} = {self.best}")
        ax.legend(loc="lower left", fontsize=8)
        ax.grid(alpha=0.3)
        ax.set_title(f"{self.name} by {self.criterion} (smallest within {self.tolerance:g} nat of the best)", fontsize=9)
        fig.tight_layout()
        if path is not None:
            fig.savefig(path)
            plt.close(fig)
        return fig


def _warn_without_occam_factor(ir, name: str) -> None:
    """A ``param`` sized by the swept name is a point estimate: it adds no KL term, so the ELBO
    is a maximised likelihood in it, rises with the size, and has no Occam factor to stop at the
    true value (factor analysis's loadings ``W: real[D, L]``: 1.1 nats from L = 3 to the wrong
    L = 4 on data with 3 factors).  The rule then needs held-out data."""
    sized = [n.name for n in ir.nodes.values() if n.kind == "param" and n.type is not None
             and any(x.id == name for s in n.type.shape for x in expr_names(s))]
    if sized:
        warnings.warn(f"select over {name} by the ELBO: {', '.join(sized)} "
                      f"{'is a param' if len(sized) == 1 else 'are params'} sized by {name} (point estimates, "
                      "no prior), so the ELBO is a likelihood in them that keeps rising with "
                      f"{name} and has no Occam factor: give heldout= data to choose {name}", stacklevel=3)


def select(model, data: dict, *, restarts: int = 3, seed: int = 0, heldout: dict | None = None,
           tolerance: float = 1.0, consts: dict | None = None, dims: dict | None = None, plot=None,
           align_restarts: bool = False, **kwargs) -> Selection:
    """Fit ``model`` for every value of one swept const or dim, given as a keyword whose
    value is a sequence (``select(model, data, K=range(2, 11), restarts=3)``); the other
    keywords go to ``vemppl.fit``.  Each value is fitted from ``restarts`` starts, the best
    ELBO kept; see the module docstring for the rule and the label alignment.  By default the
    restarts run inside one ``fit(seed=seed, restarts=restarts)`` (compiled once per value;
    keys split off ``PRNGKey(seed)``), and a row's ``elbos`` is ``[elbo]``;
    ``align_restarts=True`` fits each separately with seeds ``seed, seed+1, ...`` (one
    compilation each) to report every restart's ELBO in ``elbos`` and align its labels to
    the best one.  ``plot``: a PNG path."""
    ir = as_ir(model)
    kinds = {n.name: n.kind for n in ir.nodes.values()}
    swept = [k for k, v in kwargs.items() if kinds.get(k) in ("const", "dim")]
    if len(swept) != 1:
        names = ", ".join(n for n, k in kinds.items() if k in ("const", "dim"))
        # A sequence under a name the model lacks (a misspelt K) is named, not reported as no sweep.
        unknown = [k for k, v in kwargs.items() if k not in kinds and isinstance(v, (range, list, tuple, np.ndarray))]
        lacks = f" ({', '.join(map(repr, unknown))}: no const or dim of the model)" if unknown else ""
        raise VemError("data", f"select needs exactly one swept const or dim (one of {names}) given as a range; "
                       f"got {swept or 'none'}{lacks}")
    name = swept[0]
    values = list(kwargs.pop(name))
    if not values:
        raise VemError("data", f"the sweep over {name} has no values")
    if restarts < 1:
        raise VemError("data", f"restarts must be at least 1; got {restarts}")
    criterion = "heldout" if heldout is not None else "elbo"
    if heldout is None:
        _warn_without_occam_factor(ir, name)
    table, fits, labels, restart_labels = [], {}, {}, {}
    reference = None  # [label, features]: the latest rows seen under each label
    for v in values:
        c, d = dict(consts or {}), dict(dims or {})
        (c if kinds[name] == "const" else d)[name] = v
        t0 = time.perf_counter()
        if align_restarts:
            runs = [fit_model(ir, data, consts=c, dims=d, seed=seed + r, progress=False, **kwargs)
                    for r in range(restarts)]
        else:
            runs = [fit_model(ir, data, consts=c, dims=d, seed=seed, restarts=restarts, progress=False, **kwargs)]
        best = max(range(len(runs)), key=lambda r: runs[r].elbo)
        f = runs[best]
        row = {"value": _plain(v), "elbo": f.elbo, "elbos": [r.elbo for r in runs],
               "best_restart": best if align_restarts else int(f.best_restart),
               "iterations": int(f.iterations), "converged": bool(f.converged),
               "seconds": time.perf_counter() - t0, "heldout": None}
        if heldout is not None:
            row["heldout"] = float(np.sum(f.predictive_density(heldout)))
        feats = [component_features(r, name) for r in runs]
        if feats[best] is not None:
            if align_restarts:
                restart_labels[_plain(v)] = [align(feats[best], x).tolist() for x in feats]
            own = align(reference, feats[best]) if reference is not None else np.arange(len(feats[best]))
            labels[_plain(v)] = own.tolist()
            reference = _relabelled(reference, feats[best], own)
        table.append(row)
        fits[v] = f
    key = "heldout" if criterion == "heldout" else "elbo"
    top = max(r[key] for r in table)
    chosen = next(r["value"] for r in table if r[key] >= top - tolerance)
    chosen = next(v for v in values if _plain(v) == chosen)
    out = Selection(name, criterion, tolerance, table, chosen, fits, labels, restart_labels)
    if plot is not None:
        out.plot(plot)
    return out


def component_features(fit, name) -> np.ndarray | None:
    """[components, features]: the posterior means (point values of parameters) of every
    node whose first index runs over ``range(name)``."""
    rows = []
    for node in fit.model.nodes.values():
        if node.kind not in ("latent", "param") or not _over(node, name):
            continue
        if node.kind == "param":
            value = fit.params.get(node.name)
            if value is None or isinstance(value, dict):
                continue
            value = np.asarray(value, dtype=float)
        elif node.name in fit.posterior:
            value = np.asarray(_mean(fit.posterior[node.name]), dtype=float)
        else:
            continue
        rows.append(value.reshape(value.shape[0], -1))
    if not rows:
        return None
    return np.concatenate(rows, axis=1)


def align(reference, new) -> np.ndarray:
    """The label of each row of ``new`` (components) given the labelled rows of
    ``reference``: Hungarian matching on squared distance; unmatched rows take the next labels."""
    from scipy.optimize import linear_sum_assignment

    reference, new = np.asarray(reference), np.asarray(new)
    if reference.shape[1] != new.shape[1]:
        return np.arange(len(new))
    scale = np.concatenate([reference, new]).std(axis=0) + 1e-12  # each feature by its spread
    cost = (((new[:, None, :] - reference[None, :, :]) / scale) ** 2).sum(-1)
    rows, cols = linear_sum_assignment(cost)
    out = np.full(len(new), -1)
    out[rows] = cols
    free = iter(range(len(reference), len(reference) + len(new)))
    for i in np.flatnonzero(out < 0):
        out[i] = next(free)
    return out


def _relabelled(reference, rows, labels):
    """The reference rows by label, updated with ``rows`` under their ``labels``."""
    size = max(len(reference) if reference is not None else 0, int(labels.max()) + 1)
    out = np.full((size, rows.shape[1]), np.nan) if reference is None or reference.shape[1] != rows.shape[1] \
        else np.concatenate([reference, np.full((size - len(reference), rows.shape[1]), np.nan)])
    out[labels] = rows
    return out


def _over(node, name) -> bool:
    if node.defs:
        d = max(node.defs, key=lambda d: len(d.indices))
        if not d.indices or not isinstance(d.indices[0], Name):
            return False
        lp = next((lp for lp in d.loops if lp.var == d.indices[0].id), None)
        return lp is not None and isinstance(lp.stop, Name) and lp.stop.id == name
    shape = node.type.shape if node.type is not None else ()
    return bool(shape) and isinstance(shape[0], Name) and shape[0].id == name


def _mean(d):
    try:
        return d.mean
    except NotImplementedError:
        return getattr(d, "probs", np.nan)


def _plain(v):
    return v.item() if isinstance(v, np.generic) else v


def parse_sweep(text: str, kinds: dict) -> tuple[str, list[int]]:
    """``NAME=A:B`` (A to B inclusive) or ``NAME=a,b,c`` for the command line."""
    if "=" not in text:
        raise VemError("data", f"--sweep expects NAME=A:B (e.g. K=1:8); got '{text}'")
    name, spec = (s.strip() for s in text.split("=", 1))
    if kinds.get(name) not in ("const", "dim"):
        raise VemError("data", f"--sweep {name}: the model has no dim or const '{name}'")
    try:
        if ":" in spec:
            a, b = (int(s) for s in spec.split(":"))
            values = list(range(a, b + 1))
        else:
            values = [int(s) for s in spec.split(",")]
    except ValueError:
        raise VemError("data", f"--sweep {name}: expected A:B or a,b,c of integers; got '{spec}'") from None
    if not values:
        raise VemError("data", f"--sweep {name}={spec} has no values")
    return name, values


__all__ = ["select", "Selection", "align", "component_features", "parse_sweep"]
