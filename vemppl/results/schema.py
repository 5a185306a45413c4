"""The results manifest's schema, and its consistency with the model and the arrays.

A checksum says a file is the one that was written; it cannot say that what was written
agrees with itself (issue #23: sizes and shapes edited with recomputed checksums were
accepted).  :func:`check_schema` checks every key's type; :func:`check_consistent`
checks every size and shape the manifest states against the model and the arrays:

* every dim and const of the model has a whole-number size ``>= 0`` in ``sizes``, and a
  const used as a size equals its value in ``consts``;
* each data array's recorded shape is its declared type's shape at those sizes;
* each param array has the shape of its declared type;
* each block's natural and mean statistics (``eta/…``, ``mu/…``) have equal shapes, their
  leading (batch) axes agree across statistics and are a leading part of the block's
  node shape at those sizes (a chain's statistics are checked for equality only);
* ``elbo_trace`` in the arrays equals the manifest's, which has ``iterations`` entries
  at most, and ``elbo`` is its last value.

Each failure is an ``io`` :class:`~vemppl.diagnostics.VemError` naming the file and the key.
"""

from __future__ import annotations

import math
from numbers import Real

import numpy as np

from ..diagnostics import VemError
from ..families import get_family
from ..ir.sizes import _Sizes


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _num_or_none(v) -> bool:
    return v is None or (isinstance(v, Real) and not isinstance(v, bool))


def _dict_of(check):
    return lambda v: isinstance(v, dict) and all(isinstance(k, str) and check(x) for k, x in v.items())


def _nested_numbers(v, depth=0) -> bool:
    if depth > 8:
        return False
    if isinstance(v, list):
        return all(_nested_numbers(x, depth + 1) for x in v)
    return isinstance(v, Real)


_DATA = _dict_of(lambda d: isinstance(d, dict) and isinstance(d.get("shape"), list)
                 and all(_is_int(s) and s >= 0 for s in d["shape"]) and isinstance(d.get("dtype"), str)
                 and isinstance(d.get("sha256"), str))
_BLOCK = _dict_of(lambda b: isinstance(b, dict) and isinstance(b.get("family"), str))
_SETTINGS = lambda s: (isinstance(s, dict) and all(_is_int(s.get(k)) for k in ("seed", "restarts"))  # noqa: E731
                       and s.get("algorithm", "cavi") in ("cavi", "svi")
                       and _num_or_none(s.get("tol")) and not (s.get("tol") or 0) < 0)

#: key -> (a check of its value, what it should be, in words).
SCHEMA = {
    "format": (lambda v: isinstance(v, str), "a string"),
    "format_version": (_is_int, "an integer"),
    "model_name": (lambda v: isinstance(v, str), "a string"),
    "model_text": (lambda v: isinstance(v, str), "a string"),
    "sizes": (_dict_of(lambda v: _is_int(v) and v >= 0), "a mapping from names to whole numbers >= 0"),
    "consts": (_dict_of(_nested_numbers), "a mapping from names to numbers or nested lists of numbers"),
    "data": (_DATA, "a mapping from names to {shape, dtype, sha256}"),
    "blocks": (_BLOCK, "a mapping from block names to {family, ...}"),
    "params": (_dict_of(lambda v: isinstance(v, dict)), "a mapping from names to objects"),
    "settings": (_SETTINGS, "an object with integer seed and restarts (and algorithm \"cavi\" or \"svi\", "
                            "tol a number >= 0 or null)"),
    "elbo": (_num_or_none, "a number"),
    "elbo_trace": (lambda v: isinstance(v, list) and all(_num_or_none(x) for x in v), "a list of numbers"),
    "converged": (lambda v: isinstance(v, bool), "true or false"),
    "iterations": (lambda v: _is_int(v) and v >= 0, "a whole number >= 0"),
    "compile_seconds": (_num_or_none, "a number"),
    "fit_seconds": (_num_or_none, "a number"),
    "arrays_sha256": (lambda v: isinstance(v, str), "a string"),
    "manifest_sha256": (lambda v: isinstance(v, str), "a string"),
}
OPTIONAL = {"arrays_file": (lambda v: isinstance(v, str), "a string"),
            "vemppl_version": (lambda v: isinstance(v, str), "a string"),
            "notes": (lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v), "a list of strings")}


def check_schema(manifest: dict, mpath) -> None:
    for key, (ok, what) in SCHEMA.items():
        if key not in manifest:
            raise VemError("io", f"'{mpath}' lacks the key '{key}'; it is not a complete results manifest")
        if not ok(manifest[key]):
            raise VemError("io", f"'{mpath}': '{key}' must be {what}; got {_show(manifest[key])}")
    for key, (ok, what) in OPTIONAL.items():
        if key in manifest and not ok(manifest[key]):
            raise VemError("io", f"'{mpath}': '{key}' must be {what}; got {_show(manifest[key])}")


def _show(v) -> str:
    text = repr(v)
    return text if len(text) <= 60 else text[:57] + "..."


def check_consistent(manifest: dict, arrays: dict, model, path) -> None:
    """Every size and shape of ``manifest`` against ``model`` (parsed from its text) and ``arrays``."""
    where = f"'{path}/manifest.json'"
    sizes = manifest["sizes"]
    known = _Sizes(model, sizes)

    def bad(msg):
        raise VemError("io", f"{where}: {msg}; the results are inconsistent", hint="re-run the fit")

    for node in model.of_kind("dim", "const"):
        if node.name in sizes and node.name in manifest["consts"] and node.kind == "const":
            v = np.asarray(manifest["consts"][node.name], dtype=float)
            if v.ndim == 0 and float(v) != sizes[node.name]:
                bad(f"const '{node.name}' is {float(v):g} but its size is {sizes[node.name]}")
        elif node.kind == "dim" and node.name not in sizes:
            bad(f"the size of dim '{node.name}' is missing")

    def resolved(name):
        shape = model.shapes.get(name, ())
        out = tuple(known.size(s) for s in shape)
        return None if None in out else out

    for name, rec in manifest["data"].items():
        node = model.nodes.get(name)
        if node is None or node.kind != "data":
            bad(f"'data' names '{name}', which the model does not declare as data")
        want = resolved(name)
        if want is not None and tuple(rec["shape"]) != want:
            bad(f"data '{name}' has shape {tuple(rec['shape'])} but its type at these sizes gives {want}")
    for p in model.of_kind("param"):
        if p.is_network or f"params/{p.name}" not in arrays:
            continue
        want, got = resolved(p.name), arrays[f"params/{p.name}"].shape
        if want is not None and got != want:
            bad(f"params/{p.name} has shape {got} but its type at these sizes gives {want}")
    for block, rec in manifest["blocks"].items():
        try:
            fam = get_family(rec["family"])
        except VemError:
            bad(f"block '{block}' has the unknown family {rec['family']!r}")
        ranks = dict(zip(fam.Stats._fields, getattr(fam, "stat_ranks", ())))
        batches = set()
        for field in fam.Stats._fields:
            eta, mu = arrays.get(f"eta/{block}/{field}"), arrays.get(f"mu/{block}/{field}")
            if eta is None or mu is None:
                continue  # a missing array is reported by the loader
            if eta.shape != mu.shape:
                bad(f"eta/{block}/{field} has shape {eta.shape} but mu/{block}/{field} has {mu.shape}")
            r = ranks.get(field)
            if r is not None and not fam.structured and eta.ndim >= r:
                batches.add(eta.shape[: eta.ndim - r])
        if len(batches) > 1:
            bad(f"the statistics of block '{block}' disagree on its batch shape: {sorted(batches)}")
        node_shape = resolved(block) if block in model.nodes else None
        if batches and node_shape is not None and rec.get("update") != "amortised":
            (batch,) = batches
            if tuple(node_shape[: len(batch)]) != batch:
                bad(f"block '{block}' has statistics of batch shape {batch}, but '{block}' has shape {node_shape}")
    trace = arrays.get("elbo_trace")
    if trace is not None:
        listed = np.asarray([np.nan if x is None else x for x in manifest["elbo_trace"]], dtype=float)
        if trace.shape != listed.shape or not np.allclose(trace, listed, equal_nan=True, rtol=0, atol=0):
            bad(f"elbo_trace has {trace.size} entries in the arrays and {listed.size} in the manifest, or they differ")
    if manifest["elbo_trace"] and manifest["elbo"] is not None and _finite(manifest["elbo_trace"][-1]):
        if not math.isclose(manifest["elbo"], manifest["elbo_trace"][-1], rel_tol=1e-12, abs_tol=0):
            bad(f"elbo is {manifest['elbo']} but the trace ends at {manifest['elbo_trace'][-1]}")


def _finite(v) -> bool:
    return v is not None and math.isfinite(v)
