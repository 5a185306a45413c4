"""The command line's contract (issue #23): exit 0 on success, 2 for anything the user can fix
(each with a message naming the option or file), 1 only for a bug; every option checked as it
is parsed; ``--out`` checked before fitting; SIGINT and SIGTERM leave no temporary files."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import vemppl._jax_setup  # noqa: F401  (this process's JAX set up before any CLI call: no cache requests)
from vemppl.cli import main

ROOT = Path(__file__).resolve().parents[1]
GMM = str(ROOT / "models" / "gmm.vem")
LDA = str(ROOT / "models" / "lda.vem")


@pytest.fixture
def data(tmp_path):
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(m, 1.0, (60, 2)) for m in (-4.0, 4.0)])
    np.savez(tmp_path / "d.npz", x=x)
    return str(tmp_path / "d.npz")


@pytest.fixture(autouse=True)
def handlers_restored():
    """main() turns SIGTERM and SIGINT into exceptions for its run, and gives them back."""
    handlers = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    yield
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == handlers


def usage_error(capsys, *argv) -> str:
    """argparse's exit: status 2 and the message (no JAX needed to get here)."""
    with pytest.raises(SystemExit) as exc:
        main(list(argv))
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "internal error" not in err
    return err


@pytest.mark.parametrize("argv, option, says", [
    (["--max-iter", "0"], "--max-iter", "expected a whole number >= 1; got 0"),
    (["--max-iter", "-3"], "--max-iter", ">= 1"),
    (["--seed", str(2**64)], "--seed", "from 0 to 4294967295"),
    (["--seed", "-1"], "--seed", "from 0 to 4294967295"),
    (["--restarts", "0"], "--restarts", ">= 1"),
    (["--tol", "nan"], "--tol", "expected a finite number >= 0; got 'nan'"),
    (["--tol", "-1"], "--tol", "expected a finite number >= 0; got '-1'"),
    (["--tol", "inf"], "--tol", "finite"),
    (["--local-tol", "-1"], "--local-tol", ">= 0"),
    (["--local-iter", "0"], "--local-iter", ">= 1"),
    (["--batch-size", "0"], "--batch-size", ">= 1"),
    (["--devices", "two"], "--devices", "expected a whole number; got 'two'"),
    (["--step-size", "1.0,2"], "--step-size", "KAPPA in (0.5, 1]"),
    (["--set", "K=true"], "--set", "K: expected a finite number or a list of them; got 'true'"),
    (["--set", "K=NaN"], "--set", "K: expected a finite number"),
    (["--set", "K"], "--set", "expected NAME=VALUE"),
    (["--set", "alpha=[0.1,"], "--set", "is not a number or a list of numbers"),
])
def test_every_option_is_checked_when_parsed(capsys, data, argv, option, says):
    err = usage_error(capsys, "fit", GMM, "--data", data, *argv)
    assert f"argument {option}: " in err and says in err, err


def test_an_existing_file_as_out_is_refused_before_fitting(capsys, data, tmp_path, monkeypatch):
    import vemppl.api as engine_fit  # the CLI calls vemppl.api.fit

    monkeypatch.setattr(engine_fit, "fit", lambda *a, **k: pytest.fail("fitted although --out is unusable"))
    taken = tmp_path / "taken"
    taken.write_text("not a folder")
    assert main(["fit", GMM, "--data", data, "--out", str(taken), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert f"--out {taken}: a file of that name exists" in err
    assert main(["fit", GMM, "--data", data, "--out", str(taken / "below"), "--quiet"]) == 2
    assert "is a file, so the folder cannot be made" in capsys.readouterr().err
    assert taken.read_text() == "not a folder"
    assert main(["predict", str(tmp_path), "--data", data, "--out", str(tmp_path)]) == 2
    assert "that is a folder; expected a file name" in capsys.readouterr().err


def test_a_truncated_npz_is_an_io_error(capsys, data, tmp_path):
    whole = Path(data).read_bytes()
    for cut in (200, len(whole) - 30):
        bad = tmp_path / f"cut{cut}.npz"
        bad.write_bytes(whole[:cut])
        assert main(["fit", GMM, "--data", str(bad), "--quiet", "--out", str(tmp_path / "r")]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: io: ") and str(bad) in err and "internal error" not in err, err


def test_a_npz_name_on_another_format_is_a_data_error_naming_the_file(capsys, tmp_path):
    """np.load goes by a file's first bytes: a text file named .npz was NumPy's "pickled
    (object) data" message, an .npy file named .npz an internal error (exit 1).  Nothing is
    unpickled: the pickle below would have raised its own error if it were."""
    import pickle

    text, npy, pickled = tmp_path / "text.npz", tmp_path / "array.npz", tmp_path / "object.npz"
    text.write_text("x,1.0,2.0\n")
    with open(npy, "wb") as f:
        np.save(f, np.ones(3))
    pickled.write_bytes(pickle.dumps(_Unpicklable()))
    for bad in (text, npy, pickled):
        assert main(["fit", GMM, "--data", str(bad), "--quiet", "--out", str(tmp_path / "r")]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"error: data: '{bad}' is not an .npz archive"), err
        assert "pickled" not in err and "internal error" not in err, err


class _Unpicklable:
    def __reduce__(self):
        return (_refuse, ())


def _refuse():
    raise AssertionError("a data file was unpickled")


def test_a_set_array_of_the_wrong_shape_names_the_setting(capsys, tmp_path):
    doc = np.repeat(np.arange(6), 10)
    np.savez(tmp_path / "t.npz", doc=doc, word=np.arange(doc.size) % 8)
    argv = ["fit", LDA, "--data", str(tmp_path / "t.npz"), "--set", "K=3", "--set", "D=6", "--set", "V=8",
            "--set", "alpha=[0.1,0.2]", "--quiet", "--out", str(tmp_path / "r"), "--max-iter", "2"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "--set alpha=[0.1, 0.2]" in err and "internal error" not in err, err


def test_a_set_name_the_model_lacks_gets_the_nearest(capsys, data, tmp_path):
    assert main(["fit", GMM, "--data", data, "--set", "k=3", "--quiet", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "--set k: the model has no dim or const 'k'" in err and "did you mean 'K'?" in err


def test_a_fractional_size_is_reported_in_cli_words(capsys, data, tmp_path):
    assert main(["fit", GMM, "--data", data, "--set", "K=2.5", "--quiet", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "const 'K' (from --set) is a size" in err and "consts=" not in err, err


def test_out_of_memory_is_a_resource_error_not_a_bug(capsys, data, tmp_path, monkeypatch):
    import jax

    import vemppl.api as engine_fit  # the CLI calls vemppl.api.fit

    def exhausted(*args, **kwargs):
        raise jax.errors.JaxRuntimeError("RESOURCE_EXHAUSTED: Out of memory while trying to allocate 7.28TiB.")

    monkeypatch.setattr(engine_fit, "fit", exhausted)
    assert main(["fit", GMM, "--data", data, "--quiet", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: resource: out of memory") and "7.28TiB" in err and "--batch-size" in err
    monkeypatch.setattr(engine_fit, "fit", lambda *a, **k: (_ for _ in ()).throw(MemoryError()))
    assert main(["fit", GMM, "--data", data, "--quiet", "--out", str(tmp_path / "r")]) == 2
    assert capsys.readouterr().err.startswith("error: resource: out of memory")


def test_out_of_memory_from_the_python_api_is_a_resource_vemerror(monkeypatch):
    """vemppl.fit let XLA's RESOURCE_EXHAUSTED out raw (issue #23): now a VemError of kind
    'resource' with the allocation's words, no JAX exception chained; other errors stay raw."""
    import jax

    import vemppl
    import vemppl.api as api

    x = np.zeros((10, 2))

    def exhausted(*args, **kwargs):
        raise jax.errors.JaxRuntimeError("RESOURCE_EXHAUSTED: Out of memory while trying to allocate 7.28TiB.")

    monkeypatch.setattr(api, "run_cavi", exhausted)
    with pytest.raises(vemppl.VemError) as info:
        vemppl.fit(vemppl.load(GMM), {"x": x})
    err = info.value
    assert err.kind == "resource" and "out of memory while fitting" in err.message and "7.28TiB" in err.message
    assert err.__cause__ is None and err.__suppress_context__ and "batch_size=" in err.hint
    monkeypatch.setattr(api, "run_cavi", lambda *a, **k: (_ for _ in ()).throw(MemoryError()))
    with pytest.raises(vemppl.VemError, match="out of memory"):
        vemppl.fit(vemppl.load(GMM), {"x": x})
    monkeypatch.setattr(api, "run_cavi", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("a bug")))
    with pytest.raises(RuntimeError, match="a bug"):  # not every RuntimeError is the user's
        vemppl.fit(vemppl.load(GMM), {"x": x})


def test_an_array_too_large_to_allocate_is_a_resource_error(capsys, tmp_path):
    """A word index of 2**63 - 1 makes the vocabulary that large: refused before any array is made."""
    doc = np.repeat(np.arange(6), 10)
    word = np.arange(doc.size) % 8
    word[3] = 2**63 - 1
    np.savez(tmp_path / "t.npz", doc=doc, word=word)
    code = main(["fit", LDA, "--data", str(tmp_path / "t.npz"), "--set", "K=3", "--quiet",
                 "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 2 and "internal error" not in err, err
    # The static size pass (ir/sizes.py) refuses V = 2**63 at the declaration that reads it.
    assert err.startswith(f"{LDA}:13:16: shape: dim 'V' is a size"), err
    assert "categories of 'word'" in err and "at most 2147483647" in err and "9.22337e+18" in err, err


def test_a_genuine_bug_is_still_exit_1(capsys, data, tmp_path, monkeypatch):
    import vemppl.api as engine_fit  # the CLI calls vemppl.api.fit

    monkeypatch.setattr(engine_fit, "fit", lambda *a, **k: [][0])
    assert main(["fit", GMM, "--data", data, "--quiet", "--out", str(tmp_path / "r")]) == 1
    assert capsys.readouterr().err.startswith("internal error: IndexError")


@pytest.mark.parametrize("sig, status", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_leaves_no_temporary_files(tmp_path, data, sig, status):
    """No user cache folder (XDG_CACHE_HOME is a file): the fit uses a per-process folder in
    TMPDIR, which SIGTERM, like SIGINT, must remove on the way out."""
    (tmp_path / "xdg").write_text("a file, so no cache folder can be made under it")
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "VEMPPL_CACHE_DIR"}
    env.update(TMPDIR=str(tmp), XDG_CACHE_HOME=str(tmp_path / "xdg"), PYTHONPATH=str(ROOT),
               MPLCONFIGDIR=str(tmp_path / "mpl"))
    big = tmp_path / "big.npz"  # enough rows that the fit is still running when the signal comes
    rng = np.random.default_rng(1)
    np.savez(big, x=np.concatenate([rng.normal(m, 1.0, (20000, 2)) for m in (-1.0, 1.0)]))
    proc = subprocess.Popen([sys.executable, "-m", "vemppl.cli", "fit", GMM, "--data", str(big), "--set", "K=8",
                             "--tol", "0", "--max-iter", "1000000", "--quiet", "--out", str(tmp_path / "r")],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while not list(tmp.glob("vemppl-xla-*")) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert list(tmp.glob("vemppl-xla-*")), "the fit made no per-process cache folder"
    time.sleep(1.0)  # into compiling or fitting (40k rows, K = 8: not done within seconds)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=240)
    assert proc.returncode == status, (proc.returncode, err)
    assert err.strip().splitlines()[-1] == ("terminated" if sig == signal.SIGTERM else "interrupted")
    assert list(tmp.iterdir()) == [], list(tmp.iterdir())
    assert not list(tmp_path.rglob("*.tmp"))
    assert "Traceback" not in err


def test_a_signal_the_main_thread_cannot_answer_is_still_said(tmp_path):
    """When the main thread stays out of reach (inside XLA's compile, modelled here by a loop
    that swallows every exception), the backstop ends the run after the grace period, with the
    same last line and status as the main thread's own exit."""
    code = ("import os, signal, sys, time\n"
            "from vemppl import cli_runtime\n"
            "cli_runtime.GRACE_SECONDS = 0.5\n"
            "cli_runtime.install_handlers()\n"
            "sent = False\n"
            "while True:\n"
            "    try:\n"
            "        if not sent:\n"
            "            sent = True\n"
            "            os.kill(os.getpid(), signal.SIGINT)\n"
            "        time.sleep(0.01)\n"
            "    except BaseException:\n"
            "        pass\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                       env={**os.environ, "PYTHONPATH": str(ROOT), "TMPDIR": str(tmp_path)})
    assert r.returncode == 130, (r.returncode, r.stderr)
    assert r.stderr.strip().splitlines() == ["interrupted"], r.stderr


@pytest.mark.parametrize("where", ["weakref callback", "__del__", "gc callback"])
def test_a_signal_inside_a_callback_is_raised_again_outside_it(where):
    """Python drops an exception raised in a weakref or gc callback or a ``__del__`` (importlib
    and JAX run such callbacks at any moment); a signal landing there must still stop the main
    code, without an 'Exception ignored' traceback (CI once saw one from importlib's callback)."""
    trigger = {
        "weakref callback": "import weakref\nclass A: pass\na = A()\nr = weakref.ref(a, lambda _: fire())\ndel a\n",
        "__del__": "class A:\n    def __del__(self): fire()\nA()\n",
        "gc callback": "import gc\ngc.callbacks.append(lambda *_: fire())\ngc.collect()\n",
    }[where]
    code = ("import os, signal, time\n"
            "from vemppl import cli_runtime\n"
            "cli_runtime.install_handlers()\n"
            "fired = []\n"
            "def fire():  # once: a gc callback runs at a collection's start and its stop\n"
            "    if fired: return\n"
            "    fired.append(1)\n"
            "    os.kill(os.getpid(), signal.SIGTERM)\n"
            "    for _ in range(1000): pass  # the handler runs here, inside the callback\n"
            "try:\n"
            + "".join("    " + line + "\n" for line in trigger.splitlines()) +
            "    for _ in range(200): time.sleep(0.01)\n"
            "    print('not stopped')\n"
            "except cli_runtime.Terminated:\n"
            "    print('stopped')\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "stopped", (r.stdout, r.stderr)
    assert r.stderr == "", r.stderr


def test_a_fifo_is_refused_not_read_forever(capsys, data, tmp_path):
    fifo = tmp_path / "m.vem"
    os.mkfifo(fifo)
    assert main(["check", str(fifo)]) == 2
    assert f"model '{fifo}' is not a regular file" in capsys.readouterr().err
    assert main(["fit", GMM, "--data", str(fifo), "--quiet", "--out", str(tmp_path / "r")]) == 2
    assert f"data '{fifo}' is not a regular file" in capsys.readouterr().err


def test_missing_inputs_are_reported_before_jax_starts():
    """A missing model, data file or results folder is an io error found before JAX is imported."""
    code = ("import sys, json\nfrom vemppl.cli import main\ncodes = [main(a) for a in (\n"
            f"    ['check', 'missing.vem'], ['fit', {GMM!r}, '--data', 'missing.npz'],\n"
            f"    ['render', 'missing.vem', '-o', 'm.svg'], ['predict', 'no-results', '--data', {GMM!r}])]\n"
            "print(json.dumps([codes, 'jax' in sys.modules]))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[[2, 2, 2, 2], false]", (r.stdout, r.stderr)
    assert "error: io: model file 'missing.vem' does not exist" in r.stderr
    assert "error: io: data file 'missing.npz' does not exist" in r.stderr
    assert "error: io: results folder 'no-results' does not exist" in r.stderr


def test_max_memory_refuses_a_model_larger_than_it(tmp_path, capsys, monkeypatch):
    """--max-memory sets the static size pass's limit: a GMM of 2,000 points fits in 64 MB but its
    variational state does not fit in 1 KB, refused before any array is built (exit 2, named)."""
    import numpy as np

    # main() sets VEMPPL_MAX_MEMORY for its process; monkeypatch removes it again at teardown
    # (setenv records the variable's absence; delenv of an absent variable records nothing)
    monkeypatch.setenv("VEMPPL_MAX_MEMORY", "64G")

    from vemppl.cli import main

    x = np.random.default_rng(0).normal(size=(2000, 3))
    np.savez(tmp_path / "d.npz", x=x)
    model = str(Path(__file__).resolve().parents[1] / "models" / "gmm.vem")
    assert main(["fit", model, "--data", str(tmp_path / "d.npz"), "--max-memory", "1K", "--quiet",
                 "--out", str(tmp_path / "out")]) == 2
    assert "memory" in capsys.readouterr().err.lower()
    assert os.environ["VEMPPL_MAX_MEMORY"] == "64G"  # the command's limit was for the command only
    with pytest.raises(SystemExit) as exit_:
        main(["fit", model, "--data", str(tmp_path / "d.npz"), "--max-memory", "lots", "--quiet"])
    assert exit_.value.code == 2
    assert "--max-memory" in capsys.readouterr().err
