"""Model selection over K: four well-separated clusters give K = 4 from ``vp.select`` and
from ``vemppl fit --sweep``; labels aligned by Hungarian matching."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import vemppl as vp
from dsl_models import MODELS_DIR
from vemppl.selection import align, parse_sweep, select

ROOT = Path(__file__).resolve().parents[1]
CENTRES = np.array([[0.0, 0.0], [8.0, 0.0], [0.0, 8.0], [8.0, 8.0]])


def four_clusters(n_per=20, seed=0):
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.normal(c, 0.5, (n_per, 2)) for c in CENTRES])


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep")
    sel = select(vp.load(MODELS_DIR / "gmm.vem"), {"x": four_clusters()}, K=range(2, 8), restarts=2,
                 plot=out / "curve.png", max_iter=200)
    return sel, out


def test_select_picks_four_and_plots(sweep):
    sel, out = sweep
    assert sel.best == 4 and sel.fit is sel.fits[4]
    assert [r["value"] for r in sel.table] == list(range(2, 8))
    elbo = {r["value"]: r["elbo"] for r in sel.table}
    assert elbo[4] > elbo[3] + 20  # a missing cluster costs a lot ...
    assert all(elbo[k] < elbo[4] + 5 for k in range(5, 8))  # ... a superfluous one almost nothing
    assert (out / "curve.png").stat().st_size > 1000
    json.dumps(sel.to_json())  # plain JSON


def test_labels_follow_the_clusters_across_k(sweep):
    sel, _ = sweep
    for k in (4, 5, 6):
        means = np.asarray(sel.fits[k].posterior["mu"].mean)
        labels = np.asarray(sel.labels[k])
        weights = np.asarray(sel.fits[k].posterior["pi"].mean)
        used = weights > 0.1
        # the same cluster centre carries the same label at every K
        by_label = {int(l): tuple(np.round(m).astype(int)) for l, m, u in zip(labels, means, used) if u}
        if k == 4:
            ref = by_label
        assert all(ref[l] == c for l, c in by_label.items() if l in ref)
        assert sorted(labels) == list(range(k))


def test_restarts_fitted_apart_are_aligned_to_the_best():
    sel = select(vp.load(MODELS_DIR / "gmm.vem"), {"x": four_clusters(n_per=10, seed=2)}, K=[4], restarts=3,
                 align_restarts=True, max_iter=100)
    runs = sel.table[0]["elbos"]
    assert len(runs) == 3 and sel.table[0]["elbo"] == max(runs)
    best = sel.table[0]["best_restart"]
    assert sel.restart_labels[4][best] == [0, 1, 2, 3]  # the best restart is the reference
    assert all(sorted(labels) == [0, 1, 2, 3] for labels in sel.restart_labels[4])


def test_align_is_the_hungarian_permutation():
    ref = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    perm = np.array([2, 0, 1])
    new = ref[perm] + 0.1
    np.testing.assert_array_equal(align(ref, new), perm)
    grown = np.concatenate([new, [[20.0, 20.0]]])
    np.testing.assert_array_equal(align(ref, grown), [2, 0, 1, 3])


def test_parse_sweep():
    assert parse_sweep("K=1:4", {"K": "const"}) == ("K", [1, 2, 3, 4])
    assert parse_sweep("K=2,5", {"K": "const"}) == ("K", [2, 5])
    with pytest.raises(vp.VemError):
        parse_sweep("Q=1:3", {"K": "const"})


def test_cli_sweep_writes_table_curve_and_best_fit(tmp_path):
    np.savez(tmp_path / "d.npz", x=four_clusters(n_per=15, seed=1))
    r = subprocess.run([sys.executable, "-m", "vemppl.cli", "fit", str(ROOT / "models/gmm.vem"), "--data", "d.npz",
                        "--sweep", "K=3:5", "--restarts", "2", "--out", "out", "--quiet"],
                       cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr
    table = json.loads((tmp_path / "out/sweep.json").read_text())
    assert table["best"] == 4 and [row["value"] for row in table["table"]] == [3, 4, 5]
    assert (tmp_path / "out/sweep.png").exists()
    manifest = json.loads((tmp_path / "out/manifest.json").read_text())
    assert manifest["consts"]["K"] == 4
