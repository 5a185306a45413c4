"""The parser's LALR tables kept beside the compiled programs (frontends/lark_cache.py): read back
only for the same grammar and options, a damaged or foreign entry is rebuilt, an unwritable folder
keeps nothing, and the parser read back parses (and refuses) models as a freshly built Lark does."""

from __future__ import annotations

from pathlib import Path

import pytest
from lark import Lark

from vemppl import _compile_cache
from vemppl.diagnostics import VemError
from vemppl.frontends import lark_cache
from vemppl.frontends import parser as P

ROOT = Path(__file__).resolve().parents[1]
OPTIONS = dict(parser="lalr", lexer="contextual", propagate_positions=True, maybe_placeholders=True)
BAD = ["model m\ndata x: real[3\n", "model m\nconst K = 3 +\n", "model m\ndim N\ndata x: real[N]\n"
       "for n in range(N) { x[n] ~ Normal(0,, 1) }\n"]


@pytest.fixture
def kept(tmp_path, monkeypatch):
    """A folder kept across processes, and a count of the parsers Lark built from the grammar."""
    built = []

    class Counting(Lark):
        def __init__(self, *args, **kwargs):
            built.append(1)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(lark_cache, "Lark", Counting)
    monkeypatch.setattr(_compile_cache, "kept_folder", lambda: str(tmp_path))
    return tmp_path, built


def _outcomes(lark, monkeypatch):
    """What the front end makes of every shipped model and of some wrong ones, with ``lark``."""
    monkeypatch.setattr(P, "_lark", lambda: lark)
    out = [repr(P.load(f).nodes) for f in sorted((ROOT / "models").glob("*.vem"))]
    for text in BAD:
        with pytest.raises(VemError) as err:
            P.parse(text)
        out.append(err.value.render())
    return out


def test_the_kept_parser_is_read_back_and_parses_as_a_built_one(kept, monkeypatch):
    folder, built = kept
    grammar = P.grammar_text()
    first = lark_cache.build(grammar, P._POSTLEX, **OPTIONS)
    assert len(built) == 1 and len(list(folder.glob("vemppl-parser-*.lark"))) == 1
    again = lark_cache.build(grammar, P._POSTLEX, **OPTIONS)
    assert len(built) == 1  # read back, not built
    fresh = Lark(grammar, postlex=P._POSTLEX, **OPTIONS)  # Lark itself, no cache anywhere
    assert _outcomes(again, monkeypatch) == _outcomes(fresh, monkeypatch)
    assert first is not again


def test_another_grammar_or_option_is_built_and_a_bad_entry_rebuilt(kept):
    folder, built = kept
    grammar = P.grammar_text()
    lark_cache.build(grammar, P._POSTLEX, **OPTIONS)
    lark_cache.build(grammar + "\n// an edited grammar\n", P._POSTLEX, **OPTIONS)
    lark_cache.build(grammar, P._POSTLEX, **{**OPTIONS, "propagate_positions": False})
    assert len(built) == 3 and len(list(folder.glob("vemppl-parser-*.lark"))) == 3
    path = lark_cache.path_for(lark_cache.parser_key(grammar, OPTIONS, P._POSTLEX))
    path.write_bytes(path.read_bytes()[:200])  # truncated, as by a crash mid-write without os.replace
    assert lark_cache.build(grammar, P._POSTLEX, **OPTIONS).parse("model m\n") is not None
    assert len(built) == 4 and len(path.read_bytes()) > 200  # rebuilt and written whole again


def test_an_unwritable_folder_keeps_nothing_and_says_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(_compile_cache, "kept_folder", lambda: str(tmp_path / "missing"))
    parser = lark_cache.build(P.grammar_text(), P._POSTLEX, **OPTIONS)
    assert parser.parse("model m\n") is not None and not (tmp_path / "missing").exists()
    monkeypatch.setattr(_compile_cache, "kept_folder", lambda: None)  # no folder kept: built as before
    assert lark_cache.path_for("k") is None
