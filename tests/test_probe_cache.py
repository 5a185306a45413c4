"""The conjugacy probe's reading kept on disk beside the compiled programs (compiler/probe_cache.py):
read back only for the same model text, source positions, plan, versions and float64 setting,
and the plan from a kept reading is the plan the probe gives."""

from __future__ import annotations

import types
from pathlib import Path

import jax
import pytest

from vemppl import _compile_cache
from vemppl.compiler import compile_model, conjugacy, probe_cache
from vemppl.frontends.parser import parse

ROOT = Path(__file__).resolve().parents[1]
LOGREG = (ROOT / "models" / "logreg.vem").read_text()  # one closed-form block, one not: reasons with positions


@pytest.fixture
def kept(tmp_path, monkeypatch):
    """A folder kept across processes, and a count of the probe's traces."""
    traces = []
    real = jax.eval_shape
    monkeypatch.setattr(conjugacy.jax, "eval_shape", lambda *a, **k: traces.append(1) or real(*a, **k))
    monkeypatch.setattr(_compile_cache, "kept_folder", lambda: str(tmp_path))
    return tmp_path, traces


def test_a_kept_reading_gives_the_probes_plan_and_skips_its_trace(kept, monkeypatch):
    folder, traces = kept
    model = parse(LOGREG, "logreg.vem")
    first = compile_model(model)
    assert len(traces) == 1 and len(list(folder.glob("vemppl-probe-*.json"))) == 1
    again = compile_model(parse(LOGREG, "logreg.vem"))
    assert len(traces) == 1  # read back, not traced
    assert again == first and str(again) == str(first)  # the reasons, with their positions, too
    assert "natural-gradient" in str(again) and "logreg.vem:9:21" in str(again)
    monkeypatch.setattr(_compile_cache, "kept_folder", lambda: None)  # nowhere kept: the probe itself
    assert compile_model(parse(LOGREG, "logreg.vem")) == first and len(traces) == 2


def test_another_text_position_file_or_version_is_not_read(kept, monkeypatch):
    folder, traces = kept
    compile_model(parse(LOGREG, "logreg.vem"))
    for text, name in ((LOGREG.replace("Gamma(1, 1)", "Gamma(2, 1)"), "logreg.vem"),  # another model
                       ("# a comment line\n" + LOGREG, "logreg.vem"),  # every statement one line lower
                       (LOGREG, "other.vem")):  # the reasons name the file
        before = len(traces)
        plan = compile_model(parse(text, name))
        assert len(traces) == before + 1, (text, name)
        if name == "other.vem":
            assert "other.vem:9:21" in str(plan) and "logreg.vem" not in str(plan)
        if text.startswith("# a comment"):
            assert "logreg.vem:10:21" in str(plan)
    model = parse(LOGREG, "logreg.vem")
    plan = compile_model(model, probe=False)
    key = probe_cache.probe_key(model, plan)
    assert probe_cache.probe_key(model, plan) == key
    monkeypatch.setattr(probe_cache, "_STAMP", ["an edited vemppl"])
    assert probe_cache.probe_key(model, plan) not in (key, None)
    monkeypatch.setattr(probe_cache, "_STAMP", [])  # computed again from the files: the same stamp
    for version, x64 in (("0.0.1", True), (jax.__version__, False)):
        fake = types.SimpleNamespace(__version__=version, config=types.SimpleNamespace(jax_enable_x64=x64))
        monkeypatch.setattr(probe_cache, "jax", fake)
        assert probe_cache.probe_key(model, plan) != key
    monkeypatch.setattr(probe_cache, "jax", jax)
    assert probe_cache.probe_key(model, plan) == key


def test_a_damaged_entry_is_a_miss_and_is_written_again(kept):
    folder, traces = kept
    first = compile_model(parse(LOGREG, "logreg.vem"))
    entry, = folder.glob("vemppl-probe-*.json")
    for damaged in ("{not json", '{"format": 99}', '{"format": 1, "reads": []}'):
        entry.write_text(damaged)
        before = len(traces)
        assert compile_model(parse(LOGREG, "logreg.vem")) == first and len(traces) == before + 1
        assert '"format": 1' in entry.read_text()


def test_this_processs_temporary_folder_keeps_no_reading():
    assert _compile_cache.kept_folder() is None  # the tests' processes use a temporary folder (or none)
