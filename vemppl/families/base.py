"""The exponential-family base class, the registry, and the moment interface.

A family ``F`` has densities

    p(x | η) = h(x) exp(⟨η, T(x)⟩ − A(η)),

with natural parameters ``η``, sufficient statistics ``T`` (a NamedTuple of *named
moments*, ``F.Stats``), log-normaliser ``A`` and mean parameters ``μ = E[T] = ∇A(η)``
(Wainwright & Jordan 2008, §3; Winn & Bishop 2005, §2).

A family plays two roles in vemppl:

* **variational factor** ``q_j``: ``natural_from_params``, ``params_from_natural``,
  ``log_normalizer``, ``expected_stats`` (= ∇A), ``entropy``, ``mode``, ``to_numpyro``;
* **model factor**: ``expected_log_prob(value, **args)`` gives ``E_q[log p(value | args)]``
  in terms of the *moments* of the value and of each argument.

Moments are read by attribute from a :class:`MomentSource`.  The canonical names are

==========  ==========================================  ======================
name        meaning                                     natural for
==========  ==========================================  ======================
``mean``    ``E[x]``                                    every support
``sq``      ``E[x²]`` (elementwise)                     real scalars
``outer``   ``E[x xᵀ]`` over the last axis              real vectors
``log``     ``E[log x]`` (elementwise)                  pos, unit, simplex
``log1m``   ``E[log(1 − x)]``                           unit
``logdet``  ``E[log |X|]``                              spd matrices
``value``   the value itself (fixed quantities only)    data, constants
==========  ==========================================  ======================

A family's ``Stats`` fields are named with these names, so a latent with ``q = F``
provides exactly ``F.Stats._fields`` *linearly* (they are its mean parameters) and may
provide more moments nonlinearly through :meth:`ExpFamily.derived_moment`.  The compiler
calls a block conjugate when every moment the expected log joint reads of it is linear.

Adding a distribution is one module that subclasses :class:`ExpFamily`; subclassing
registers it under ``name``.
"""

from __future__ import annotations

from typing import Any, ClassVar, NamedTuple

import jax
import jax.numpy as jnp

from ..diagnostics import VemError, did_you_mean
from ._linalg import bdot, bquad, spd_logdet
from ._special import log_known

REGISTRY: dict[str, type["ExpFamily"]] = {}
#: Structured variational families (a Markov chain, ...): variational factors only, chosen
#: by the compiler from a graph pattern, never written in a model.
STRUCTURES: dict[str, type["ExpFamily"]] = {}


class ArgSpec(NamedTuple):
    """How a distribution's arguments are written (LANGUAGE.md, "Parameterisations").

    ``positional``: parameter names in NumPyro's positional order.
    ``groups``: each group is a tuple of alternative names of which exactly one is used
    (e.g. ``("scale", "precision")``); a group with a name in ``defaults`` may be omitted.
    ``aliases``: short forms accepted as keywords and mapped to canonical names
    (``precision`` → ``precision_matrix`` for MvNormal).
    """

    positional: tuple[str, ...]
    groups: tuple[tuple[str, ...], ...]
    defaults: dict[str, Any] = {}
    aliases: dict[str, str] = {}

    @property
    def names(self) -> frozenset[str]:
        return frozenset(n for g in self.groups for n in g)

    def spelled(self, name: str) -> str:
        """``name`` as messages print it: with the short form the language writes it by first
        (``precision (precision_matrix)`` for MvNormal), as the model may use either."""
        short = [a for a, canonical in self.aliases.items() if canonical == name]
        return f"{short[0]} ({name})" if short else name


class MomentSource:
    """Moments of a quantity, read by attribute (``src.mean``, ``src.log``, ...).

    The base class serves fixed quantities (data, constants, point parameters): every
    moment is the function of the value.  The engine supplies subclasses for latent
    blocks and for expressions of them.
    """

    def __init__(self, value):
        self._value = jnp.asarray(value)

    @property
    def is_fixed(self) -> bool:
        return True

    @property
    def value(self):
        return self._value

    @property
    def mean(self):
        return self._value

    @property
    def sq(self):
        return self._value**2

    @property
    def outer(self):
        v = self._value
        return v[..., :, None] * v[..., None, :]

    log = property(lambda s: log_known(s._value))

    @property
    def inv_sq(self):
        """E[1/x²]: a scale's, read as the precision 1/s² (``Normal(m, scale = s)``)."""
        return 1.0 / self.value**2

    @property
    def log1m(self):
        return jnp.log1p(-self._value)

    @property
    def logdet(self):
        return spd_logdet(self._value)  # read only off precision-like (SPD) values

    def moment(self, name: str):
        return getattr(self, name)

    def prod(self, other):
        """E[x · other] elementwise for scalars: E[x] E[other] when independent (a step of
        a Gaussian chain beside its neighbour reads their cross moment, elj/lagged.py)."""
        return self.mean * other.mean

    def quad_with(self, lam, loc):
        """E[xᵀ Λ m] for this vector x, a matrix Λ and a vector m, x independent of both
        (a step of a Gaussian chain beside its neighbour in m reads their cross moment)."""
        return bdot(self.mean, lam.times(loc), 1)

    @property
    def point(self):
        """The value of a quantity known up to a point estimate: a fixed value or a point
        parameter (``param``), read where a factor is nonlinear in it (a Student-t scale).
        A latent block has no such value: reading it raises, and the compiler says so."""
        return self._value

    # ---- joint moments of a matrix x with a vector v (an MvNormal's precision and location)
    def joint_with(self, v) -> bool:
        """True when x and ``v`` are members of one joint block at the same element (a
        Normal–Wishart's Λ and μ), so that E[x v] is not E[x] E[v]."""
        return False

    def times(self, v):
        """E[x v] for this matrix x and a vector v: E[x] E[v] when they are independent."""
        return jnp.einsum("...ij,...j->...i", self.mean, v.mean)

    def quad(self, v):
        """E[vᵀ x v] for this matrix x and a vector v: tr(E[x] E[v vᵀ]) when independent.

        For a known v (data) this is vᵀ E[x] v, taken as (v E[x]) · v: two contractions
        that never build the [N, D, D] outer products (on a GMM with N = 100k, D = 10 the
        sweep spent most of its time writing and reading them).
        """
        if v.is_fixed:
            return bquad(v.value, self.mean)
        if getattr(v, "has_quad", False):  # a product of latents contracts its own (elj/products.py)
            return v.quad_under(self)
        return bdot(v.outer, self.mean, 2)

    # ---- the centred moments, for the value of a quadratic (not for its gradient) ------
    # E[(x − m)ᵀΛ(x − m)] written as E[xᵀΛx] − 2E[xᵀΛm] + E[mᵀΛm] is affine in every
    # block's statistics, which the CAVI updates differentiate; but with data far from the
    # origin its three terms are 1e12 times their sum and float64 loses the ELBO's last
    # digits (a GMM at scale 1e6 lost 0.008 nats a sweep).  The families evaluate the same
    # number from these centred moments and keep the affine form's gradient
    # (``exact_value``).  Neither method reads a moment through a tracker.
    def spread(self, rank: int):
        """(E[x], Cov[x]) of a vector (``rank`` 1), (E[x], Var[x]) of a scalar (0); ``None``
        for a zero covariance.  A known value has none; a random source's default subtracts
        the means' product from the second moment, so it is no more accurate than that."""
        if self.is_fixed:
            return self._value, None
        m = self.mean
        if rank:
            return m, self.outer - m[..., :, None] * m[..., None, :]
        return m, self.sq - m**2

    def quad_form(self, d, cov=None):
        """dᵀ E[x] d + tr(E[x] cov) for this matrix x, a known vector d and a known
        covariance (``None``: 0).  The default contracts the matrix E[x]; a family whose
        E[x] is an inverse computes it through a factor instead (a Wishart: ν ‖L⁻¹d‖²
        with L Lᵀ its rate)."""
        m = self.mean
        quad = bquad(d, m)
        return quad if cov is None else quad + bdot(cov, m, 2)

    def expect(self, f, *args, closed_form=None):
        """E[f(x, *args)] for an elementwise function f; exact for a known value.

        ``args`` are known arrays broadcast against x (the observed value of a factor).
        Random sources with Gaussian moments evaluate it by Gauss–Hermite quadrature
        (engine.moments), which is what makes a logistic, log-link or Student-t likelihood
        of a Gaussian expression computable; such a term is not affine in the moments, so
        the block it reads gets a natural-gradient update instead of a closed-form one.
        ``closed_form(mean, sd, *args)``, where given, is that Gaussian expectation exactly.
        """
        return f(self._value, *args)


def exact_value(affine, exact):
    """``exact``'s value with ``affine``'s derivatives: the two are one function of the
    moments, evaluated two ways; the derivatives are the CAVI updates' (GUIDE §2) and the
    conjugacy probe's, unchanged.  The correction is of the quadratic's own size (not of
    its terms'), so adding it back costs only that size's rounding."""
    return affine + jax.lax.stop_gradient(exact - affine)


def independent(*sources) -> bool:
    """No two of ``sources`` read a common block, and none is a product that contracts its
    own quadratic (elj/products.py): their centred moments then add (``spread``)."""
    seen: set = set()
    for src in sources:
        if getattr(src, "has_quad", False):
            return False
        deps = set(getattr(src, "deps", ()))
        if deps & seen:
            return False
        seen |= deps
    return True


def floored_logs(probs, complement=False):
    """(E[log p], E[log(1 − p)] if ``complement``) of a probability argument.  A known probability
    of 0 or 1 (a data or constant vector with an impossible category, `Bernoulli(1.0)`) has a log
    of −∞, and an observation's weight of 0 times it is nan: it is floored at the smallest normal
    float before the log (its gradient there is 0), so 0 · log 0 counts as 0 (as Categorical does)."""
    if not probs.is_fixed:
        return (probs.log, probs.log1m) if complement else probs.log
    p = jnp.asarray(probs.value)
    tiny = jnp.finfo(jnp.result_type(p, float)).tiny
    log_p = jnp.log(jnp.maximum(p, tiny))
    return (log_p, jnp.log(jnp.maximum(1.0 - p, tiny))) if complement else log_p


def fixed(value) -> MomentSource:
    """Moments of a known quantity (point mass)."""
    return MomentSource(value)


class ExpFamily:
    """Base class; see the module docstring for the contract."""

    name: ClassVar[str]
    #: NamedTuple type of the sufficient statistics; fields use the canonical moment names.
    Stats: ClassVar[type]
    #: how the distribution is written in model text.
    args: ClassVar[ArgSpec]
    #: support of the value: 'real', 'pos', 'unit', 'simplex', 'spd', 'count', 'bool', 'cat'.
    support: ClassVar[str]
    #: number of event dimensions of a value (0 scalar, 1 vector, 2 matrix).
    event_rank: ClassVar[int] = 0
    #: number of trailing event axes of each ``Stats`` field (e.g. MvNormal: mean 1, outer 2).
    stat_ranks: ClassVar[tuple[int, ...]]
    #: True when the family can serve as a variational factor q (has A, entropy, ...).
    variational: ClassVar[bool] = True
    #: The family of q for a latent with this prior, when it is another one whose ``Stats``
    #: this family shares (an Exponential prior has a Gamma posterior); None: this family.
    posterior_family: ClassVar[str | None] = None
    #: For a likelihood-only family: what to write instead when the value is latent.
    latent_hint: ClassVar[str] = ""
    #: The family whose factor this one is at a known transform of the value, with the same
    #: arguments (LogNormal: the Normal's at log y), so it reads its location and precision
    #: as that family does (a joint Normal–Gamma block, ``compiler/rules/_joint.py``).
    factor_of: ClassVar[str | None] = None
    #: That known transform, applied to NumPy data (LogNormal: ``numpy.log``), or None: the
    #: scale of the data its arguments describe (``data_scale.py`` compares that, not ``y``).
    factor_transform: ClassVar = None

    #: True for structured blocks (registered in STRUCTURES, not usable in model text).
    structured: ClassVar[bool] = False
    #: How the log-normaliser is computed.  A family computed another way (a Markov chain
    #: by a parallel scan) is a subclass naming the family it computes in ``variant_of``:
    #: the same statistics, updates and ELBO to rounding.
    algorithm: ClassVar[str] = "sequential"
    #: Gaussian in its value (Normal, MvNormal): a prior start is jittered off a symmetric
    #: point, and a bilinear term of two such latents starts its global side at a draw.
    gaussian: ClassVar[bool] = False
    #: The family of a plate of these read jointly as a vector (Normal: MvNormal), or None.
    vector_family: ClassVar[str | None] = None
    variant_of: ClassVar[type["ExpFamily"] | None] = None
    #: How ``vemppl updates`` writes the parameters that η gives (Markdown), or None.
    natural_text: ClassVar[str | None] = None
    #: A joint block's (``structured``, with ``roles``): its structure as the plan prints it
    #: (``normal-wishart``), and its statistics written with its members by role
    #: (``"E[{precision} {loc}], ..."``, formatted with each role's element).
    block_text: ClassVar[str] = "joint"
    stats_text: ClassVar[str | None] = None
    #: The mean map at η = fixed + grouped[key] in the exp domain (engine/factored.py), a pair
    #: of classmethods: ``fixed_exp(fixed)``, taken once, and ``mean_of_sum(fixed_exp, grouped,
    #: key)`` -> (E[T], whether it is exact to rounding); None where the family has none.
    fixed_exp: ClassVar = None
    mean_of_sum: ClassVar = None
    #: ``summed_mean(laid_out, grouped, weights, valid)`` -> (the weighted sums of those means
    #: over each group's rows, exact), the rows laid out [G, L] (engine/summed.py); or None.
    summed_mean: ClassVar = None
    #: ``summed_log_normalizer(fixed, row_weights, laid_out, grouped, weights, valid)`` -> Σ_u c_u A(ι_u + V_g(u))
    #: on ``summed_mean``'s layout (engine/summed.py: the ELBO's entropy without an [N, K] pass).
    summed_log_normalizer: ClassVar = None

    @classmethod
    def computed_by(cls, algorithm: str) -> type["ExpFamily"]:
        """This family with its log-normaliser computed by ``algorithm``; itself when no
        variant computes it that way."""
        canonical = cls.variant_of or cls
        if canonical.algorithm == algorithm:
            return canonical
        stack = list(canonical.__subclasses__())
        while stack:
            sub = stack.pop()
            if sub.variant_of is canonical and sub.algorithm == algorithm:
                return sub
            stack.extend(sub.__subclasses__())
        return cls

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "name" in cls.__dict__:
            (STRUCTURES if cls.structured else REGISTRY)[cls.name] = cls

    # ---- variational role -------------------------------------------------------
    @classmethod
    def natural_from_params(cls, **params):
        """η from the user's parameters (canonical names of ``args``)."""
        raise NotImplementedError

    @classmethod
    def params_from_natural(cls, eta) -> dict:
        """The user's parameters (NumPyro's names) from η."""
        raise NotImplementedError

    @classmethod
    def log_normalizer(cls, eta):
        """A(η), batched over leading axes."""
        raise NotImplementedError

    @classmethod
    def expected_stats(cls, eta):
        """μ = E[T(x)] = ∇A(η); default by autodiff, families override with closed forms.

        η's leading fields pair with ``Stats``; a family may append fixed, non-natural
        fields after them (Binomial's ``total_count``), whose gradients are dropped here.
        """
        grad = jax.grad(lambda e: jnp.sum(cls.log_normalizer(e)))
        return cls.Stats(*tuple(grad(eta))[: len(cls.Stats._fields)])

    #: The domain of :meth:`in_domain` in the parameters' words, for a prior outside it.
    domain_text: ClassVar[str] = ""

    #: Constraints of arguments NumPyro's class does not have (a ``precision`` short form),
    #: by the name of a ``numpyro.distributions.constraints`` member; read beside NumPyro's
    #: ``arg_constraints`` by the checks of constant and latent arguments (ir/validate.py, ir/sizes.py).
    own_arg_constraints: ClassVar[dict] = {}

    @classmethod
    def in_domain(cls, eta):
        """Whether η lies in the natural-parameter domain (every element of a batched block).
        Where A(η) stays finite outside it (a log-gamma of a negative shape is finite), a
        family says so here, so a natural-gradient step that leaves it is refused.  Default:
        the domain is where A(η) is finite, which the ELBO's finiteness already checks."""
        return jnp.asarray(True)

    @classmethod
    def sharpened(cls, eta, c):
        """q narrowed by a factor ``c`` ≥ 1 at about the same mean: q^c, i.e. c·η (a Normal's
        precision times c), where that is a density.  A family whose natural parameter on a
        log statistic is a count less one (a Gamma's a − 1) scales the counts instead (a Gamma's
        a and b times c): c·η would leave the domain where a < 1 (Gamma(0.001, 0.001)'s c·η at
        c = 100 has shape −98.9).  Convex in η between η and the result, so every damped step
        towards it stays in the domain too."""
        return jax.tree_util.tree_map(lambda e: c * e, eta)

    @classmethod
    def tidy_natural(cls, eta):
        """η as the CAVI gradient gives it, projected onto the family's parameterisation
        (matrix families symmetrise: a gradient w.r.t. E[xxᵀ] is symmetric only up to round-off)."""
        return eta

    @classmethod
    def natural_from_mean(cls, mu):
        """The inverse map μ ↦ η (used for initialisation)."""
        raise NotImplementedError

    @classmethod
    def stats(cls, x):
        """T(x)."""
        raise NotImplementedError

    @classmethod
    def point_stats(cls, theta):
        """T(θ) of a point mass at θ, for the M-step's gradient ∇_{T(θ)} L (traced: no conversions)."""
        return cls.stats(theta)

    @classmethod
    def log_base_measure(cls, x):
        """log h(x)."""
        raise NotImplementedError

    @classmethod
    def expected_log_base_measure(cls, eta):
        """E_q[log h(x)]; families whose h is constant return it."""
        raise NotImplementedError

    @classmethod
    def entropy(cls, eta, mu=None):
        """H[q] = A(η) − ⟨η, μ⟩ − E[log h(x)].

        ``mu``, when given, must be ``expected_stats(eta)``; the engine passes the one its
        state holds, so the ELBO does not recompute ∇A (a softmax over every token–topic
        of LDA, a backward pass over every step of a chain).
        """
        mu = cls.expected_stats(eta) if mu is None else mu
        return cls.log_normalizer(eta) - cls.inner(eta, mu) - cls.expected_log_base_measure(eta)

    @classmethod
    def expected_stats_and_entropy(cls, eta):
        """(μ, H[q]) at η, as ``expected_stats`` and ``entropy`` give them; a family whose
        two share work (an MvNormal's Cholesky factor of Λ) computes it once."""
        mu = cls.expected_stats(eta)
        return mu, cls.entropy(eta, mu)

    @classmethod
    def inner(cls, eta, mu):
        """⟨η, μ⟩ summed over each statistic's event axes, batched over the rest."""
        total = 0.0
        for e, m, rank in zip(eta, mu, cls.stat_ranks):
            prod = e * m
            total = total + (jnp.sum(prod, axis=tuple(range(-rank, 0))) if rank else prod)
        return total

    @classmethod
    def mode(cls, eta):
        """argmax_x ⟨η, T(x)⟩ + log h(x) (the M-step uses this with η = ∂L/∂T)."""
        raise NotImplementedError

    @classmethod
    def random_start(cls, eta, key):
        """Natural parameters of a random starting point near ``eta`` for a global block
        (``fit(start="random-globals")``); a family without one returns ``eta`` itself,
        and the block keeps its prior start."""
        return eta

    @classmethod
    def to_numpyro(cls, eta):
        """The NumPyro distribution with natural parameters η (batched)."""
        raise NotImplementedError

    @classmethod
    def derived_moment(cls, eta, name: str):
        """A moment that is not one of ``Stats`` (so not linear in μ), or raise KeyError."""
        raise KeyError(name)

    # ---- model-factor role ------------------------------------------------------
    @classmethod
    def expected_log_prob(cls, value: MomentSource, **args: MomentSource):
        """E_q[log p(value | args)] from the moments of ``value`` and of each argument.

        ``args`` uses canonical names (after aliases); omitted defaults are filled in
        by the caller.  The result is batched over leading axes and not summed.
        """
        raise NotImplementedError

    @classmethod
    def numpyro_dist(cls, **args):
        """The NumPyro distribution with the given (fixed) arguments."""
        raise NotImplementedError

    @classmethod
    def event_shape(cls, **arg_shapes) -> tuple:
        """Event shape of a value given the shapes of the arguments (tuples)."""
        return ()


def get_family(name: str, span=None) -> type[ExpFamily]:
    """Look a family up by name, with a 'did you mean' hint."""
    try:
        return REGISTRY[name] if name in REGISTRY else STRUCTURES[name]
    except KeyError:
        raise VemError(
            "undefined-name",
            f"unknown distribution '{name}'",
            span,
            did_you_mean(name, REGISTRY) or f"known distributions: {', '.join(sorted(REGISTRY))}",
        ) from None
