"""Hostile and unusual input ends in a clear VemError quickly: no hang, RecursionError or traceback."""

from __future__ import annotations

import random
import threading
import time

import pytest

import vemppl
from vemppl import VemError, parse
from vemppl.frontends.parser import MAX_NESTING, MAX_SOURCE


def fails_quickly(text, seconds=30.0, **kw) -> VemError:
    # A guard against a hang or an exponential blow-up on pathological input, not a speed claim:
    # the bound is far above the ~0.1 s these take (2 s failed at 2.001 s on a loaded 2-core CI run).
    start = time.perf_counter()
    with pytest.raises(VemError) as info:
        parse(text, **kw)
    assert time.perf_counter() - start < seconds
    assert info.value.render()
    return info.value


def test_one_megabyte_of_random_bytes():
    raw = random.Random(0).randbytes(1 << 20)
    err = fails_quickly(raw)
    assert err.kind == "syntax"


def test_one_megabyte_of_plausible_junk_hits_the_size_limit():
    err = fails_quickly("model m\n" + "x = 1 + 2\n" * (1 << 17))
    assert "limited to" in err.message and (err.line, err.column) == (1, 1)
    junk = "".join(random.Random(1).choices("abc ~=()[]{}\n;#0.5", k=1 << 20))
    fails_quickly(junk)


def test_large_file_is_refused_before_it_is_read_whole(tmp_path):
    p = tmp_path / "big.vem"
    p.write_bytes(b"model m\n" + b"# padding\n" * (MAX_SOURCE // 5))
    start = time.perf_counter()
    with pytest.raises(VemError, match="limited to"):
        vemppl.load(p)
    assert time.perf_counter() - start < 1.0


@pytest.mark.parametrize("open_, close", [("(", ")"), ("[", "]")])
def test_brackets_nested_a_thousand_deep(open_, close):
    err = fails_quickly("model m\nx = " + open_ * 1000 + "1" + close * 1000 + "\n")
    assert err.kind == "syntax" and f"nested more than {MAX_NESTING} deep" in err.message
    assert (err.line, err.column) == (2, 5 + MAX_NESTING)


def test_loops_nested_a_thousand_deep():
    body = "".join(f"for i{k} in range(N) {{ " for k in range(1000)) + "x ~ Normal(0, 1)" + " }" * 1000
    err = fails_quickly("model m\ndim N\n" + body + "\n")
    assert "nested more than" in err.message


def test_operators_chained_past_the_depth_limit():
    err = fails_quickly("model m\nx = " + "-" * 1000 + "1\n")
    assert "nested more than" in err.message
    err = fails_quickly("model m\nx = " + "+".join(["1"] * 5000) + "\n")
    assert "nested more than" in err.message


def test_the_deepest_allowed_expression_still_works_end_to_end():
    depth = MAX_NESTING - 10
    text = "model m\nx = " + "-" * depth + "1\ny = " + "(" * depth + "x" + ")" * depth + "\n"
    ir = parse(text)
    assert parse(vemppl.to_text(ir)) == ir and ir.shapes["x"] == ()


def test_non_utf8_bytes_give_the_position_of_the_first_bad_byte(tmp_path):
    p = tmp_path / "latin1.vem"
    p.write_bytes("model m\n# café ok\nx ~ Normal(0, 1) # caf".encode() + b"\xe9\xff\n")
    with pytest.raises(VemError) as info:
        vemppl.load(p)
    err = info.value
    assert err.kind == "syntax" and "UTF-8" in err.message and "0xe9" in err.message
    assert (err.file, err.line, err.column) == (str(p), 3, 23)
    assert "x ~ Normal(0, 1)" in err.render()
    with pytest.raises(VemError, match="UTF-8"):
        parse(b"model m\n\xc3")


def test_mixed_crlf_and_tabs_parse_when_the_model_is_valid():
    mixed = "model m\r\n\tdim N\n data x: real[N]\r\n\tfor n in range(N) {\r\n\t\tx[n] ~ Normal(0,\t1)\n\t}\r\n"
    assert parse(mixed) == parse("model m\ndim N\ndata x: real[N]\nfor n in range(N) { x[n] ~ Normal(0, 1) }")


def test_control_characters_and_unicode_separators_are_syntax_errors():
    for ch in ("\x00", "\x0c", "\x1c", "\u2028", "\x85", "µ"):
        err = fails_quickly(f"model m\ndim N\nx = 1 {ch} 2\n")
        assert (err.line, err.column) == (3, 7), repr(ch)


def test_parsing_is_thread_safe():
    texts = {k: f"model m{k}\nx{k} ~ Normal(0, 1{')' if k % 2 else ''}\ny = 2\n" for k in range(8)}
    results = {}

    def run(k):
        try:
            results[k] = parse(texts[k]).name
        except VemError as err:
            results[k] = err.message

    threads = [threading.Thread(target=run, args=(k,)) for k in texts for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for k, got in results.items():
        assert got == (f"m{k}" if k % 2 else "the '(' is never closed"), (k, got)
