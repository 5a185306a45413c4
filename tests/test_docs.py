"""Docs check: every ``vem`` code block in README.md and docs/ parses; the README's and the
getting-started guide's Python runs as written; the README keeps its one-screen promises (its
test command is CI's, its benchmark figures are in benchmarks/results.md); every public name
is in the API reference with a docstring; every model in models/ appears in the gallery."""

import importlib.util
import re
from pathlib import Path

import numpy as np
import pytest

import vemppl as vp

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCKS = [
    (doc.name, i, block)
    for doc in DOCS
    for i, block in enumerate(re.findall(r"```vem\n(.*?)```", doc.read_text(), flags=re.S))
]
README = (ROOT / "README.md").read_text()


def pyproject() -> dict:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    return tomllib.loads((ROOT / "pyproject.toml").read_text())
API = ROOT / "docs" / "api"


def code_blocks(text: str, lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", text, flags=re.S)


@pytest.mark.parametrize("doc,i,block", BLOCKS, ids=[f"{d}-{i}" for d, i, _ in BLOCKS])
def test_vem_blocks_parse(doc, i, block):
    vp.parse(block, filename=f"{doc}#block{i}")


def test_gallery_lists_every_model():
    gallery = (ROOT / "docs/gallery.md").read_text()
    for path in (ROOT / "models").glob("*.vem"):
        assert f"## {path.stem}" in gallery, f"{path.name} missing from docs/gallery.md (run docs/build_gallery.py)"
        assert (ROOT / "docs/gallery" / f"{path.stem}.png").exists()


def test_gallery_is_current():
    """docs/gallery.md is what docs/build_gallery.py gives today: every model's plan and
    derived updates render (a crash in the VAE's updates went unnoticed until rebuilt)."""
    spec = importlib.util.spec_from_file_location("build_gallery", ROOT / "docs/build_gallery.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert (ROOT / "docs/gallery.md").read_text() == mod.gallery_text(), "run python docs/build_gallery.py"


# --- the README: one screen, no diary, the two commands -------------------------------------

def test_readme_fits_one_screen_without_a_diary():
    lines = README.splitlines()
    assert len(lines) <= 130, f"README.md has {len(lines)} lines; move detail to docs/ or benchmarks/"
    assert not re.search(r"\b20\d\d-\d\d-\d\d\b", README), "a dated line in README.md: history belongs in the git log"
    assert not re.search(r"\bsession\b", README, flags=re.I), "README.md speaks of a session: a diary"
    assert max(len(line) for line in lines) <= 200, "a README line over 200 characters"


def test_docs_spell_fit_options_as_algorithm_objects():
    """The options fit() took before vp.cavi(...)/vp.svi(...) warn as deprecated: no page
    teaches them (a reader copying `fit(..., batch_size=)` would get a DeprecationWarning)."""
    from vemppl.engine.algorithms import LEGACY

    old = re.compile(rf"\bfit\((?:[^()]|\([^()]*\))*?\b({'|'.join(LEGACY)})=")
    found = [(doc.name, m.group(0)) for doc in [*DOCS, ROOT / "benchmarks" / "README.md"]
             for m in old.finditer(doc.read_text())]
    assert not found, found


def test_readme_commands_are_ci_and_demo():
    """The test command is the one CI runs (.ci/run calls it), and it exists; the demo command
    sets up a venv, installs the checkout and runs the demo verb the CLI has."""
    bash = code_blocks(README, "bash")
    assert "bash .ci/test" in [b.strip() for b in bash], "README's test command must be `bash .ci/test`"
    ci_run = [ln.strip() for ln in (ROOT / ".ci/run").read_text().splitlines() if not ln.lstrip().startswith("#")]
    assert "bash .ci/test" in ci_run, ".ci/run must run the README's test command"
    assert (ROOT / ".ci/test").exists()
    demo = [b.strip() for b in bash if "vemppl demo" in b]
    assert demo == ["python3 -m venv .venv && . .venv/bin/activate && pip install -e . && vemppl demo"]
    assert (ROOT / "vemppl/demo.py").exists()
    scripts = pyproject()["project"]["scripts"]
    assert "vemppl" in scripts


def test_readme_links_resolve():
    for target in re.findall(r"\]\(([^)#]+)\)", README):
        if "://" not in target:
            assert (ROOT / target).exists(), f"README.md links to missing {target}"


def _readme_bench_rows() -> list[list[str]]:
    section = README.split("## Benchmarks", 1)[1].split("\n## ", 1)[0]
    rows = [ln for ln in section.splitlines() if ln.startswith("| ") and not ln.startswith("| task")]
    return [[c.strip() for c in ln.strip("|").split("|")] for ln in rows if not set(ln) <= set("|-: ")]


def test_readme_benchmark_summary_copies_results_defaults_md():
    """Five rows, in the order of benchmarks/results_defaults.md's tasks, each figure (vemppl's and
    the peer's seconds, the quality pair) found in that task's rows, and a link to the full tables."""
    rows = _readme_bench_rows()
    assert len(rows) == 5
    results = (ROOT / "benchmarks/results_defaults.md").read_text().replace("−", "-")
    by_task: dict = {}
    for ln in results.splitlines():
        cells = [c.strip() for c in ln.strip("|").split("|")]
        if ln.startswith("| ") and len(cells) > 3 and cells[0] not in ("task", "---"):
            by_task.setdefault(cells[0], []).append(ln)
    assert list(by_task) == ["lda", "bmm", "fa", "hmm", "process"]
    for row, (task, lines) in zip(rows, by_task.items()):
        figures = re.findall(r"\d+\.\d+", " ".join(row[2:]).replace("−", "-"))
        assert len(figures) >= 3, row
        block = "\n".join(lines)
        missing = [f for f in figures if not re.search(rf"(?<![\d.]){re.escape(f)}(?![\d])", block)]
        assert not missing, f"README benchmark row {row[0]!r}: {missing} not in the {task} rows of results_defaults.md"
    assert "](benchmarks/README.md)" in README


# --- the README's and getting-started's Python, as written ----------------------------------

def test_readme_python_is_the_vem_model_and_runs(tmp_path, monkeypatch):
    """The Python block builds the IR the ``vem`` block parses to, and runs to the end (a fit,
    a prediction, saved results that load back)."""
    vem, = code_blocks(README, "vem")
    py, = code_blocks(README, "python")
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(compile(py, "README.md#python", "exec"), scope)
    assert scope["m"].ir == vp.parse(vem)
    assert vp.parse(vp.to_text(scope["m"])) == scope["m"].ir
    fit = scope["fit"]
    assert np.isfinite(fit.elbo)
    back = vp.load_results(tmp_path / "gmm-results")
    np.testing.assert_allclose(back.elbo_trace, fit.elbo_trace)


def test_getting_started_python_runs(monkeypatch):
    text = (ROOT / "docs/getting-started.md").read_text()
    blocks = code_blocks(text, "python")
    assert blocks
    monkeypatch.chdir(ROOT)  # it reads models/gmm.vem
    for i, block in enumerate(blocks):
        exec(compile(block, f"getting-started.md#python{i}", "exec"), {})


def test_language_python_blocks_run(tmp_path, monkeypatch):
    """docs/language.md's "Fitting from Python" runs as written (it read ``fit.params["W"]`` of
    a GMM, a KeyError, and an undefined ``X``), and its DSL GMM builds the IR of its text GMM.  (After
    the README's block: the same fit's shapes and options, so its programs are reused.)"""
    text = (ROOT / "docs/language.md").read_text()
    fitting, = [b for b in code_blocks(text, "python") if "vemppl.load(" in b]
    dsl, = [b for b in code_blocks(text, "python") if 'vp.Model("gmm")' in b]
    (tmp_path / "models").mkdir()
    (tmp_path / "models/gmm.vem").write_text((ROOT / "models/gmm.vem").read_text())
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(compile(fitting, "language.md#fitting", "exec"), scope)
    assert scope["fit"].posterior["mu"].mean.shape == (3, 2)
    assert vp.load_results(tmp_path / "results").elbo == scope["fit"].elbo
    scope = {}
    exec(compile(dsl, "language.md#dsl", "exec"), scope)
    gmm, = [b for b in code_blocks(text, "vem") if b.startswith("# gmm.vem")]
    assert scope["m"].ir == vp.parse(gmm)


def test_getting_started_commands_run(tmp_path, monkeypatch, capsys):
    """The guide's shell session, line by line, in a scratch folder holding the models: the
    ``python -c`` line run as Python, each ``vemppl`` line through the CLI's ``main``, each
    exiting 0 (``render`` only where graphviz's ``dot`` is installed)."""
    import shutil
    import shlex

    from vemppl.cli import main

    text = (ROOT / "docs/getting-started.md").read_text()
    session = code_blocks(text, "bash")[1]
    shutil.copytree(ROOT / "models", tmp_path / "models")
    monkeypatch.chdir(tmp_path)
    ran = []
    for line in session.splitlines():
        words = shlex.split(line, comments=True)
        if words[:2] == ["python", "-c"]:
            exec(words[2], {})
        elif words[0] == "vemppl":
            if words[1] == "render" and shutil.which("dot") is None:
                continue
            assert main(words[1:]) == 0, line
            ran.append(words[1])
        else:
            raise AssertionError(f"unexpected line in getting-started's session: {line}")
    assert {"check", "fit", "updates", "predict"} <= set(ran)
    assert (tmp_path / "results" / "manifest.json").exists()


# --- the API reference ------------------------------------------------------------------------

def _reference_targets() -> set[str]:
    """Every object a docs/api page documents (``.. autofunction:: fit``, ``.. data:: families``)."""
    names = set()
    for page in API.glob("*.rst"):
        for target in re.findall(r"^\.\. (?:auto)?(?:function|class|data|exception|method)::\s+(\S+)",
                                 page.read_text(), flags=re.M):
            names.add(target.split("(")[0].removeprefix("vemppl."))
    return names


def _documented_data(name: str) -> str:
    """The body of a ``.. data:: name`` directive in docs/api, or ''."""
    for page in API.glob("*.rst"):
        m = re.search(rf"^\.\. data:: {re.escape(name)}\n\n((?:   .+\n|\n)+)", page.read_text(), flags=re.M)
        if m:
            return m.group(1).strip()
    return ""


@pytest.mark.parametrize("name", vp.__all__)
def test_public_name_in_api_reference_with_a_docstring(name):
    obj = getattr(vp, name)
    assert name in _reference_targets(), f"vemppl.{name} is not on any docs/api/*.rst page"
    doc = (getattr(obj, "__doc__", None) or "").strip()
    if type(obj).__module__ == "builtins" and not callable(obj):
        # A plain container (the family registry) carries its type's docstring; its
        # description is the ``.. data::`` directive's body.
        assert len(_documented_data(name)) > 40, f"docs/api describes vemppl.{name} in a `.. data::` body"
        return
    assert doc, f"vemppl.{name} has no docstring"
    if isinstance(obj, type):  # a dataclass without a docstring gets its signature as one
        assert not doc.startswith(f"{obj.__name__}("), f"vemppl.{name}: only the generated dataclass docstring"
    else:
        assert doc != (type(obj).__doc__ or "").strip(), f"vemppl.{name}: only its type's docstring"


def test_api_reference_builds_with_every_public_name(tmp_path):
    """The reference builds with warnings as errors (as .ci/test builds it), and its HTML has an
    entry (an anchor ``id="vemppl.NAME"``) for every name in ``vemppl.__all__``."""
    build = pytest.importorskip("sphinx.cmd.build")
    assert build.build_main(["-W", "--keep-going", "-q", "-b", "html", str(API), str(tmp_path)]) == 0
    html = "".join(p.read_text() for p in tmp_path.glob("*.html"))
    missing = [n for n in vp.__all__ if f'id="vemppl.{n}"' not in html]
    assert not missing, f"not in the built reference: {missing}"


def test_api_reference_pages_in_the_toctree():
    index = (API / "index.rst").read_text()
    for page in API.glob("*.rst"):
        if page.stem != "index":
            assert re.search(rf"^   {page.stem}$", index, flags=re.M), f"{page.name} not in docs/api/index.rst's toctree"


def test_api_reference_builds_in_ci():
    """.ci/test builds the reference with warnings as errors, after installing the docs extra."""
    ci = (ROOT / ".ci/test").read_text()
    assert re.search(r"sphinx-build -W --keep-going -b html docs/api ", ci)
    assert re.search(r"pip install .*-e \"\.\[test,docs\]\"", ci)
    extras = pyproject()["project"]["optional-dependencies"]
    assert any(r.startswith("sphinx>=") for r in extras["docs"])


# --- packaging ----------------------------------------------------------------------------------

def test_license_and_metadata():
    project = pyproject()["project"]
    assert project["license"] == "Apache-2.0"
    text = (ROOT / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text
    assert project["authors"] == [{"name": "The vemppl developers"}]
    assert "License :: OSI Approved :: Apache Software License" not in project["classifiers"]  # PEP 639: the
    # license expression replaces the classifier, and setuptools refuses both
    assert any(c.startswith("Programming Language :: Python :: 3") for c in project["classifiers"])
    assert project["keywords"]


def test_py_typed_is_shipped():
    """PEP 561: the marker file is in the package and listed as package data."""
    assert (ROOT / "vemppl/py.typed").exists()
    package_data = pyproject()["tool"]["setuptools"]["package-data"]
    assert "py.typed" in package_data["vemppl"]
