"""Results on disk (issue #23): saved atomically as a whole, read defensively.

A failure injected at every write, rename and fsync of ``save`` leaves the old results or
the new ones, loadable, and nothing else in the folder; every damaged folder is an
``io`` error naming the file, including edits whose checksums were recomputed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

import vemppl as vp
from vemppl.results import io as rio

MODEL = """model nn
dim N
data x: real[N]
m ~ Normal(0, 1)
for n in range(N) { x[n] ~ Normal(m, precision = 1) }
"""


@pytest.fixture(scope="module")
def fits():
    model = vp.parse(MODEL)
    old = vp.fit(model, {"x": np.full(5, 1.0)}, max_iter=5)
    new = vp.fit(model, {"x": np.full(7, -2.0)}, max_iter=5)
    return old, new


def _mean(fit):
    return float(np.asarray(fit.state.mu["m"][0]))


def _files(folder):
    return sorted(p.name for p in folder.iterdir())


def _expected_files(folder):
    named = json.loads((folder / "manifest.json").read_text())["arrays_file"]
    return sorted(["manifest.json", named])


class _Boom(OSError):
    pass


class _FailingOS:
    """``os`` as io.py sees it, with the k-th replace/fsync/open raising (a kill there)."""

    def __init__(self, k):
        self.k, self.calls = k, 0

    def _step(self, fn):
        def run(*a, **kw):
            self.calls += 1
            if self.calls == self.k:
                raise _Boom(f"injected failure at step {self.k}")
            return fn(*a, **kw)

        return run

    def __getattr__(self, name):
        real = getattr(os, name)
        return self._step(real) if name in ("chmod", "fdopen", "fsync", "replace", "unlink") else real


def _count_steps(fits, tmp_path, monkeypatch):
    counter = _FailingOS(k=-1)
    monkeypatch.setattr(rio, "os", counter)
    fits[1].save(tmp_path / "count")
    monkeypatch.setattr(rio, "os", os)
    return counter.calls


def test_a_failure_at_every_step_of_save_leaves_old_or_new(fits, tmp_path, monkeypatch):
    old, new = fits
    steps = _count_steps(fits, tmp_path, monkeypatch)
    assert steps >= 9  # two files: chmod, open, fsync, replace each; the folder's fsyncs; the old arrays' removal
    outcomes = []
    for k in range(1, steps + 1):
        folder = tmp_path / f"r{k}"
        old.save(folder)
        monkeypatch.setattr(rio, "os", _FailingOS(k))
        try:
            new.save(folder)
            failed = False
        except _Boom:
            failed = True
        finally:
            monkeypatch.setattr(rio, "os", os)
        back = vp.load_results(folder)
        got = _mean(back)
        assert got in (_mean(old), _mean(new)), k
        if failed:
            outcomes.append("new" if got == _mean(new) else "old")
            assert _files(folder) == _expected_files(folder), (k, _files(folder))
        else:
            # Once the manifest is renamed the save has succeeded: a failed folder fsync or a
            # failed removal of the old arrays is not an error; that file, named by no
            # manifest, is removed by the next save.
            assert got == _mean(new)
            stray = set(_files(folder)) - set(_expected_files(folder))
            assert all(rio._ARRAYS_NAME.match(n) for n in stray), (k, stray)
            old.save(folder)
            assert _files(folder) == _expected_files(folder), (k, _files(folder))
    assert "old" in outcomes  # the injections did hit before the commit


class _Snapshots:
    """``os`` (and ``tempfile``) as io.py sees them, copying the folder before every call that
    changes it or a file in it (mkstemp, chmod, each write and flush of a temp file, fsync,
    replace, unlink): each copy is what a kill -9 at that point leaves on disk (no cleanup
    handler runs after a kill, unlike the injected exceptions above)."""

    STEPS = ("chmod", "fsync", "replace", "unlink", "open")

    def __init__(self, folder, into):
        self.folder, self.into, self.copies = folder, into, []

    def snap(self):
        import shutil

        dest = self.into / f"kill{len(self.copies):02d}"
        shutil.copytree(self.folder, dest)
        self.copies.append(dest)

    def _step(self, fn):
        def run(*a, **kw):
            self.snap()
            return fn(*a, **kw)

        return run

    def mkstemp(self, *a, **kw):
        import tempfile

        self.snap()
        return tempfile.mkstemp(*a, **kw)

    def fdopen(self, *a, **kw):
        fh = os.fdopen(*a, **kw)
        outer = self

        class File:
            def __enter__(self):
                return self

            def __exit__(self, *exc):
                return fh.__exit__(*exc)

            def write(self, data):
                outer.snap()
                fh.write(data[: len(data) // 2])  # a kill in the middle of a write
                outer.snap()
                return fh.write(data[len(data) // 2:])

            def flush(self):
                outer.snap()
                return fh.flush()

            def fileno(self):
                return fh.fileno()

        return File()

    def __getattr__(self, name):
        real = getattr(os, name)
        return self._step(real) if name in self.STEPS else real


def test_a_kill_at_every_point_of_save_leaves_old_or_new_and_the_next_save_cleans_up(fits, tmp_path, monkeypatch):
    """Every state of the folder during a save (copied before each change, and in the middle
    of each write) loads as the old results or the new ones; what else it holds is a temp
    file or an arrays file no manifest names, never read, and the next save removes it."""
    old, new = fits
    folder = tmp_path / "r"
    old.save(folder)
    spy = _Snapshots(folder, tmp_path)
    monkeypatch.setattr(rio, "os", spy)
    monkeypatch.setattr(rio, "tempfile", spy)
    new.save(folder)
    monkeypatch.setattr(rio, "os", os)
    import tempfile

    monkeypatch.setattr(rio, "tempfile", tempfile)
    spy.snap()  # and after the save
    assert len(spy.copies) >= 12, len(spy.copies)
    seen = []
    for copy in spy.copies:
        got = _mean(vp.load_results(copy))
        assert got in (_mean(old), _mean(new)), copy.name
        seen.append("new" if got == _mean(new) else "old")
        stray = set(_files(copy)) - set(_expected_files(copy))
        assert all(n.endswith(".tmp") or rio._ARRAYS_NAME.match(n) for n in stray), (copy.name, stray)
        (old if seen[-1] == "new" else new).save(copy)  # the next save (the other results)
        assert _files(copy) == _expected_files(copy), (copy.name, _files(copy))
    # Old until the manifest's rename, new from then on: exactly one switch.
    assert seen[0] == "old" and seen[-1] == "new" and seen == sorted(seen, key=["old", "new"].index), seen
    assert _files(folder) == _expected_files(folder)


def test_a_hard_kill_leaves_old_results_and_the_next_save_cleans_up(fits, tmp_path):
    old, new = fits
    folder = tmp_path / "r"
    old.save(folder)
    # What a kill -9 between the writes leaves: the new arrays and a temp manifest, uncommitted.
    (folder / "arrays-0123456789abcdef.npz").write_bytes(b"partial")
    (folder / ".manifest.json.abc123.tmp").write_bytes(b"{")
    assert _mean(vp.load_results(folder)) == _mean(old)
    new.save(folder)
    assert _mean(vp.load_results(folder)) == _mean(new)
    assert _files(folder) == _expected_files(folder)


def test_each_rename_is_made_durable_by_an_fsync_of_the_folder(fits, tmp_path, monkeypatch):
    """The folder was not fsynced (issue #23): a rename could be lost in a power cut after
    save returned.  Each file is fsynced before its rename, and the folder after it."""
    folder = tmp_path / "r"
    log, opened = [], {}

    class Spy:
        def __getattr__(self, name):
            return getattr(os, name)

        def open(self, path, *a, **kw):
            fd = os.open(path, *a, **kw)
            opened[fd] = Path(path)
            return fd

        def close(self, fd):
            opened.pop(fd, None)  # the number is reused by the next open (mkstemp's)
            return os.close(fd)

        def fsync(self, fd):
            log.append(("fsync", opened.get(fd, "a file")))
            return os.fsync(fd)

        def replace(self, src, dst):
            log.append(("replace", Path(dst).name))
            return os.replace(src, dst)

    monkeypatch.setattr(rio, "os", Spy())
    fits[0].save(folder)
    named = json.loads((folder / "manifest.json").read_text())["arrays_file"]
    assert log == [("fsync", "a file"), ("replace", named), ("fsync", folder),
                   ("fsync", "a file"), ("replace", "manifest.json"), ("fsync", folder)], log


def test_save_into_a_file_is_an_io_error(fits, tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(vp.VemError) as info:
        fits[0].save(tmp_path / "f")
    assert info.value.kind == "io" and "'" + str(tmp_path / "f") + "'" in info.value.message


# ---- damaged folders ----------------------------------------------------------------------
def _rewrite(folder, edit):
    """Apply ``edit`` to the manifest and recompute its checksum, as a careful forger would."""
    m = json.loads((folder / "manifest.json").read_text())
    edit(m)
    m["manifest_sha256"] = rio._self_hash(m)
    (folder / "manifest.json").write_text(json.dumps(m))


def _rewrite_arrays(folder, edit):
    m = json.loads((folder / "manifest.json").read_text())
    with np.load(folder / m["arrays_file"]) as npz:
        arrays = {k: npz[k] for k in npz.files}
    edit(arrays)
    import io as _io

    buf = _io.BytesIO()
    np.savez_compressed(buf, **arrays)
    (folder / m["arrays_file"]).write_bytes(buf.getvalue())
    _rewrite(folder, lambda mm: mm.update(arrays_sha256=rio._sha256(buf.getvalue())))


def _damaged(fits, tmp_path, name):
    folder = tmp_path / name
    fits[0].save(folder)
    return folder


def _load_error(folder, *phrases):
    with pytest.raises(vp.VemError) as info:
        vp.load_results(folder)
    err = info.value
    assert err.kind == "io", err.render()
    for p in phrases:
        assert p in err.message, err.render()
    return err


def test_manifest_that_is_a_folder(fits, tmp_path):
    folder = _damaged(fits, tmp_path, "dir")
    (folder / "manifest.json").unlink()
    (folder / "manifest.json").mkdir()
    _load_error(folder, "manifest.json", "is a folder")


def test_deeply_nested_manifest(fits, tmp_path):
    folder = _damaged(fits, tmp_path, "deep")
    (folder / "manifest.json").write_text("[" * 200000 + "]" * 200000)
    _load_error(folder, "manifest.json", "nested")


def test_manifest_not_utf8_or_not_json(fits, tmp_path):
    folder = _damaged(fits, tmp_path, "bytes")
    (folder / "manifest.json").write_bytes(b"\xff\xfe\x00garbage")
    _load_error(folder, "manifest.json", "UTF-8")
    (folder / "manifest.json").write_text("{not json")
    _load_error(folder, "manifest.json", "not valid JSON")


def test_results_path_missing_or_a_file(tmp_path):
    _load_error(tmp_path / "nothing", "does not exist")
    (tmp_path / "file").write_text("x")
    _load_error(tmp_path / "file", "not a folder")


def test_missing_arrays_file(fits, tmp_path):
    folder = _damaged(fits, tmp_path, "noarrays")
    for p in folder.glob("arrays-*.npz"):
        p.unlink()
    _load_error(folder, "does not exist", "incomplete")


@pytest.mark.parametrize(
    "edit, phrases",
    [
        (lambda m: m.update(sizes="N"), ["'sizes'", "whole numbers"]),
        (lambda m: m.pop("blocks"), ["lacks the key 'blocks'"]),
        (lambda m: m.update(elbo_trace=[1.0, "x"]), ["'elbo_trace'"]),
        (lambda m: m["sizes"].update(N=6), ["data 'x'", "(5,)", "(6,)"]),
        (lambda m: m["data"]["x"].update(shape=[9]), ["data 'x'", "(9,)", "(5,)"]),
        (lambda m: m["sizes"].pop("N"), ["dim 'N'"]),
        (lambda m: m.update(arrays_file="../elsewhere.npz"), ["arrays file"]),
        (lambda m: m.update(elbo=m["elbo"] - 100.0), ["elbo", "trace"]),
    ],
    ids=["sizes-type", "missing-key", "trace-type", "size-edited", "data-shape-edited", "size-missing",
         "arrays-path", "elbo-edited"],
)
def test_manifest_edits_with_recomputed_checksums(fits, tmp_path, edit, phrases):
    folder = _damaged(fits, tmp_path, "edit")
    _rewrite(folder, edit)
    _load_error(folder, "manifest.json", *phrases)


@pytest.mark.parametrize(
    "edit, phrases",
    [
        (lambda a: a.update({"mu/m/mean": np.zeros(3)}), ["mu/m/mean", "(3,)"]),
        (lambda a: a.update({"eta/m/mean": np.zeros((2, 2)), "mu/m/mean": np.zeros((2, 2)),
                             "eta/m/sq": np.zeros((2, 2)), "mu/m/sq": np.zeros((2, 2))}), ["block 'm'", "(2, 2)"]),
        (lambda a: a.update(elbo_trace=a["elbo_trace"][:-1]), ["elbo_trace"]),
    ],
    ids=["eta-mu-disagree", "batch-not-the-node", "trace-cut"],
)
def test_array_edits_with_recomputed_checksums(fits, tmp_path, edit, phrases):
    folder = _damaged(fits, tmp_path, "arr")
    _rewrite_arrays(folder, edit)
    _load_error(folder, *phrases)


def test_results_of_the_previous_layout_still_load(fits, tmp_path):
    folder = _damaged(fits, tmp_path, "legacy")
    m = json.loads((folder / "manifest.json").read_text())
    (folder / m["arrays_file"]).rename(folder / "arrays.npz")
    _rewrite(folder, lambda mm: mm.pop("arrays_file"))
    assert _mean(vp.load_results(folder)) == _mean(fits[0])
