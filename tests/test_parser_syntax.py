"""The lexical and syntactic details of LANGUAGE.md ("Lexical", "Names", "Loops")."""

from __future__ import annotations

import pytest

import vemppl
import vemppl as vp
from vemppl import VemError, parse
from vemppl.ir import BinOp, Call, Index, Name, Neg, Num

BASE = "model m\ndim N\ndata x: real[N]\n"


def fit_one(stmt: str):
    """The IR of a one-statement model body (after BASE)."""
    return parse(BASE + stmt + "\n")


@pytest.mark.parametrize(
    "text, value",
    [("3", 3), ("0.5", 0.5), ("1e-3", 0.001), ("2.5E+4", 25000.0), ("10e2", 1000.0), ("007", 7)],
)
def test_numbers(text, value):
    ir = parse(f"model m\nconst c = {text}\n")
    assert ir["c"].value == Num(value)
    assert type(ir["c"].value.value) is type(value)


def test_negative_literal_is_the_dsl_negation():
    ir = parse("model m\nconst c = -3\nconst d = -0.5\n")
    m = vp.Model("m")
    m.const("c", -3)
    m.const("d", -0.5)
    assert ir == m.ir and ir["c"].value == Neg(Num(3))


def test_separators_comments_and_continuations():
    a = parse(
        "# leading comment\n\n model m # the name\n"
        "dim N;   data x: real[N] ;;\n"
        "mu ~ Normal(0,   # a comment inside the call\n"
        "            1)\n"
        "for n in range(N)\n{\n\n x[n] ~ Normal(mu,\n 1) ; }\n\n# trailing\n"
    )
    b = parse("model m\ndim N\ndata x: real[N]\nmu ~ Normal(0, 1)\nfor n in range(N) { x[n] ~ Normal(mu, 1) }")
    assert a == b


def test_crlf_and_tabs():
    text = "model m\r\ndim N\r\ndata x: real[N]\r\n\tfor n in range(N) {\r\n\t\tx[n] ~ Normal(mu, 1)\r\n}\r\n"
    with pytest.raises(VemError) as err:
        parse(text, "crlf.vem")
    # 'mu' is undefined: line 5, column 17 counting each tab as one column.
    assert (err.value.line, err.value.column) == (5, 17)
    assert err.value.file == "crlf.vem"
    assert "x[n] ~ Normal(mu, 1)" in err.value.render() and "\r" not in err.value.render()
    ok = parse(text.replace("mu, 1", "0, 1"))
    assert ok == parse("model m\ndim N\ndata x: real[N]\nfor n in range(N) { x[n] ~ Normal(0, 1) }")


def test_spans_point_into_the_source():
    text = BASE + "mu ~ Normal(0, 1)\nfor n in range(N) {\n    x[n] ~ Normal(mu, precision = 2)\n}\n"
    ir = parse(text, "s.vem")
    (d,) = ir["x"].defs
    assert (d.span.line, d.span.column, d.span.file) == (6, 5, "s.vem")
    assert d.span.source == text
    loc = d.arg("loc")
    assert (loc.span.line, loc.span.column, loc.span.end_column) == (6, 19, 21)
    assert (d.dist_span.line, d.dist_span.column) == (6, 12)
    assert ir["x"].span.line == 3 and ir["mu"].defs[0].loops == ()


def test_nested_loops_and_call_indexing():
    ir = parse(
        "model m\ndim N, D, K\ndata x: real[N, D]\n"
        "for k in range(K) { e[k] = eye(K)[k] }\n"
        "for n in range(N) {\n  for j in range(D) { x[n, j] ~ Normal(e[0, 1] * 2, 1) }\n}\n"
    )
    (d,) = ir["x"].defs
    assert [lp.var for lp in d.loops] == ["n", "j"] and d.indices == (Name("n"), Name("j"))
    assert ir["e"].defs[0].expr == Index(Call("eye", (Name("K"),)), (Name("k"),))


def test_precedence_matches_python():
    ir = fit_one("a = -2 ** 2 + 3 * ones(N) @ x - 6 / 7 ** 8 ** 9")
    e = ir["a"].defs[0].expr
    ones = Call("ones", (Name("N"),))
    assert e == BinOp(
        "-",
        BinOp("+", Neg(BinOp("**", Num(2), Num(2))), BinOp("@", BinOp("*", Num(3), ones), Name("x"))),
        BinOp("/", Num(6), BinOp("**", Num(7), BinOp("**", Num(8), Num(9)))),
    )


def test_keywords_may_not_name_nodes_but_types_are_names():
    with pytest.raises(VemError, match="reserved word"):
        parse("model m\ndata data: real\n")
    with pytest.raises(VemError, match="reserved word"):
        vp.Model("m").dim("for")
    # Type names are ordinary words: a node may be called 'real'.
    assert parse("model m\nreal ~ Normal(0, 1)\n")["real"].kind == "latent"


def test_model_text_is_never_evaluated():
    for text in (
        "model m\n__import__('os').system('echo hacked')\n",
        "model m\nx = __import__('os')\n",
        "model m\nx = eval(1)\n",
        "model m\nx ~ Normal(open(0), 1)\n",
    ):
        with pytest.raises(VemError) as err:
            parse(text)
        assert err.value.kind in ("syntax", "undefined-name")


def test_parse_accepts_bytes_and_strips_a_bom():
    assert parse(b"\xef\xbb\xbfmodel m\ndim N\n") == parse("model m\ndim N\n")
    with pytest.raises(VemError):
        parse(3)


def test_load_reports_io_errors(tmp_path):
    with pytest.raises(VemError) as err:
        vemppl.load(tmp_path / "missing.vem")
    assert err.value.kind == "io" and "missing.vem" in err.value.message


def test_declaration_in_a_loop_is_refused_in_words():
    with pytest.raises(VemError, match="top level") as err:
        parse(BASE + "for n in range(N) {\n  dim K\n}\n")
    assert (err.value.line, err.value.column) == (5, 3)


def test_errors_name_what_was_expected_in_words():
    with pytest.raises(VemError) as err:
        parse(BASE + "mu ~ Normal(0 1)\n")
    msg = err.value.message
    assert "')'" in msg and "','" in msg and "RPAR" not in msg and "COMMA" not in msg
    assert (err.value.line, err.value.column) == (4, 15)
