"""The ``.vem`` text front end: a Lark LALR parse, then :class:`~vemppl.ir.IRBuilder` calls.

``parse(text)`` and ``load(path)`` give the same :class:`~vemppl.ir.ModelGraph` that the
Python DSL builds for the same model: the tree walker below calls the builder's
``dim``, ``const``, ``data``, ``param`` and ``statement`` in source order, so both
front ends share every semantic check.  The grammar is ``grammar/vem.lark``, shipped in
the package as ``vemppl/grammar/vem.lark``; positions come from Lark's
``propagate_positions`` (1-based ``line:col``, a tab counting as one column).

Model text is data, never evaluated.  Nothing but :class:`~vemppl.diagnostics.VemError`
leaves :func:`parse` or :func:`load`: Lark errors become syntax errors in words
(:mod:`.syntax_errors`), and limits on size and nesting keep hostile input from
hanging the reader or exhausting Python's stack.
"""

from __future__ import annotations

import math
import os
import re
import threading
from functools import lru_cache
from importlib import resources
from pathlib import Path

from lark import Lark, Token, Tree
from lark.exceptions import LarkError, UnexpectedInput

from ..diagnostics import Span, VemError
from ..ir.builder import IRBuilder
from ..ir.expr import BinOp, Call, Expr, Index, Name, Neg, Num
from ..ir.graph import ModelGraph
from ..ir.nodes import Loop, TypeSpec
from . import syntax_errors as SE

#: Longest model text read, in characters (bytes for files): Lark reads ~50k tokens/s, so
#: this bounds the time spent on a wrong file to a few seconds.
MAX_SOURCE = 256 * 1024
#: Deepest nesting of brackets, and of operators in one expression.
MAX_NESTING = 200

_BINOPS = {"add": "+", "sub": "-", "mul": "*", "div": "/", "matmul": "@", "pow": "**"}
_OPENERS = {"_LPAR", "_LSQB", "_LBRACE"}
_CLOSERS = {"_RPAR": "_LPAR", "_RSQB": "_LSQB", "_RBRACE": "_LBRACE"}


def grammar_text() -> str:
    """The grammar, from the installed package or, failing that, the source tree."""
    try:
        return resources.files("vemppl").joinpath("grammar", "vem.lark").read_text(encoding="utf-8")
    except (FileNotFoundError, NotADirectoryError, OSError):
        return (Path(__file__).resolve().parents[2] / "grammar" / "vem.lark").read_text(encoding="utf-8")


class _Postlexer:
    """Statement separators: newlines inside ( ) or [ ] continue the line; runs collapse.

    It never looks ahead, so the contextual lexer always lexes in the parser's real
    state.  The brackets open at an error are kept (per thread) for the error message.
    """

    always_accept = ("_SEP",)

    def __init__(self):
        self._local = threading.local()

    @property
    def open_brackets(self) -> list[Token]:
        return getattr(self._local, "stack", [])

    def process(self, stream):
        stack: list[Token] = []
        self._local.stack = stack
        prev = None
        for tok in stream:
            t = tok.type
            if t == "_SEP":
                if tok.value == "\n" and stack and stack[-1].type != "_LBRACE":
                    continue
                if prev in (None, "_SEP", "_LBRACE"):
                    continue
            elif t in _OPENERS:
                stack.append(tok)
            elif t in _CLOSERS and stack and stack[-1].type == _CLOSERS[t]:
                stack.pop()
            prev = t
            yield tok


_POSTLEX = _Postlexer()


@lru_cache(maxsize=1)
def _lark() -> Lark:
    return Lark(
        grammar_text(),
        parser="lalr",
        lexer="contextual",
        propagate_positions=True,
        maybe_placeholders=True,
        postlex=_POSTLEX,
    )


def parse(text: str, filename: str | None = None) -> ModelGraph:
    """The IR of a model written in ``.vem`` text (``str``, or UTF-8 ``bytes``); ``filename``
    names the source in error messages.  Raises :class:`~vemppl.VemError` on a syntax,
    name, type or shape error."""
    if isinstance(text, (bytes, bytearray)):
        text = _decode(bytes(text), filename)
    if not isinstance(text, str):
        raise VemError("type", f"parse() takes model text (str), not {type(text).__name__}")
    text = text.removeprefix("\ufeff")
    if len(text) > MAX_SOURCE:
        raise SE.too_large(len(text), MAX_SOURCE, filename)
    _check_nesting(text, filename)
    lark = _lark()
    try:
        tree = lark.parse(text)
    except UnexpectedInput as exc:
        raise SE.from_lark(exc, text, filename, lark, list(_POSTLEX.open_brackets)) from None
    except LarkError as exc:  # any other Lark failure is still a syntax error, not a traceback
        raise VemError("syntax", str(exc).splitlines()[0], Span(1, 1, file=filename, source=text)) from None
    try:
        return _Walker(text, filename).model(tree)
    except RecursionError:
        raise VemError(
            "syntax", "the model is nested too deeply to read", Span(1, 1, file=filename, source=text)
        ) from None


def load(path: str | os.PathLike) -> ModelGraph:
    """The IR of the model in a ``.vem`` file (UTF-8); errors name the file."""
    name = str(path)
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_SOURCE + 1)
    except OSError as exc:
        raise VemError("io", f"cannot read '{name}': {exc.strerror or exc}") from None
    if len(raw) > MAX_SOURCE:
        raise SE.too_large(Path(path).stat().st_size, MAX_SOURCE, name)
    return parse(_decode(raw, name), filename=name)


def _decode(raw: bytes, filename) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SE.decode_error(raw, exc, filename) from None


_BRACKETS = re.compile(r"#[^\n]*|[()\[\]{}]")


def _check_nesting(text: str, filename):
    """Refuse brackets nested deeper than MAX_NESTING before Lark and the walker recurse."""
    if text.count("(") + text.count("[") + text.count("{") <= MAX_NESTING:
        return
    depth = 0
    for m in _BRACKETS.finditer(text):
        c = m.group()
        if c in "([{":
            depth += 1
            if depth > MAX_NESTING:
                raise SE.nesting_error(text, m.start(), MAX_NESTING, filename)
        elif c in ")]}":
            depth = max(depth - 1, 0)


class _Walker:
    """Parse tree → IRBuilder calls, in source order."""

    def __init__(self, text: str, filename: str | None):
        self.text, self.filename = text, filename

    def span(self, x) -> Span:
        if isinstance(x, Token):
            return Span(x.line, x.column, x.end_line, x.end_column, self.filename, self.text)
        m = x.meta
        return Span(m.line, m.column, m.end_line, m.end_column, self.filename, self.text)

    def model(self, tree: Tree) -> ModelGraph:
        decl, *stmts = [c for c in tree.children if isinstance(c, Tree)]
        name = decl.children[0]
        self.b = IRBuilder(
            str(name), source=self.text, filename=self.filename, span=self.span(name),
            declared_later=self._declared(stmts),
        )
        for st in stmts:
            self.statement(st, ())
        return self.b.build()

    def _declared(self, stmts) -> dict[str, Span]:
        """Every name the text declares or defines, at its first occurrence."""
        out: dict[str, Span] = {}
        todo = list(reversed(stmts))
        while todo:
            st = todo.pop()
            if st.data == "for_loop":
                todo.extend(reversed(_trees(st.children[-1].children)))
                continue
            if st.data == "dim_decl":
                toks = st.children
            elif st.data in ("sample", "assign"):
                toks = [st.children[0].children[0]]
            elif st.data == "amortise":
                toks = []
            else:
                toks = [st.children[0]]
            for tok in toks:
                out.setdefault(str(tok), self.span(tok))
        return out

    # ---- statements ------------------------------------------------------------------
    def statement(self, st: Tree, loops: tuple[Loop, ...]):
        b, kind, ch = self.b, st.data, st.children
        if loops and kind.endswith("_decl"):
            raise VemError(
                "syntax", f"'{kind[:-5]}' declarations belong at the top level, not inside a loop",
                self.span(st), "move the declaration above the loop",
            )
        if kind == "dim_decl":
            for tok in ch:
                b.dim(str(tok), self.span(tok))
        elif kind == "const_decl":
            name, ty, value = ch
            b.const(str(name), self.expr(value), self.type(ty) if ty is not None else None, self.span(name))
        elif kind == "data_decl":
            name, ty = ch
            b.data(str(name), self.type(ty), self.span(name))
        elif kind == "param_decl":
            name, ty, init = ch
            b.param(str(name), self.type(ty), self.expr(init) if init is not None else None, self.span(name))
        elif kind in ("sample", "assign"):
            target, indices = self.target(ch[0])
            if kind == "sample":
                args, kwargs = self.arglist(ch[2])
                b.statement(
                    target, indices, loops, dist=str(ch[1]), args=args, kwargs=kwargs,
                    span=self.span(st), dist_span=self.span(ch[1]),
                )
            else:
                b.statement(target, indices, loops, expr=self.expr(ch[1]), span=self.span(st))
        elif kind == "amortise":
            word, target, value = ch
            if str(word) != "q":
                raise VemError(
                    "syntax", f"'{word}(...) = ...' is not a statement", self.span(word),
                    "an amortised posterior is written q(z[n]) = enc(x[n])",
                )
            name, indices = self.target(target)
            b.amortise(name, indices, loops, self.expr(value), span=self.span(st))
        elif kind == "for_loop":
            var, arglist, block = ch
            inner = loops + (self.loop(var, arglist, st),)
            b._check_loops(inner)  # bounds are checked even when the body is empty
            for s in _trees(block.children):
                self.statement(s, inner)
        else:  # the grammar has no other statement; fail loudly if it grows one
            raise VemError("syntax", f"unsupported statement '{kind}'", self.span(st))

    def target(self, t: Tree) -> tuple[str, tuple[Expr, ...]]:
        name, exprlist = t.children
        return str(name), self.exprlist(exprlist, 0)

    def loop(self, var: Token, arglist, st: Tree) -> Loop:
        args, kwargs = self.arglist(arglist)
        if kwargs:
            raise VemError("syntax", "range takes no keyword arguments", kwargs[0][2])
        if not args:
            raise VemError("syntax", "range needs a bound, as in range(N)", self.span(st))
        if len(args) > 2:
            raise VemError(
                "unsupported", "range takes one or two bounds; a step is not supported", args[2].span,
                "loops step by 1: write range(N) or range(a, N)",
            )
        start, stop = (Num(0), args[0]) if len(args) == 1 else args
        return Loop(str(var), start, stop, self.span(var))

    def type(self, t: Tree) -> TypeSpec:
        base, bound, shape = t.children
        return TypeSpec(
            str(base), self.exprlist(shape, 0), self.expr(bound) if bound is not None else None, self.span(t)
        )

    def arglist(self, t, depth: int = 0):
        """(positional exprs, ((keyword, expr, span), ...)); positional after keyword is an error."""
        args, kwargs = [], []
        for a in _trees(t.children) if t is not None else ():
            if a.data == "kwarg":
                key, value = a.children
                kwargs.append((str(key), self.expr(value, depth + 1), self.span(key)))
            elif kwargs:
                raise VemError(
                    "syntax", "a positional argument follows a keyword argument", self.span(a),
                    "write keyword arguments last, as in Normal(m, precision = tau)",
                )
            else:
                args.append(self.expr(a, depth + 1))
        return tuple(args), tuple(kwargs)

    def exprlist(self, t, depth: int) -> tuple[Expr, ...]:
        return tuple(self.expr(c, depth + 1) for c in _trees(t.children)) if t is not None else ()

    # ---- expressions ----------------------------------------------------------------
    def expr(self, t: Tree, depth: int = 0) -> Expr:
        span = self.span(t)
        if depth > MAX_NESTING:
            raise VemError(
                "syntax", f"this expression is nested more than {MAX_NESTING} levels deep", span,
                "split it into named parts with '='",
            )
        kind, ch = t.data, t.children
        if kind == "number":
            return Num(self.number(ch[0]), span)
        if kind == "name":
            return Name(str(ch[0]), span)
        if kind in _BINOPS:
            return BinOp(_BINOPS[kind], self.expr(ch[0], depth + 1), self.expr(ch[1], depth + 1), span)
        if kind == "neg":
            return Neg(self.expr(ch[0], depth + 1), span)
        if kind == "index":
            return Index(self.expr(ch[0], depth + 1), self.exprlist(ch[1], depth), span)
        if kind == "call":
            args, kwargs = self.arglist(ch[1], depth)
            if kwargs:
                raise VemError(
                    "syntax", f"{ch[0]} takes no keyword arguments", kwargs[0][2],
                    "keyword arguments select a distribution's parameterisation; functions take positional ones",
                )
            return Call(str(ch[0]), args, span)
        raise VemError("syntax", f"unsupported expression '{kind}'", span)

    def number(self, tok: Token) -> int | float:
        s = str(tok)
        try:
            v = int(s) if s.isdigit() else float(s)
            if not math.isfinite(float(v)):
                raise OverflowError
        except (ValueError, OverflowError):
            raise VemError(
                "syntax", f"the number {s[:24]}{'...' if len(s) > 24 else ''} is out of range", self.span(tok),
                "numbers must fit a double-precision float",
            ) from None
        return v


def _trees(children) -> list[Tree]:
    return [c for c in children if isinstance(c, Tree)]
