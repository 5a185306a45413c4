"""The Python DSL: the same statements as ``.vem`` text, spelt in Python.

::

    import vemppl as vp

    m = vp.Model("gmm")
    N, D = m.dim("N", "D")
    K = m.const("K", 3)
    x = m.data("x", vp.real[N, D])
    pi = m.sample("pi", vp.Dirichlet(vp.fill(1.0, K)))
    with m.plate("k", K):
        mu = m.sample("mu", vp.MvNormal(vp.zeros(D), precision=0.01 * vp.eye(D)))
        Lam = m.sample("Lam", vp.Wishart(D + 2, vp.eye(D)))
    with m.plate("n", N):
        z = m.sample("z", vp.Categorical(pi))
        m.sample("x", vp.MvNormal(mu[z], precision=Lam[z]))

Inside a plate a handle of a node defined in that plate stands for its current element
(``z`` is ``z[n]``), exactly as the text writes it; outside, it is the whole array.
Every call goes through :class:`~vemppl.ir.IRBuilder`, so errors are the text's errors,
located at the Python line that made them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import numbers
import operator
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

from ..diagnostics import Span
from ..families import REGISTRY
from ..ir.builder import IRBuilder
from ..ir.expr import BinOp, Call, Expr, Index, Name, Neg, Num
from ..ir.graph import ModelGraph, as_ir
from ..ir.nodes import Loop, TypeSpec


def _caller_span() -> Span:
    f = sys._getframe(1)
    skip = (__file__, contextlib.__file__)  # `with m.plate(...)` enters through contextlib
    while f is not None and f.f_code.co_filename in skip:
        f = f.f_back
    return Span(f.f_lineno, 1, file=f.f_code.co_filename) if f else None


def as_expr(v, model: "Model | None" = None) -> Expr:
    """Python value or handle → IR expression."""
    if isinstance(v, E):
        return v.to_expr(model)
    if isinstance(v, (bool, np.bool_)):
        return Num(int(v))
    if isinstance(v, (numbers.Integral, numbers.Real)) and not isinstance(v, np.ndarray):
        v = int(v) if isinstance(v, numbers.Integral) else float(v)  # NumPy scalars too
        if v < 0:
            return Neg(Num(-v))  # as the text reads '-3'
        return Num(v)
    if isinstance(v, np.ndarray):
        raise TypeError("cannot use a NumPy array in a model expression: write it with the built-ins "
                        "(vp.zeros(D), vp.eye(D), vp.fill(v, K)), declare it m.data(...) and give it to fit, or make "
                        "it a typed const given at fit time (m.const('A', 0.0, vp.real[2, 2]), fit(consts={'A': ...}))")
    raise TypeError(f"cannot use {type(v).__name__} in a model expression")


def _located(e: Expr, span: Span | None) -> Expr:
    """``e`` with ``span`` on every part that has none: a DSL expression is built without source
    positions, so an error found later at one of its parts (a read the compiler refuses) points
    at the Python line of the statement, as the text's points at the part itself."""
    if span is None or not dataclasses.is_dataclass(e):
        return e
    parts = [f.name for f in dataclasses.fields(e) if f.name != "span"]
    changes = {p: _located(getattr(e, p), span) for p in parts if dataclasses.is_dataclass(getattr(e, p))}
    changes.update({p: tuple(_located(a, span) for a in getattr(e, p)) for p in parts
                    if isinstance(getattr(e, p), tuple)})
    if getattr(e, "span", span) is None:
        changes["span"] = span
    return dataclasses.replace(e, **changes) if changes else e


class E:
    """A model expression under construction (supports + - * / @ ** and indexing)."""

    def __init__(self, expr: Expr | None = None):
        self._expr = expr

    def to_expr(self, model=None) -> Expr:
        return self._expr

    def _bin(self, op, other, reverse=False):
        a, b = (other, self) if reverse else (self, other)
        return _Lazy(lambda m: BinOp(op, as_expr(a, m), as_expr(b, m)))

    __add__ = lambda s, o: s._bin("+", o)
    __radd__ = lambda s, o: s._bin("+", o, True)
    __sub__ = lambda s, o: s._bin("-", o)
    __rsub__ = lambda s, o: s._bin("-", o, True)
    __mul__ = lambda s, o: s._bin("*", o)
    __rmul__ = lambda s, o: s._bin("*", o, True)
    __truediv__ = lambda s, o: s._bin("/", o)
    __rtruediv__ = lambda s, o: s._bin("/", o, True)
    __matmul__ = lambda s, o: s._bin("@", o)
    __rmatmul__ = lambda s, o: s._bin("@", o, True)
    __pow__ = lambda s, o: s._bin("**", o)
    __rpow__ = lambda s, o: s._bin("**", o, True)

    def __neg__(self):
        return _Lazy(lambda m: Neg(as_expr(self, m)))

    def __getitem__(self, idx):
        idx = idx if isinstance(idx, tuple) else (idx,)
        return _Lazy(lambda m: Index(self.base_expr(m), tuple(as_expr(i, m) for i in idx)))

    def base_expr(self, model) -> Expr:
        return self.to_expr(model)

    def __iter__(self):
        # Without this, Python iterates by __getitem__(0), (1), ... which never raises:
        # sum(x[n]), list(w) or `a, b = w` would loop for ever.
        raise TypeError("a model expression has no Python elements to iterate over (sum(), list(), unpacking): "
                        "write the sum as vp.sum_(...) or index the elements, e.g. w[0]")

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        # np.float64(2.0) * a: a NumPy scalar's operator, which is the model's own.
        op = _NUMPY_OPS.get(ufunc.__name__)
        if op is not None and method == "__call__" and not kwargs and all(
                isinstance(v, (E, numbers.Number, np.generic)) for v in inputs):
            return op(*(v.item() if isinstance(v, np.generic) else v for v in inputs))
        # np.exp(a) would call a.exp(), and np.zeros(2) * a would build an object array.
        raise TypeError(f"NumPy's {ufunc.__name__} cannot read a model expression: use the model's own functions "
                        "(vp.exp, vp.log, vp.sigmoid, vp.dot, vp.sum_, ...) and numbers, not NumPy arrays")

    def __float__(self):
        # math.exp(b), float(b): Python's own functions ask for a number ("must be real number, not Var").
        raise TypeError("a model expression is not a number: the model is a graph, nothing is computed while it is "
                        "built, so math.exp, float() and int() cannot read a node; use the model's own functions "
                        "(vp.exp, vp.log, vp.sigmoid, ...)")

    __int__ = __float__

    def __bool__(self):
        raise TypeError("a model expression has no truth value: the model is a graph, nothing is computed "
                        "while it is built, so `if`, `and`, `or` cannot read a node")


#: NumPy's arithmetic ufuncs, met when a NumPy scalar stands beside a model expression.
_NUMPY_OPS = {"add": operator.add, "subtract": operator.sub, "multiply": operator.mul, "true_divide": operator.truediv,
              "divide": operator.truediv, "power": operator.pow, "matmul": operator.matmul, "negative": operator.neg}


class _Lazy(E):
    """An expression resolved when used, so handles see the plates active at that point."""

    def __init__(self, make):
        super().__init__()
        self._make = make

    def to_expr(self, model=None):
        return self._make(model)


class Var(E):
    """A handle to a named node; inside its own plates it stands for the current element."""

    def __init__(self, name: str, plate_vars: tuple[str, ...] = ()):
        super().__init__(Name(name))
        self.name = name
        self.plate_vars = plate_vars

    def to_expr(self, model=None):
        active = model.active_vars if model is not None else ()
        if self.plate_vars and all(v in active for v in self.plate_vars):
            return Index(Name(self.name), tuple(Name(v) for v in self.plate_vars))
        return Name(self.name)

    def base_expr(self, model):
        return Name(self.name)

    def __call__(self, x):
        """A network param applied to an input: ``dec(z)`` is ``dec(z[n])`` in the text."""
        return _Lazy(lambda m: Call(self.name, (as_expr(x, m),)))

    def __repr__(self):
        return f"Var({self.name})"


#: What a DSL method takes as an expression: a handle or expression (:class:`E`) or a number.
ExprLike = E | int | float
#: An index of a statement: one expression, or a tuple of them.
IndexLike = ExprLike | tuple[ExprLike, ...]


class Dist:
    """A distribution call ``Family(*args, **kwargs)`` awaiting ``Model.sample``."""

    def __init__(self, family: str, *args, **kwargs):
        self.family, self.args, self.kwargs = family, args, kwargs


def _dist_factory(name):
    def make(*args, **kwargs) -> Dist:
        return Dist(name, *args, **kwargs)

    make.__name__ = make.__qualname__ = name
    make.__doc__ = _dist_doc(name)
    return make


def _dist_doc(name: str) -> str:
    """The constructor's docstring: how its arguments are written (the family's ``ArgSpec``),
    then the family module's own docstring (its density and exponential-family form)."""
    fam = REGISTRY[name]
    spec = fam.args
    groups = "; ".join(" or ".join(f"``{a}``" for a in g) for g in spec.groups)
    lines = [
        f"A ``{name}`` distribution for :meth:`Model.sample` (the text's ``{name}(...)``).",
        "",
        f"Positional arguments, in order: {', '.join(f'``{a}``' for a in spec.positional) or 'none'}.",
        f"Exactly one of each group, by keyword or position: {groups or 'none'}.",
    ]
    if spec.defaults:
        lines.append("Defaults: " + ", ".join(f"``{k} = {v}``" for k, v in spec.defaults.items()) + ".")
    if spec.aliases:
        lines.append("Short keywords: " + ", ".join(f"``{k}`` for ``{v}``" for k, v in spec.aliases.items()) + ".")
    module_doc = sys.modules[fam.__module__].__doc__
    if module_doc:
        lines += ["", module_doc.strip()]
    return "\n".join(lines)


#: One constructor per registered family: a new family module is usable here at once.
DISTRIBUTIONS = {name: _dist_factory(name) for name in REGISTRY}


#: The text language's built-in functions and what each computes (docs/language.md).
_BUILTIN_DOCS = {
    "zeros": "``zeros(D, ...)``: an array of zeros of shape ``[D, ...]``.",
    "ones": "``ones(D, ...)``: an array of ones of shape ``[D, ...]``.",
    "fill": "``fill(v, D, ...)``: an array of shape ``[D, ...]`` with every entry ``v``.",
    "eye": "``eye(D)``: the ``D × D`` identity matrix.",
    "diag": "``diag(v)``: the diagonal matrix with the vector ``v`` on its diagonal.",
    "exp": "``exp(a)``: the elementwise exponential.",
    "log": "``log(a)``: the elementwise natural logarithm.",
    "sigmoid": "``sigmoid(a)``: the elementwise logistic function ``1 / (1 + exp(-a))``.",
    "softmax": "``softmax(a)``: ``exp(a) / Σ exp(a)`` over the last axis.",
    "sum": "``sum(a)``: the sum of every entry of ``a`` (a scalar); ``vp.sum_`` in Python.",
    "dot": "``dot(a, b)``: the inner product over the last axis (the others broadcast).",
    "transpose": "``transpose(a)``: ``a`` with its last two axes swapped.",
}


def _builtin(fname):
    def call(*args) -> E:
        return _Lazy(lambda m: Call(fname, tuple(as_expr(a, m) for a in args)))

    call.__name__ = call.__qualname__ = fname if fname != "sum" else "sum_"
    call.__doc__ = _BUILTIN_DOCS[fname] + " An expression of the model being built; nothing is computed here."
    return call


zeros, ones, fill, eye, diag = (_builtin(f) for f in ("zeros", "ones", "fill", "eye", "diag"))
exp, log, sigmoid, softmax = (_builtin(f) for f in ("exp", "log", "sigmoid", "softmax"))
sum_, dot, transpose = _builtin("sum"), _builtin("dot"), _builtin("transpose")


class _TypeMaker:
    """A type of the language: bare, a scalar (``vp.real``); indexed by dimensions, an array
    (``vp.real[N, D]``)."""

    def __init__(self, base: str, bound=None, doc: str | None = None):
        self.base, self.bound = base, bound
        if doc:
            self.__doc__ = doc

    def __getitem__(self, shape) -> TypeSpec:
        shape = shape if isinstance(shape, tuple) else (shape,)
        return TypeSpec(self.base, tuple(as_expr(s) for s in shape), self._bound())

    def _bound(self):
        if isinstance(self.bound, str):  # an activation, mlp("tanh")
            return Name(self.bound)
        return as_expr(self.bound) if self.bound is not None else None

    def spec(self) -> TypeSpec:
        """The scalar type (no dimensions)."""
        return TypeSpec(self.base, (), self._bound())

    def __repr__(self) -> str:
        return f"vemppl type {self.base}"


real = _TypeMaker("real", doc="``real``: real numbers; ``vp.real[N, D]`` is an ``N × D`` real array.")
pos = _TypeMaker("pos", doc="``pos``: positive reals (precisions, rates, scales).")
unit = _TypeMaker("unit", doc="``unit``: reals in (0, 1) (probabilities).")
int_ = _TypeMaker("int", doc="``int``: integers (the text's ``int``).")
count = _TypeMaker("count", doc="``count``: non-negative integers (Poisson, Binomial and Multinomial data).")
bool_ = _TypeMaker("bool", doc="``bool``: 0 or 1 (Bernoulli data; the text's ``bool``).")
simplex = _TypeMaker("simplex", doc="``simplex``: vectors of non-negative entries summing to one (``simplex[K]``).")
spd = _TypeMaker("spd", doc="``spd``: symmetric positive-definite matrices (``spd[D, D]``).")


def cat(bound: ExprLike) -> _TypeMaker:
    """The type of a category index in ``0 .. bound - 1``: ``vp.cat(K)[N]`` is the text's
    ``cat(K)[N]`` (e.g. token words in LDA, observed labels)."""
    return _TypeMaker("cat", bound)


def mlp(activation: str) -> _TypeMaker:
    """The type of a neural-network param: ``vp.mlp("tanh")[D, H, K]`` is ``mlp(tanh)[D, H, K]``,
    a network from ``D`` inputs through a hidden layer of ``H`` (``tanh``) to ``K`` outputs."""
    return _TypeMaker("mlp", str(activation))


class Model:
    """A model built in Python; ``.ir`` is the IR (the same one the text would give).

    Each method is one statement of the text language and returns a handle (:class:`Var`) to
    the node it declares; handles combine with ``+ - * / @ **``, indexing and the built-in
    functions into expressions.  Errors are :class:`~vemppl.VemError` s located at the Python
    line that made them.  ``vp.to_text(m)`` prints the model as ``.vem`` text and
    ``vp.parse(vp.to_text(m)) == m.ir``.
    """

    def __init__(self, name: str) -> None:
        self._b = IRBuilder(name)
        self._loops: list[Loop] = []
        self._ir: ModelGraph | None = None

    @property
    def name(self) -> str:
        """The model's name (the text's ``model NAME``)."""
        return self._b.name

    @property
    def active_vars(self) -> tuple[str, ...]:
        """The loop variables of the plates open at this point, outermost first."""
        return tuple(lp.var for lp in self._loops)

    def _changed(self):
        self._ir = None

    def dim(self, *names: str) -> Var | tuple[Var, ...]:
        """``dim N, D``: sizes read off the data at fit time; one handle, or a tuple of them."""
        for n in names:
            self._b.dim(n, _caller_span())
        self._changed()
        handles = tuple(Var(n) for n in names)
        return handles[0] if len(handles) == 1 else handles

    def const(self, name: str, value: ExprLike, type: _TypeMaker | TypeSpec | None = None) -> Var:
        """``const name = value``: a constant, overridable at fit time (``fit(consts=...)``)."""
        t = type.spec() if isinstance(type, _TypeMaker) else type
        self._b.const(name, as_expr(value, self), t, _caller_span())
        self._changed()
        return Var(name)

    def data(self, name: str, type: _TypeMaker | TypeSpec) -> Var:
        """``data name: type``: an observed (or covariate) array, given to ``fit(data=...)``."""
        t = type.spec() if isinstance(type, _TypeMaker) else type
        self._b.data(name, t, _caller_span())
        self._changed()
        return Var(name)

    def param(self, name: str, type: _TypeMaker | TypeSpec, init: ExprLike | None = None) -> Var:
        """``param name: type``: a point parameter fitted by the M-step (a network's
        weights when ``type`` is :func:`mlp`); ``init`` is its starting value."""
        t = type.spec() if isinstance(type, _TypeMaker) else type
        self._b.param(name, t, as_expr(init, self) if init is not None else None, _caller_span())
        self._changed()
        return Var(name)

    @contextmanager
    def plate(self, var: str, stop: ExprLike, start: ExprLike = 0) -> Iterator[Var]:
        """``for var in range(start, stop) { ... }``; yields the loop variable."""
        lp = Loop(var, as_expr(start, self), as_expr(stop, self), _caller_span())
        self._b._check_loops(tuple(self._loops) + (lp,))
        self._loops.append(lp)
        try:
            yield Var(var)
        finally:
            self._loops.pop()

    def sample(self, name: str, d: Dist, index: IndexLike | None = None) -> Var:
        """``name[active loop vars] ~ d`` (or ``name[index] ~ d``)."""
        span = _caller_span()
        if not isinstance(d, Dist):
            what = getattr(d, "__name__", type(d).__name__)
            raise TypeError(f"m.sample({name!r}, ...) needs a distribution such as vp.Normal(0.0, 1.0); got {what}"
                            + (f" (call it: vp.{what}(...))" if what in DISTRIBUTIONS else ""))
        kwargs = tuple((k, _located(as_expr(v, self), span), None) for k, v in d.kwargs.items())
        args = tuple(_located(as_expr(a, self), span) for a in d.args)
        self._b.statement(
            name, self._indices(index, span), tuple(self._loops),
            dist=d.family, args=args, kwargs=kwargs, span=span,
        )
        self._changed()
        return Var(name, self._plate_vars(index))

    def let(self, name: str, value: ExprLike, index: IndexLike | None = None) -> Var:
        """A deterministic node ``name[active loop vars] = value``."""
        span = _caller_span()
        self._b.statement(name, self._indices(index, span), tuple(self._loops), expr=_located(as_expr(value, self), span),
                          span=span)
        self._changed()
        return Var(name, self._plate_vars(index))

    def q(self, latent: Var | str, encoder: E, index: IndexLike | None = None) -> None:
        """``q(latent[active loop vars]) = encoder``: an amortised posterior, e.g.
        ``m.q(z, enc(x))`` inside the plate over n is ``q(z[n]) = enc(x[n])``."""
        name = latent.name if isinstance(latent, Var) else latent
        span = _caller_span()
        self._b.amortise(name, self._indices(index, span), tuple(self._loops), _located(as_expr(encoder, self), span),
                         span=span)
        self._changed()

    def _indices(self, index, span=None):
        if index is None:
            return tuple(Name(v, span) for v in self.active_vars)
        index = index if isinstance(index, tuple) else (index,)
        return tuple(_located(as_expr(i, self), span) for i in index)

    def _plate_vars(self, index):
        return self.active_vars if index is None else ()

    @property
    def ir(self) -> ModelGraph:
        """The model's IR (built once, rebuilt after a new statement)."""
        if self._ir is None:
            self._ir = self._b.build()
        return self._ir

    def build(self) -> ModelGraph:
        """The model's IR; the same as :attr:`ir`."""
        return self.ir

    def __eq__(self, other):
        return self.ir == as_ir(other)

    __hash__ = object.__hash__
