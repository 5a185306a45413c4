"""A joint Newton step on a local Gaussian block's means and the small Gaussian blocks it reads.

A natural-gradient Gaussian block over the data's rows (``eta[n, k] ~ Normal(mu[k], 1)`` read by
``y[n] ~ Multinomial(20, softmax(eta[n]))``) is too large for ``engine/newton.py``'s dense step,
and its rows' own Newton steps (the natural gradient at ρ = 1) leave alone the direction that
moves a global Gaussian block it reads (``mu``) together with every row: the centred hierarchy's
crawl (Gelfand, Sahu & Carlin 1995; Papaspiliopoulos, Roberts & Sköld 2007), at a rate near
``N/(N + 1)`` a sweep for N rows of unit prior precision, and the cycling step sizes of the rows'
line search hide that rate from the extrapolation (engine/accel.py) and from the stopping rule.

Given the globals, the local block's rows are conditionally independent (each factor reads one
row): the Hessian of ``f(m_loc, m_glob) = L(μ(m))`` (covariances held, so the entropy does not move)
is block-diagonal in the local rows, ``A_rr`` (C × C for a row of C coordinates), bordered by the
rows' cross blocks with the globals ``A_rg`` (C × G) and the globals' own ``A_gg`` (G × G), with
``A = −H``.  Its Newton system ``A d = ∇f`` is solved exactly through the Schur complement of the
rows (an arrowhead system; Nocedal & Wright 2006, §16.2; Boyd & Vandenberghe 2004, App. C.4):

    S = A_gg − Σ_r A_rgᵀ A_rr⁻¹ A_rg,   d_g = S⁻¹ (∇_g f − Σ_r A_rgᵀ A_rr⁻¹ ∇_r f),
    d_r = A_rr⁻¹ (∇_r f − A_rg d_g),

in time linear in the rows.  The blocks come from C + G Hessian-vector products (Pearlmutter
1994): the probe ``e_c`` in every local row at once gives column c of every ``A_rr`` (rows do not
couple: Curtis, Powell & Reid 1974's grouping of structurally orthogonal columns), the probe ``e_k``
on the globals gives column k of every ``A_rg`` and of ``A_gg``, and one fixed probe on the rows (a cos
pattern) checks that they do not couple (the assembled ``A`` times it must be the true product, to
1e-6 relative; otherwise no step: a chain over the rows).  The step ``m ← m + t d`` takes the
largest ``t`` of 1, ½, …, 2⁻⁶ that raises ``f``, as engine/newton.py does; none where a Cholesky
factor is not finite (a non-concave ``f``).  The direction is an ascent direction whenever ``A`` as
assembled is positive definite, whatever the rows' true coupling, and the line search keeps every
accepted step an ELBO rise, so the sweep stays monotone; at a fixed point ``∇f = 0`` and the step
is zero, so the optimum is unchanged.

When: ``JointRows`` runs the step before every sweep of a fit still running after ``ACTIVATE``
sweeps, as its own program compiled on first use (as engine/rotation.py's step): a fit that
stops sooner, as most without the crawl do, compiles and runs exactly what it did before.  From
then on each call is one fixed, monotone map (the step, then the sweep), so the extrapolation and
the stopping rule read its trace as before.  Measured on the multinomial above (N = 300, K = 4):
500 sweeps, not converged → 43 (docs/engine.md, "Non-conjugate factors").
"""

from __future__ import annotations

import math
from functools import partial

import jax
import jax.numpy as jnp

from ..plan import Update
from .newton import MAX_COORDINATES, line_search
from .programs import ONE_SHOT, built_on_first_use
from .state import select

#: The most coordinates in one local row (C), and in all the global blocks together (G): the step
#: costs C + G Hessian-vector products of the factors reading the blocks a sweep.
MAX_ROW = 16
MAX_GLOBAL = MAX_COORDINATES
#: The step runs before every sweep after this many: a fit that converges sooner (most do, those
#: without the crawl) never compiles it, and its sweeps stay as they were.  At 20, a logistic GLMM
#: of 300 groups of 2 that converges in 28 sweeps took 23 but compiled about 1.3 s more.
ACTIVATE = 40


def _movable(fam) -> bool:
    return (getattr(fam, "gaussian", False) and getattr(fam, "event_rank", None) in (0, 1)
            and hasattr(fam, "with_mean"))


def row_shape(mean) -> tuple[int, int]:
    """(rows R, coordinates per row C): the leading axis indexes the rows."""
    return int(mean.shape[0]), int(math.prod(mean.shape[1:]))


def plan(engine, j, eta) -> tuple:
    """The global blocks the local block ``j`` takes its joint step with, () for none: ``j`` a
    natural-gradient Gaussian block too large for engine/newton.py's dense step, of more than one
    row (its leading axis) of at most MAX_ROW coordinates; the globals every other Gaussian block
    that a factor reading ``j`` also reads, MAX_GLOBAL coordinates at most in all."""
    fam = engine.families[j]
    if not _movable(fam) or engine.plan.block(j).update is not Update.NATURAL_GRADIENT or j in engine.amortised:
        return ()
    mean = eta[j][0]
    if mean.ndim - fam.event_rank < 1 or mean.size <= MAX_COORDINATES:
        return ()
    rows, per_row = row_shape(mean)
    if rows < 2 or per_row > MAX_ROW:
        return ()
    local = set(engine._local(j))
    glob = tuple(g for g in engine.plan.schedule
                 if g != j and g not in engine.amortised and _movable(engine.families[g])
                 and local & set(engine._local(g)))
    if not glob or sum(int(eta[g][0].size) for g in glob) > MAX_GLOBAL:
        return ()
    return glob


def step(engine, state, j, glob, data):
    """(``state`` after one line-searched Newton step on the means of block ``j`` and of ``glob``
    jointly, covariances held (module docstring), or ``state`` itself where no step raises f;
    whether the check probe found the rows coupled)."""
    blocks = (j,) + tuple(glob)
    fams = {b: engine.families[b] for b in blocks}
    means = {b: fams[b].mean_cov(state.eta[b])[0] for b in blocks}
    factors = tuple(dict.fromkeys(f for b in blocks for f in engine._local(b)))
    rows, per_row = row_shape(means[j])
    sizes = [int(means[g].size) for g in glob]
    G = sum(sizes)

    def unflat(x_loc, x_glob):
        out, at = {j: x_loc.reshape(means[j].shape)}, 0
        for g, s in zip(glob, sizes):
            out[g] = x_glob[at:at + s].reshape(means[g].shape)
            at += s
        return out

    def f_of(x):
        x_loc, x_glob = x
        ms = unflat(x_loc, x_glob)
        eta, mu = dict(state.eta), dict(state.mu)
        for b in blocks:
            eta[b], mu[b] = fams[b].with_mean(state.eta[b], ms[b])
        return engine.expected_log_joint(mu, eta, state.params, data, factors=factors, key=state.key)

    f_state = engine.expected_log_joint(state.mu, state.eta, state.params, data, factors=factors, key=state.key)
    x0 = (means[j].reshape(rows, per_row), jnp.concatenate([means[g].reshape(-1) for g in glob]))
    # f, ∇f and the Hessian-vector products from one linearisation (one trace of the factors'
    # forward and reverse passes, not a gradient pass and a separate forward-over-reverse one).
    (f0, (g_loc, g_glob)), hvp = jax.linearize(jax.value_and_grad(f_of), x0)
    dtype = g_glob.dtype
    # The probes: e_c in every row (C of them), then e_k on the globals (G), then a fixed
    # pseudo-random vector on the rows, which checks the rows' independence (below).
    # (cos of the golden angle's multiples: no PRNG's threefry program to compile)
    check = jnp.cos(2.399963 * jnp.arange(rows * per_row, dtype=dtype) + 0.5).reshape(1, rows, per_row)
    probes = (jnp.concatenate([jnp.broadcast_to(jnp.eye(per_row, dtype=dtype)[:, None, :], (per_row, rows, per_row)),
                               jnp.zeros((G, rows, per_row), dtype), check]),
              jnp.concatenate([jnp.zeros((per_row, G), dtype), jnp.eye(G, dtype=dtype), jnp.zeros((1, G), dtype)]))
    h_loc, h_glob = jax.lax.map(lambda v: hvp((v[0], v[1]))[1], probes)
    h_check_loc, h_check_glob = h_loc[-1], h_glob[-1]
    h_loc, h_glob = h_loc[:-1], h_glob[:-1]
    # h_loc[c, r, :] = H_rr[:, c] (c < C), H_rg[:, k] (c = C + k); h_glob[C + k] = H_gg[:, k].
    A_rr = -jnp.transpose(h_loc[:per_row], (1, 2, 0))  # [R, C, C]
    A_rr = 0.5 * (A_rr + jnp.swapaxes(A_rr, 1, 2))
    A_rg = -jnp.transpose(h_loc[per_row:], (1, 2, 0))  # [R, C, G]
    A_gg = -h_glob[per_row:]
    A_gg = 0.5 * (A_gg + A_gg.T)
    chol_r = jnp.linalg.cholesky(A_rr)
    solve_r = jax.vmap(lambda L, b: jax.scipy.linalg.cho_solve((L, True), b))
    Ainv_rg = solve_r(chol_r, A_rg)  # [R, C, G]
    Ainv_g = solve_r(chol_r, g_loc)  # [R, C]
    schur = A_gg - jnp.einsum("rcg,rch->gh", A_rg, Ainv_rg)
    chol_s = jnp.linalg.cholesky(0.5 * (schur + schur.T))
    d_glob = jax.scipy.linalg.cho_solve((chol_s, True), g_glob - jnp.einsum("rcg,rc->g", A_rg, Ainv_g))
    d_loc = Ainv_g - jnp.einsum("rcg,g->rc", Ainv_rg, d_glob)
    # The assembled Hessian times the check probe against the true one: where a factor couples
    # two rows (a chain over them), the grouped probes mixed their columns and no step is taken.
    w = check[0]
    miss = (jnp.sum((h_check_loc + jnp.einsum("rcd,rd->rc", A_rr, w)) ** 2)
            + jnp.sum((h_check_glob + jnp.einsum("rcg,rc->g", A_rg, w)) ** 2))
    scale = jnp.sum(h_check_loc ** 2) + jnp.sum(h_check_glob ** 2)
    checked = jnp.isfinite(miss) & jnp.isfinite(scale)
    coupled = checked & (miss > 1e-12 * scale)
    usable = checked & ~coupled & (jnp.all(jnp.isfinite(chol_r)) & jnp.all(jnp.isfinite(chol_s)) & jnp.all(jnp.isfinite(d_loc))
              & jnp.all(jnp.isfinite(d_glob)) & jnp.isfinite(f0))
    # above f at both spellings of the start (engine/newton.py)
    accepted, x, _ = line_search(f_of, x0, (d_loc, d_glob), jnp.maximum(f0, f_state), usable, f0)
    ms = unflat(*x)
    eta, mu = dict(state.eta), dict(state.mu)
    for b in blocks:
        e_n, m_n = fams[b].with_mean(state.eta[b], ms[b])
        eta[b], mu[b] = select(accepted, e_n, state.eta[b]), select(accepted, m_n, state.mu[b])
    return state._replace(eta=eta, mu=mu), coupled


def pairs(engine, eta) -> tuple:
    """((local block, its globals), ...) for every block of the schedule that takes the step."""
    if engine.local_global is not None or engine.networks or engine.amortised:
        return ()
    found = ((j, plan(engine, j, eta)) for j in engine.plan.schedule)
    return tuple((j, glob) for j, glob in found if glob)


def step_all(engine, found, state):
    """(``state`` after each local block's joint step in the schedule's order, whether every
    block's rows were found coupled)."""
    coupled = jnp.asarray(True)
    for j, glob in found:
        state, c = step(engine, state, j, glob, engine.data)
        coupled = coupled & c
    return state, coupled


class JointRows:
    """An engine's sweep preceded, after ``ACTIVATE`` sweeps, by the joint step of each block of
    ``found`` (``pairs``): ``__call__(state) -> (state, elbo)``.  From then on each call is one
    fixed map, the step and the sweep, each never lowering the ELBO (the extrapolation and the
    stopping rule read its trace as they read the sweep's).  The step is jitted once per engine
    (shared by its restarts) on first use; its first call's seconds count as compile time.  Once
    the check probe finds every block's rows coupled (a factor reads two rows: that does not
    change), the step is not run again."""

    def __init__(self, sweep, engine, found):
        self.sweep, self.engine, self.found = sweep, engine, tuple(found)
        self.count = self.steps = 0
        self.off = False

    def _step(self, state):
        build = lambda: jax.jit(partial(step_all, self.engine, self.found),  # noqa: E731
                                compiler_options=ONE_SHOT)
        return built_on_first_use(self.engine, "schur_newton", build)(state)

    def __call__(self, state):
        if self.count >= ACTIVATE and not self.off:
            state, coupled = self._step(state)
            self.steps += 1
            self.off = bool(coupled)  # a factor couples the rows (a static fact): no step again
        self.count += 1
        return self.sweep(state)


__all__ = ["ACTIVATE", "MAX_GLOBAL", "MAX_ROW", "JointRows", "pairs", "plan", "row_shape", "step", "step_all"]
