"""What a user of the command line meets around a fit (issue #22): ``--version``, suggestions
for misspellings, help for every option, one-line warnings, CLI words in messages, a true
list of the files written, final newlines, result files readable by others (0644)."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest

import vemppl._jax_setup  # noqa: F401  (this process's JAX set up before any CLI call: no cache requests)
from vemppl.cli import build_parser, main
from vemppl.cli_runtime import reword

ROOT = Path(__file__).resolve().parents[1]
GMM = str(ROOT / "models" / "gmm.vem")
SMALL = str(ROOT / "models" / "poisson_mixture.vem")


def cli(*args, env=None, cwd=None):
    return subprocess.run([sys.executable, "-m", "vemppl.cli", *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}, cwd=cwd)


@pytest.fixture(autouse=True)
def handlers_restored():
    handlers = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    yield
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == handlers


def test_version_is_the_package_version():
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    r = cli("--version")
    assert r.returncode == 0 and r.stdout == f"vemppl {version}\n" and r.stderr == ""


def test_a_misspelled_option_or_verb_gets_the_nearest(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["fit", GMM, "--data", "d.npz", "--max-iters", "5"])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "usage: vemppl fit" in err
    assert "unrecognized arguments: --max-iters (did you mean --max-iter?)" in err
    with pytest.raises(SystemExit):
        main(["--verison"])
    assert "unrecognized arguments: --verison (did you mean --version?)" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["fitt", GMM])
    assert "invalid choice: 'fitt'" in (err := capsys.readouterr().err) and "did you mean 'fit'?" in err
    with pytest.raises(SystemExit):
        main(["predict", "res", "--data", "d.npz", "--density", "mcc"])
    assert "did you mean 'mc'?" in capsys.readouterr().err


def test_every_option_has_help():
    parser = build_parser()
    for verb, sub in parser.verbs.items():
        for action in sub._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            assert action.help and action.help.strip(), f"vemppl {verb} {action.option_strings or action.dest}"


def test_warnings_are_one_line_without_a_path(tmp_path):
    """A UserWarning prints as `warning: MESSAGE` once; a DeprecationWarning not at all."""
    script = (
        "import sys, warnings\n"
        "from vemppl import cli\n"
        "def plan(ir):\n"
        "    for _ in range(2): warnings.warn('the data are far from unit scale', UserWarning)\n"
        "    warnings.warn('fit(restarts=) is deprecated', DeprecationWarning)\n"
        "    return 'the plan'\n"
        "cli.describe_plan = plan\n"
        f"sys.exit(cli.main(['check', {SMALL!r}]))\n"
    )
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert r.returncode == 0, r.stderr
    assert r.stderr == "warning: the data are far from unit scale\n"
    assert r.stdout == "the plan\n"


def test_messages_use_the_command_lines_words():
    assert reword("const 'K' (from consts=) is a size") == "const 'K' (from --set) is a size"
    assert reword("consts= sets 'alpha' with the wrong shape") == "--set alpha with the wrong shape"
    assert "--density mc" in reword("hint: predictive_density(..., exact=False) estimates it by Monte Carlo")
    assert reword("give it explicitly: fit(..., dims={'V': ...}) or --set V=...") == "give it explicitly: --set V=..."
    assert reword("local_tol must be a non-negative number") == "--local-tol must be a non-negative number"
    assert reword("const 'batch_size' is a size") == "const 'batch_size' is a size"  # a model's own name stays


def test_check_and_updates_end_with_one_newline(capsys):
    assert main(["check", SMALL]) == 0
    out = capsys.readouterr().out
    assert out.endswith("\n") and not out.endswith("\n\n")
    assert main(["updates", SMALL]) == 0
    out = capsys.readouterr().out
    assert out.endswith("\n") and not out.endswith("\n\n") and "## q(" in out


def test_fit_lists_the_files_it_wrote_and_writes_them_0644(capsys, tmp_path, monkeypatch):
    """Without graphviz's `dot` the diagram is not claimed: it is named as skipped, with why."""
    import vemppl.render as render_pkg

    real = render_pkg.render

    def no_dot(model, path, fmt=None):
        if Path(path).suffix != ".dot":
            from vemppl.diagnostics import VemError

            raise VemError("io", "graphviz's 'dot' program is not installed")
        return real(model, path, fmt)

    monkeypatch.setattr(render_pkg, "render", no_dot)
    x = np.random.default_rng(0).poisson(3.0, 150)
    np.savez(tmp_path / "c.npz", x=x)
    old = os.umask(0o022)
    try:
        assert main(["fit", SMALL, "--data", str(tmp_path / "c.npz"), "--max-iter", "5",
                     "--out", str(tmp_path / "res")]) == 0
    finally:
        os.umask(old)
    out = capsys.readouterr().out
    (arrays,) = [p.name for p in (tmp_path / "res").glob("arrays-*.npz")]  # named by its hash (results/io.py)
    assert f"results written to {tmp_path / 'res'}/ (manifest.json, {arrays}, elbo.png, model.dot)" in out
    assert "skipped model.svg (graphviz's 'dot' program is not installed; wrote model.dot instead)" in out
    assert "model.svg" not in out.split("skipped")[0]
    files = {p.name: p.stat().st_mode & 0o777 for p in (tmp_path / "res").iterdir()}
    assert set(files) == {"manifest.json", arrays, "elbo.png", "model.dot"}
    assert files["manifest.json"] == files[arrays] == 0o644, files
    old = os.umask(0o077)
    try:  # the umask is the user's: a private one is respected
        assert main(["fit", SMALL, "--data", str(tmp_path / "c.npz"), "--max-iter", "5", "--quiet",
                     "--out", str(tmp_path / "private")]) == 0
    finally:
        os.umask(old)
    (private,) = (tmp_path / "private").glob("arrays-*.npz")
    assert private.stat().st_mode & 0o777 == 0o600
    assert "note: skipped model.svg" in capsys.readouterr().err
