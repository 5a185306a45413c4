"""Frozen node types of the IR: types, loops, definitions and nodes.

A :class:`Node` is one named quantity of the model.  Its ``kind`` is one of

* ``dim``: a size symbol (``dim N``);
* ``const``: a fixed value, overridable at fit time;
* ``data``: an observed array (possibly the target of ``~`` statements);
* ``param``: a point-estimated parameter (M-step);
* ``latent``: a random variable defined by ``~`` and not declared ``data``;
* ``det``: a deterministic node defined by ``=``.

A ``param`` of type ``mlp(act)[...]`` is a neural network: it is called in expressions
(``dec(z[n])``), and a latent may carry an amortised posterior ``q(z[n]) = enc(x[n])``.

A random or deterministic node is defined by one or more :class:`Definition` s, each a
statement with its enclosing loops (the plate stack), e.g. the HMM's ``z[0] ~ ...`` and
``for t in range(1, T) { z[t] ~ ... }``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..diagnostics import Span
from .expr import Expr

KINDS = ("dim", "const", "data", "param", "latent", "det")

#: Base types and the support each stands for (LANGUAGE.md, "Types"); ``mlp`` is the type
#: of a neural-network param (docs/language.md, "Neural networks and amortised inference").
BASE_TYPES = ("real", "pos", "unit", "int", "count", "bool", "cat", "simplex", "spd", "mlp")

#: Activations a network type may name: ``mlp(tanh)[D, H, K]``.
ACTIVATIONS = ("tanh", "relu", "softplus", "sigmoid", "elu")


@dataclass(frozen=True)
class TypeSpec:
    """A declared type such as ``real[N, D]``, ``cat(K)[M]``, ``simplex[K, K]``, ``spd[D]``.

    ``shape`` lists the bracketed sizes.  For ``simplex`` the last size is the simplex
    dimension; for ``spd[..., D]`` the trailing size stands for a ``D × D`` matrix.
    ``bound`` is the ``K`` of ``cat(K)``.
    """

    base: str
    shape: tuple[Expr, ...] = ()
    bound: Expr | None = None
    span: Span | None = field(default=None, compare=False, repr=False)

    @property
    def is_network(self) -> bool:
        """``mlp(act)[n0, n1, ..., nk]``: a multilayer perceptron; ``shape`` lists its layer
        sizes (input, hidden..., output) and ``bound`` names its activation."""
        return self.base == "mlp"


@dataclass(frozen=True)
class Loop:
    """``for var in range(start, stop)``."""

    var: str
    start: Expr
    stop: Expr
    span: Span | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Definition:
    """One ``target[indices] ~ dist(args)`` or ``target[indices] = expr`` statement.

    ``args`` are canonical ``(name, expr)`` pairs in the family's parameter order
    (positional arguments and aliases resolved by the builder).
    """

    loops: tuple[Loop, ...]
    indices: tuple[Expr, ...]
    dist: str | None = None
    args: tuple[tuple[str, Expr], ...] = ()
    expr: Expr | None = None
    span: Span | None = field(default=None, compare=False, repr=False)
    #: where the distribution's name is written, for support errors.
    dist_span: Span | None = field(default=None, compare=False, repr=False)

    @property
    def is_random(self) -> bool:
        return self.dist is not None

    def arg(self, name: str) -> Expr | None:
        for k, v in self.args:
            if k == name:
                return v
        return None

    @property
    def loop_vars(self) -> tuple[str, ...]:
        return tuple(lp.var for lp in self.loops)


@dataclass(frozen=True)
class Node:
    name: str
    kind: str
    type: TypeSpec | None = None
    value: Expr | None = None  # const value or param initialiser
    defs: tuple[Definition, ...] = ()
    span: Span | None = field(default=None, compare=False, repr=False)
    #: ``q(z[n]) = enc(x[n])``: the amortised posterior of a latent, a Definition whose
    #: ``expr`` is an encoder network applied to the latent's data (None: mean-field q).
    amortised: Definition | None = None

    @property
    def is_network(self) -> bool:
        return self.kind == "param" and self.type is not None and self.type.is_network
