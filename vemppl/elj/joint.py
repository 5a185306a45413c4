"""The expected log joint of a plan on a binding, and the entropies of its blocks.

``L(μ; θ) = E_q[log p(x, z; θ)] = Σ_f E_q[log f]``, one term per factor of the plan, each a
function of the mean parameters μ of the blocks it reads (``elj/evaluate.py``), and
``ELBO = L + Σ_j H[q_j]`` (Blei et al. 2017, eq. 13).  :class:`Joint` holds what these
sums read (the model, the plan, the binding, the blocks' families, blocks held fixed, the
present elements of categorical latents, the merged rows' counts) and nothing that
updates them: the conjugacy test of the compiler traces it on stand-in sizes, and the
engine (``engine/cavi.py``) derives every update from it by ``jax.grad``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ..diagnostics import VemError
from ..families import get_family
from ..plan import Update
from . import moments as M
from .amortised import diagonal_entropy, draws
from .evaluate import factor_value
from .plates import plate_shape


class Joint:
    """The expected log joint of ``plan`` on the binding ``bound`` (sizes, values, masks).

    ``fixed_blocks``: blocks read but never updated (the globals when predicting);
    ``present``: the present elements of categorical latents (padding is absent);
    ``unit_weights``: the data plate's distinct rows and their counts (engine/compress.py);
    ``families``: the blocks' families when another algorithm computes one of them
    (a Markov chain by a parallel scan), by default the plan's.
    """

    def __init__(self, model, plan, bound, fixed_blocks=None, present=None, unit_weights=None, families=None):
        self.model, self.plan, self.bound = model, plan, bound
        # The data plate's distinct rows and their counts (engine/compress.py), or None.
        self.unit_weights = unit_weights
        self._weighted = frozenset(unit_weights.plate.local_blocks) if unit_weights is not None else frozenset()
        # Networks and amortised latents: Adam on a reparameterised Monte Carlo ELBO (engine.networks).
        self.networks = tuple(n.name for n in model.of_kind("param") if n.is_network)
        # The networks the sweep trains: those among the plan's params.  Not when predicting, whose
        # plan holds no params: the fitted weights stay as they are (before, predict took 500 Adam
        # steps of the decoder and encoder on the new data).
        self.trained = tuple(p.name for p in plan.params if p.name in self.networks)
        self.amortised = frozenset(b.name for b in plan.blocks if b.update is Update.AMORTISED)
        # Blocks held fixed (read, never updated), e.g. the globals when predicting.
        self.fixed_blocks = dict(fixed_blocks or {})
        self.families = dict(families) if families is not None else {b.name: get_family(b.family) for b in plan.blocks}
        data_nodes = {n.name for n in model.of_kind("data")}
        # Constants stay NumPy (concrete under tracing); data arrays are jit arguments.
        self.consts = {k: v for k, v in bound.values.items() if k not in data_nodes}
        self.data = {k: on_device(v) for k, v in bound.values.items() if k in data_nodes}
        self.masks = {k: jnp.asarray(v) for k, v in bound.masks.items()}
        # Categorical latents with absent elements (padding of sequences of unequal length).
        self.present = {k: jnp.asarray(v, dtype=bool) for k, v in self._check_present(present or {}).items()}
        self.masks.update(self.present)
        self._reading: dict[frozenset, tuple] = {}  # factors_reading's answers

    def _table(self, mu, eta, skip=()):
        """The blocks by the names factors read them by (each member of a joint block)."""
        out = {}
        for j in mu:
            if j not in skip:
                out.update(M.block_entries(self.plan.block(j), self.families[j], mu[j], eta[j]))
        return out

    def expected_log_joint(self, mu, eta, params, data, tracker=None, factors=None, extra_blocks=None, key=None):
        """``L = Σ_f E_q[log f]`` over ``factors`` (by default every factor of the plan) at
        the blocks' (mu, eta), the point parameters ``params`` and the ``data``; amortised
        latents at their draw from ``key``.  ``tracker`` (moments.Tracker) records every
        moment read of each block, for the conjugacy test; ``extra_blocks`` adds blocks by
        name (a point parameter as a point mass, for its closed-form M-step)."""
        if self.amortised:  # amortised latents enter at their reparameterised draw
            data = {**data, **draws(self, params, data, key)}
        factors = self.plan.factors if factors is None else factors
        total, factors = self._apart(factors, mu, eta, params, data, extra_blocks, tracker)
        return total + self.factor_sum(factors, mu, eta, params, data, extra_blocks, tracker=tracker)

    def _apart(self, factors, mu, eta, params, data, extra_blocks, tracker):
        """(the sum of the factors evaluated apart, the factors left): none here; the engine
        sums the data plate's factors over chunks of rows (engine/chunks.py)."""
        return 0.0, factors

    def factor_sum(self, factors, mu, eta, params, data, extra_blocks=None, sizes=None, masks=None, tracker=None,
                   weights=None, units=None):
        """Σ_f E_q[log f] over ``factors``, reading the blocks from (mu, eta), the fixed and
        extra blocks, and the values from the constants and ``data``; the data plate's terms
        weighted by its rows' counts when its repeated rows are merged (engine/compress.py).
        Shared by the whole evaluation and by each chunk of ``engine/chunks.py`` (which
        passes its own rows, sizes, masks and weights).  ``units``: (a plate's dim, its rows'
        weights) in place of the merged rows' (engine/summed.py: one row per group of rows)."""
        blocks = self._table(mu, eta, skip=self.amortised)
        blocks.update(self.fixed_blocks)
        blocks.update(extra_blocks or {})
        values = {**self.consts, **data}
        sizes = self.bound.sizes if sizes is None else sizes
        masks = self.masks if masks is None else masks
        if units is not None:
            pass
        elif self.unit_weights is not None:
            w = jnp.asarray(self.unit_weights.weights) if weights is None else weights
            units = (self.unit_weights.plate.dim, w)
        total = 0.0
        for f in factors:
            if tracker is not None:
                tracker.factor = f
            try:
                total = total + factor_value(self.model, f, sizes, values, blocks, params, tracker, masks, units=units)
            except (M.NoMoment, M.NotFixed) as exc:
                # The factor travels with the error, so that it is located even where no
                # tracker is set (a chain's prior natural parameters, elj/prior.py).
                if getattr(exc, "factor", None) is None:
                    exc.factor = f
                raise
        return total

    def pointwise(self, state, data=None):
        """Per-point ELBO terms over the outermost data plate (for predictive densities).

        Every factor and every block must live on that plate (independent data points:
        mixtures, factor analysis); otherwise a VemError says why.  Where a factor lies outside
        every plate (the first step of a single sequence, ``z[0] ~ Categorical(pi0)``), the data
        are one unit, not points: the result is the whole ELBO, of shape ``[1]`` (with exact
        local blocks, such as one HMM's chain given the globals, it is log p(x | globals)).
        """
        data = {**self.consts, **(self.data if data is None else data)}
        blocks = self._table(state.mu, state.eta)
        blocks.update(self.fixed_blocks)
        if any(not f.definition.loops for f in self.plan.factors):
            total = sum(factor_value(self.model, f, self.bound.sizes, data, blocks, state.params, None, self.masks)
                        for f in self.plan.factors)
            return jnp.reshape(total + sum(self.block_entropy(state, j) for j in state.eta), (1,))
        check_one_plate(self.model, self.plan.factors)  # before their terms are added, which would not broadcast
        total = 0.0
        for f in self.plan.factors:
            total = total + factor_value(self.model, f, self.bound.sizes, data, blocks, state.params, None, self.masks,
                                         keep_leading=True)
        for j in state.eta:
            h = self.families[j].entropy(state.eta[j], state.mu[j])
            if h.ndim == 0:
                node = self.model.nodes.get(j)
                raise VemError("unsupported", f"q({j}) couples the data points: no per-point terms",
                               node.defs[0].span if node is not None and node.defs else None,
                               hint="`predict` without --density scores the new data by their held-out ELBO")
            total = total + jnp.sum(jnp.reshape(h, (h.shape[0], -1)), axis=1)
        return total

    def entropy(self, state, skip=()):
        """Σ_j H[q_j], less log K for every absent categorical element; without the blocks
        ``skip`` (whose entropy the caller has from elsewhere: engine/summed.py).

        An absent element has no factor, so its q is uniform and independent of the rest
        (in a chain, both pairwise potentials that touch it are zero) and adds exactly
        log K to the entropy; removing it makes the ELBO that of the shorter sequences.
        """
        total = 0.0
        for j in (j for j in state.eta if j not in skip):
            total = total + self.block_entropy(state, j)
        for j, present in self.present.items():
            k = state.mu[j].onehot.shape[-1]
            total = total - jnp.sum(~present) * jnp.log(k)
        return total

    def block_entropy(self, state, j, h=None):
        """H[q_j], each distinct row of a merged data plate counted as often as it stands;
        ``h``: q_j's entropies per element where the caller has them."""
        h = self._entropy(j, state.eta[j], state.mu[j]) if h is None else h
        if j in self._weighted:  # one distinct row stands for its count of units
            h = h * self.unit_weights.local_weight(h)
        return jnp.sum(h)

    def factors_reading(self, names) -> tuple:
        """The plan's factors whose value can change with the nodes ``names`` (a block's
        members, or a param): a factor on one of them, or one that reads one of them as a
        parent, directly or through deterministic nodes, or is gated by one.

        Every other factor is a constant of an update of ``names``: a line search or an
        M-step that compares values of L over these alone compares the same differences,
        with fewer terms to trace, compile and compute.  Read off the DAG (``ModelGraph``),
        a superset where a node has several definitions."""
        names = frozenset(names)
        if names not in self._reading:
            g = self.model.graph
            out = []
            for f in self.plan.factors:
                seen, todo = set(), [f.target]
                while todo:
                    n = todo.pop()
                    if n in seen:
                        continue
                    seen.add(n)
                    if n == f.target or self.model[n].kind == "det":
                        todo.extend(g.predecessors(n))
                if seen & names or any(r.block in names for r in f.enum):
                    out.append(f)
            self._reading[names] = tuple(out)
        return self._reading[names]

    def _entropy(self, j, eta, mu):
        if j in self.amortised:  # diagonal by construction: no batched Cholesky
            return diagonal_entropy(eta)
        return self.families[j].entropy(eta, mu)

    def _check_present(self, present):
        out = {}
        for j, m in present.items():
            node = self.model.nodes.get(j)
            if node is None or node.kind != "latent" or j not in self.families or self.families[j].support != "cat":
                raise VemError(
                    "data",
                    f"a mask on '{j}' is not supported. Expected a mask on a data array or on a categorical latent "
                    "(its absent elements, e.g. the steps after each sequence's end)",
                )
            m = np.asarray(m)
            if m.dtype != bool and not (np.issubdtype(m.dtype, np.number) and np.isin(m, (0, 1)).all()):
                raise VemError("data", f"the mask of '{j}' must be boolean. Expected True/False (or 0/1); got dtype {m.dtype}")
            shape = self.bound_shape(j)
            if m.shape != shape:
                raise VemError("data", f"the mask of '{j}' has the wrong shape. Expected {shape} (the shape of '{j}'); got {m.shape}")
            out[j] = m.astype(bool)
        return out

    def elbo(self, state, data=None):
        data = self.data if data is None else data
        return self.expected_log_joint(state.mu, state.eta, state.params, data, key=state.key) + self.entropy(state)

    def bound_shape(self, j):
        return plate_shape(self.model, j, self.bound.sizes, self.consts)


def check_one_plate(model, factors) -> None:
    """Per-point terms need every factor on one outer plate: otherwise the located refusal
    (``two_plates``).  Factors outside every plate make the data one unit (``Joint.pointwise``),
    and are not checked here."""
    if all(f.definition.loops for f in factors):
        plates = outer_plates(factors)
        if len(plates) > 1:
            raise two_plates(model, plates)


def outer_plates(factors) -> dict[str, list]:
    """The factors by the size of their outermost loop, in the plan's order."""
    out: dict[str, list] = {}
    for f in factors:
        stop = f.definition.loops[0].stop
        out.setdefault(str(getattr(stop, "id", stop)), []).append(f)
    return out


def two_plates(model, plates: dict[str, list]) -> VemError:
    """The refusal of per-point terms for factors on several outer plates, located at the first
    statement off the data's plate (the plate of the first factor whose target is data; the
    first plate if none is) and naming every statement by plate and line."""
    data = {n.name for n in model.of_kind("data")}
    home = next((size for size, fs in plates.items() if any(f.target in data for f in fs)), next(iter(plates)))

    def line(f):
        return getattr(getattr(f.definition, "span", None), "line", 0)

    off_plate, off = next((size, min(fs, key=line)) for size, fs in plates.items() if size != home)

    def said(fs):
        lines = [str(line(f)) for f in sorted(fs, key=line) if line(f)]
        fs = sorted(fs, key=line)
        names = ", ".join(dict.fromkeys(f.target for f in fs))
        return names + (f" (line{'s' if len(lines) > 1 else ''} {', '.join(lines)})" if lines else "")

    where = "; ".join(f"{said(fs)} over {size}"
                      for size, fs in sorted(plates.items(), key=lambda p: min(map(line, p[1]))))
    return VemError(
        "unsupported",
        f"the factors live on different outer plates ({', '.join(sorted(plates))}): {where}. A per-point density "
        f"sums each point's terms over one plate, whose points are independent given the globals; '{off.target}' "
        f"is over {off_plate}, not {home}, the plate of the first statement on data",
        getattr(off.definition, "span", None),
        hint="predict (`vemppl predict` without --density: the held-out ELBO) scores new data of this model; "
             "docs/cli.md says what --density supports")


def on_device(v):
    """An array as a JAX array: a NumPy array by ``jax.device_put``, the same bytes and dtype
    as ``jnp.asarray`` gives (both cast to JAX's canonical dtype in NumPy) without the one-op
    program ``jnp.asarray`` compiles, or reads from the compile cache, for each new shape
    outside a trace (0.03-0.16 s of a fit's start each: the data, the seeded responsibilities)."""
    if type(v) is np.ndarray:
        return jax.device_put(v)
    return jnp.asarray(v)


__all__ = ["Joint", "check_one_plate", "on_device", "outer_plates", "two_plates"]
