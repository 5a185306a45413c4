"""The persistent compilation cache (vemppl/_compile_cache.py): ``VEMPPL_CACHE_DIR``
makes a second process read the sweep's compiled program back instead of compiling it; by
default a second fit in the same process does, from a folder removed when the process exits."""

import json
import os
import subprocess
import sys

SCRIPT = r"""
import json, logging
from jax._src import monitoring
hits = []
monitoring.register_event_listener(lambda event, **kw: hits.append(event) if event.endswith("cache_hits") else None)
import numpy as np, vemppl
x = np.concatenate([np.random.default_rng(0).normal(m, 1.0, 150) for m in (-4.0, 4.0)])
text = '''
model mix
dim N
const K = 2
data x: real[N]
pi ~ Dirichlet(ones(K))
for k in range(K) { mu[k] ~ Normal(0.0, 10.0) }
for n in range(N) { z[n] ~ Categorical(pi)
                    x[n] ~ Normal(mu[z[n]], 1.0) }
'''
import jax
fit = vemppl.fit(vemppl.parse(text), {"x": x}, seed=0, max_iter=50, progress=False)
first = len(hits)
# A new engine for the second fit, as for a model the process no longer keeps (engine/reuse.py
# would hand it the first fit's programs, and XLA's cache would not be asked at all).
from vemppl.engine.reuse import forget
forget()
again = vemppl.fit(vemppl.parse(text), {"x": x}, seed=0, max_iter=50, progress=False)
print(json.dumps({"elbo": float(fit.elbo), "hits": first, "again_hits": len(hits) - first,
                  "again_elbo": float(again.elbo), "folder": jax.config.jax_compilation_cache_dir}))
"""


def run(env):
    out = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_a_second_process_reads_the_compiled_sweep_back(tmp_path):
    folder = tmp_path / "cache"
    env = {**os.environ, "VEMPPL_CACHE_DIR": str(folder)}
    first = run(env)
    assert first["hits"] == 0 and any(folder.iterdir())  # compiled, and written to the folder
    second = run(env)
    assert second["hits"] > 0  # read back: JAX's cache-hit event fired
    assert second["elbo"] == first["elbo"]
    without = run({k: v for k, v in os.environ.items() if k != "VEMPPL_CACHE_DIR"})
    assert without["hits"] == 0 and without["elbo"] == first["elbo"]


def test_a_second_fit_in_one_process_reads_the_first_fits_programs_back():
    """A fit that builds a new engine (a new jitted sweep; engine/reuse.py keeps only the last
    few) would compile the same model and shapes again without the per-process cache.  The folder is the process's own, gone at exit."""
    env = {k: v for k, v in os.environ.items() if k != "VEMPPL_CACHE_DIR"}
    default = run(env)
    assert default["hits"] == 0 and default["again_hits"] > 0
    assert default["again_elbo"] == default["elbo"]
    assert os.path.basename(default["folder"]).startswith("vemppl-xla-")
    assert not os.path.exists(default["folder"])  # removed when the process exited
    off = run({**env, "VEMPPL_CACHE_DIR": "off"})
    assert off["folder"] is None and off["hits"] == 0 and off["again_hits"] == 0
    assert off["elbo"] == default["elbo"]


def test_no_temporary_folder_means_no_cache_not_a_failed_import(monkeypatch):
    """Where no temporary folder can be made (a read-only /tmp), the per-process cache is
    skipped: importing vemppl must not fail for the sake of a speed-up."""
    import tempfile

    from vemppl import _compile_cache

    def refuse(*args, **kwargs):
        raise PermissionError("read-only file system")

    monkeypatch.setattr(tempfile, "mkdtemp", refuse)
    assert _compile_cache._process_folder() is None
