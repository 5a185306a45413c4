"""Bad data through the command line (issue #23, "What it must show", point 1): each case of
the issue that the API tests (test_data_checks.py, test_data_errors.py) show with
``vemppl.fit``, run as ``vemppl fit`` on an ``.npz``: exit 2, the message's head located at
``file:line:col`` in the model text, naming the variable and what was wrong, and no
'internal error'."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vemppl.cli import main

MODELS = Path(__file__).resolve().parents[1] / "models"

MULTINOMIAL = """model mn
dim N
data y: count[N, 3]
p ~ Dirichlet(fill(1.0, 3))
for n in range(N) { y[n] ~ Multinomial(10, p) }
"""

BINOMIAL = """model bn
dim N
data y: count[N]
p ~ Beta(1, 1)
for n in range(N) { y[n] ~ Binomial(5, p) }
"""

COUNTS = """model g
dim N
data k: count[N]
lam ~ Gamma(1, 1)
for n in range(N) { k[n] ~ Poisson(lam) }
"""

XY = np.array([[0.0, 1.0], [2.0, 2.0], [3.0, 4.0]])

CASES = {
    # name: (model text or shipped model, arrays, (line, token the column points at, kind), phrases)
    "multinomial-total": (MULTINOMIAL, {"y": np.array([[3, 3, 4], [5, 5, 1]])}, (5, "Multinomial", "data"),
                          ["'y'", "total_count = 10", "sum of 11 at index (1,)"]),
    "binomial-over-total": (BINOMIAL, {"y": np.array([0, 6, 2])}, (5, "Binomial", "data"),
                            ["'y'", "total_count = 5", "got 6 at index (1,)"]),
    "count-past-int64": (COUNTS, {"k": np.array([1, 2**64 - 1, 3], dtype=np.uint64)}, (3, "k:", "data"),
                         ["'k'", "64-bit", "index (1,)"]),
    "square-overflows": ("gmm.vem", {"x": np.where(XY == 2.0, 2e154, XY)}, (6, "x:", "data"),
                         ["'x'", "square overflows", "index (1, 0)"]),
    "infinite-value": ("gmm.vem", {"x": np.where(XY == 2.0, np.inf, XY)}, (6, "x:", "data"),
                       ["'x'", "finite", "got inf at index (1, 0)"]),
    "category-out-of-range": ("""model c
dim N
data y: cat(3)[N]
p ~ Dirichlet(fill(1.0, 3))
for n in range(N) { y[n] ~ Categorical(p) }
""", {"y": np.array([0, 2, 3])}, (3, "y:", "data"), ["'y'", "0..2", "got 3", "(2,)"]),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_data_exits_2_with_a_located_message(name, tmp_path, capsys):
    model, arrays, (line, token, kind), phrases = CASES[name]
    if model.endswith(".vem"):
        path = MODELS / model
    else:
        path = tmp_path / f"{name}.vem"
        path.write_text(model)
    np.savez(tmp_path / "d.npz", **arrays)
    code = main(["fit", str(path), "--data", str(tmp_path / "d.npz"), "--quiet", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and "internal error" not in err, err
    column = path.read_text().split("\n")[line - 1].index(token) + 1
    assert err.startswith(f"{path}:{line}:{column}: {kind}: "), err
    head = err.splitlines()[0]
    for phrase in phrases:
        assert phrase in head, err
    assert not (tmp_path / "out").exists()


def test_an_object_array_in_the_data_is_named_not_called_damaged(tmp_path, capsys):
    """``np.savez`` of a ragged list stores a pickled object array: it was 'damaged or
    truncated?' (an io error about the file) though the file is whole."""
    path = tmp_path / "c.vem"
    path.write_text(COUNTS)
    np.savez(tmp_path / "d.npz", k=np.array([[1, 2], [3]], dtype=object))
    code = main(["fit", str(path), "--data", str(tmp_path / "d.npz"), "--quiet", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and "damaged" not in err and "internal error" not in err, err
    assert "array 'k'" in err and "dtype=object" in err, err


MEAN_ONLY = """model m
dim N
data x: real[N]
mu ~ Normal(0, 1)
for n in range(N) { x[n] ~ Normal(mu, 1) }
"""


def test_predict_out_is_an_npz_name_and_never_an_empty_archive(tmp_path, capsys):
    """``predict --out p`` wrote an .npz archive under the name ``p``; a model with no local
    latents wrote an empty archive without a word."""
    path = tmp_path / "m.vem"
    path.write_text(MEAN_ONLY)
    np.savez(tmp_path / "d.npz", x=np.linspace(-1.0, 2.0, 12))
    data, res = str(tmp_path / "d.npz"), str(tmp_path / "res")
    assert main(["fit", str(path), "--data", data, "--quiet", "--out", res]) == 0
    capsys.readouterr()
    assert main(["predict", res, "--data", data, "--out", str(tmp_path / "p")]) == 2
    assert "ending in .npz" in capsys.readouterr().err
    assert not (tmp_path / "p").exists()
    assert main(["predict", res, "--data", data, "--out", str(tmp_path / "p.npz")]) == 2
    assert "nothing to write" in capsys.readouterr().err and not (tmp_path / "p.npz").exists()
    assert main(["predict", res, "--data", data, "--out", str(tmp_path / "p.npz"), "--density"]) == 0
    with np.load(tmp_path / "p.npz") as npz:
        assert npz.files == ["log_predictive_density"] and npz["log_predictive_density"].shape == (12,)
