"""One engine's programs for every fit of the same model, plan and shapes in a process (issue #21).

Each ``fit`` builds an :class:`~vemppl.engine.cavi.Engine`, whose sweep, prior start and
extrapolation are jitted around the engine itself: a second fit of the same model to other data
of the same shapes (another seed, another fold) traced them all again, and waited for JAX to
lower them to find its compiled programs (a 10k-point GMM: 0.7-1.1 s of tracing for a 0.1 s fit).

What a traced program reads from the engine besides its arguments is the model, the plan, the
sizes, the constants, the masks and the present elements of padded chains, and the options
the engine was built with; the data arrays are arguments.  :func:`engine_key` is all of these
(the data by dtype and shape, the rest by value), and :func:`reused` keeps the first engine
built for a key and hands each later fit a shallow copy of it bound to its own data: the copy
calls the kept engine's jitted programs, which find their traces in JAX's caches.  A copy, so
that an earlier fit's result keeps its own data.

Kept: the last :data:`KEPT` keys, each only while its data take at most :data:`MAX_BYTES`
(the kept engine holds its first fit's arrays).  An engine on merged rows (engine/compress.py,
engine/moment_rows.py) is kept too: its rows' counts are constants of its traces, so they are
part of the key by value (the same data merge to the same counts; other data of the same shapes
mostly do not).  A sharded engine is not kept.
"""

from __future__ import annotations

import copy
from collections import OrderedDict

import jax
import jax.numpy as jnp
import numpy as np

#: How many engines a process keeps (least recently used dropped first).
KEPT = 4
#: The most bytes of data arrays a kept engine may hold.
MAX_BYTES = 64 * 2**20

_ENGINES: OrderedDict = OrderedDict()


def _value(a) -> tuple:
    a = np.asarray(a)
    return (a.dtype.str, a.shape, a.tobytes())


def engine_key(model, plan, bound, present, unit_weights=None, **options) -> tuple | None:
    """What a traced program of the engine may read, data by dtype and shape, the merged rows'
    counts (``unit_weights``) by value; None where it cannot be a key (an unhashable option) or
    the data are too large to keep."""
    data = {n.name for n in model.of_kind("data")}
    arrays = {k: np.asarray(v) for k, v in bound.values.items() if k in data}
    if sum(a.nbytes for a in arrays.values()) > MAX_BYTES:
        return None
    key = (
        model, plan, tuple(sorted(bound.sizes.items())),
        tuple((k, a.dtype.str, a.shape) for k, a in sorted(arrays.items())),
        tuple((k, _value(v)) for k, v in sorted(bound.values.items()) if k not in data),
        tuple((k, _value(v)) for k, v in sorted(bound.masks.items())),
        tuple((k, _value(v)) for k, v in sorted((present or {}).items())),
        None if unit_weights is None else (type(unit_weights).__name__, _value(unit_weights.weights)),
        tuple(sorted(options.items())), bool(jax.config.jax_enable_x64),
        bool(jax.config.read("jax_disable_most_optimizations")),
    )
    try:
        hash(key)
    except TypeError:
        return None
    return key


def reused(key, build, bound, unit_weights=None, merged_rows=None):
    """``build()`` the first time ``key`` is seen (that engine is kept); after that a copy of the
    kept engine bound to ``bound``'s data, this fit's merged rows (``unit_weights``: the rows
    the engine runs on; ``merged_rows``: those its fit ran on, read on the host when the result
    is expanded) in place of the first's.  ``key`` None: always ``build()``."""
    if key is None:
        return build()
    kept = _ENGINES.get(key)
    if kept is None:
        engine = build()
        _ENGINES[key] = engine
        while len(_ENGINES) > KEPT:
            _ENGINES.popitem(last=False)
        return engine
    _ENGINES.move_to_end(key)
    engine = copy.copy(kept)
    engine.bound = bound
    engine.data = {k: jnp.asarray(bound.values[k]) for k in kept.data}
    engine.unit_weights, engine.merged_rows = unit_weights, merged_rows
    engine.programs = list(kept.programs)  # a program this fit adds (batched restarts) is its own
    engine.init_compile_seconds = 0.0
    return engine


def forget() -> None:
    """Drop every kept engine (tests; a process that wants the memory back)."""
    _ENGINES.clear()


__all__ = ["engine_key", "forget", "reused"]
