"""Data from .csv files: column names map to data arrays (``y``, ``X[0]``, ``X[1]``, ...),
the arrays read equal the ones written, a fit from CSV equals the fit from the same arrays,
and a malformed file is one clear ``io`` error naming the file and what is wrong."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import vemppl as vp
from vemppl.cli_verbs import read_data

ROOT = Path(__file__).resolve().parents[1]


def write_csv(path, header, rows):
    lines = [",".join(header)] if header else []
    lines += [",".join(repr(float(v)) for v in r) for r in rows]
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture
def regression(tmp_path):
    rng = np.random.default_rng(3)
    X = rng.normal(size=(40, 3))
    y = X @ np.array([1.0, -2.0, 0.5]) + 0.1 * rng.normal(size=40)
    # Columns deliberately out of order: positions come from the names, not the order.
    write_csv(tmp_path / "reg.csv", ["y", "X[2]", "X[0]", "X[1]"], np.column_stack([y, X[:, 2], X[:, 0], X[:, 1]]))
    return tmp_path / "reg.csv", X, y


def test_named_columns_become_the_model_arrays(regression):
    path, X, y = regression
    data = read_data(path, vp.load(ROOT / "models/linreg.vem"))
    assert set(data) == {"X", "y"}
    np.testing.assert_array_equal(data["X"], X)
    np.testing.assert_array_equal(data["y"], y)


def test_fit_from_csv_equals_fit_from_arrays(regression):
    path, X, y = regression
    model = vp.load(ROOT / "models/linreg.vem")
    from_csv = vp.fit(model, read_data(path, model), seed=0, max_iter=50)
    direct = vp.fit(model, {"X": X, "y": y}, seed=0, max_iter=50)
    np.testing.assert_array_equal(from_csv.elbo_trace, direct.elbo_trace)


def test_headerless_file_is_the_single_data_array(tmp_path):
    x = np.random.default_rng(0).normal(size=(12, 2))
    write_csv(tmp_path / "x.csv", None, x)
    data = read_data(tmp_path / "x.csv", vp.load(ROOT / "models/gmm.vem"))
    np.testing.assert_array_equal(data["x"], x)


def test_empty_field_is_missing(tmp_path):
    (tmp_path / "x.csv").write_text("x[0],x[1]\n1.0,2.0\n3.0,\n")
    data = read_data(tmp_path / "x.csv", vp.load(ROOT / "models/gmm.vem"))
    assert data["x"].shape == (2, 2) and np.isnan(data["x"][1, 1])


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "is empty"),
        ("x[0],x[1]\n1.0,2.0\n3.0\n", "line 3: 1 fields"),
        ("x[0],x[1]\n1.0,abc\n", "'abc' is not a number"),
        ("x[0],q\n1.0,2.0\n", "column 'q' names no data array"),
        ("x[0],x[2]\n1.0,2.0\n", "x[0] ... x[1]"),
        ("x[a],x[1]\n1.0,2.0\n", "expected NAME or NAME[i]"),
    ],
)
def test_malformed_csv_is_a_clear_error(tmp_path, text, message):
    (tmp_path / "bad.csv").write_text(text)
    with pytest.raises(vp.VemError) as err:
        read_data(tmp_path / "bad.csv", vp.load(ROOT / "models/gmm.vem"))
    assert err.value.kind == "io" and message in str(err.value) and "bad.csv" in str(err.value)


def test_cli_fit_reads_csv(regression, tmp_path):
    path, _, _ = regression
    r = subprocess.run(
        [sys.executable, "-m", "vemppl.cli", "fit", str(ROOT / "models/linreg.vem"), "--data", str(path),
         "--out", str(tmp_path / "res"), "--quiet", "--max-iter", "30"],
        capture_output=True, text=True, timeout=300,
    )
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "res/manifest.json").exists()
    bad = tmp_path / "bad.csv"
    bad.write_text("y,X[0]\n1.0,zz\n")
    r = subprocess.run(
        [sys.executable, "-m", "vemppl.cli", "fit", str(ROOT / "models/linreg.vem"), "--data", str(bad), "--quiet"],
        capture_output=True, text=True, timeout=300,
    )
    assert r.returncode == 2 and "'zz' is not a number" in r.stderr and "Traceback" not in r.stderr
