"""Golden bad models: each ``tests/golden/errors/NAME.vem`` fails with the error in ``NAME.expected.json``.

The expected file holds the error's ``kind``, ``line`` and ``column`` and the phrases
its ``message`` (and ``hint``) must contain: the offending name and the key words, so
that rewording elsewhere does not break the suite but losing the point does.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import vemppl

GOLDEN = Path(__file__).parent / "golden" / "errors"
CASES = sorted(GOLDEN.glob("*.vem"))


def test_the_suite_is_large_and_complete():
    assert len(CASES) >= 30
    assert sorted(p.name for p in GOLDEN.glob("*.expected.json")) == sorted(f"{p.stem}.expected.json" for p in CASES)
    kinds = {json.loads(p.with_suffix(".expected.json").read_text())["kind"] for p in CASES}
    assert {"syntax", "undefined-name", "redeclared", "cycle", "shape", "support", "type", "unsupported"} <= kinds


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.stem)
def test_golden_error(path):
    expected = json.loads(path.with_suffix(".expected.json").read_text())
    with pytest.raises(vemppl.VemError) as info:
        vemppl.load(path)
    err = info.value
    assert (err.kind, err.line, err.column) == (expected["kind"], expected["line"], expected["column"]), err.render()
    assert err.file == str(path)
    for phrase in expected["message"]:
        assert phrase in err.message, err.render()
    for phrase in expected.get("hint", []):
        assert phrase in (err.hint or ""), err.render()
    # The rendered error is a code frame: file:line:col, the line itself and a caret under the column.
    head, frame, caret = err.render().splitlines()[:3]
    assert head.startswith(f"{path}:{err.line}:{err.column}: {err.kind}: ")
    source_line = path.read_text().split("\n")[err.line - 1]
    assert frame.endswith(source_line)
    assert caret.index("^") == caret.index("|") + 1 + err.column  # "| " then column - 1 spaces
