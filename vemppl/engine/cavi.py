"""Coordinate-ascent variational inference, derived by autodiff.

For a block ``j`` whose expected log joint ``L(μ)`` is affine in its mean parameters,
the optimal update (Winn & Bishop 2005; Hoffman et al. 2013 §2–3) is

    η_j ← ∇_{μ_j} L(μ),      μ_j ← ∇A_j(η_j),

one ``jax.grad`` per block.  The ELBO is ``L(μ) + Σ_j H[q_j]`` with
``H[q_j] = A_j(η_j) − ⟨η_j, μ_j⟩ − E[log h_j]`` (Blei et al. 2017, eq. 13), and it never
decreases under this schedule.

The engine is a pair of pure functions over an explicit state (STYLE.md, pattern 1):
``init(key) -> State`` and ``sweep(state, data) -> (State, elbo)``; ``sweep`` is jitted once
per model and data shape.
"""

from __future__ import annotations

import time
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ..diagnostics import VemError
from ..families import get_family
from ..families._linalg import chol as cholesky, sharpened_gaussian_draw
from ..ir.expr import Index, Name
from . import moments as M
from . import mstep
from .chunks import chunked_sum, plate_chunks
from .plates import definition_index, plate_shape
from .evaluate import _Context, factor_value


class State(NamedTuple):
    eta: dict  # block name -> natural parameters (the family's Stats type)
    mu: dict  # block name -> mean parameters, always expected_stats(eta) (the ELBO reads both)
    params: dict  # param name -> value (a network's: a dict of named weight arrays)
    key: Any = None  # the Monte Carlo draw of this sweep (models with networks only)
    opt: Any = None  # Adam's state for the networks (engine.networks)
    sweeps: Any = None  # sweeps taken, counted only for fit(local_restart=) (engine/schedule.py)
    elbo: Any = None  # the last sweep's ELBO, kept only for fit(local_restart=): the guard's floor


class Engine:
    """The jitted functions for one plan and one binding of the data."""

    #: Seed categorical blocks with broad k-means responsibilities (``_kmeanspp``).
    broad_start = True

    def __init__(self, model, plan, bound, fixed_blocks=None, present=None, learning_rate=1e-2, unit_weights=None):
        self.model, self.plan, self.bound = model, plan, bound
        # The data plate's distinct rows and their counts (engine/compress.py), or None.
        self.unit_weights = unit_weights
        self._weighted = frozenset(unit_weights.plate.local_blocks) if unit_weights is not None else frozenset()
        # The prior start, compiled once per engine (not once per restart); the seconds its
        # first call took are compile time, reported with the first sweep's (engine/fit.py).
        self._prior_jit = None
        self.init_compile_seconds = 0.0
        # Networks and amortised latents: Adam on a reparameterised Monte Carlo ELBO (engine.networks).
        self.networks = tuple(n.name for n in model.of_kind("param") if n.is_network)
        self.amortised = frozenset(b.name for b in plan.blocks if b.update == "amortised")
        self.learning_rate = learning_rate
        # Blocks held fixed (read, never updated), e.g. the globals when predicting.
        self.fixed_blocks = dict(fixed_blocks or {})
        self.families = {b.name: get_family(b.family) for b in plan.blocks}
        self.chain = "sequential"
        #: The data plate's merged rows when the fit ran on them (set by fit on the engine of
        #: every row it returns; engine/compress.py).
        self.merged_rows = None
        data_nodes = {n.name for n in model.of_kind("data")}
        # Constants stay NumPy (concrete under tracing); data arrays are jit arguments.
        self.consts = {k: v for k, v in bound.values.items() if k not in data_nodes}
        self.data = {k: jnp.asarray(v) for k, v in bound.values.items() if k in data_nodes}
        self.masks = {k: jnp.asarray(v) for k, v in bound.masks.items()}
        # Categorical latents with absent elements (padding of sequences of unequal length).
        self.present = {k: jnp.asarray(v, dtype=bool) for k, v in self._check_present(present or {}).items()}
        self.masks.update(self.present)
        # The data plate's factors summed over chunks of rows; None: evaluated whole.  (Set to
        # None before the first sweep is traced to turn it off, as sharding does.)
        self.chunks = plate_chunks(self)
        self.traces = 0  # how many times `sweep` was traced (recompilations show here)
        self._sweep = jax.jit(self._sweep_impl, static_argnames=("restart",))
        self._elbo = jax.jit(self.elbo)

    def use_chain_algorithm(self, chain: str):
        """``fit(chain=)``: the Markov-chain blocks' log-normaliser by a sequential scan
        ("sequential", the default; families/markov_chain.py) or by a balanced tree of
        (log, +) matrix products, log T deep ("parallel"; families/markov_chain_parallel.py).
        The two are one family computed two ways: the same updates and ELBO to rounding."""
        from ..families.markov_chain import MarkovChain
        from ..families.markov_chain_homogeneous import HomogeneousMarkovChain
        from ..families.markov_chain_parallel import HomogeneousMarkovChainParallel, MarkovChainParallel

        algorithms = {"sequential": (MarkovChain, HomogeneousMarkovChain),
                      "parallel": (MarkovChainParallel, HomogeneousMarkovChainParallel)}
        if chain not in algorithms:
            raise VemError("data", f"chain must be one of {', '.join(algorithms)}; got {chain!r}")
        kind = {f: i for pair in algorithms.values() for i, f in enumerate(pair)}  # per-step or tied
        self.families = {j: (algorithms[chain][kind[f]] if f in kind else f) for j, f in self.families.items()}
        self.chain = chain

    # ---- the expected log joint --------------------------------------------------
    def _blocks(self, state):
        return self._table(state.mu, state.eta)

    def _table(self, mu, eta, skip=()):
        """The blocks by the names factors read them by (each member of a joint block)."""
        out = {}
        for j in mu:
            if j not in skip:
                out.update(M.block_entries(self.plan.block(j), self.families[j], mu[j], eta[j]))
        return out

    def expected_log_joint(self, mu, eta, params, data, tracker=None, factors=None, extra_blocks=None, key=None):
        if self.amortised:  # amortised latents enter at their reparameterised draw
            from .networks import draws

            data = {**data, **draws(self, params, data, key)}
        factors = self.plan.factors if factors is None else factors
        total = 0.0
        if self.chunks is not None and tracker is None:  # engine/chunks.py
            inside = tuple(f for f in factors if self.chunks.plate.is_inside(f))
            if inside and self.chunks.worth(self, inside, mu, eta, params, data, extra_blocks):
                total = chunked_sum(self, self.chunks, inside, mu, eta, params, data, extra_blocks)
                factors = tuple(f for f in factors if not self.chunks.plate.is_inside(f))
        return total + self.factor_sum(factors, mu, eta, params, data, extra_blocks, tracker=tracker)

    def factor_sum(self, factors, mu, eta, params, data, extra_blocks=None, sizes=None, masks=None, tracker=None,
                   weights=None):
        """Σ_f E_q[log f] over ``factors``, reading the blocks from (mu, eta), the fixed and
        extra blocks, and the values from the constants and ``data``; the data plate's terms
        weighted by its rows' counts when its repeated rows are merged (engine/compress.py).
        Shared by the whole evaluation and by each chunk of ``engine/chunks.py`` (which
        passes its own rows, sizes, masks and weights)."""
        blocks = self._table(mu, eta, skip=self.amortised)
        blocks.update(self.fixed_blocks)
        blocks.update(extra_blocks or {})
        values = {**self.consts, **data}
        sizes = self.bound.sizes if sizes is None else sizes
        masks = self.masks if masks is None else masks
        units = None
        if self.unit_weights is not None:
            w = jnp.asarray(self.unit_weights.weights) if weights is None else weights
            units = (self.unit_weights.plate.dim, w)
        total = 0.0
        for f in factors:
            if tracker is not None:
                tracker.factor = f
            total = total + factor_value(self.model, f, sizes, values, blocks, params, tracker, masks, units=units)
        return total

    def pointwise(self, state, data=None):
        """Per-point ELBO terms over the outermost data plate (for predictive densities).

        Every factor and every block must live on that plate (independent data points:
        mixtures, factor analysis); otherwise a VemError says why.
        """
        data = {**self.consts, **(self.data if data is None else data)}
        blocks = self._table(state.mu, state.eta)
        blocks.update(self.fixed_blocks)
        sizes = set()
        total = 0.0
        for f in self.plan.factors:
            if not f.definition.loops:
                raise VemError("unsupported", f"'{f.describe()}' is not inside a data plate: no per-point terms")
            sizes.add(f.definition.loops[0].stop)
            total = total + factor_value(self.model, f, self.bound.sizes, data, blocks, state.params, None, self.masks,
                                         keep_leading=True)
        for j in state.eta:
            h = self.families[j].entropy(state.eta[j], state.mu[j])
            if h.ndim == 0:
                raise VemError("unsupported", f"q({j}) couples the data points: no per-point terms")
            total = total + jnp.sum(jnp.reshape(h, (h.shape[0], -1)), axis=1)
        if len(sizes) > 1:
            raise VemError("unsupported", "the factors live on different outer plates: no per-point terms")
        return total

    def entropy(self, state):
        """Σ_j H[q_j], less log K for every absent categorical element.

        An absent element has no factor, so its q is uniform and independent of the rest
        (in a chain, both pairwise potentials that touch it are zero) and adds exactly
        log K to the entropy; removing it makes the ELBO that of the shorter sequences.
        """
        total = 0.0
        for j in state.eta:
            h = self._entropy(j, state.eta[j], state.mu[j])
            if j in self._weighted:  # one distinct row stands for its count of units
                h = h * self.unit_weights.local_weight(h)
            total = total + jnp.sum(h)
        for j, present in self.present.items():
            k = state.mu[j].onehot.shape[-1]
            total = total - jnp.sum(~present) * jnp.log(k)
        return total

    def _entropy(self, j, eta, mu):
        if j in self.amortised:  # diagonal by construction: no batched Cholesky
            from .networks import diagonal_entropy

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

    # ---- updates ------------------------------------------------------------------
    def update_block(self, state, j, data, invariant=None):
        """q_j updated; ``invariant``: (factors, their part of ∇_{μ_j} L) computed ahead by
        ``target_part`` while the blocks those factors read besides j stay put."""
        return self._update_block(state, j, data, False, invariant)

    def target_part(self, state, j, factors, data):
        """∇_{μ_j} of the expected log joint's ``factors`` alone (raw, before any row weights
        divide it): for a closed-form block, the same at every μ_j."""
        return jax.grad(self._as_function_of(state, j, data, factors))(state.mu[j])

    def _as_function_of(self, state, j, data, factors=None):
        """μ_j ↦ Σ_f E_q[log f] over ``factors`` (every factor: L), the rest of ``state`` held."""
        def L(mu_j):
            return self.expected_log_joint({**state.mu, j: mu_j}, state.eta, state.params, data, factors=factors,
                                           key=state.key)
        return L

    def update_block_and_log_joint(self, state, j, data):
        """(the state with q_j updated, the expected log joint at it), for the last update of a
        sweep: see ``_update_block``.  None for the second when it does not hold."""
        return self._update_block(state, j, data, True)

    def _update_block(self, state, j, data, log_joint, invariant=None):
        """q_j ← the CAVI target η_j = ∇_{μ_j} L (Winn & Bishop 2005; GUIDE §2).

        A closed-form block is one in which L is affine (the conjugacy probe's test,
        engine/probe.py), so L at the updated μ_j is exact from the gradient's own forward
        pass: L(μ_j') = L(μ_j) + ⟨∇_{μ_j} L, μ_j' − μ_j⟩.  With ``log_joint`` that value is
        returned too, and the ELBO after a sweep whose last step is this update needs only
        the entropies, not another pass over every factor (on LDA that pass holds an
        [M, K] gather of E[log β]; on an HMM the emission densities at every step)."""
        fam = self.families[j]
        if j in self.amortised:
            from .networks import refresh

            new = refresh(self, state, data)
            return (new, None) if log_joint else new

        factors = None
        if invariant is not None:
            assert not log_joint, "the value of L needs every factor"
            factors = tuple(f for f in self.plan.factors if f not in invariant[0])
        L = self._as_function_of(state, j, data, factors)

        closed_form = self.plan.block(j).update == "cavi"
        if log_joint and closed_form:
            value, grad = jax.value_and_grad(L)(state.mu[j])
        else:
            value, grad = None, jax.grad(L)(state.mu[j])
        if invariant is not None:
            grad = jax.tree_util.tree_map(jnp.add, grad, invariant[1])
        raw = grad
        if j in self._weighted:  # every term reading row u's statistics carries its count c_u
            grad = jax.tree_util.tree_map(lambda g: g / self.unit_weights.local_weight(g), grad)
        eta_j = fam.tidy_natural(fam.Stats(*grad))
        if not closed_form:
            new = self._damped(state, j, eta_j, data)
            return (new, None) if log_joint else new
        mu_j = fam.expected_stats(eta_j)
        new = state._replace(eta={**state.eta, j: eta_j}, mu={**state.mu, j: mu_j})
        if not log_joint:
            return new
        moved = sum(jnp.vdot(g, b - a) for g, a, b in zip(raw, state.mu[j], mu_j))
        return new, value + moved

    def _damped(self, state, j, target, data, rhos=(1.0, 0.5, 0.25, 0.125, 0.0625, 0.03125, 0.015625)):
        """Natural-gradient step for a non-conjugate block (Khan & Lin 2017):
        η ← (1−ρ)η + ρ∇_μ L, the largest ρ of ``rhos`` that does not lower the ELBO.

        With ρ = 1 this is the CAVI update; L here is exact (Gaussian expectations by
        quadrature), so a backtracking line search keeps the ELBO monotone.
        """
        fam = self.families[j]
        base = self.elbo(state, data)
        best, chosen = state, jnp.zeros((), bool)
        for rho in rhos:
            eta_c = fam.tidy_natural(jax.tree_util.tree_map(lambda a, b: (1 - rho) * a + rho * b, state.eta[j], target))
            cand = state._replace(eta={**state.eta, j: eta_c}, mu={**state.mu, j: fam.expected_stats(eta_c)})
            e = self.elbo(cand, data)
            ok = jnp.isfinite(e) & (e >= base - 1e-12 * jnp.abs(base)) & ~chosen
            best = jax.tree_util.tree_map(lambda c, b: jnp.where(ok, c, b), cand, best)
            chosen = chosen | ok
        return best

    def update_param(self, state, p, data):
        """The M-step for one point parameter: closed form where derived, else gradient."""
        pp = self.plan.param(p)
        others = {k: v for k, v in state.params.items() if k != p}
        if pp.mstep == "closed-form":
            fam = get_family(pp.family)

            def L_stats(stats):
                return self.expected_log_joint(
                    state.mu, state.eta, others, data, extra_blocks={p: (fam, stats, stats)}, key=state.key
                )

            theta = mstep.closed_form_update(fam, L_stats, state.params[p])
        else:
            def L_theta(theta):
                return self.expected_log_joint(state.mu, state.eta, {**others, p: theta}, data, key=state.key)

            theta = mstep.gradient_update(L_theta, state.params[p], pp.type)
        return state._replace(params={**state.params, p: theta})

    def _sweep_impl(self, state, data, restart=False):
        """One sweep: (state, ELBO); with ``restart`` (``fit(local_restart=)``) the sweep from
        restarted locals, for ``guarded_sweep`` to keep or replace.  Two programs rather than
        a ``lax.cond`` between them in one: on XLA:CPU the conditional copies the state in
        and out, which made LDA's carried sweeps 1.7x slower (15.7 → 26.3 ms)."""
        self.traces += 1
        new, elbo = self._sweep_body(state, data, restart=restart)
        if state.sweeps is not None:  # the restarting schedule's count and floor
            new = new._replace(sweeps=state.sweeps + 1, elbo=elbo)
        return new, elbo

    def restarting(self, state) -> bool:
        """Whether the next sweep restarts the locals (``fit(local_restart=True or S)``)."""
        schedule = getattr(self, "local_global", None)
        return schedule is not None and schedule.local_restart and schedule.restarts_at(int(state.sweeps))

    def _sweep_body(self, state, data, restart=False):
        # The ELBO from the last update's own pass when nothing moves after it (no M-step, no
        # networks, no Monte Carlo draw): L at the new state plus the entropies.
        last = not (self.plan.params or self.networks or self.amortised)
        if getattr(self, "local_global", None) is not None:
            if last:
                state, log_joint = self.local_global.update(self, state, data, log_joint=True, restart=restart)
            else:
                state, log_joint = self.local_global.update(self, state, data, restart=restart), None
        else:
            log_joint = None
            for i, j in enumerate(self.plan.schedule):
                if last and i == len(self.plan.schedule) - 1:
                    state, log_joint = self.update_block_and_log_joint(state, j, data)
                else:
                    state = self.update_block(state, j, data)
        for p in self.plan.params:
            if p.name not in self.networks:
                state = self.update_param(state, p.name, data)
        if self.networks:  # the ELBO at this sweep's draw, before the networks' step
            from .networks import network_step

            state, elbo = network_step(self, state, data)
        elif log_joint is not None:
            elbo = log_joint + self.entropy(state)
        else:
            elbo = self.elbo(state, data)
        if state.key is not None:  # a fresh Monte Carlo draw for the next sweep
            state = state._replace(key=jax.random.split(state.key)[0])
        return state, elbo

    def initial_params(self, key, init=None) -> dict:
        """User ``init`` > the model's initialiser (a scalar fills the shape) > a default."""
        from .bind import _size

        init = dict(init or {})
        rng = np.random.default_rng(np.asarray(jax.random.key_data(key)).ravel()[-1])
        out = {}
        for i, node in enumerate(self.model.of_kind("param")):
            t = node.type
            if t.is_network:
                from .networks import check_weights, init_mlp, layer_sizes

                sizes = layer_sizes(node, self.bound.sizes)
                seed = np.asarray(jax.random.key_data(key)).ravel().tolist()
                w = init[node.name] if node.name in init else init_mlp(np.random.default_rng(seed + [i]), sizes)
                out[node.name] = check_weights(node.name, w, sizes)
                continue
            shape = tuple(_size(e, self.bound.sizes, node.name) for e in t.shape)
            if t.base == "spd":
                shape = shape + shape[-1:]
            if node.name in init:
                v = np.asarray(init[node.name], dtype=float)
                if v.shape != shape:
                    try:
                        v = np.broadcast_to(v, shape).copy()
                    except ValueError:
                        raise VemError(
                            "data", f"init for '{node.name}' has shape {v.shape}; the parameter has shape {shape}"
                        ) from None
            elif node.value is not None:
                from .evaluate import eval_fixed

                v = np.broadcast_to(np.asarray(eval_fixed(node.value, self.bound.sizes, self.consts), float), shape).copy()
            else:
                v = mstep.default_init(t.base, shape, rng)
            out[node.name] = jnp.asarray(v)
        return out

    def sweep(self, state):
        return guarded_sweep(self._sweep, self, state, self.data)

    # ---- initialisation -------------------------------------------------------------
    def init(self, key, params=None) -> State:
        """q_j = the prior given its parents' means, in topological order; categorical
        blocks seeded by k-means++ on the data they gate, or at random."""
        eta, mu = {}, {}
        key, sub = jax.random.split(key)
        declared = {n.name for n in self.model.of_kind("param")}
        # Values for names that are not model params are held fixed (globals at a point).
        extra = {k: jnp.asarray(v) for k, v in (params or {}).items() if k not in declared}
        params = {**self.initial_params(sub, {k: v for k, v in (params or {}).items() if k in declared}), **extra}
        order = [n for n in self.plan.schedule if self.plan.block(n).init == "prior"]
        order += [n for n in self.plan.schedule if n not in order]
        chains = {b.name for b in self.plan.blocks if b.structure == "markov-chain"}
        key, sub = jax.random.split(key)
        # One compiled function rather than dozens of eagerly dispatched (and compiled) ops.
        first = self._prior_jit is None
        if first:
            self._prior_jit = jax.jit(self._prior_blocks)
        t0 = time.perf_counter()
        eta, mu = jax.block_until_ready(self._prior_jit(params, sub, self.data))
        if first:
            self.init_compile_seconds = time.perf_counter() - t0
        seeding_seconds = 0.0
        for j in order:
            b = self.plan.block(j)
            if b.init in ("prior", "prior draw"):
                continue
            key, sub = jax.random.split(key)
            if j in chains:
                k = self._num_categories(j, mu, eta, params)
                r, centres = self._seed_responsibilities(j, np.zeros(self.bound_shape(j) + (k,)), sub,
                                                         b.init == "kmeans++")
                rho = 0.0 if centres is None else self._persistence(j, centres)
                t0 = time.perf_counter()
                eta[j], mu[j] = jax.block_until_ready(_seeded_chain(self.families[j], r, rho))
            else:
                r, _ = self._seed_responsibilities(j, mu[j].onehot, sub, kmeans=b.init == "kmeans++")
                t0 = time.perf_counter()
                eta[j], mu[j] = jax.block_until_ready(_seeded_categorical(self.families[j], type(eta[j]), r))
            seeding_seconds += time.perf_counter() - t0
        if first:  # their first calls compile (once per process, family and shape)
            self.init_compile_seconds += seeding_seconds
        if not (self.networks or self.amortised):
            return State(eta, mu, params)
        from .networks import optimizer

        # The amortised blocks hold their prior until the first sweep reads the encoder.
        nets = {k: params[k] for k in self.networks}
        return State(eta, mu, params, key=jax.random.fold_in(key, 1), opt=optimizer(self.learning_rate).init(nets))

    def _prior_blocks(self, params, key, data):
        """Every block but the chains at its prior given its parents' means (Gaussians moved
        off their symmetric start, see ``_jitter_gaussian`` and ``families._linalg.sharpened_gaussian_draw``)."""
        eta, mu = {}, {}
        # Names are declared before use, so declaration order reaches parents first.
        for j in [n for n in self.model.nodes if n in self.families]:
            if self.plan.block(j).structure == "markov-chain":
                continue
            eta[j] = self._prior_natural(j, mu, eta, params, data)
            if self.families[j].name in ("Normal", "MvNormal"):
                key, sub = jax.random.split(key)
                draw = self.plan.block(j).init == "prior draw"
                eta[j] = sharpened_gaussian_draw(eta[j], sub) if draw else _jitter_gaussian(eta[j], sub)
            # A prior read off constants alone is a constant to XLA, which would fold its
            # statistics at compile time (a softmax over every unit: > 1 s at N = 30k).
            eta[j] = jax.lax.optimization_barrier(eta[j])
            mu[j] = self.families[j].expected_stats(eta[j])
        return eta, mu

    def _prior_natural(self, j, mu, eta, params, data=None):
        """Natural parameters of the block's own factors with parents at their means."""
        if self.plan.block(j).members:
            return self._joint_prior_natural(j, mu, eta, params, data)
        node = self.model.nodes[j]
        fam = get_family(node.defs[0].dist)
        if fam.Stats is not self.families[j].Stats:  # a joint block over scalar elements
            e = self._prior_natural_of(j, fam, node, mu, eta, params, data)
            diag = jnp.vectorize(jnp.diag, signature="(n)->(n,n)")
            return self.families[j].Stats(e.mean, diag(e.sq))
        return self._prior_natural_of(j, fam, node, mu, eta, params, data)

    def _joint_prior_natural(self, j, mu, eta, params, data=None):
        """A joint block's prior (Normal–Wishart: Bishop's m₀, β₀, W₀, ν₀): the gradient of
        its members' own factors, which are affine in its statistics, at zero statistics."""
        b, fam = self.plan.block(j), self.families[j]
        own = {node for _, node in b.members}
        events = {}
        for role, node in b.members:
            rank = len(self.model.nodes[node].defs[0].indices)
            sizes = [s if isinstance(s, int) else self.bound.sizes.get(s, self.consts.get(s)) for s in self.model.shapes[node][rank:]]
            events[role] = tuple(int(np.asarray(s)) for s in sizes)
        zero = fam.zero_stats(self.bound_shape(j), events)
        factors = tuple(f for f in self.plan.factors if f.target in own)

        def L(stats):
            return self.expected_log_joint({**mu, j: stats}, {**eta, j: zero}, params,
                                           self.data if data is None else data, factors=factors)

        return fam.tidy_natural(fam.Stats(*jax.grad(L)(zero)))

    def _prior_natural_of(self, j, fam, node, mu, eta, params, data=None):
        data = self.data if data is None else data
        full = None
        blocks = self._table(mu, eta)
        blocks.update(self.fixed_blocks)
        for d in node.defs:
            factor = next(f for f in self.plan.factors if f.target == j and f.definition is d)
            enum = tuple(r for r in factor.enum if r.block != j)
            if enum:
                raise VemError(
                    "unsupported", f"cannot initialise '{j}': its prior is gated by another latent", d.span
                )
            ctx = _Context(self.model, d.loops, (), self.bound.sizes, {**self.consts, **data}, blocks, params, None)
            args = {}
            for k, e in d.args:
                src = ctx.ev(e)
                args[k] = jnp.asarray(src.mean) if not src.is_fixed else jnp.asarray(src.value, dtype=float)
            e_d = fam.natural_from_params(**args)
            grid = tuple(stop - start for _, start, stop in ctx.loops)
            e_d = type(e_d)(*[_broadcast_to_grid(x, grid, rank) for x, rank in zip(e_d, fam.stat_ranks)])
            if full is None:
                shape = self.bound_shape(j)
                full = type(e_d)(*[jnp.zeros(shape + x.shape[len(grid):]) for x in e_d])
            idx = definition_index(d, ctx)
            full = type(e_d)(*[f.at[idx].set(x) if idx else x for f, x in zip(full, e_d)])
        return full

    def _num_categories(self, j, mu, eta, params) -> int:
        """K of a categorical node, from the probabilities of a definition not reading itself."""
        blocks = self._table(mu, eta)
        blocks.update(self.fixed_blocks)
        for d in self.model.nodes[j].defs:
            factor = next(f for f in self.plan.factors if f.target == j and f.definition is d)
            if any(r.block == j for r in factor.enum if r.expr != _own_ref(j, d)):
                continue
            ctx = _Context(self.model, d.loops, (), self.bound.sizes, {**self.consts, **self.data}, blocks, params, None)
            src = ctx.ev(d.args[0][1])
            return int((src.value if src.is_fixed else src.mean).shape[-1])
        raise VemError("unsupported", f"cannot tell the number of categories of '{j}'", self.model.nodes[j].span)

    def bound_shape(self, j):
        return plate_shape(self.model, j, self.bound.sizes, self.consts)

    def _seed_responsibilities(self, j, r0, key, kmeans):
        """Starting responsibilities for block ``j`` (shape of ``r0``) and the k-means centres
        they were read from (None for a random start: no data gated by ``j``, or not asked)."""
        k = r0.shape[-1]
        feats = self._gated_data(j) if kmeans else None
        rng = np.random.default_rng(np.asarray(jax.random.key_data(key)).ravel()[-1])
        if feats is None or feats.shape[0] != r0.reshape(-1, k).shape[0]:
            r, centres = rng.dirichlet(np.ones(k), size=r0.reshape(-1, k).shape[0]), None
        else:
            r, centres = _kmeanspp(feats, k, rng, broad=self.broad_start, return_centres=True)
        return jnp.asarray(r.reshape(r0.shape)), centres

    def _persistence(self, j, centres):
        """The chain ``j``'s persistence ρ read off the data it gates (``_persistence``), its
        absent steps (padding of shorter sequences) left out."""
        shape = self.bound_shape(j)
        feats = self._gated_data(j).reshape(shape + (-1,))
        present = np.asarray(self.present[j]) if j in self.present else np.ones(shape, bool)
        return _persistence(feats, np.broadcast_to(present, shape), centres)

    def _gated_data(self, j):
        for f in self.plan.factors:
            node = self.model.nodes[f.target]
            refs = [r for r in f.enum if r.block == j]
            if node.kind != "data" or not refs:
                continue
            ref = refs[0].expr
            d = f.definition
            if isinstance(ref, Index) and ref.indices == d.indices and d.indices == tuple(Name(v) for v in d.loop_vars[: len(d.indices)]):
                x = np.asarray(self.bound.values[f.target], dtype=float)
                if node.type.base == "cat":  # a category's sufficient statistic is its one-hot vector
                    n_cat = int(np.max(x, initial=0)) + 1
                    if x.size * n_cat > _ONE_HOT_LIMIT:
                        return None  # too large to expand: a random start
                    x = np.eye(n_cat)[x.astype(int)]
                return x.reshape(int(np.prod(x.shape[: len(d.indices)])), -1)  # one row per element
        return None


#: The most entries of one-hot features built for k-means++ seeding (128 MB in float64); a
#: categorical variable with more units x categories starts its responsibilities at random.
_ONE_HOT_LIMIT = 1 << 24


def guarded_sweep(jitted, engine, state, data):
    """``jitted(state, data, restart=...)``'s sweep, guarded: a sweep from restarted locals
    may end in a lower optimum than the carried ones, and one that ends below the last
    sweep's ELBO is replaced by the carried sweep from the same state, a CAVI step, so the
    ELBO never decreases (``engine/schedule.py``).  The test is on the host, where the
    fit's loop reads the ELBO anyway."""
    if not engine.restarting(state):
        return jitted(state, data)
    new, elbo = jitted(state, data, restart=True)
    # The floor is the ELBO the last sweep returned (the trace's last value; -inf before the
    # first), not a re-evaluation at the state: one ELBO pass less per restarted sweep.
    if state.elbo is None or float(elbo) >= float(state.elbo):
        return new, elbo
    return jitted(state, data)


# Jitted once per family and shape and kept across fits: run eagerly, each op compiled on
# its own on a process's first fit (0.3 s of an HMM's at T = 100k).
@partial(jax.jit, static_argnums=0)
def _seeded_chain(fam, r, rho):
    """A chain at marginals r with persistence ρ: zero pairwise potentials and
    q(z_{t−1}, z_t) = ρ diag(r_{t−1}) + (1 − ρ) r_{t−1} r_tᵀ (summed over t for a chain with
    tied transitions), so the first update of the transitions sees the data's persistence
    (``_persistence``); ρ = 0 is the independent start."""
    stay = r[..., :-1, :, None] * jnp.eye(r.shape[-1], dtype=r.dtype)
    pair = rho * stay + (1.0 - rho) * r[..., :-1, :, None] * r[..., 1:, None, :]
    if fam.tied_pairs:
        pair = jnp.sum(pair, axis=-3)
    return fam.Stats(jnp.log(r), jnp.zeros_like(pair)), fam.Stats(r, pair)


@partial(jax.jit, static_argnums=(0, 1))
def _seeded_categorical(fam, stats_type, r):
    eta = stats_type(jnp.log(r))
    return eta, fam.expected_stats(eta)


def _kmeanspp(x, k, rng, broad=True, smooth=0.1, lloyd_steps=300, tol=1e-4, return_centres=False):
    """Greedy k-means++ seeding (Arthur & Vassilvitskii 2007; 2 + ln k candidates per centre,
    the one that lowers the potential most kept, as scikit-learn's ``KMeans``), Lloyd steps
    until the centres move less than ``tol`` × the mean per-feature variance (squared), then
    *broad* responsibilities: r_nk ∝ exp(−‖x_n − c_k‖² / 2s²) with s² = tr Cov(x), every
    component the whole data's spread around its centre, as hmmlearn starts its variational
    HMM (k-means means, the data covariance for every state).

    Measured on the GMM benchmark (N = 100k, D = K = 10, seeds 0–4), against the hard cells
    (smoothed 0.1) this replaces: CAVI took 22 / 11 / 15 / 11 / 82 sweeps instead of
    124 / 6 / 488 / 6 / 417, to held-out log-likelihoods −16.396 / −16.104 / −16.104 /
    −16.104 / −16.343 instead of −16.385 / −16.104 / −16.384 / −16.104 / −16.343 (mean
    −16.210 against −16.264): hard cells fit each component's covariance to its Voronoi
    cell, too narrow where clusters overlap, and CAVI then crawls out of that saddle.  On
    the Gaussian HMM benchmark (T = 100k) every seed took 27 sweeps instead of 40–43, to the
    same optimum.  Well-separated clusters, where the cells are already right, pay a few
    sweeps (N = 10k, D = K = 5: 15 instead of 7, 0.05 s).

    ``broad=False``: the hard cells, smoothed by ``smooth``, for stochastic VI, whose damped
    global steps cannot climb out of a broad start as fast as full CAVI sweeps do (a GMM of
    5000 points in batches of 500 ended 1.6% below the full-batch held-out log-likelihood
    from the broad start, within 1e-5 of it from the cells).

    ``return_centres=True`` returns ``(responsibilities, centres)``.
    """
    n = x.shape[0]
    xx = np.sum(x * x, axis=1)  # ‖x_n‖², once (each distance below reuses it)
    trials = 2 + int(np.log(k))
    first = x[rng.integers(n)]
    d2 = np.sum((x - first) ** 2, axis=1)
    centres = [first]
    for _ in range(1, k):
        p = d2 / d2.sum() if d2.sum() > 0 else np.full(n, 1.0 / n)
        cand = rng.choice(n, size=trials, p=p)
        d2_cand = np.minimum(d2[None, :], np.maximum(_sqdist(x, x[cand], xx).T, 0.0))  # [trials, N]
        best = int(np.argmin(d2_cand.sum(axis=1)))
        centres.append(x[cand[best]])
        d2 = d2_cand[best]
    c = np.stack(centres)
    threshold = tol * float(np.mean(np.var(x, axis=0)))
    for _ in range(lloyd_steps):
        assign = np.argmin(_sqdist(x, c, xx), axis=1)
        # Each cell's mean by one pass of bincount per feature (a mask per cell reads x K times).
        counts = np.bincount(assign, minlength=k)
        sums = np.stack([np.bincount(assign, weights=x[:, d], minlength=k) for d in range(x.shape[1])], axis=1)
        new = np.where(counts[:, None] > 0, sums / np.maximum(counts, 1)[:, None], c)
        shift = float(np.sum((new - c) ** 2))
        c = new
        if shift <= threshold:
            break
    if not broad:
        r = (1 - smooth) * np.eye(k)[np.argmin(_sqdist(x, c, xx), axis=1)] + smooth / k
    else:
        spread = float(np.sum(np.var(x, axis=0)))
        logits = -0.5 * np.maximum(_sqdist(x, c, xx), 0.0) / (spread if spread > 0 else 1.0)
        r = np.exp(logits - logits.max(axis=1, keepdims=True))
        r = r / r.sum(axis=1, keepdims=True)
    return (r, c) if return_centres else r


def _persistence(x, present, centres, most=0.99):
    """How persistent a chain's states are, read off the data they emit: ρ in [0, ``most``].

    For a chain that keeps its state with probability ρ and otherwise draws afresh from its
    stationary distribution p, the state means' lag-1 autocovariance is ρ times their
    variance: E[(μ_{z_t} − μ̄)ᵀ(μ_{z_{t−1}} − μ̄)] = ρ Σ_k p_k ‖μ_k − μ̄‖².  Emission noise is
    independent from step to step, so the data's lag-1 autocovariance over the between-state
    variance estimates ρ, with the k-means cells (``centres``) standing in for the states.
    A negative autocovariance (a chain that moves on, such as a cycle) gives 0, the
    independent start.

    ``x``: the data, one row per step, the chain's time axis second-to-last ([..., T, F]);
    ``present``: which steps exist ([..., T]).  Measured on the Gaussian HMM benchmark
    (T = 100k, K = 4, D = 3, stay 0.9): ρ̂ = 0.74 and 10 sweeps instead of 27 from the
    independent start, the same optimum; transitions uniform or cyclic: ρ̂ ≤ 0.002, the
    sweeps of the independent start (82 and 17).
    """
    w = present.astype(float)
    n = w.sum()
    if n < 2:
        return 0.0
    flat, wf = x.reshape(-1, x.shape[-1]), w.reshape(-1)
    mean = (wf @ flat) / n
    xc = (x - mean) * w[..., None]
    pairs = w[..., 1:] * w[..., :-1]
    if pairs.sum() == 0:
        return 0.0
    auto = float(np.sum(xc[..., 1:, :] * xc[..., :-1, :]) / pairs.sum())
    cell = np.argmin(_sqdist(flat, centres), axis=1)
    counts = np.bincount(cell, weights=wf, minlength=len(centres))
    between = float(counts @ np.sum((centres - mean) ** 2, axis=1)) / n
    return float(np.clip(auto / between, 0.0, most)) if between > 0 else 0.0


def _jitter_gaussian(eta, key, scale=0.1):
    """Move a Gaussian's mean by ``scale`` prior standard deviations in a random direction.

    A prior mean of zero shared by every element is a symmetric saddle of models such as
    PCA (W = 0, E[z] = 0 is a fixed point of CAVI); a small random offset breaks the tie.
    With Λ = L Lᵀ, the mean m + scale·L⁻ᵀε has natural parameter η₁ + scale·Lε.
    """
    if eta.mean.shape == eta.sq.shape if hasattr(eta, "sq") else False:
        eps = jax.random.normal(key, eta.mean.shape)
        return eta._replace(mean=eta.mean + scale * jnp.sqrt(-2.0 * eta.sq) * eps)
    lam = -2.0 * eta.outer
    chol = cholesky(0.5 * (lam + jnp.swapaxes(lam, -1, -2)))
    eps = jax.random.normal(key, eta.mean.shape)
    return eta._replace(mean=eta.mean + scale * jnp.einsum("...ij,...j->...i", chol, eps))


def _own_ref(j, d):
    return Index(Name(j), d.indices) if d.indices else Name(j)


def _sqdist(x, c, xx=None):
    xx = (x**2).sum(1) if xx is None else xx
    return xx[:, None] - 2.0 * x @ c.T + (c**2).sum(1)[None, :]


def _broadcast_to_grid(x, grid, rank):
    event = x.shape[x.ndim - rank :] if rank else ()
    lead = x.shape[: x.ndim - rank]
    lead = (1,) * (len(grid) - len(lead)) + lead if len(lead) < len(grid) else lead
    return jnp.broadcast_to(jnp.reshape(x, lead + event), tuple(grid) + event)


__all__ = ["Engine", "State", "M"]
