"""The static size and constant pass (issue #23): bad sizes, indices, gates and argument
shapes are located errors (file:line:col, exit 2) from `vemppl check` and `vemppl fit`,
never an internal error, and nothing large is allocated before they are refused.

Each ``tests/golden/static/NAME.vem`` fails with the error in ``NAME.expected.json``
(kind, line, column and phrases of the message), as in test_parser_golden.py, but at
compile time: these models parse.
"""

from __future__ import annotations

import json
import resource
from pathlib import Path

import numpy as np
import pytest

import vemppl
from vemppl import cli
from vemppl.ir.memory import parse_memory

GOLDEN = Path(__file__).parent / "golden" / "static"
CASES = sorted(GOLDEN.glob("*.vem"))
MODELS = Path(__file__).parent.parent / "models"


@pytest.fixture(autouse=True)
def _limit(monkeypatch):
    # A fixed limit: the refusal of const_huge must not depend on this machine's free memory.
    monkeypatch.setenv("VEMPPL_MAX_MEMORY", "4G")


def test_the_static_suite_is_complete():
    assert len(CASES) >= 15
    assert sorted(p.name for p in GOLDEN.glob("*.expected.json")) == sorted(f"{p.stem}.expected.json" for p in CASES)


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.stem)
def test_check_refuses_with_a_located_error(path, capsys):
    expected = json.loads(path.with_suffix(".expected.json").read_text())
    vemppl.load(path)  # these parse: the error is the compiler's static pass
    assert cli.main(["check", str(path)]) == 2
    err = capsys.readouterr().err
    assert "internal error" not in err
    head, frame, caret = err.splitlines()[:3]
    assert head.startswith(f"{path}:{expected['line']}:{expected['column']}: {expected['kind']}: "), err
    for phrase in expected["message"]:
        assert phrase in head, err
    assert frame.endswith(path.read_text().split("\n")[expected["line"] - 1])
    assert caret.index("^") == caret.index("|") + 1 + expected["column"]


def _gmm_data(path, n=30, d=2):
    rng = np.random.default_rng(0)
    np.savez(path, x=rng.normal(size=(n, d)))
    return path


@pytest.mark.parametrize(
    "name", ["const_zero", "const_negative", "const_fractional", "fa_zero_factors", "dirichlet_scalar", "const_huge"]
)
def test_fit_refuses_the_issue_cases_before_fitting(name, tmp_path, capsys):
    path = GOLDEN / f"{name}.vem"
    expected = json.loads(path.with_suffix(".expected.json").read_text())
    data = _gmm_data(tmp_path / "x.npz")
    code = cli.main(["fit", str(path), "--data", str(data), "--out", str(tmp_path / "out"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "internal error" not in err, err
    assert err.startswith(f"{path}:{expected['line']}:{expected['column']}: {expected['kind']}: "), err
    assert not (tmp_path / "out").exists()


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def test_huge_const_is_refused_without_allocating(capsys):
    before = _peak_rss_mib()
    assert cli.main(["check", str(GOLDEN / "const_huge.vem")]) == 2
    assert "resource" in capsys.readouterr().err
    # K = 1e8 means arrays of 1e8 x D x D doubles (GiBs): none of them was built.
    assert _peak_rss_mib() - before < 1200


@pytest.mark.parametrize(
    "value, phrases",
    [
        ("1e12", ["const 'K'", "at most 2147483647", "1000000000000"]),
        ("100000000", ["resource", "K = 100000000", "VEMPPL_MAX_MEMORY"]),
        ("0", ["const 'K'", "whole number >= 1"]),
        ("2.5", ["const 'K'", "whole number >= 1", "2.5"]),
    ],
)
def test_set_size_is_checked_before_allocating(value, phrases, tmp_path, capsys):
    data = _gmm_data(tmp_path / "x.npz")
    before = _peak_rss_mib()
    args = ["fit", str(MODELS / "gmm.vem"), "--data", str(data), "--set", f"K={value}", "--out", str(tmp_path / "o")]
    assert cli.main(args + ["--quiet"]) == 2
    err = capsys.readouterr().err
    assert "internal error" not in err
    for phrase in phrases:
        assert phrase in err, err
    assert _peak_rss_mib() - before < 1200


def test_api_fit_refuses_a_size_over_the_limit():
    model = vemppl.load(MODELS / "gmm.vem")
    with pytest.raises(vemppl.VemError) as info:
        vemppl.fit(model, {"x": np.zeros((10, 2))}, consts={"K": 10**12})
    assert info.value.kind == "data" and "'K'" in info.value.message


def test_memory_limit_argument_and_env(monkeypatch):
    from vemppl.ir.memory import check_memory

    model = vemppl.load(MODELS / "gmm.vem")
    sizes = {"N": 10, "D": 10, "K": 1000}
    # Lam: 1000 x 10 x 10 Wishart means and log-determinants, natural and mean (x 2),
    # 8 bytes each: 3.2 MB, the largest; refused at 1 MB, accepted at 1 GB.
    with pytest.raises(vemppl.VemError) as info:
        check_memory(model, sizes, max_memory="1M")
    assert info.value.kind == "resource" and "'Lam'" in info.value.message and info.value.line == 11
    assert check_memory(model, sizes, max_memory="1G") >= 1000 * 100 * 2 * 2 * 8
    monkeypatch.setenv("VEMPPL_MAX_MEMORY", "1M")
    with pytest.raises(vemppl.VemError):
        check_memory(model, sizes)


def test_parse_memory():
    assert parse_memory("64G") == 64 * 1024**3
    assert parse_memory("512M") == 512 * 1024**2
    assert parse_memory("1e9") == 10**9
    assert parse_memory("2GiB") == 2 * 1024**3
    for bad in ("lots", "-1G", "0", "nan"):
        with pytest.raises(vemppl.VemError):
            parse_memory(bad)


GATE_BY_DIM = """model gatedim
dim N, J
const K = 3
data x: real[N]
data mu: real[J]
pi ~ Dirichlet(fill(1.0, K))
for n in range(N) {
    z[n] ~ Categorical(pi)
    x[n] ~ Normal(mu[z[n]], 1)
}
"""


def test_gate_size_bound_from_data_is_checked_at_fit():
    model = vemppl.parse(GATE_BY_DIM, filename="gatedim.vem")
    with pytest.raises(vemppl.VemError) as info:
        vemppl.fit(model, {"x": np.zeros(5), "mu": np.zeros(4)})
    err = info.value
    assert (err.kind, err.file, err.line, err.column) == ("shape", "gatedim.vem", 9, 22), err.render()
    assert "'z' takes K = 3 values" in err.message and "J = 4" in err.message
    # With J = K the same model fits.
    assert vemppl.fit(model, {"x": np.zeros(5), "mu": np.zeros(3)}, max_iter=3).elbo is not None


def test_shipped_models_pass_the_static_pass(capsys):
    assert cli.main(["check", *map(str, sorted(MODELS.glob("*.vem")))]) == 0
