"""Results on disk: ``manifest.json`` + ``arrays-<hash>.npz``, written atomically as a whole,
read defensively, never pickled.

**Atomic as a whole** (issue #23): :func:`save` writes the arrays under a new name that
carries their hash (``arrays-<first 16 hex of the SHA-256>.npz``: temp file, fsync, rename,
fsync of the folder), then commits by replacing ``manifest.json`` (temp, fsync, rename,
fsync), which names that file; only then are the arrays files no manifest names removed.
A kill at any point leaves the old manifest with its old arrays or the new manifest with
its new arrays; the next save removes what an interrupted one left (``.*.tmp`` and
unnamed arrays files).  Results written before this format (``arrays.npz``, no
``arrays_file`` key) are still read.

**Read defensively**: every failure to read is an ``io`` :class:`VemError` naming the file:
a manifest that is a folder, not UTF-8, not JSON, nested too deeply, or not of the schema
(:data:`SCHEMA`); checksums; and :func:`check_consistent` compares every size and shape the
manifest states with the model and the arrays.

Arrays are named by path: ``eta/<block>/<statistic>``, ``mu/<block>/<statistic>``,
``params/<param>``, and ``params/<network>/<weight>`` (``W0``, ``b0``, ...) for the
weight pytree of a neural-network param.

The manifest holds the format version, the model as canonical ``.vem`` text, the sizes,
constants, the data's shapes and SHA-256 hashes, the fit's settings (``seed``, ``restarts``,
``best_restart``, ``algorithm``: ``"cavi"`` or ``"svi"``, ``tol``: the stopping rule's relative
tolerance, null for ``"svi"``; both absent from results saved before them), the ELBO trace and
convergence (``converged`` is false for an ``"svi"`` fit, which runs ``max_iter`` steps with no
convergence test), and two checksums: one of ``arrays.npz`` and one of the manifest's own
content, so a truncated array file or an edited manifest is reported, not trusted.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from .._version import __version__
from ..diagnostics import VemError
from ..frontends.printer import to_text
from .schema import check_schema

FORMAT = "vemppl-results"
FORMAT_VERSION = 1


MANIFEST = "manifest.json"
LEGACY_ARRAYS = "arrays.npz"
_ARRAYS_NAME = re.compile(r"arrays(-[0-9a-f]{16})?\.npz\Z")
#: The deepest JSON nesting a manifest may have (its own schema needs 4).
MAX_DEPTH = 32


def _atomic_write(path: Path, data: bytes):
    """Write ``data`` to ``path`` so readers see the old file or the new one, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp's 0600 is for secrets: results are files like any other
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path):
    """Make a rename in ``folder`` durable (a no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _remove_stale(folder: Path, keep: str):
    """Arrays files no manifest names and temp files of an interrupted save.  Best effort:
    the save is committed already, nothing reads these files, and the next save retries."""
    for p in folder.iterdir():
        stale = _ARRAYS_NAME.match(p.name) and p.name != keep
        stale = stale or (p.name.startswith((f".{MANIFEST}.", ".arrays")) and p.name.endswith(".tmp"))
        if stale and p.is_file():
            try:
                os.unlink(p)
            except OSError:
                pass


def _umask() -> int:
    mask = os.umask(0o022)  # read it by setting it: there is no other portable way
    os.umask(mask)
    return mask


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _self_hash(manifest: dict) -> str:
    body = {k: v for k, v in manifest.items() if k != "manifest_sha256"}
    return _sha256(json.dumps(body, sort_keys=True).encode())


def array_hash(a) -> str:
    a = np.ascontiguousarray(np.asarray(a))
    return _sha256(str((a.dtype.str, a.shape)).encode() + a.tobytes())


def save(fit, path) -> Path:
    """Write ``fit`` to the folder ``path`` (created if needed)."""
    path = Path(path)
    arrays = {}
    for j, eta in fit.state.eta.items():
        for field, v in eta._asdict().items():
            arrays[f"eta/{j}/{field}"] = np.asarray(v)
    for j, mu in fit.state.mu.items():
        for field, v in mu._asdict().items():
            arrays[f"mu/{j}/{field}"] = np.asarray(v)
    for p, v in fit.state.params.items():
        if isinstance(v, dict):  # a network's weights: one named array per layer tensor
            for k, w in v.items():
                arrays[f"params/{p}/{k}"] = np.asarray(w)
        else:
            arrays[f"params/{p}"] = np.asarray(v)
    arrays["elbo_trace"] = np.asarray(fit.elbo_trace)
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    blob = buf.getvalue()
    data_nodes = [n.name for n in fit.model.of_kind("data")]
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model_name": fit.model.name,
        "model_text": to_text(fit.model),
        "sizes": {k: int(v) for k, v in fit.bound.sizes.items()},
        "consts": {
            k: np.asarray(v).tolist() for k, v in fit.bound.values.items() if k not in data_nodes
        },
        "data": {
            k: {"shape": list(np.shape(fit.bound.values[k])), "dtype": str(np.asarray(fit.bound.values[k]).dtype),
                "sha256": array_hash(fit.bound.values[k])}
            for k in data_nodes
        },
        "blocks": {b.name: {"family": b.family, "structure": b.structure_text, "update": b.update} for b in fit.plan.blocks},
        "params": {p.name: {"type": p.type, "mstep": p.mstep, "family": p.family} for p in fit.plan.params},
        # "svi": a stochastic fit, whose "converged" is false by design (no convergence test; it
        # ran its max_iter steps).  Results saved before this key are CAVI fits.
        "settings": {"seed": fit.seed, "restarts": fit.restarts, "best_restart": fit.best_restart,
                     "algorithm": "svi" if getattr(fit, "stochastic", False) else "cavi",
                     "tol": getattr(fit, "tol", None)},  # the stopping rule's; null for SVI
        "elbo": fit.elbo,
        "elbo_trace": [float(x) for x in fit.elbo_trace],
        "converged": bool(fit.converged),
        "iterations": int(fit.iterations),
        "compile_seconds": fit.compile_seconds,
        "fit_seconds": fit.fit_seconds,
        "arrays_sha256": _sha256(blob),
        # What binding the data decided on the user's behalf (a dim taken from the categories):
        # the summary of a loaded fit says it as the fit's own did.
        "notes": [str(n) for n in getattr(fit.bound, "notes", ())],
    }
    manifest["vemppl_version"] = __version__
    arrays_file = f"arrays-{manifest['arrays_sha256'][:16]}.npz"
    manifest["arrays_file"] = arrays_file
    manifest["manifest_sha256"] = _self_hash(manifest)
    if path.exists() and not path.is_dir():
        raise VemError("io", f"cannot save results to '{path}': it is a file, not a folder")
    path.mkdir(parents=True, exist_ok=True)
    committed = False
    try:
        _atomic_write(path / arrays_file, blob)  # new name: the old manifest's arrays stay intact
        _atomic_write(path / MANIFEST, json.dumps(manifest, indent=2).encode())  # the commit
        committed = True
        _remove_stale(path, keep=arrays_file)
    except BaseException:
        if not committed and _named_arrays(path) != arrays_file and (path / arrays_file).exists():
            (path / arrays_file).unlink()  # the old results stay, with nothing of the new beside them
        raise
    return path


def arrays_file(path) -> str:
    """The name of the arrays file the results folder ``path`` uses (for listing what was written)."""
    return _named_arrays(Path(path)) or LEGACY_ARRAYS


def _named_arrays(path: Path) -> str | None:
    """The arrays file the manifest on disk names (None if it cannot be read)."""
    try:
        return json.loads((path / MANIFEST).read_text(encoding="utf-8")).get("arrays_file", LEGACY_ARRAYS)
    except (OSError, ValueError, AttributeError, RecursionError):
        return None


def _load_json(mpath: Path):
    try:
        text = mpath.read_text(encoding="utf-8")
    except IsADirectoryError:
        raise VemError("io", f"'{mpath}' is a folder, not a results manifest; the results are damaged") from None
    except UnicodeDecodeError:
        raise VemError("io", f"'{mpath}' is not UTF-8 text; the file is damaged") from None
    except OSError as exc:
        raise VemError("io", f"cannot read '{mpath}': {exc.strerror or exc}") from None
    if _depth(text) > MAX_DEPTH:
        raise VemError("io", f"'{mpath}' is nested more than {MAX_DEPTH} levels deep; it is not a results manifest")
    try:
        return json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise VemError("io", f"'{mpath}' is not valid JSON ({exc}); the file is damaged") from None


def _depth(text: str) -> int:
    """The deepest bracket nesting of a JSON text (strings skipped), without recursion."""
    depth = top = 0
    in_str = esc = False
    for ch in text:
        if in_str:
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                in_str = False
        elif ch == '"':
            in_str = True
        elif ch in "[{":
            depth += 1
            top = max(top, depth)
        elif ch in "]}":
            depth -= 1
    return top


def read(path):
    """The manifest and the arrays of a results folder, verified."""
    path = Path(path)
    mpath = path / MANIFEST
    if not path.is_dir():
        what = "does not exist" if not path.exists() else "is not a folder"
        raise VemError("io", f"'{path}' {what}: expected a folder written by fit.save / vemppl fit")
    if not mpath.exists():
        raise VemError("io", f"'{mpath}' does not exist: is '{path}' a folder written by fit.save / vemppl fit?")
    manifest = _load_json(mpath)
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise VemError("io", f"'{mpath}' is not a vemppl results manifest")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise VemError(
            "io",
            f"'{mpath}' has format version {manifest.get('format_version')}; this vemppl reads version {FORMAT_VERSION}",
        )
    if manifest.get("manifest_sha256") != _self_hash(manifest):
        raise VemError(
            "io", f"'{mpath}' was modified after it was written (its checksum does not match its content)",
            hint="re-run the fit, or restore the file",
        )
    check_schema(manifest, mpath)
    name = manifest.get("arrays_file", LEGACY_ARRAYS)
    if not _ARRAYS_NAME.match(name):
        raise VemError("io", f"'{mpath}' names the arrays file {name!r}; expected arrays-<16 hex>.npz")
    apath = path / name
    try:
        blob = apath.read_bytes()
    except FileNotFoundError:
        raise VemError("io", f"'{apath}' does not exist: the results in '{path}' are incomplete",
                       hint="re-run the fit") from None
    except OSError as exc:
        raise VemError("io", f"cannot read '{apath}': {exc.strerror or exc}") from None
    if _sha256(blob) != manifest.get("arrays_sha256"):
        raise VemError(
            "io", f"'{apath}' does not match '{mpath}' (truncated, edited or from another fit)",
            hint="re-run the fit, or restore the file",
        )
    try:
        with np.load(io.BytesIO(blob), allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError) as exc:
        raise VemError("io", f"'{apath}' cannot be read: {exc}") from None
    return manifest, arrays


from .schema import check_consistent  # noqa: E402,F401  (the loader's one import)
