"""The conjugacy probe's reading kept beside the compiled programs, across processes (issue #21).

The probe (compiler/conjugacy.py) traces the expected log joint once per compile, abstractly:
0.2-0.4 s of a warm 10k-point GMM's ``vemppl fit``, whose programs the XLA cache already
holds.  Where vemppl keeps compiled programs across processes (``_compile_cache.kept_folder``:
the command line's user folder, ``VEMPPL_CACHE_DIR``, ``vemppl.use_compilation_cache``), the
reading (the moments read of each block and param, the reads that are not affine, and why) is
kept in the same folder as JSON, one file per key, ``vemppl-probe-<key>.json``; JAX's own
entries end in ``-cache`` and ``-atime``, and its eviction reads only those.  This process's
temporary folder keeps none: a later fit in the process compiles its model again.

The key is a SHA-256 of everything the reading depends on: the model's nodes (their ``repr``:
names, kinds, types, every expression and constant), the source position of every node and
statement (the reasons name them), the plan the probe reads (blocks, factors, params,
schedule), the versions of vemppl, JAX, jaxlib, NumPyro and NumPy, whether float64 is on, and
the size and modification time of every source file of vemppl (an edited vemppl never reads
what its earlier code wrote).  The data's shapes and values are not read: the probe runs on
stand-in sizes drawn from the model alone.  A model whose ``repr`` elides (NumPy's ``...``
inside a large array) is not kept.  An entry that cannot be read, or does not parse as this
format, is a miss and is written again; a folder that cannot be written keeps nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import jax
import jaxlib
import numpy as np
import numpyro

from .. import _compile_cache
from .._version import __version__
from ..elj.moments import Tracker

#: The file format; a reading of another format is a miss.
FORMAT = 1
_STAMP: list[str] = []


def source_stamp() -> str:
    """A digest of the size and modification time of each of vemppl's source files (memoised)."""
    if not _STAMP:
        root = Path(__file__).resolve().parents[1]
        h = hashlib.sha256()
        for path in sorted(root.rglob("*.py")):
            st = path.stat()
            h.update(f"{path.relative_to(root).as_posix()} {st.st_size} {st.st_mtime_ns}\n".encode())
        _STAMP.append(h.hexdigest())
    return _STAMP[0]


def probe_key(model, plan) -> str | None:
    """The entry's key for ``model`` (an IR) and ``plan``; None where the model cannot be keyed."""
    nodes = list(model.nodes.values())
    spans = [(n.name, n.span, [(d.span, d.dist_span) for d in n.defs]) for n in nodes]
    text = "\n".join([
        f"vemppl-probe {FORMAT}", repr(nodes), repr(spans), repr(plan),
        f"vemppl {__version__} jax {jax.__version__} jaxlib {jaxlib.__version__} numpyro {numpyro.__version__} "
        f"numpy {np.__version__} x64 {bool(jax.config.jax_enable_x64)}", source_stamp(),
    ])
    if "..." in text:
        return None
    return hashlib.sha256(text.encode()).hexdigest()


def _path(model, plan) -> Path | None:
    folder = _compile_cache.kept_folder()
    key = probe_key(model, plan) if folder else None
    return Path(folder) / f"vemppl-probe-{key}.json" if key else None


def read(model, plan) -> Tracker | None:
    """The kept reading for ``model`` and ``plan``, or None."""
    path = _path(model, plan)
    if path is None:
        return None
    try:
        kept = json.loads(path.read_text())
        if kept.get("format") != FORMAT:
            return None
        tracker = Tracker()
        tracker.reads = {str(k): {str(m) for m in v} for k, v in kept["reads"].items()}
        tracker.nonlinear = {str(k): {str(m) for m in v} for k, v in kept["nonlinear"].items()}
        tracker.reasons = {str(k): str(v) for k, v in kept["reasons"].items()}
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None
    return tracker


def write(model, plan, tracker: Tracker) -> None:
    """Keep ``tracker``'s reading for ``model`` and ``plan`` (atomically; nothing on an error)."""
    path = _path(model, plan)
    if path is None:
        return
    text = json.dumps({"format": FORMAT,
                       "reads": {k: sorted(v) for k, v in tracker.reads.items()},
                       "nonlinear": {k: sorted(v) for k, v in tracker.nonlinear.items()},
                       "reasons": dict(tracker.reasons)}, sort_keys=True)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".vemppl-probe-", suffix=".tmp")
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except OSError:
        try:
            os.unlink(tmp)
        except (OSError, UnboundLocalError):
            pass
