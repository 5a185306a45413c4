"""The package's shape (issue #19, point 2): no module over 500 lines, and no comparison of a
family's or a block's name with a string in the compiler or the engine; a family answers a
question through a method or an attribute (``fam.support``, ``fam.gaussian``,
``BlockStructure``), so a new family needs no edit there."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2] / "vemppl"
MAX_LINES = 500
#: Attributes that hold a family's or a block's name (``Block.family``, ``ExpFamily.name``,
#: ``Factor.family``, a definition's distribution ``d.dist``).
NAME_ATTRS = {"name", "family", "dist"}


def test_no_module_is_over_500_lines():
    long = {str(p.relative_to(ROOT.parent)): n for p in ROOT.rglob("*.py")
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines: {long}"


def _is_string(node) -> bool:
    if isinstance(node, ast.Constant):
        return isinstance(node.value, str)
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return bool(node.elts) and all(_is_string(e) for e in node.elts)
    return False


def _reads_a_name(node) -> bool:
    return isinstance(node, ast.Attribute) and node.attr in NAME_ATTRS


def name_comparisons(source: str) -> list[int]:
    """Lines of ``source`` that compare a family's or block's name with a string (``==``,
    ``!=``, ``in``, ``not in``; also a string-method test such as ``.name.startswith(...)``)."""
    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            if any(_reads_a_name(a) for a in sides) and any(_is_string(a) for a in sides):
                out.append(node.lineno)
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and node.func.attr in ("startswith", "endswith") and _reads_a_name(node.func.value)):
            out.append(node.lineno)
    return out


@pytest.mark.parametrize("snippet, found", [
    ("if fam.name == 'Dirichlet': pass", True),
    ("ok = b.family in ('Normal', 'MvNormal')", True),
    ("ok = 'Gamma' != p.family", True),
    ("ok = d.dist not in {'Normal'}", True),
    ("ok = fam.name.startswith('Markov')", True),
    ("ok = fam.support == 'cat'", False),  # a property of the family, not its name
    ("ok = node.kind == 'latent'", False),
    ("ok = b.name == j", False),  # a block looked up by its name, not branched on
])
def test_the_check_finds_a_name_compared_with_a_string(snippet, found):
    assert bool(name_comparisons(snippet)) is found


@pytest.mark.parametrize("layer", ["compiler", "engine"])
def test_no_family_or_block_name_is_compared_with_a_string(layer):
    bad = [f"{p.relative_to(ROOT.parent)}:{line}" for p in sorted((ROOT / layer).rglob("*.py"))
           for line in name_comparisons(p.read_text())]
    assert not bad, "compare a property of the family or block instead: " + ", ".join(bad)
