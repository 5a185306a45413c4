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

from functools import partial

import jax
import jax.numpy as jnp

from ..families import get_family
from ..ir.expr import names
from ..elj import prior
from ..elj.joint import Joint
from ..plan import Init, MStep, Update
from . import mstep, newton, programs
from .algorithms import check_chain
from .chunks import chunked_sum, plate_chunks
from .guards import guarded_sweep, sharpened_where_not_finite
from .init import init_state
from .networks import network_step, refresh
from .schedule import LocalGlobal
from .state import State, select


#: The step sizes ``_damped`` tries, largest first: 1, 1/2, …, 1/64, then by quarters to 2⁻³⁰.
#: Far from the optimum a full step overshoots by orders of magnitude (``Poisson(exp(b0 + b1 *
#: x[n]))``, counts near 150, from N(0, 1): even ρ = 1/64 gave b0 ≈ 90 and an ELBO of −∞, so
#: the fit kept its start and "converged"); ~2⁻¹² moves it.  Only a refused step tries them.
RHOS = tuple(2.0 ** -k for k in range(7)) + tuple(2.0 ** -k for k in range(8, 31, 2))
# Passes of the prior-started global blocks over the seeded start (``_seeded_m_step``): coupled
# globals (a shared precision and the means it scales) reach their fit to the seeded cells.
SEEDED_PASSES = 8


class Engine(Joint):
    """The jitted functions for one plan and one binding of the data: CAVI sweeps over the
    expected log joint of ``elj.joint.Joint``."""

    #: Seed categorical blocks with broad k-means responsibilities (``engine.init.kmeanspp``).
    broad_start = True

    def __init__(self, model, plan, bound, fixed_blocks=None, present=None, learning_rate=1e-2, unit_weights=None,
                 chain="sequential", schedule=None, chunked=True, merged_rows=None):
        """``chain``: how structured blocks are computed (``use_chain_algorithm``);
        ``schedule``: the local/global schedule's options (``LocalGlobal``'s keywords), or
        None for one update of every block per sweep; ``chunked``: sum the data plate over
        chunks of rows where that saves memory (off when sharded: each device holds its rows
        whole); ``merged_rows``: the data plate's merged rows when this engine serves a fit
        run on them (engine/compress.py)."""
        super().__init__(model, plan, bound, fixed_blocks, present, unit_weights)
        # The prior start, compiled once per engine (not once per restart); the seconds its
        # first call took are compile time, reported with the first sweep's (engine/fit.py).
        self._prior_jit = None
        #: Programs built on first use (the accelerated sweep's extrapolation, engine/accel.py),
        #: by name; one dict shared with the engine's copies for later fits (engine/reuse.py).
        self.lazy_programs = {}
        self.init_compile_seconds = 0.0
        self.learning_rate = learning_rate
        self.chain = "sequential"
        #: The data plate's merged rows when the fit ran on them (engine/compress.py).
        self.merged_rows = merged_rows
        # The data plate's factors summed over chunks of rows; None: evaluated whole.
        self.chunks = plate_chunks(self) if chunked else None
        self.use_chain_algorithm(chain)
        self.local_global = LocalGlobal(self, **schedule) if schedule is not None else None
        #: The jitted programs of this engine's sweep (its own, sharded, batched restarts):
        #: ``traces`` counts what they compiled.
        self.programs = []
        # ``restart`` traced (a boolean array, engine/schedule.py): one program for the restarting
        # and the carried sweeps of ``local_restart=S``.
        # The exp-domain local passes where the schedule has them (engine/factored.py); the
        # sweep without them is compiled only for a sweep that was not exact there.
        grouped = self.local_global is not None and bool(self.local_global.grouped)
        self._sweep = self.jit(partial(self._sweep_impl, grouped=True) if grouped else self._sweep_impl)
        self._exact_sweep = self.jit(self._sweep_impl) if grouped else None

    def elbo_program(self, batched=False):
        """The ELBO at a state, jitted on first use (over a leading restart axis with
        ``batched``): for a sweep whose own value was not trusted (``_rescored``)."""
        cache = self.__dict__.setdefault("_elbo_programs", {})
        if batched not in cache:
            fn = jax.vmap(self.elbo, in_axes=(0, None)) if batched else self.elbo
            cache[batched] = jax.jit(fn)
        return cache[batched]

    def jit(self, fn, **options):
        """``jax.jit(fn, **options)``, counted by ``traces``: a program built around the sweep
        (sharded, restarts batched by vmap) is one of the engine's programs."""
        return programs.jit(self.programs, fn, **options)

    @property
    def traces(self) -> int:
        """How many programs the sweep compiled, one per input signature of each of its
        programs: a recompilation shows here (engine/programs.py)."""
        return programs.traces(self.programs)

    def use_chain_algorithm(self, chain: str):
        """``fit(chain=)``: the structured blocks' log-normaliser computed by ``chain``
        ("sequential", the default, or "parallel": a Markov chain by a balanced tree of
        (log, +) matrix products, log T deep; families/markov_chain_parallel.py).  Each
        family answers for itself (``ExpFamily.computed_by``): the same updates and ELBO
        to rounding.  Call before the first sweep is traced."""
        check_chain(chain)
        self.families = {j: f.computed_by(chain) for j, f in self.families.items()}
        self.chain = chain

    # ---- the expected log joint: elj.joint.Joint, the data plate summed over chunks ------
    def _apart(self, factors, mu, eta, params, data, extra_blocks, tracker):
        if self.chunks is not None and tracker is None:  # engine/chunks.py
            inside = tuple(f for f in factors if self.chunks.plate.is_inside(f))
            if inside and self.chunks.worth(self, inside, mu, eta, params, data, extra_blocks):
                total = chunked_sum(self, self.chunks, inside, mu, eta, params, data, extra_blocks)
                return total, tuple(f for f in factors if not self.chunks.plate.is_inside(f))
        return 0.0, factors

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

    def update_block_and_log_joint(self, state, j, data, known=None):
        """(the state with q_j updated, the expected log joint at it), for the last update of a
        sweep: see ``_update_block``.  None for the second when it does not hold.  ``known``:
        (factors, their value at ``state``) where the caller has it more cheaply than their
        evaluation here (engine/summed.py); those that read q_j still give their gradient."""
        return self._update_block(state, j, data, True, known=known)

    def _update_block(self, state, j, data, log_joint, invariant=None, known=None):
        """q_j ← the CAVI target η_j = ∇_{μ_j} L (Winn & Bishop 2005; GUIDE §2).

        A closed-form block is one in which L is affine (the conjugacy probe's test,
        engine/probe.py), so L at the updated μ_j is exact from the gradient's own forward
        pass: L(μ_j') = L(μ_j) + ⟨∇_{μ_j} L, μ_j' − μ_j⟩.  With ``log_joint`` that value is
        returned too, and the ELBO after a sweep whose last step is this update needs only
        the entropies, not another pass over every factor (on LDA that pass holds an
        [M, K] gather of E[log β]; on an HMM the emission densities at every step)."""
        fam = self.families[j]
        if j in self.amortised:
            new = refresh(self, state, data)
            return (new, None) if log_joint else new

        factors = whole = None
        if invariant is not None:
            assert not log_joint, "the value of L needs every factor"
            factors = tuple(f for f in self.plan.factors if f not in invariant[0])
        closed_form = self.plan.block(j).update is Update.CAVI
        if known is not None and closed_form and log_joint:  # a known factor that reads q_j gives ∇ only
            factors = tuple(f for f in self.plan.factors if f not in known[0])
            whole = self._as_function_of(state, j, data) if set(known[0]) & set(self._local(j)) else None
        if factors is None and not closed_form:
            # The factors that read q_j (the others add nothing to ∇_{μ_j} L): the line
            # search starts from their value, the gradient's own forward pass.  A closed-form
            # block keeps every factor: the data plate's chunking is decided per set of
            # factors (engine/chunks.py), and a subset could flip it.
            factors = self._local(j)
        L = self._as_function_of(state, j, data, factors)

        if log_joint and closed_form:
            value, grad = jax.value_and_grad(L)(state.mu[j]) if whole is None else (L(state.mu[j]), jax.grad(whole)(state.mu[j]))
        elif not closed_form and invariant is None:
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
            return self._damped(state, j, eta_j, data, log_joint, base_L=value)
        mu_j = fam.expected_stats(eta_j)
        new = state._replace(eta={**state.eta, j: eta_j}, mu={**state.mu, j: mu_j})
        if not log_joint:
            return new
        moved = sum(jnp.vdot(g, b - a) for g, a, b in zip(raw, state.mu[j], mu_j))
        # The extrapolation rounds at its terms' size, not its value's: a regression on a
        # covariate at 1e6 moved E[w wᵀ] by 1e6 against a gradient of 1e14, and the first
        # sweep's ELBO came out 1.6e4 where the evidence is −69 (the next sweep "fell" and the
        # fit stopped unconverged).  Where that rounding could reach 1e-10 of the value, the
        # ELBO is NaN here and evaluated at the new state on the host (``rescored``): one more
        # program, compiled only for a fit that needs it.
        size = sum(jnp.vdot(jnp.abs(g), jnp.abs(a) + jnp.abs(b)) for g, a, b in zip(raw, state.mu[j], mu_j))
        value = value + moved + (0.0 if known is None or not closed_form else known[1])
        unsafe = 64 * jnp.finfo(jnp.result_type(float)).eps * size > 1e-10 * (1.0 + jnp.abs(value))
        return new, jnp.where(unsafe, jnp.nan, value)

    def _local(self, j):
        """The factors that read block j (any of its members)."""
        members = self.plan.block(j).members or (("", j),)
        return self.factors_reading(n for _, n in members)

    def _damped(self, state, j, target, data, log_joint=False, base_L=None,
                rhos=RHOS):
        """Natural-gradient step for a non-conjugate block (Khan & Lin 2017):
        η ← (1−ρ)η + ρ∇_μ L, the largest ρ of ``rhos`` that does not lower the ELBO; q_j
        unchanged when none of them does (``RHOS``: why they reach 2⁻³⁰).  The ELBO is compared through the terms that move
        with q_j: the factors that read it (``factors_reading``) and its entropy.

        With ρ = 1 this is the CAVI update; L here is exact or a Monte Carlo estimate with
        draws held for the sweep (elj/general.py), so a backtracking line search keeps the
        ELBO monotone.  The candidates are tried in a ``lax.while_loop`` that stops at the
        first accepted one: the ELBO is traced once, not once per ρ (a block under the
        Monte Carlo estimator compiled seven copies of it), and a sweep evaluates it once
        when the full step is taken, as it mostly is, instead of seven times.

        With ``log_joint`` (the sweep's last update) also L at the new state: the accepted
        candidate's part of L from the loop plus the factors that do not read q_j, so the
        sweep's ELBO does not evaluate the block's factors a third time (a Monte Carlo
        factor's Gamma sampler: one copy less in the program).
        """
        fam = self.families[j]
        local = self._local(j)
        target = sharpened_where_not_finite(fam, state.eta[j], target)

        def objective(s, h=None):  # the ELBO less the terms that do not move with q_j: (L's part, H[q_j])
            return (self.expected_log_joint(s.mu, s.eta, s.params, data, factors=local, key=s.key),
                    self.block_entropy(s, j, h))

        if base_L is None:
            base_L, base_H = objective(state)
        else:  # L's part at μ_j from the target's gradient pass (``_update_block``)
            base_H = self.block_entropy(state, j)
        base = base_L + base_H
        steps = jnp.asarray(rhos, dtype=jnp.result_type(float))

        def candidate(rho):  # (the state at step ρ, q_j's entropies there)
            eta_c = fam.tidy_natural(jax.tree_util.tree_map(lambda a, b: (1 - rho) * a + rho * b,
                                                            state.eta[j], target))
            mu_c, h_c = fam.expected_stats_and_entropy(eta_c)
            return state._replace(eta={**state.eta, j: eta_c}, mu={**state.mu, j: mu_c}), h_c

        def not_yet(carry):
            i, accepted = carry[:2]
            return ~accepted & (i < len(rhos))

        def try_next(carry):
            # A step out of the natural domain (a Dirichlet row with α ≤ 0) is refused even
            # where the ELBO's formulas stay finite there (a log-gamma of a negative shape).
            i = carry[0]
            c, h_c = candidate(steps[i])
            L_c, H_c = objective(c, h_c)
            e = L_c + H_c
            ok = fam.in_domain(c.eta[j]) & jnp.isfinite(e) & (e >= base - 1e-12 * jnp.abs(base))
            return i + 1, ok, (c.eta[j], c.mu[j]), L_c

        # The last candidate tried and its part of L ride in the carry: the accepted one is
        # not recomputed after the loop (its mean map: an MvNormal's Cholesky and inverse).
        start = (jnp.asarray(0), jnp.asarray(False), (state.eta[j], state.mu[j]), base_L)
        _, accepted, (eta_c, mu_c), L_c = jax.lax.while_loop(not_yet, try_next, start)
        eta_j, mu_j = select(accepted, eta_c, state.eta[j]), select(accepted, mu_c, state.mu[j])
        L_j = jnp.where(accepted, L_c, base_L)
        if newton.applies(fam, eta_j):  # the rows' means jointly, by their full Hessian (engine/newton.py)
            def L_of(eta_new, mu_new):
                return self.expected_log_joint({**state.mu, j: mu_new}, {**state.eta, j: eta_new}, state.params, data,
                                               factors=local, key=state.key)

            eta_j, mu_j, L_j, _ = newton.step(fam, eta_j, mu_j, L_of, L_j)
        new = state._replace(eta={**state.eta, j: eta_j}, mu={**state.mu, j: mu_j})
        if not log_joint:
            return new
        # L at the new state: the factors reading q_j as the loop evaluated them, the rest
        # (which do not move with q_j) evaluated here.
        rest = tuple(f for f in self.plan.factors if f not in local)
        other = (self.expected_log_joint(new.mu, new.eta, new.params, data, factors=rest, key=new.key)
                 if rest else 0.0)
        return new, L_j + other

    def update_param(self, state, p, data):
        """The M-step for one point parameter: closed form where derived, else gradient."""
        pp = self.plan.param(p)
        others = {k: v for k, v in state.params.items() if k != p}
        local = self.factors_reading((p,))  # L less the terms that do not read θ
        if pp.mstep is MStep.CLOSED_FORM:
            fam = get_family(pp.family)

            def L_stats(stats):
                return self.expected_log_joint(
                    state.mu, state.eta, others, data, extra_blocks={p: (fam, stats, stats)}, key=state.key,
                    factors=local)

            theta = mstep.closed_form_update(fam, L_stats, state.params[p], pp.type)
        else:
            def L_theta(theta):
                return self.expected_log_joint(state.mu, state.eta, {**others, p: theta}, data, key=state.key,
                                               factors=local)

            theta = mstep.gradient_update(L_theta, state.params[p], pp.type)
        return state._replace(params={**state.params, p: theta})

    def _sweep_impl(self, state, data, restart=False, grouped=False):
        """One sweep: (state, ELBO); with ``restart`` (``fit(local_restart=)``) the sweep from
        restarted locals, for ``guarded_sweep`` to keep or replace.  ``restart`` is a Python
        bool or a traced one; traced, the restarted locals are selected by ``jnp.where`` over
        the reset blocks alone (not a ``lax.cond`` over the sweep: on XLA:CPU the conditional
        copies the state in and out, which made LDA's carried sweeps 1.7x slower)."""
        # ``grouped`` only where set: a test's stand-in for the body keeps the old signature.
        new, elbo = (self._sweep_body(state, data, restart=restart, grouped=True) if grouped
                     else self._sweep_body(state, data, restart=restart))
        if state.sweeps is not None:  # the restarting schedule's count and floor
            new = new._replace(sweeps=state.sweeps + 1, elbo=elbo)
        return new, elbo

    def restarting(self, state) -> bool:
        """Whether the next sweep restarts the locals (``fit(local_restart=True or S)``)."""
        schedule = self.local_global
        return schedule is not None and schedule.local_restart and schedule.restarts_at(int(state.sweeps))

    def _sweep_body(self, state, data, restart=False, grouped=False):
        # The ELBO from the last update's own pass when nothing moves after it (no M-step, no
        # networks, no Monte Carlo draw): L at the new state plus the entropies.
        last = not (self.plan.params or self.trained or self.amortised)
        if self.local_global is not None:
            if last:
                state, log_joint = self.local_global.update(self, state, data, log_joint=True, restart=restart,
                                                            grouped=grouped)
            else:
                state, log_joint = self.local_global.update(self, state, data, restart=restart, grouped=grouped), None
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
        if self.trained:  # the ELBO at this sweep's draw, before the networks' step
            state, elbo = network_step(self, state, data)
        elif log_joint is not None:
            elbo = log_joint + self.entropy(state, skip=self.local_global.known_entropies(grouped) if self.local_global else ())
        else:
            elbo = self.elbo(state, data)
        if state.key is not None:  # a fresh Monte Carlo draw for the next sweep
            state = state._replace(key=jax.random.split(state.key)[0])
        return state, elbo

    def initial_params(self, key, init=None) -> dict:
        """User ``init`` > the model's initialiser (a scalar fills the shape) > a default."""
        return prior.initial_params(self, key, init)

    def sweep(self, state):
        return guarded_sweep(self._sweep, self, state, self.data, exact=self._exact_sweep)

    # ---- initialisation -------------------------------------------------------------
    def init(self, key, params=None, warm=None, given=None) -> State:
        """q_j = the prior given its parents' means, in topological order; categorical
        blocks seeded by k-means++ on the data they gate, or at random, or at the
        assignments or responsibilities ``given`` by name (engine/init.py); ``warm``
        compiles the sweep meanwhile (engine/warm.py)."""
        return self._seeded_m_step(init_state(self, key, params, warm, given), params)

    def _seeded_m_step(self, state, given_params):
        """With a data-seeded categorical block (a mixture's k-means++ ``z``), the params that
        ``fit(init=...)`` does not give take one M-step from the seeded start, as the global
        blocks' first updates read it: the sweep updates ``z`` before the params, so params
        equal in every component (``param a: pos[K] = 2.0``) would give every ``z[n]`` the
        same responsibilities and leave EM at that symmetric point (docs/engine.md, The M-step)."""
        given_params = given_params or {}
        todo = tuple(p.name for p in self.plan.params if p.name not in given_params and p.name not in self.networks)
        seeded = any(b.init in (Init.KMEANS, Init.RANDOM) for b in self.plan.blocks)
        # The blocks started at their priors take one update each from the seeded start too,
        # then the sweep updates them again: a first sweep read each prior's moments, so a
        # shared precision updated before the means (declared first) read the means' prior
        # variance (100 for Normal(0, 10)), became ~0.01 and flattened the responsibilities,
        # and the mixture collapsed to one component from every start (docs/engine.md).
        globals_ = tuple(b.name for b in self.plan.blocks if b.init is Init.PRIOR) if any(
            b.init is Init.KMEANS for b in self.plan.blocks) else ()
        if not ((todo and seeded) or globals_) or self.local_global is not None or self.trained or self.amortised:
            return state
        # Locals on a seeded block's plate (a factor analyser's h[n] beside z[n]) take the first
        # pass only: passed again with the loadings they multiply, they drifted toward the
        # factor explaining the clusters themselves.
        plates = {_plate(self.model, b.name) for b in self.plan.blocks if b.init is Init.KMEANS} - {None}
        again = tuple(j for j in globals_ if _plate(self.model, j) not in plates)

        passes = SEEDED_PASSES if _coupled(self.plan, self.model, again) else 1

        def m_step(state, data, first, last):
            """One pass over the prior-started globals (``first``: all of them, else ``again``),
            then (``last``) the params' M-step.  One program called ``passes`` times from the host:
            a loop of passes inside it compiled 2-3x slower (GMM, N = 10k: 0.6 -> 1.4 s)."""
            for j in (j for j in self.plan.schedule if j in globals_):
                new = self.update_block(state, j, data)
                state = new if j in again else select(first, new, state)
            for p in todo:
                state = select(last, self.update_param(state, p, data), state)
            return state

        # Run once per start (ONE_SHOT); its first call is compile time, as the prior start's.
        program = programs.built_on_first_use(self, ("seeded m-step", todo, globals_, again),
                                              lambda: jax.jit(m_step, compiler_options=programs.ONE_SHOT))
        for i in range(passes):
            state = program(state, self.data, i == 0, i == passes - 1)
        return state

    def _prior_blocks(self, params, key, data):
        """Every block but the chains at its prior (``elj.prior.prior_blocks``), jitted by init."""
        return prior.prior_blocks(self, params, key, data)

    def _prior_natural(self, j, mu, eta, params, data=None):
        return prior.prior_natural(self, j, mu, eta, params, data)


def _plate(model, name):
    """The size of the outermost loop that defines ``name`` (its plate), or None outside every loop."""
    node = model.nodes.get(name)
    loops = node.defs[0].loops if node is not None and node.defs else ()
    return loops[0].stop if loops else None


def _coupled(plan, model, blocks) -> bool:
    """Whether one factor reads two of ``blocks`` (through deterministic nodes too): a shared
    precision and the means it scales, whose updates then move each other; blocks that no factor
    reads together (a GMM's weights and its Normal–Wishart block) reach their state in one pass."""
    owner = {node: b.name for b in plan.blocks for _, node in (b.members or (("", b.name),))}
    for f in plan.factors:
        d = f.definition
        todo = [e for _, e in d.args] + ([d.expr] if d.expr is not None else [])
        read, seen = {f.target}, set()
        while todo:
            for n in names(todo.pop()):
                read.add(n.id)
                node = model.nodes.get(n.id)
                if node is not None and node.kind == "det" and n.id not in seen:
                    seen.add(n.id)
                    todo += [x.expr for x in node.defs if x.expr is not None]
        if len({owner[r] for r in read if r in owner} & set(blocks)) > 1:
            return True
    return False


__all__ = ["Engine", "State"]
