"""The result of a fit: posteriors as NumPyro distributions, parameters, the ELBO trace."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..compiler import compile_model
from ..diagnostics import VemError
from ..elj.binding import Bound
from ..engine.simulate import simulate
from ..engine.state import State
from ..families import get_family
from ..frontends.parser import parse
from ..plan import MStep
from .arviz import to_arviz as arviz_data
from .io import check_consistent, read, save
from .draws import draw_blocks as numpy_draws
from .local import local_blocks, replicate_sizes
from .posterior import compiled_posterior, posterior_of
from .predict import Prediction, predict, predictive_density

if TYPE_CHECKING:  # annotations only: importing these here would load matplotlib or cycle
    from matplotlib.figure import Figure

    from .predict import Prediction


@dataclass
class Fit:
    """The result of :func:`vemppl.fit` (or :func:`vemppl.load_results`).

    Attributes: ``model`` (the IR), ``plan`` (the compiled plan), ``elbo_trace`` (the ELBO after
    every sweep, non-decreasing for closed-form CAVI; under stochastic VI each step's estimate),
    ``converged`` (whether the stopping rule, docs/engine.md "When a fit stops", ended the fit
    rather than ``max_iter`` or a PrecisionWarning; always False under stochastic VI, which has no
    convergence test), ``stochastic`` (a stochastic VI fit: ``iterations`` is the ``max_iter``
    steps it ran by design), ``tol`` (the relative tolerance of the stopping rule it ran under,
    the default chosen for the plan or the one given; None under stochastic VI and for results
    saved before it was recorded; ``predict`` re-infers locals at it where it is below 1e-10),
    ``iterations``, ``seed``,
    ``restarts`` and ``best_restart`` (the restart kept: the highest final ELBO),
    ``compile_seconds`` (the first sweep, traced and compiled) and ``fit_seconds`` (the rest);
    ``bound``, ``engine`` and ``state`` are the bound data, the compiled engine and the final
    variational state.  The posteriors are :attr:`posterior`; point parameters :attr:`params`.
    """

    model: object
    plan: object
    bound: object
    engine: object
    state: object
    elbo_trace: np.ndarray
    converged: bool
    iterations: int
    seed: int = 0
    restarts: int = 1
    compile_seconds: float = 0.0
    fit_seconds: float = 0.0
    best_restart: int = 0
    stochastic: bool = False
    tol: float | None = None
    _posterior: dict | None = field(default=None, repr=False)

    @property
    def elbo(self) -> float:
        """The final evidence lower bound."""
        return float(self.elbo_trace[-1])

    @property
    def posterior(self) -> dict:
        """``q`` of every latent: one NumPyro distribution over the whole plate.  The members
        of a joint block appear under their own names as its marginals (a Normal–Wishart's
        location as a multivariate Student-t, its precision as a Wishart)."""
        if self._posterior is None:
            self._posterior = compiled_posterior(self.plan, self.state.eta)
        return self._posterior

    @property
    def natural_params(self) -> dict:
        """The natural parameters η of every variational block (the engine's state)."""
        return dict(self.state.eta)

    @property
    def mean_params(self) -> dict:
        """E_q[T(z)] of every block, by statistic name; for each member of a joint block,
        the moments its mean-field family would have (``mean``, ``outer`` of a location;
        ``mean``, ``logdet`` of a precision).  The joint statistics are in ``state.mu``."""
        out = {}
        for j, mu in self.state.mu.items():
            b = self.plan.block(j)
            if b.members:
                means = get_family(b.family).member_means(self.state.eta[j])
                out.update({node: means[role] for role, node in b.members})
            else:
                out[j] = mu._asdict()
        return out

    @property
    def params(self) -> dict:
        """Point parameters as NumPy arrays (a network's: a dict of named weight arrays)."""
        import jax

        return {k: jax.tree_util.tree_map(np.asarray, v) for k, v in self.state.params.items()}

    def save(self, path: str | os.PathLike) -> Path:
        """Write ``manifest.json`` + ``arrays-<hash>.npz`` into the folder ``path`` (atomically)."""
        return save(self, path)

    def predict(self, data: dict, **kwargs) -> Prediction:
        """Re-infer the local latents of new data with the globals fixed: the keyword options
        (``plug_in``, ``max_iter``, ``tol``, ``consts``, ``dims``, ``seed``, ``compress``) are
        those of :func:`vemppl.results.predict.predict`; ``tol`` by default the smaller of this
        fit's ``tol`` and 1e-10."""
        return predict(self, data, **kwargs)

    def sample_posterior(self, draws: int = 1000, seed: int = 0) -> dict:
        """``draws`` samples of every latent from q, as NumPy arrays (leading axis: draw); a
        joint block's members are drawn jointly.  Drawn by NumPy where its sampler has q's law
        (``results/draws.py``): NumPyro's Wishart, Dirichlet and Gamma samplers compile for
        seconds per shape and draw one variate at a time on a CPU."""
        return numpy_draws(self, [self.plan.block(j) for j in self.state.eta], draws, seed)

    def posterior_predictive(self, draws: int = 100, seed: int = 0, data: dict | None = None) -> dict:
        """Replicated data sets: globals drawn from q, then locals and data drawn from the
        model (ancestral sampling through the IR).  Returns arrays with a leading draw axis
        for every observed node.  Covariates (data never drawn) come from ``data`` or the fit."""
        import jax

        locals_ = local_blocks(self.model, self.plan)
        observed = [n.name for n in self.model.of_kind("data") if n.defs]
        covariates = {n.name: v for n in self.model.of_kind("data") if not n.defs
                      for v in [(data or {}).get(n.name, self.bound.values.get(n.name))] if v is not None}
        consts = {k: v for k, v in self.bound.values.items() if k in {n.name for n in self.model.of_kind("const")}}
        # Point parameters are fixed values of the model (a network's weights are read by its call).
        consts.update({k: v for k, v in self.params.items() if not isinstance(v, dict)})
        networks = {k: v for k, v in self.params.items() if isinstance(v, dict)}
        sizes, checked = replicate_sizes(self, data) if data else (self.bound.sizes, {})
        covariates.update(checked)
        # Every draw's globals at once (one NumPy sampler call per block), then each data set.
        globals_ = numpy_draws(self, [self.plan.block(j) for j in self.state.eta if j not in locals_], draws, seed)
        keys = jax.random.split(jax.random.PRNGKey(seed), draws)
        out = {name: [] for name in observed}
        for r in range(draws):
            values = simulate(self.model, sizes,
                              {**consts, **covariates, **{j: v[r] for j, v in globals_.items()}}, keys[r],
                              params=networks)
            for name in observed:
                out[name].append(values[name])
        return {k: np.stack(v) for k, v in out.items()}

    def to_arviz(self, draws: int = 1000, seed: int = 0, locals: bool = False, log_likelihood: bool = True,
                 predictive_draws: int | None = 100):
        """An ArviZ ``InferenceData``: ``posterior`` (globals; locals with ``locals=True``),
        ``log_likelihood`` (per observation, categorical latents summed out), ``posterior_predictive``,
        ``observed_data``; see ``results.arviz``.  Needs ``pip install vemppl[arviz]``."""
        return arviz_data(self, draws, seed, locals=locals, log_likelihood=log_likelihood,
                        predictive_draws=predictive_draws)

    def predictive_density(self, data: dict, exact: bool | None = None, **kwargs) -> np.ndarray:
        """Per-point log posterior predictive density of new data: exact where the model
        allows it (conjugate blocks; the Student-t mixture of Bishop eq. 10.81 for a GMM with
        a Normal–Wishart block), else Monte Carlo over q; ``.method`` on the result says
        which.  See ``results.predict.predictive_density``."""

        return predictive_density(self, data, exact=exact, **kwargs)

    def summary(self) -> str:
        """A table of the blocks with their families, shapes and posterior means (columns as
        wide as their longest entry: ``HomogeneousMarkovChain(80, 2)`` ran into the shapes)."""
        rows = []
        # In the plan's order, not the state's: a fit's state comes out of jit with its keys
        # sorted, one read back by load_results in the manifest's order, and the two summaries
        # of one fit must be the same text.
        order = {b.name: i for i, b in enumerate(self.plan.blocks)}
        means = self._posterior_means()
        for j in sorted(means, key=lambda k: (order.get(k, len(order)), k)):
            mean = means[j]
            mean = np.asarray(mean)
            head = np.array2string(mean.ravel()[:4], precision=3, separator=", ")
            rows.append((j, _family_label(self.plan, j), str(mean.shape), head))
        porder = {q.name: i for i, q in enumerate(self.plan.params)}
        for k in sorted(self.params, key=lambda k: (porder.get(k, len(porder)), k)):
            v = self.params[k]
            if isinstance(v, dict):  # a network
                rows.append((k, "network", f"{sum(w.size for w in v.values())} weights", ""))
                continue
            rows.append((k, "param", str(v.shape), np.array2string(v.ravel()[:4], precision=3)))
        header = ("block", "family", "shape", "mean (first entries)")
        widths = [max([w] + [len(r[i]) + 2 for r in rows]) for i, w in enumerate((12, 14, 16))]

        def line(r):
            return "".join(f"{c:<{w}}" for c, w in zip(r[:3], widths)) + r[3]

        # A stochastic fit runs its max_iter steps by design: "not converged" would say it failed.
        ran = (f"ELBO {self.elbo:.6g} (the last step's estimate) after {self.iterations} stochastic VI steps "
               f"(all max_iter steps run: no convergence test" if self.stochastic else
               f"ELBO {self.elbo:.6g} after {self.iterations} iterations "
               f"({'converged' if self.converged else 'not converged'}")
        lines = [
            f"model '{self.plan.model}': {ran}; compile {self.compile_seconds:.2f}s, fit {self.fit_seconds:.2f}s)",
            line(header),
        ]
        merged = getattr(self.engine, "merged_rows", None)
        if merged is not None:  # engine/compress.py
            lines.append(f"(fitted on the {len(merged.weights)} distinct rows of the {merged.rows} units of "
                         f"{merged.plate.dim}, each weighted by its count)")
            lines[1], lines[2] = lines[2], lines[1]
        # Sizes taken from the data's categories (engine/bind.py): said, as LANGUAGE.md promises.
        lines[1:1] = [f"({note})" for note in getattr(self.bound, "notes", ())]
        return "\n".join(lines + [line(r).rstrip() for r in rows])

    def _posterior_means(self) -> dict:
        """Each latent's posterior mean (a categorical's probabilities) for the summary.

        The state holds E[T]: where a statistic is E[x] itself (the canonical names ``mean``
        and ``onehot``, ``families/base.py``) it is the mean, read without computing anything.
        Only the other blocks (a Dirichlet's E[log π], say) build their NumPyro posterior: op by
        op, each operation compiles a program of its own, and building every posterior cost a
        cold 10k-point GMM's command line 40 programs and 1–3 s (issue #21)."""
        out = {name: stats.get("mean", stats.get("onehot")) for name, stats in self.mean_params.items()}
        rest = [name for name, read in out.items() if read is None]
        if rest and self._posterior is not None:
            out.update({name: _mean(self._posterior[name]) for name in rest})
        elif rest:
            out.update(_built_means(self.plan, self.state.eta, rest))
        return out

    def plot_elbo(self, path: str | os.PathLike | None = None) -> Figure:
        """The ELBO trace as a figure (saved as PNG when ``path`` is given)."""
        try:
            import matplotlib
        except ImportError:
            raise VemError("unsupported", "plotting needs matplotlib: pip install matplotlib") from None

        matplotlib.use("Agg")
        if path is None:  # shown where the user works: a pyplot figure
            import matplotlib.pyplot as plt

            fig, ax = plt.subplots(figsize=(5, 3.2), dpi=120)
        else:  # only saved: no pyplot (its import and figure registry cost a command line time)
            from matplotlib.figure import Figure

            fig = Figure(figsize=(5, 3.2), dpi=120)
            ax = fig.subplots()
        ax.plot(np.arange(1, len(self.elbo_trace) + 1), self.elbo_trace, marker=".", lw=1)
        ax.set_xlabel("iteration")
        ax.set_ylabel("ELBO")
        ax.set_title(f"{self.plan.model}: ELBO {self.elbo:.6g}")
        ax.grid(alpha=0.3)
        fig.tight_layout()
        if path is not None:
            fig.savefig(path)
        return fig

    def __repr__(self):
        return f"<Fit {self.plan.model}: ELBO {self.elbo:.6g}, {self.iterations} iterations>"


def _family_label(plan, j) -> str:
    block = next((b for b in plan.blocks if j in (b.name, *(n for _, n in b.members))), None)
    if block is None or not block.members:
        return plan.block(j).family
    role = next(r for r, n in block.members if n == j)
    return "".join(c for c in block.family if c.isupper()) + f".{role}"  # NW.loc, NW.precision


def _built_means(plan, eta: dict, names: list) -> dict:
    """The posterior means of ``names`` from their blocks' NumPyro posteriors, as one compiled
    program rather than a program per eagerly dispatched op (three for a Dirichlet's mean, a
    tenth of a second each in a cold process, issue #21); eagerly where a posterior cannot be
    traced.  The state is valid by construction: NumPyro's argument checks are skipped."""
    import jax
    from numpyro.distributions.distribution import validation_enabled

    block = {name: next(b.name for b in plan.blocks if name in (b.name, *(n for _, n in b.members))) for name in names}

    def means(etas):
        with validation_enabled(False):
            return {name: _mean(posterior_of(plan, {block[name]: etas[block[name]]})[name]) for name in names}

    etas = {b: eta[b] for b in set(block.values())}
    try:
        return jax.jit(means)(etas)
    except Exception:  # noqa: BLE001 - a posterior that cannot be traced: op by op, as before
        return means(etas)


def _mean(d):
    import numpyro.distributions as dist

    if isinstance(d, (dist.CategoricalProbs, dist.CategoricalLogits)):
        return d.probs  # responsibilities: more telling than the mean category
    try:
        return d.mean
    except NotImplementedError:
        return d.probs if hasattr(d, "probs") else np.nan


def load_results(path: str | os.PathLike) -> Fit:
    """A fit read back from ``fit.save(path)``: the same posteriors, parameters and trace."""

    manifest, arrays = read(path)
    model = parse(manifest["model_text"], filename=f"{path}/manifest.json (model_text)")
    check_consistent(manifest, arrays, model, path)  # every size and shape it states (issue #23)
    plan = compile_model(model)
    fams = {b.name: b.family for b in plan.blocks}
    saved = {k: v["family"] for k, v in manifest["blocks"].items()}
    # A chain fitted with a mask of absent steps has one pairwise potential per step.
    per_step = tuple(j for j, f in fams.items() if _tied(f) is True and _tied(saved.get(j)) is False)
    if per_step:
        plan = compile_model(model, masked=per_step)
        fams = {b.name: b.family for b in plan.blocks}
    if fams != saved:
        raise VemError("io", f"the results' blocks {saved} do not match the model's plan {fams}")

    def stats(kind, j):
        fam = get_family(fams[j])
        try:
            return fam.Stats(*[arrays[f"{kind}/{j}/{f}"] for f in fam.Stats._fields])
        except KeyError as exc:
            raise VemError("io", f"arrays.npz lacks {exc.args[0]}") from None

    params = {}
    for p in plan.params:
        if p.mstep is MStep.NETWORK:
            prefix = f"params/{p.name}/"
            params[p.name] = {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}
            if not params[p.name]:
                raise VemError("io", f"arrays.npz lacks the weights {prefix}*")
            continue
        if f"params/{p.name}" not in arrays:
            raise VemError("io", f"arrays.npz lacks params/{p.name}")
        params[p.name] = arrays[f"params/{p.name}"]
    state = State({j: stats("eta", j) for j in fams}, {j: stats("mu", j) for j in fams}, params)
    values = {k: np.asarray(v) for k, v in manifest["consts"].items()}
    bound = Bound(dict(manifest["sizes"]), values, notes=list(manifest.get("notes", [])))
    s = manifest["settings"]
    return Fit(
        model=model, plan=plan, bound=bound, engine=None, state=state,
        elbo_trace=np.asarray(arrays["elbo_trace"]), converged=manifest["converged"],
        iterations=manifest["iterations"], seed=s["seed"], restarts=s["restarts"],
        compile_seconds=manifest["compile_seconds"], fit_seconds=manifest["fit_seconds"],
        best_restart=s["best_restart"], stochastic=s.get("algorithm") == "svi",  # absent before: a CAVI fit
        tol=s.get("tol"),  # absent before: predict keeps its own 1e-10
    )


def _tied(family: str | None) -> bool | None:
    """A chain family's ``tied_pairs`` (one pairwise potential for every step or one per
    step); None for a name that is no chain family."""
    try:
        return getattr(get_family(family), "tied_pairs", None) if family else None
    except VemError:
        return None
