"""Local/global schedules for batch CAVI: ``fit(start="random-globals", local_iter=L)``.

The default sweep updates every block once, globals first, from random (or k-means++)
responsibilities.  Variational EM as Blei, Ng & Jordan (2003) run it (and scikit-learn's
``LatentDirichletAllocation``) instead starts the *globals* at random and iterates the
*local* blocks several times against them before each global update.  Both are CAVI
(every update is the exact coordinate maximiser, so the ELBO never decreases) but they
reach different local optima; on LDA the second ends in sparser document-topic
proportions and lower held-out perplexity (tests/test_lda.py).

A block is *local* when each of its elements belongs to a unit of the data plate
(``engine/dataplate.py``) or is read by a data-determined group of its units and by no other
(``theta[doc[i]]``); a block read through a latent index (``beta[z[i]]``, ``mu[z[n]]``) or by
another loop (``W[j]``) is global.  The rule is ``compiler/locality.py``'s, read off the graph,
never off a model's name.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from ..diagnostics import VemError
from ..compiler import locality
from ..families.base import ExpFamily
from ..plan import Init, Update
from . import programs
from .dataplate import data_plate
from .factored import grouped_rows
from .summed import summed_pair

STARTS = ("prior", "random-globals")


def local_blocks(model, plan, dim=None) -> tuple[str, ...]:
    """The blocks local to the data plate (units, or groups of units given by data;
    ``compiler.locality.local_blocks``), in schedule order."""
    plate = data_plate(model, plan, dim, "a local/global schedule")
    return locality.local_blocks(model, plan, plate.dim, plate.local_blocks)


def factor_blocks(model, plan, f) -> frozenset[str]:
    """The blocks factor ``f`` may read: its target's and its target's parents' in the DAG,
    through deterministic nodes.  Read off the node, not the one definition, so a node with
    several definitions (a chain's first step and the rest) gives their union: a superset,
    which can only keep a factor out of ``LocalGlobal``'s loop-invariant part."""
    block_of = {}
    for b in plan.blocks:
        for _, member in b.members or (("", b.name),):
            block_of[member] = b.name
    g, seen, todo = model.graph, set(), [f.target]
    while todo:
        n = todo.pop()
        if n in seen:
            continue
        seen.add(n)
        if n == f.target or model[n].kind == "det":
            todo.extend(g.predecessors(n))
    return frozenset(block_of[n] for n in seen if n in block_of) | frozenset(r.block for r in f.enum)


def relative_change(new, old):
    """max over the fields of a block's natural parameters of mean|new − old| / mean|old|."""
    out = jnp.zeros(())
    for a, b in zip(jax.tree_util.tree_leaves(new), jax.tree_util.tree_leaves(old)):
        out = jnp.maximum(out, jnp.mean(jnp.abs(a - b)) / jnp.maximum(jnp.mean(jnp.abs(b)), jnp.finfo(b.dtype).tiny))
    return out


class LocalGlobal:
    """The order of one sweep: globals, then ``local_iter`` passes over the locals (start
    "prior": the globals read the seeded locals first, as in the default schedule); or the
    local passes first, then the globals (start "random-globals": the locals read the
    random globals first, seeded locals before the others).

    With ``local_tol`` the passes stop early, as scikit-learn's E-step does
    (``mean_change_tol``): after the first, once the last local block of a pass has moved
    by at most ``local_tol`` (``relative_change`` of its natural parameters), and after
    ``local_iter`` passes at most.  Early sweeps, against globals far from their optimum,
    take the most passes; late ones one or two (LDA on Reuters: 1.8 a sweep on average
    against a fixed 10, the same topics; benchmarks/results_lda.md).

    With ``local_restart`` every sweep (``local_restart=S``: each of the first S sweeps) starts
    the locals afresh (at their prior, given their parents' current means) before its passes,
    as scikit-learn's batch E-step re-draws each document's γ every iteration, instead of
    carrying them over.  Such a sweep is not one CAVI step of the whole state: the re-fitted
    locals may settle in a lower optimum than the carried ones and the ELBO may fall (on
    Reuters, unguarded: one fall of 0.06 nats in 150 sweeps).  So when a restarted sweep
    ends below the last sweep's ELBO, the carried sweep from the same state replaces it
    (``engine/guards.py::guarded_sweep``), and the ELBO never decreases.  Restarting finds
    better LDA optima: carried locals commit each document to the topics of the first
    sweeps, while restarted ones re-read the current topics from a flat θ every time.
    """

    def __init__(self, engine, start: str, local_iter: int, dim=None, local_tol: float | None = None,
                 local_restart: bool = False):
        if start not in STARTS:
            raise VemError("data", f"start must be one of {', '.join(STARTS)}; got {start!r}")
        if local_iter < 1:
            raise VemError("data", f"local_iter must be at least 1; got {local_iter}")
        if local_tol is not None and not local_tol >= 0:
            raise VemError("data", f"local_tol must be a non-negative number; got {local_tol}")
        if isinstance(local_restart, bool) or local_restart is None:
            restart_sweeps = None
        elif isinstance(local_restart, (int, np.integer)) and local_restart >= 0:
            restart_sweeps = int(local_restart)
        else:
            raise VemError("data", f"local_restart must be True, False or a number of sweeps (0 or more); got "
                           f"{local_restart!r}")
        if local_restart and start != "random-globals":
            raise VemError("data", "local_restart=True re-fits the locals against the globals each sweep; it needs "
                           "start='random-globals'", hint="add start='random-globals' (CLI: --start random-globals)")
        plan = engine.plan
        self.start, self.local_iter, self.local_tol = start, int(local_iter), local_tol
        self.local_restart = bool(local_restart)
        #: Restart the locals in this many first sweeps (``local_restart=S``); None: in every sweep.
        self.restart_sweeps = restart_sweeps
        locals_ = local_blocks(engine.model, plan, dim)
        if start == "random-globals":
            seeded = [j for j in locals_ if plan.block(j).init not in (Init.PRIOR, Init.PRIOR_DRAW)]
            locals_ = tuple(seeded + [j for j in locals_ if j not in seeded])
        self.locals_ = locals_
        self.globals_ = tuple(j for j in plan.schedule if j not in locals_)
        self.invariant = self._loop_invariant(engine) if (local_iter > 1 or local_tol is not None) else {}
        #: The locals whose mean map the passes take in the exp domain, a group of rows at a time
        #: (engine/factored.py); not the last, whose η the passes' stopping test reads.
        plate = data_plate(engine.model, plan, dim, "a local/global schedule") if self.invariant else None
        self.grouped = {j: g for j, fs in self.invariant.items() if j != self.locals_[-1]
                        and (g := grouped_rows(engine, plate, j, fs)) is not None}
        #: The grouped local and the last local updated on the groups' sums (engine/summed.py), or None.
        self.pair = summed_pair(engine, self.locals_, self.grouped, self.invariant, dim) if self.grouped else None
        self._entropy_known = self.pair is not None and self.pair.entropy_known(engine, () if start == "prior" else self.globals_)

    def _loop_invariant(self, engine) -> dict:
        """For each closed-form local block j, the factors that read j and no other local
        block: the globals, params and data they read stay put during the local passes, and
        (L being affine in μ_j) so does their gradient, the part of η_j they give.  It is
        computed once a sweep, before the passes, instead of once a pass (LDA: the [M, K]
        gather of E[log β] at each token's word).  Not with networks or amortised blocks,
        whose Monte Carlo draws read the locals too."""
        if engine.networks or engine.amortised:
            return {}
        plan, others = engine.plan, set(self.locals_)
        out = {}
        for j in self.locals_:
            if plan.block(j).update is not Update.CAVI:
                continue
            fs = tuple(f for f in plan.factors
                       if j in (reads := factor_blocks(engine.model, plan, f)) and not (reads & (others - {j})))
            if fs:
                out[j] = fs
        return out

    def update(self, engine, state, data, log_joint=False, restart=False, grouped=False):
        """The sweep's updates, the locals started afresh first with ``restart``; with
        ``log_joint``, (state, the expected log joint after the last update, or None where
        the last update runs inside the local passes' loop).  ``grouped``: the locals of
        ``self.grouped`` in the exp domain (engine/factored.py; their η NaN where a pass was
        not exact, for the caller to run the sweep again without)."""
        before = self.globals_ if self.start == "prior" else ()
        after = () if self.start == "prior" else self.globals_
        for j in before:
            state = engine.update_block(state, j, data)
        if restart is not False:
            state = self._restarted(engine, state, data, restart)

        invariant = {j: (fs, engine.target_part(state, j, fs, data)) for j, fs in self.invariant.items()}
        groups = self.grouped if grouped else {}
        prepared = {j: g.prepare(engine, state, data, invariant[j][1]) for j, g in groups.items()}

        if grouped and self.pair is not None:
            state, known = self._summed_passes(engine, state, data, invariant, prepared)
            return self._globals(engine, state, data, after, log_joint, known)

        def local_pass(carry):  # (state, each grouped local's V, whether every pass was exact)
            st, held, exact = carry
            held = dict(held)
            for j in self.locals_:
                if j in groups:
                    st, held[j], ok = groups[j].update(engine, st, data, prepared[j])
                    exact = exact & ok
                else:
                    st = engine.update_block(st, j, data, invariant.get(j))
            return st, held, exact

        carry = (state, {j: g.empty(state) for j, g in groups.items()}, jnp.asarray(True))
        if self.locals_ and self.local_tol is None:
            carry = jax.lax.fori_loop(0, self.local_iter, lambda _, c: local_pass(c), carry)
        elif self.locals_:
            carry = self._until_settled(local_pass, carry, lambda c: c[0].eta[self.locals_[-1]])
        state, held, exact = carry
        for j, g in groups.items():
            state = g.finish(engine, state, prepared[j], held[j], exact)
        return self._globals(engine, state, data, after, log_joint)

    def _summed_passes(self, engine, state, data, invariant, prepared):
        """The local passes of ``self.pair`` (engine/summed.py): the loop carries the partner's
        q and the grouped block's V, [G, K] arrays, not the state's [N, K] ones.  (state, a
        function of the state before the last global update giving ``known`` for it, or None)."""
        pair = self.pair
        j, p = pair.rows.block, pair.partner
        laid = pair.prepare(engine, state, data, prepared[j])
        inv = invariant[p][1] if p in invariant else None

        def local_pass(carry):
            return pair.update(engine, state, data, laid, carry, inv)

        carry = (state.eta[p], state.mu[p], pair.rows.empty(state), jnp.asarray(True), pair.rows.empty(state))
        if self.local_tol is None:
            carry = jax.lax.fori_loop(0, self.local_iter, lambda _, c: local_pass(c), carry)
        else:
            carry = self._until_settled(local_pass, carry, lambda c: c[0])

        held = prepared[j] if self.known_entropies(True) else None

        def known(st, g):  # z's factors that read θ (and H[q_z]), on the groups' sums (engine/summed.py)
            return pair.known_value(engine, st, data, laid, carry, engine._local(g), held)
        return pair.finish(engine, state, data, prepared[j], laid, carry), known

    def known_entropies(self, grouped) -> tuple:
        """The blocks whose entropy the last global update's value holds (engine/summed.py)."""
        return (self.pair.rows.block,) if grouped and self.pair is not None and self._entropy_known else ()

    def _globals(self, engine, state, data, after, log_joint, known=None):
        """The global updates after the local passes (start "random-globals"), the last with the
        expected log joint where ``log_joint`` (``known(state, block)``: the value of some of its
        factors, or None)."""
        value = None
        for i, j in enumerate(after):
            if log_joint and i == len(after) - 1:
                state, value = engine.update_block_and_log_joint(state, j, data,
                                                                 None if known is None else known(state, j))
            else:
                state = engine.update_block(state, j, data)
        return (state, value) if log_joint else state

    def _restarted(self, engine, state, data, restart=True):
        """The locals started at the prior each sweep (those the fit starts there), given the
        current means of their parents; seeded locals are updated first and need no reset.
        ``restart`` a traced boolean: the prior where it is true, the carried locals where not,
        so one program serves the restarting and the carried sweeps (LDA: a select over the
        [D, K] θ, against a second compile of the whole sweep, 1.9 s cold on 2 cores)."""
        eta, mu = dict(state.eta), dict(state.mu)
        for j in self.locals_:
            if engine.plan.block(j).init is Init.PRIOR:
                fresh_eta = engine._prior_natural(j, mu, eta, state.params, data)
                fresh_mu = engine.families[j].expected_stats(fresh_eta)
                if restart is True:
                    eta[j], mu[j] = fresh_eta, fresh_mu
                else:
                    pick = partial(jax.tree_util.tree_map, lambda a, b: jnp.where(restart, a, b))
                    eta[j], mu[j] = pick(fresh_eta, state.eta[j]), pick(fresh_mu, state.mu[j])
        return state._replace(eta=eta, mu=mu)

    def _until_settled(self, local_pass, carry, last_eta):
        """``local_pass`` on ``carry`` until the last local (its η: ``last_eta(carry)``) moves by
        at most ``local_tol``, ``local_iter`` times at most."""

        def go_on(c):
            passes, _, change = c
            return (passes < self.local_iter) & (change > self.local_tol)

        def one_more(c):
            passes, old, _ = c
            new = local_pass(old)
            return passes + 1, new, relative_change(last_eta(new), last_eta(old))

        # The first pass is outside the loop: every sweep takes it, and its change is the
        # loop's first test.
        first = local_pass(carry)
        _, carry, _ = jax.lax.while_loop(go_on, one_more,
                                         (1, first, relative_change(last_eta(first), last_eta(carry))))
        return carry

    def restarts_at(self, sweep: int) -> bool:
        """Whether sweep number ``sweep`` (0 first) starts the locals afresh."""
        return self.local_restart and (self.restart_sweeps is None or sweep < self.restart_sweeps)

    def counting(self, state):
        """``state`` with the restarting schedule's sweep count (0) and ELBO floor (−∞, before
        the first sweep) when it restarts the locals (``local_restart``)."""
        if not self.local_restart:
            return state
        return state._replace(sweeps=jnp.zeros((), jnp.int32), elbo=jnp.asarray(-jnp.inf, jnp.asarray(0.0).dtype))

    def randomise_globals(self, engine, state, key):
        """Globals at a random point, each by its family's ``random_start`` (a Dirichlet
        near flat, a Gaussian or a Gamma at a draw of itself); a family without one keeps
        its prior start."""
        eta, mu = dict(state.eta), dict(state.mu)
        for j in self.globals_:
            fam = engine.families[j]
            key, sub = jax.random.split(key)
            if fam.random_start.__func__ is not ExpFamily.random_start.__func__:
                eta[j], mu[j] = _random_start(fam, eta[j], sub)
        return state._replace(eta=eta, mu=mu)


@partial(jax.jit, static_argnums=0, compiler_options=programs.ONE_SHOT)
def _random_start(fam, eta, key):
    # Jitted once per family and shape, and kept across fits: run eagerly, the draw's
    # primitives compiled one by one on a process's first fit (1.1 s for LDA's β).
    start = fam.random_start(eta, key)
    return start, fam.expected_stats(start)


__all__ = ["LocalGlobal", "local_blocks", "STARTS"]
