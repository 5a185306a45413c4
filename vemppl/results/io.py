"""Results on disk: ``manifest.json`` + ``arrays.npz``, written atomically, never pickled.

Arrays are named by path: ``eta/<block>/<statistic>``, ``mu/<block>/<statistic>``,
``params/<param>``, and ``params/<network>/<weight>`` (``W0``, ``b0``, ...) for the
weight pytree of a neural-network param.

The manifest holds the format version, the model as canonical ``.vem`` text, the sizes,
constants, the data's shapes and SHA-256 hashes, the fit's settings, the ELBO trace and
convergence, and two checksums: one of ``arrays.npz`` and one of the manifest's own
content, so a truncated array file or an edited manifest is reported, not trusted.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from ..diagnostics import VemError

FORMAT = "vemppl-results"
FORMAT_VERSION = 1


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
    from ..frontends.printer import to_text

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
        "blocks": {b.name: {"family": b.family, "structure": b.structure, "update": b.update} for b in fit.plan.blocks},
        "params": {p.name: {"type": p.type, "mstep": p.mstep, "family": p.family} for p in fit.plan.params},
        "settings": {"seed": fit.seed, "restarts": fit.restarts, "best_restart": fit.best_restart},
        "elbo": fit.elbo,
        "elbo_trace": [float(x) for x in fit.elbo_trace],
        "converged": bool(fit.converged),
        "iterations": int(fit.iterations),
        "compile_seconds": fit.compile_seconds,
        "fit_seconds": fit.fit_seconds,
        "arrays_sha256": _sha256(blob),
    }
    from .. import __version__

    manifest["vemppl_version"] = __version__
    manifest["manifest_sha256"] = _self_hash(manifest)
    _atomic_write(path / "arrays.npz", blob)
    _atomic_write(path / "manifest.json", json.dumps(manifest, indent=2).encode())
    return path


def read(path):
    """The manifest and the arrays of a results folder, verified."""
    path = Path(path)
    mpath, apath = path / "manifest.json", path / "arrays.npz"
    for p in (mpath, apath):
        if not p.exists():
            raise VemError("io", f"'{p}' does not exist: is '{path}' a folder written by fit.save / vemppl fit?")
    try:
        manifest = json.loads(mpath.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise VemError("io", f"'{mpath}' is not valid JSON ({exc}); the file is damaged") from None
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
    blob = apath.read_bytes()
    if _sha256(blob) != manifest.get("arrays_sha256"):
        raise VemError(
            "io", f"'{apath}' does not match '{mpath}' (truncated, edited or from another fit)",
            hint="re-run the fit, or restore the file",
        )
    try:
        with np.load(io.BytesIO(blob), allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        raise VemError("io", f"'{apath}' cannot be read: {exc}") from None
    return manifest, arrays
