"""The benchmarks run: `benchmarks/gmm.py --quick` exits 0 and writes valid JSON.

A smoke test only; no timing is asserted (timings belong to the benchmark's own results).
"""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_gmm_benchmark_quick(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "gmm.py"), "--quick", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads((tmp_path / "results_gmm_quick.json").read_text())
    assert res["config"]["n_train"] == 2000 and res["config"]["quick"]
    for system in ("vemppl", "sklearn"):
        r = res[system]
        for key in ("compile_seconds", "fit_seconds", "wall_seconds", "heldout_loglik_per_point", "heldout_ari"):
            assert isinstance(r[key], float), (system, key)
        assert r["iterations"] >= 1
        assert r["fit_seconds"] > 0
    assert res["ratio_fit"] > 0
    assert "| held-out log-lik / point |" in (tmp_path / "results_gmm_quick.md").read_text()
    assert "held-out log-lik" in proc.stdout
