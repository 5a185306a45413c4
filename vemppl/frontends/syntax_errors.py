"""Syntax errors in words: Lark's exceptions (and the reader's own limits) as ``VemError``.

A syntax error names what was expected and what was found in human words ("')'",
"a name", "an expression", "the end of the statement"), never Lark's terminal names,
and points at the offending character with a code frame.  Common mistakes get a hint,
recognised in the manner of Lark's ``match_examples`` (and stanc3's labelled parser
states): each labelled bad example is parsed once, and an error that stops the parser
in the same LALR state is given that example's hint.  Unlike ``match_examples``, only
the state number is compared, not the depth of the parse stack, so a mistake is
recognised in the first statement, in a later one and inside a loop alike.
"""

from __future__ import annotations

import re

from lark import Token
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken

from ..diagnostics import Span, VemError

_OPEN = {"_LPAR": "(", "_LSQB": "[", "_LBRACE": "{"}
_CLOSE = {"_RPAR": "_LPAR", "_RSQB": "_LSQB", "_RBRACE": "_LBRACE"}
_EXPR_START = frozenset({"NAME", "NUMBER", "_LPAR", "_MINUS"})
_OPERATORS = frozenset({"_PLUS", "_MINUS", "_STAR", "_SLASH", "_AT", "_POW"})
_DECLS = frozenset({"_DIM", "_CONST", "_DATA", "_PARAM"})
_WORDS = {
    "NAME": "a name",
    "NUMBER": "a number",
    "_SEP": "the end of the statement",
    "$END": "the end of the file",
}

_STATEMENT = "a statement is 'NAME ~ Distribution(...)' or 'NAME = expression'"
_BRACES = "a loop body is written in braces: for i in range(N) { ... }"
#: Labelled mistakes: each example must fail, and fail in the state the label describes.
_TYPE_SHAPE = ("a type has one [shape] list, its sizes in order (real[N, D], cat(K)[N]); an array of simplexes or of "
               "matrices puts the array's sizes first and the vector's or matrix's last: simplex[N, K], spd[N, D]")
#: Hints given only for the token of their examples (a second '[' after a type), not for
#: anything else found in the same parser state.
_TOKEN_ONLY = {_TYPE_SHAPE}

_EXAMPLES: dict[str, list[str]] = {
    "the right of '~' is a distribution, as in Normal(0, 1)": [
        "model m\nx ~ 3", "model m\nx ~ (a)", "model m\nx ~ -a",
    ],
    "the right of '~' is a single distribution; to transform a random variable, "
    "give it a name with '~' and use that name in an '=' statement": [
        "model m\nx ~ Normal(0, 1) + 2", "model m\nx ~ Normal(0, 1) * 2", "model m\nx ~ Normal(0, 1) x",
    ],
    _STATEMENT: ["model m\nx Normal(0, 1)", "model m\nx[i] Normal(0, 1)", "model m\nx 3"],
    "a declaration gives a type after ':', as in 'data x: real[N]' or 'param w: real[D] = 0'": [
        "model m\ndata x real[N]", "model m\nparam w real[N]", "model m\ndata x = 3",
    ],
    "a const is written 'const K = 3' or 'const K: int = 3'": ["model m\nconst K 3", "model m\nconst K: int 3"],
    _BRACES: [
        "model m\nfor i in range(N) x[i] ~ Normal(0, 1)", "model m\nfor i in range(N): x[i] ~ Normal(0, 1)",
    ],
    "loops are written 'for i in range(N)' or 'for i in range(a, N)'": [
        "model m\nfor i in N {}", "model m\nfor i = 1 {}", "model m\nfor i range(N) {}",
    ],
    "a loop is written 'for i in range(N) { ... }' with a name for the loop variable": [
        "model m\nfor (i in range(N)) {}", "model m\nfor 1 in range(N) {}",
    ],
    "a model file starts with 'model NAME', e.g. 'model gmm'": ["model\n", "model 3"],
    "a type is a name such as real, pos, cat(K) or simplex[K], with an optional [shape]": [
        "model m\ndata x: 3", "model m\ndata x: [N]",
    ],
    _TYPE_SHAPE: [
        "model m\ndata x: simplex[K][N]", "model m\nparam x: simplex[K][N]", "model m\nconst x: real[K][N] = 0",
    ],
}


def from_lark(exc: UnexpectedInput, text: str, filename: str | None, lark, open_brackets: list[Token]) -> VemError:
    """The VemError for a Lark parse error; ``open_brackets`` are the brackets open at the error."""
    if isinstance(exc, UnexpectedCharacters):
        return _unexpected_character(exc, text, filename)
    if not isinstance(exc, UnexpectedToken):  # UnexpectedEOF: not raised by LALR, kept for safety
        return VemError("syntax", "unexpected end of the file", _eof_span(text, filename))
    tok = exc.token
    span = _eof_span(text, filename) if tok.type == "$END" else _token_span(tok, filename, text)
    expected = set(exc.accepts or exc.expected)
    unclosed = _unclosed(tok, text, open_brackets)
    if unclosed is not None:
        closer = {"(": ")", "[": "]", "{": "}"}[unclosed.value]
        where = "of the loop " if unclosed.value == "{" else ""
        return VemError(
            "syntax",
            f"the '{unclosed.value}' {where}is never closed",
            _token_span(unclosed, filename, text),
            f"add '{closer}' to close it"
            + ("" if tok.type == "$END" else f"; the statement runs on to line {tok.line}"),
        )
    if tok.type in _CLOSE and not any(b.type == _CLOSE[tok.type] for b in open_brackets):
        opener = _OPEN[_CLOSE[tok.type]]
        return VemError("syntax", f"found '{tok.value}' with no '{opener}' to close", span, "remove it")
    found = _found(tok)
    if expected == {"_MODEL"}:
        return VemError(
            "syntax",
            f"a model file starts with 'model NAME'; found {found}",
            span,
            "add a first line such as 'model mymodel'",
        )
    if _statement_words(tok, text)[:1] == ["model"]:
        at = text.index("model", _statement_start(text, tok.start_pos))
        line, col = position(text, at)
        return VemError(
            "syntax",
            "a model file has one 'model NAME' line, the first",
            Span(line, col, line, col + 5, filename, text),
            "remove this line, or split the file into two models",
        )
    words = describe(expected, lark)
    return VemError("syntax", f"expected {words}; found {found}", span, _hint(exc, tok, expected, text, lark))


def _hint(exc, tok, expected, text, lark) -> str | None:
    label = _labels(lark).get((exc.state.position, tok.type)) if exc.state is not None else None
    if label is None and exc.state is not None:
        label = _labels(lark).get((exc.state.position, None))
    if label is not None:
        return label
    number = re.search(r"[0-9]+(\.[0-9]+)?\Z", text[: tok.start_pos or 0]) if tok.type == "NAME" else None
    if number:  # '2x': a number glued to a name
        return f"write '{number.group()} * {tok.value}' for a product"
    if tok.type == "_SEP" and expected & _EXPR_START:
        return "an expression continues on the next line only inside ( ) or [ ]"
    if "_LBRACE" in expected:
        return _BRACES
    return None


def _statement_words(tok: Token, text: str) -> list[str]:
    """The words before ``tok`` on its line (the contextual lexer reads a misplaced keyword as a name)."""
    if tok.type == "$END" or tok.start_pos is None:
        return []
    return text[_statement_start(text, tok.start_pos) : tok.start_pos].split()


def _statement_start(text: str, pos: int) -> int:
    return max(text.rfind("\n", 0, pos), text.rfind(";", 0, pos)) + 1


def _labels(lark) -> dict:
    """(LALR state, token type) → hint, and (state, None) → hint, from :data:`_EXAMPLES` (cached)."""
    cached = getattr(lark, "_vem_labels", None)
    if cached is not None:
        return cached
    out: dict = {}
    for label, examples in _EXAMPLES.items():
        for ex in examples:
            try:
                lark.parse(ex)
            except UnexpectedToken as ut:
                out.setdefault((ut.state.position, ut.token.type), label)
                if label not in _TOKEN_ONLY:
                    out.setdefault((ut.state.position, None), label)
            except UnexpectedInput:
                pass
    lark._vem_labels = out
    return out


def describe(expected, lark) -> str:
    """Terminal names → "an expression, ')' or ','"."""
    names = set(expected)
    if "_SEP" in names:
        names.discard("$END")
    if "_LBRACE" in names:
        names.discard("_SEP")  # only a line break before a loop's '{', not the end of a statement
    words = []
    for group, word in ((_EXPR_START, "an expression"), (_DECLS, "a declaration")):
        if group <= names:
            names -= group
            words.append(word)
    if {"_PLUS", "_STAR"} <= names:
        names -= _OPERATORS
        words.append("an operator")
    order = {t.name: i for i, t in enumerate(lark.terminals)}
    for n in sorted(names, key=lambda n: (n in ("_SEP", "$END"), order.get(n, len(order)), n)):
        words.append(_word(n, lark))
    if len(words) == 1:
        return words[0]
    return ", ".join(words[:-1]) + " or " + words[-1]


def _word(name: str, lark) -> str:
    if name in _WORDS:
        return _WORDS[name]
    try:
        pattern = lark.get_terminal(name).pattern
    except KeyError:
        return name.lower().strip("_")
    return f"'{pattern.value}'" if pattern.type == "str" else name.lower().strip("_")


def _found(tok: Token) -> str:
    if tok.type == "$END":
        return "the end of the file"
    if tok.type == "_SEP":
        return "the end of the line" if tok.value == "\n" else "';'"
    if tok.type == "NAME":
        return f"the name '{tok.value}'"
    if tok.type == "NUMBER":
        return f"the number {tok.value}"
    return f"'{tok.value}'"


def _unclosed(tok: Token, text: str, open_brackets: list[Token]) -> Token | None:
    """The bracket the error is really about, when the statement ran past its end."""
    if not open_brackets:
        return None
    last = open_brackets[-1]
    if tok.type == "$END":
        return last
    if last.value == "{" or tok.line <= last.line:
        return None
    # A token that starts a line after an open ( or [ is most likely the next statement.
    line_start = text.rfind("\n", 0, tok.start_pos) + 1
    return last if not text[line_start : tok.start_pos].strip() else None


_CHAR_HINTS = {
    "<": "write '~' for a random variable and '=' for a deterministic node",
    ".": "write numbers with digits on both sides of the point, as in 0.5",
    '"': "the language has no strings",
    "'": "the language has no strings",
}


def _unexpected_character(exc: UnexpectedCharacters, text: str, filename: str | None) -> VemError:
    ch = text[exc.pos_in_stream] if 0 <= exc.pos_in_stream < len(text) else ""
    shown = ch if ch.isprintable() else repr(ch).strip("'")
    hint = _CHAR_HINTS.get(ch)
    if hint is None and ch in "!&|>%^$?\\`":
        hint = "the operators are + - * / @ ** and unary -"
    elif hint is None and not ch.isascii():
        hint = "names and operators are ASCII; non-ASCII text may appear only in comments"
    span = Span(exc.line, exc.column, exc.line, exc.column + 1, filename, text)
    return VemError("syntax", f"unexpected character '{shown}'", span, hint)


def _token_span(tok: Token, filename, text) -> Span:
    end_col = tok.end_column if tok.end_line == tok.line else None
    return Span(tok.line, tok.column, tok.line, end_col, filename, text)


def _eof_span(text: str, filename) -> Span:
    """Just after the last non-blank character of the text."""
    body = text.rstrip()
    line = body.count("\n") + 1
    col = len(body) - (body.rfind("\n") + 1) + 1
    return Span(line, col, file=filename, source=text)


# ---- the reader's own limits -------------------------------------------------------------
def position(text: str, index: int) -> tuple[int, int]:
    """1-based (line, column) of ``text[index]``; a tab counts as one column."""
    line = text.count("\n", 0, index) + 1
    return line, index - (text.rfind("\n", 0, index) + 1) + 1


def nesting_error(text: str, index: int, limit: int, filename) -> VemError:
    line, col = position(text, index)
    return VemError(
        "syntax",
        f"brackets are nested more than {limit} deep",
        Span(line, col, line, col + 1, filename, text),
        "split the expression into named parts with '='",
    )


def too_large(size: int, limit: int, filename) -> VemError:
    return VemError(
        "syntax",
        f"the model text is {size / 1024:.0f} KB; model files are limited to {limit // 1024} KB",
        Span(1, 1, file=filename),
        "write repeated structure with for loops; is this the right file?",
    )


def decode_error(raw: bytes, exc: UnicodeDecodeError, filename) -> VemError:
    """A non-UTF-8 file: the position of its first bad byte."""
    prefix = raw[: exc.start].decode("utf-8")
    line, col = position(prefix, len(prefix))
    shown = raw.decode("utf-8", errors="replace")
    return VemError(
        "syntax",
        f"the file is not valid UTF-8: byte 0x{raw[exc.start]:02x} at line {line}, column {col}",
        Span(line, col, line, col + 1, filename, shown),
        "save the file as UTF-8",
    )
