"""Source spans, the one error type of the project, and the code-frame renderer.

Every layer (parser, IR validation, compiler, data binding, engine, CLI) raises
:class:`VemError`.  An error is data: a ``kind`` from a closed set, a message, an
optional :class:`Span` into the model text and an optional hint.  It is rendered
in one place, :meth:`VemError.render`, as a code frame in the style of stanc3::

    gmm.vem:12:20: undefined-name: 'mu2' is not defined
       12 |     x[n] ~ MvNormal(mu2[z[n]], precision = Lam[z[n]])
          |                     ^^^
    hint: did you mean 'mu'?
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field

#: The closed set of error kinds (LANGUAGE.md, "Errors").
KINDS = (
    "syntax",
    "undefined-name",
    "redeclared",
    "cycle",
    "shape",
    "support",
    "type",
    "unsupported",
    "data",
    "io",
    "resource",
)


@dataclass(frozen=True)
class Span:
    """A region of model text: 1-based ``line:col`` (a tab counts as one column)."""

    line: int
    column: int
    end_line: int | None = None
    end_column: int | None = None
    file: str | None = None
    source: str | None = field(default=None, repr=False, compare=False)

    def __str__(self) -> str:
        return f"{self.file or '<model>'}:{self.line}:{self.column}"


class VemError(Exception):
    """The single error type of vemppl.

    Attributes mirror LANGUAGE.md: ``kind``, ``message``, ``span`` (file, line,
    column), ``hint``.  ``str(err)`` is the rendered code frame.
    """

    def __init__(self, kind: str, message: str, span: Span | None = None, hint: str | None = None) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown error kind {kind!r}")
        self.kind = kind
        self.message = message
        self.span = span
        self.hint = hint
        super().__init__(self.render())

    # Convenience accessors used by `vemppl check --json` and the golden tests.
    @property
    def file(self) -> str | None:
        return self.span.file if self.span else None

    @property
    def line(self) -> int | None:
        return self.span.line if self.span else None

    @property
    def column(self) -> int | None:
        return self.span.column if self.span else None

    def with_span(self, span: Span | None) -> "VemError":
        """The same error located at ``span`` (if it had none)."""
        if self.span is not None or span is None:
            return self
        return VemError(self.kind, self.message, span, self.hint)

    def to_dict(self) -> dict:
        return {
            "kind": self.kind,
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "message": self.message,
            "hint": self.hint,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    def render(self) -> str:
        head = f"{self.kind}: {self.message}"
        if self.span is None:
            out = [f"error: {head}"]
        else:
            out = [f"{self.span}: {head}"]
            frame = _code_frame(self.span)
            if frame:
                out.append(frame)
        if self.hint:
            out.append(f"hint: {self.hint}")
        return "\n".join(out)


def _code_frame(span: Span) -> str:
    if not span.source:
        return ""
    # Lines end at "\n" only, as in the lexer (splitlines would also split at \f, \x1c, ...).
    lines = span.source.split("\n")
    if not (1 <= span.line <= len(lines)):
        return ""
    text = lines[span.line - 1].rstrip("\r").replace("\t", " ")
    if len(text) > 200:  # keep frames readable on minified or junk input
        start = max(0, span.column - 80)
        text = ("..." if start else "") + text[start : start + 160]
        col = span.column - start + (3 if start else 0)
    else:
        col = span.column
    width = 1
    if span.end_line == span.line and span.end_column and span.end_column > span.column:
        width = min(span.end_column - span.column, len(text) - col + 1)
    gutter = f"{span.line:>5} | "
    pad = " " * (len(gutter) - 2) + "| "
    return f"{gutter}{text}\n{pad}{' ' * max(col - 1, 0)}{'^' * max(width, 1)}"


def did_you_mean(name: str, candidates) -> str | None:
    """A 'did you mean' hint for a misspelt name, or None."""
    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else None


#: NumPy's words for an array larger than any machine's memory: an allocation, not a bug.
TOO_BIG = ("Maximum allowed dimension exceeded", "array is too big")


def resource_error(exc: BaseException) -> VemError | None:
    """The ``resource`` VemError for running out of memory (``MemoryError``, XLA's
    ``RESOURCE_EXHAUSTED``, NumPy refusing an array too large to allocate), or None for
    any other exception: the user can fix it (fewer rows at a time, smaller sizes)."""
    text = str(exc)
    too_big = isinstance(exc, ValueError) and any(t in text for t in TOO_BIG)
    if not (isinstance(exc, MemoryError) or too_big or "RESOURCE_EXHAUSTED" in text[:2000]):
        return None
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return VemError("resource", "out of memory while fitting" + (f" ({lines[0][:300]})" if lines else ""),
                    hint="fit fewer rows at a time (batch_size=), lower the sizes, or use a larger machine")

