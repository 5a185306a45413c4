"""The package's import graph is a DAG in the layer order of docs/architecture.md.

Every ``import`` of a vemppl module, at module level or inside a function, is an edge;
each module may import only modules of its own layer or of a layer listed before it, and
the whole graph has no cycle.  Imports inside functions are allowed only in the command
line layer (``cli``, ``cli_verbs``, ``demo``, the package's ``__init__``), which loads its
verbs lazily to start fast; everywhere else an import inside a function would hide an edge.
"""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx

ROOT = Path(__file__).resolve().parents[2] / "vemppl"

#: (layer, module prefixes), lowest first.  A module belongs to the layer of its longest prefix.
LAYERS = [
    ("base", ["vemppl.diagnostics", "vemppl._version", "vemppl._threads", "vemppl._compile_cache",
              "vemppl._jax_setup", "vemppl._prng"]),
    ("families", ["vemppl.families"]),
    ("ir", ["vemppl.ir"]),
    ("frontends", ["vemppl.frontends"]),
    ("plan", ["vemppl.plan"]),
    ("elj", ["vemppl.elj"]),
    ("compiler", ["vemppl.compiler"]),
    ("data", ["vemppl.engine.bind", "vemppl.engine.bind_values", "vemppl.engine.bind_consts", "vemppl.engine.bind_args", "vemppl.data", "vemppl.data_checks", "vemppl.data_scale"]),
    ("engine", ["vemppl.engine", "vemppl.engine.accel"]),
    ("results", ["vemppl.results"]),
    ("api", ["vemppl.api", "vemppl.selection"]),  # select fits once per swept value
    ("render", ["vemppl.render"]),
    ("cli", ["vemppl.cli", "vemppl.cli_verbs", "vemppl.cli_args", "vemppl.cli_data", "vemppl.cli_runtime",
             "vemppl.cli_output", "vemppl.demo", "vemppl"]),
]
LAZY_OK = {"cli"}


def _modules() -> dict[str, Path]:
    out = {}
    for p in ROOT.rglob("*.py"):
        parts = list(p.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = p
    return out


MODULES = _modules()


def layer_of(module: str) -> int:
    best, rank = -1, None
    for i, (_, prefixes) in enumerate(LAYERS):
        for pre in prefixes:
            if (module == pre or module.startswith(pre + ".")) and len(pre) > best:
                best, rank = len(pre), i
    assert rank is not None, f"{module} has no layer: add it to LAYERS (and to docs/architecture.md)"
    return rank


def _targets(module: str, node, is_package: bool) -> list[str]:
    """The vemppl modules an import statement reads (``from x import y``: x.y when y is a module)."""
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
    else:
        if node.level:
            base = module.split(".") if is_package else module.split(".")[:-1]
            base = base[: len(base) - (node.level - 1)]
            prefix = ".".join(base + ([node.module] if node.module else []))
        else:
            prefix = node.module or ""
        names = [f"{prefix}.{a.name}" if f"{prefix}.{a.name}" in MODULES else prefix for a in node.names]
    out = []
    for t in names:
        while t not in MODULES and "." in t:
            t = t.rsplit(".", 1)[0]
        if t in MODULES and t != module:
            out.append(t)
    return out


def import_edges():
    """(importer, imported, line, inside a function) for every vemppl-internal import."""
    edges = []
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        in_function = {
            id(n)
            for fn in ast.walk(tree) if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef))
            for n in ast.walk(fn) if isinstance(n, (ast.Import, ast.ImportFrom))
        }
        for n in ast.walk(tree):
            if isinstance(n, (ast.Import, ast.ImportFrom)):
                for t in _targets(module, n, path.name == "__init__.py"):
                    edges.append((module, t, n.lineno, id(n) in in_function))
    return edges


EDGES = import_edges()


def test_every_module_has_a_layer():
    for module in MODULES:
        layer_of(module)


def test_the_import_graph_has_no_cycle():
    g = nx.DiGraph((a, b) for a, b, _, _ in EDGES)
    cycles = [sorted(c) for c in nx.strongly_connected_components(g) if len(c) > 1]
    assert not cycles, f"import cycles: {cycles}"


def test_each_module_imports_only_its_own_or_lower_layers():
    bad = [f"{a}:{line} imports {b} ({LAYERS[layer_of(a)][0]} -> {LAYERS[layer_of(b)][0]})"
           for a, b, line, _ in EDGES if layer_of(b) > layer_of(a)]
    assert not bad, "\n".join(bad)


def test_imports_inside_functions_only_where_loaded_lazily():
    bad = [f"{a}:{line} imports {b} inside a function" for a, b, line, inside in EDGES
           if inside and LAYERS[layer_of(a)][0] not in LAZY_OK]
    assert not bad, "\n".join(bad)


def test_the_check_sees_edges_of_both_kinds():
    """The parser of this test finds a known module-level edge and a known lazy one."""
    pairs = {(a, b, inside) for a, b, _, inside in EDGES}
    assert ("vemppl.compiler.compile", "vemppl.compiler.conjugacy", False) in pairs
    assert any(a == "vemppl.cli" and inside for a, _, inside in pairs)
