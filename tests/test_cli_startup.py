"""A fast first result (issue #21): ``import vemppl`` and the CLI's ``--help``, ``--version``
and argument errors do not import JAX; JAX, once vemppl imports it, is set up (float64);
``vemppl fit`` keeps compiled programs in the user's cache folder, so a second run reads
them back, and ``--no-cache`` keeps none."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SMALL = str(ROOT / "models" / "poisson_mixture.vem")
HEAVY = ("jax", "jaxlib", "numpy", "numpyro", "matplotlib", "lark", "networkx", "rich")


def python(code: str, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})})


def loaded_after(code: str) -> dict:
    """Which heavy modules ``code`` leaves in ``sys.modules`` (SystemExit is caught)."""
    r = python("import sys, json\ntry:\n" + "".join(f"    {line}\n" for line in code.splitlines())
               + "except SystemExit:\n    pass\n"
               f"print(json.dumps({{m: m in sys.modules for m in {HEAVY!r}}}), file=sys.stderr)")
    return json.loads(r.stderr.strip().splitlines()[-1])


def test_import_vemppl_does_not_import_jax():
    loaded = loaded_after("import vemppl\nvemppl.__version__, vemppl.VemError")
    assert not loaded["jax"] and not loaded["numpy"], loaded


def test_help_version_and_argument_errors_do_not_import_jax():
    for argv in (["--help"], ["--version"], ["fit", "--help"], ["fit", "m.vem", "--data", "d.npz", "--tol", "nan"],
                 ["fitt"], ["fit", "m.vem", "--data", "d.npz", "--max-iters", "3"]):
        loaded = loaded_after(f"from vemppl.cli import main\nmain({argv!r})")
        assert not any(loaded[m] for m in ("jax", "jaxlib", "numpy", "numpyro", "matplotlib", "rich")), (argv, loaded)


def test_python_dash_m_vemppl_is_the_command():
    r = subprocess.run([sys.executable, "-m", "vemppl", "--version"], capture_output=True, text=True, timeout=300,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert r.returncode == 0 and r.stdout.startswith("vemppl "), (r.stdout, r.stderr[-500:])
    loaded = loaded_after("import runpy, sys\nsys.argv = ['vemppl', '--help']\nrunpy.run_module('vemppl', run_name='__main__')")
    assert not loaded["jax"], loaded


def test_jax_is_set_up_wherever_vemppl_first_imports_it():
    """float64 and the XLA flag, through the lazy top-level names or a submodule directly."""
    for code in ("import vemppl as vp\nvp.fit", "from vemppl.engine.fit import run_cavi",
                 "from vemppl.results import Fit", "import vemppl as vp\nvp.Normal"):
        r = python(code + "\nimport jax, os\nprint(jax.config.jax_enable_x64, "
                   "'concurrency_optimized_scheduler=false' in os.environ['XLA_FLAGS'])")
        assert r.returncode == 0 and r.stdout.split() == ["True", "True"], (code, r.stdout, r.stderr[-500:])


def test_public_names_resolve_lazily():
    r = python("import vemppl as vp\n"
               "names = vp.__all__\n"
               "missing = [n for n in names if getattr(vp, n, None) is None]\n"
               "import vemppl.families\n"  # the subpackage of that name must not shadow the registry
               "print(len(names), missing, type(vp.families).__name__, 'Normal' in vp.families, 'MvNormal' in names)")
    assert r.returncode == 0, r.stderr[-800:]
    assert r.stdout.split(None, 1)[1].strip() == "[] dict True True", r.stdout


def test_a_second_fit_reads_its_compiled_programs_from_the_user_cache(tmp_path):
    np.savez(tmp_path / "c.npz", x=np.random.default_rng(0).poisson(3.0, 150))
    env = {k: v for k, v in os.environ.items() if k != "VEMPPL_CACHE_DIR"}
    env.update(XDG_CACHE_HOME=str(tmp_path / "xdg"), PYTHONPATH=str(ROOT))

    def fit(*extra):
        r = subprocess.run([sys.executable, "-m", "vemppl.cli", "fit", SMALL, "--data", "c.npz", "--max-iter", "5",
                            "--out", "res", *extra], cwd=tmp_path, env=env, capture_output=True, text=True,
                           timeout=300)
        assert r.returncode == 0, r.stderr[-2000:]
        return next(line for line in r.stdout.splitlines() if line.startswith("compiled programs:"))

    folder = tmp_path / "xdg" / "vemppl" / "xla"
    first = fit()
    assert first.startswith("compiled programs: 0 read from the cache") and str(folder) in first, first
    assert any(folder.iterdir())
    second = fit()
    hits = int(second.split()[2])
    assert hits > 0, second
    env["XDG_CACHE_HOME"] = str(tmp_path / "other")
    r = subprocess.run([sys.executable, "-m", "vemppl.cli", "fit", SMALL, "--data", "c.npz", "--max-iter", "5",
                        "--out", "res2", "--no-cache"], cwd=tmp_path, env=env, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "compiled programs:" not in r.stdout and not (tmp_path / "other" / "vemppl").exists()


def test_a_terminal_sees_a_status_line_from_the_first_second(tmp_path):
    """On a terminal `vemppl fit` says what runs (reading, starting JAX, compiling, writing)."""
    import pty
    import select

    np.savez(tmp_path / "c.npz", x=np.random.default_rng(0).poisson(3.0, 150))
    primary, secondary = pty.openpty()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TERM": "xterm", "COLUMNS": "120"}
    env.pop("NO_COLOR", None)
    proc = subprocess.Popen([sys.executable, "-m", "vemppl.cli", "fit", SMALL, "--data", "c.npz", "--max-iter", "5",
                             "--out", "res", "--no-cache"], cwd=tmp_path, env=env, stdout=secondary, stderr=secondary)
    os.close(secondary)
    chunks = []
    while True:
        ready, _, _ = select.select([primary], [], [], 300)
        if not ready:
            break
        try:
            data = os.read(primary, 65536)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    assert proc.wait(timeout=300) == 0
    os.close(primary)
    text = b"".join(chunks).decode(errors="replace")
    for phase in ("reading ", "starting JAX", "compiling and fitting", "writing results", "drawing the ELBO plot"):
        assert phase in text, (phase, text[-2000:])
    assert "results written to res/" in text


def test_the_summary_reads_posterior_means_without_building_every_posterior():
    """The summary's means (read off E[x] statistics where the state holds them) equal the
    NumPyro posteriors' means, built op by op with NumPyro's checks on: a Bernoulli mixture has
    Dirichlet (no E[x] statistic), Beta (none) and Categorical (E[onehot]) blocks."""
    import vemppl as vp

    rng = np.random.default_rng(0)
    x = rng.random((60, 4)) < np.repeat([[0.2, 0.8, 0.2, 0.8], [0.8, 0.2, 0.8, 0.2]], 30, 0)
    fit = vp.fit(vp.load(ROOT / "models" / "bernoulli_mixture.vem"), {"x": x}, consts={"K": 2}, max_iter=20,
                 progress=False)
    means = fit._posterior_means()
    reference = {j: getattr(d, "probs", None) if type(d).__name__.startswith("Categorical") else d.mean
                 for j, d in fit.posterior.items()}
    assert set(means) == set(reference)
    for j in means:
        np.testing.assert_allclose(np.asarray(means[j]), np.asarray(reference[j]), rtol=1e-10, atol=1e-12)
    assert "Dirichlet" in fit.summary() and "Categorical" in fit.summary()


def test_a_priors_scale_is_numpyros_mean_and_variance():
    from vemppl.data_scale import _priors_moments
    from vemppl.families import get_family

    for name, args in (("MvNormal", {"loc": np.arange(3.0), "precision_matrix": 0.5 * np.eye(3)}),
                       ("Normal", {"loc": 2.0, "scale": 3.0}), ("Gamma", {"concentration": 2.0, "rate": 4.0})):
        fam = get_family(name)
        (mean, var), = _priors_moments([(fam, args)], variance=True)
        d = fam.numpyro_dist(**args)
        np.testing.assert_allclose(mean, np.asarray(d.mean), rtol=1e-12)
        np.testing.assert_allclose(var, np.asarray(d.variance), rtol=1e-12)
    (mean, var), = _priors_moments([(get_family("Gamma"), {"concentration": 2.0, "rate": 4.0})], variance=False)
    assert var is None and mean == 0.5  # by hand: concentration / rate


def test_the_program_ends_after_its_threads_and_atexit_without_the_teardown(tmp_path, monkeypatch):
    """``quick_exit`` (cli_runtime.py): a non-daemon thread is waited for, the ``atexit``
    functions run (JAX's backend teardown left out), buffered output is flushed, and the status
    is the verb's.  Only ``main()``
    run as the program (no argv) ends that way; a caller of ``main(argv)`` gets the status."""
    r = python("import atexit, sys, threading, time\n"
               "import jax.numpy as jnp\n"  # JAX's own atexit function is left out, its backend in use
               "from vemppl.cli_runtime import quick_exit\n"
               f"atexit.register(lambda: open({str(tmp_path / 'atexit')!r}, 'w').write('ran'))\n"
               f"threading.Thread(target=lambda: (time.sleep(0.2), open({str(tmp_path / 'thread')!r}, 'w')"
               ".write('joined'))).start()\n"
               "sys.stdout.write(f'buffered {float(jnp.ones(2).sum())}'); sys.stderr.write('said')\n"
               "quick_exit(3)\n"
               "print('not reached')")
    assert (r.returncode, r.stdout, r.stderr) == (3, "buffered 2.0", "said")
    assert (tmp_path / "atexit").read_text() == "ran" and (tmp_path / "thread").read_text() == "joined"

    from vemppl import cli

    ended = []
    monkeypatch.setattr(cli, "quick_exit", ended.append)
    monkeypatch.setattr(sys, "argv", ["vemppl", "check", str(tmp_path / "missing.vem")])
    assert cli.main() == 2 and ended == [2]
    assert cli.main(["check", str(tmp_path / "missing.vem")]) == 2 and ended == [2]


def test_jax_lowers_lapack_calls_without_importing_scipy_linalg_or_scipy_sparse():
    """_jax_setup.py: jaxlib's LAPACK kernels come from scipy's two Cython modules, loaded
    without ``scipy.linalg``'s package (0.23-0.36 s); ``scipy.sparse`` and ``jax.extend.pallas``
    wait for a use.  All still load and answer when used; the Cholesky factor is NumPy's."""
    r = python("import sys\n"
               "import vemppl.families, jax, jax.numpy as jnp, numpy as np\n"
               "a = np.array([[4.0, 2.0], [2.0, 3.0]])\n"
               "c = np.asarray(jax.jit(jnp.linalg.cholesky)(a))\n"
               "print(np.abs(c - np.linalg.cholesky(a)).max() < 1e-15,"
               " any(m in sys.modules for m in ('scipy.linalg', 'scipy.sparse._base', 'scipy.linalg._basic',"
               " 'jax._src.pallas.core')))\n"
               "import scipy.sparse.linalg\n"
               "from scipy.linalg import cho_solve, cython_blas\n"
               "x = scipy.sparse.linalg.spsolve(scipy.sparse.csr_array(a), np.ones(2))\n"
               "print(np.allclose(a @ x, 1.0), np.allclose(a @ cho_solve((c, True), np.ones(2)), 1.0),"
               " cython_blas is sys.modules['scipy.linalg.cython_blas'])\n"
               "import jax.extend.pallas\n"
               "print(callable(jax.extend.pallas.register_lowering_rule))")
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.split() == ["True", "False", "True", "True", "True", "True"], r.stdout


def test_the_program_imports_with_the_collector_off_and_freezes_what_they_loaded():
    """cli_runtime.imports: for the program, the collector is off while the imports run, then on
    with the imported objects frozen and the program's thresholds; a caller of main() keeps its
    collector as it was."""
    r = python("import gc\n"
               "from vemppl import cli_runtime\n"
               "with cli_runtime.imports():\n"
               "    caller = (gc.isenabled(), gc.get_freeze_count())\n"
               "cli_runtime.as_program()\n"
               "with cli_runtime.imports():\n"
               "    import json\n"
               "    during = gc.isenabled()\n"
               "print(caller, during, gc.isenabled(), gc.get_freeze_count() > 0,\n"
               "      gc.get_threshold() == cli_runtime.GC_THRESHOLDS != (700, 10, 10))")
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.split() == ["(True,", "0)", "False", "True", "True", "True"], r.stdout
