"""``vemppl check``: the plan or one clear error; exit 0, 2 (bad input) or 1 (internal error)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from importlib import resources
from pathlib import Path

import pytest

from vemppl import cli

ROOT = Path(__file__).resolve().parents[1]
GMM = ROOT / "models" / "gmm.vem"
SMALL = ROOT / "models" / "poisson_mixture.vem"  # quick to compile, for the in-process tests
BAD = ROOT / "tests" / "golden" / "errors" / "undefined_name_did_you_mean.vem"


def run(*args):
    return subprocess.run(
        [sys.executable, "-m", "vemppl.cli", "check", *map(str, args)],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
    )


def test_check_a_good_model_as_a_subprocess():
    proc = run(GMM)
    assert proc.returncode == 0, proc.stderr
    assert "gmm" in proc.stdout and proc.stderr == ""


def test_check_a_bad_model_prints_one_code_frame_and_exits_2():
    proc = run(BAD)
    assert proc.returncode == 2 and proc.stdout == ""
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.splitlines()
    assert lines[0] == f"{BAD}:13:21: undefined-name: 'mu2' is not defined"
    assert lines[1].endswith("x[n] ~ MvNormal(mu2[z[n]], precision = Lam[z[n]])")
    assert lines[2].endswith("^^^") and lines[3] == "hint: did you mean 'mu'?"


def test_check_json_is_machine_readable():
    proc = run("--json", BAD, SMALL)
    assert proc.returncode == 2
    report = json.loads(proc.stdout)
    assert report["ok"] is False
    (err,) = report["errors"]
    assert {k: err[k] for k in ("kind", "file", "line", "column")} == {
        "kind": "undefined-name", "file": str(BAD), "line": 13, "column": 21,
    }
    assert "mu2" in err["message"]
    assert [m["ok"] for m in report["models"]] == [False, True]


def test_check_in_process(capsys, tmp_path):
    assert cli.main(["check", str(SMALL)]) == 0
    assert "poisson_mixture" in capsys.readouterr().out
    assert cli.main(["check", "--json", str(tmp_path / "missing.vem")]) == 2
    report = json.loads(capsys.readouterr().out)
    assert report["errors"][0]["kind"] == "io" and report["errors"][0]["file"].endswith("missing.vem")


def test_check_without_a_compiler_prints_the_ir_summary(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "vemppl.compiler", None)  # makes `from .compiler import ...` fail
    assert cli.main(["check", str(GMM)]) == 0
    out = capsys.readouterr().out
    assert "model gmm" in out and "x: real[N, D]" in out and "mu[K, D] (MvNormal)" in out


def test_check_reports_an_internal_error_without_a_traceback(capsys, monkeypatch):
    def broken(ir):
        raise KeyError("oops")

    monkeypatch.setattr(cli, "describe_plan", broken)
    monkeypatch.delenv("VEMPPL_DEBUG", raising=False)
    assert cli.main(["check", str(SMALL)]) == 1
    err = capsys.readouterr().err
    assert "internal error: KeyError" in err and "Traceback" not in err


def test_usage_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main([])
    assert info.value.code == 2
    with pytest.raises(SystemExit) as info:
        cli.main(["check"])
    assert info.value.code == 2


def test_console_script_and_grammar_are_packaged():
    pyproject = (ROOT / "pyproject.toml").read_text()  # tomllib is 3.11+, the project supports 3.10
    assert re.search(r'^\[project\.scripts\]\s*\nvemppl = "vemppl\.cli:main"', pyproject, re.M)
    assert re.search(r'^\[tool\.setuptools\.package-data\]\s*\nvemppl = \[.*"grammar/\*\.lark"', pyproject, re.M)
    shipped = resources.files("vemppl").joinpath("grammar", "vem.lark").read_text()
    assert shipped == (ROOT / "grammar" / "vem.lark").read_text()
