"""An estimate of a fit's memory from its sizes, refused above a limit before any array
is built (issue #23: ``const K = 100000000`` must not make ``check`` allocate 10 GB).

The estimate is a lower bound on the variational state: for every latent node, its
elements (plates times value) times the size of its statistics (a vector's ``E[x xᵀ]``
multiplies by its length, a categorical's ``E[onehot]`` by its number of categories),
held :data:`COPIES` times (natural and mean parameters), plus every constant and param array, 8 bytes an element (float64).
Arrays of the expected log joint (a gate enumerated over a mixture's components) come
on top and are not counted, so a refusal is never a false alarm.

The limit is, in order: the ``max_memory`` argument, the environment variable
``VEMPPL_MAX_MEMORY`` (bytes, or a number with K/M/G/T), the memory the operating system
reports as available.
"""

from __future__ import annotations

import math
import os
import re

from ..diagnostics import VemError
from ..families import get_family
from .expr import Name
from .known import _categories, _Sizes

#: How many arrays of the variational state's size a sweep holds at once.
COPIES = 2
BYTES = 8
MAX_MEMORY_ENV = "VEMPPL_MAX_MEMORY"
_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}


def parse_memory(text, where: str = MAX_MEMORY_ENV) -> int:
    """Bytes from ``'64G'``, ``'512M'``, ``'1e9'`` or an int; a ``data`` error otherwise."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        value, unit = float(text), ""
    else:
        m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([KMGTkmgt]?)(?:i?[Bb])?\s*", str(text))
        if m is None:
            raise VemError("data", f"{where} is a memory size. Expected bytes or a number with K, M, G or T "
                                   f"(e.g. 64G); got {text!r}")
        value, unit = float(m.group(1)), m.group(2).upper()
    if not math.isfinite(value) or value <= 0:
        raise VemError("data", f"{where} is a memory size. Expected a positive number; got {text!r}")
    return int(value * _UNITS[unit])


def available_memory() -> int | None:
    """MemAvailable from /proc/meminfo (Linux), else free physical pages, else None."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def memory_limit(max_memory=None) -> tuple[int | None, str]:
    """``(bytes, where it came from)``; ``(None, ...)`` when nothing is known (no check)."""
    if max_memory is not None:
        return parse_memory(max_memory, "max_memory"), "max_memory="
    env = os.environ.get(MAX_MEMORY_ENV)
    if env:
        return parse_memory(env), f"{MAX_MEMORY_ENV}={env}"
    return available_memory(), "the memory available on this machine"


def _human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:.3g} {unit}"
        n /= 1024
    return f"{n:.3g} PiB"  # pragma: no cover


def estimate(model, sizes: dict) -> tuple[int, str, object]:
    """``(bytes, the largest contributor in words, its span)`` of the variational state."""
    known = _Sizes(model, sizes)

    def numel(shape) -> int:
        n = 1
        for s in shape:
            v = known.size(s)
            n *= max(v, 1) if v is not None else 1
        return n

    total, top, top_what, top_span = 0, 0, "", None
    for node in model.nodes.values():
        if node.kind not in ("latent", "param", "const"):
            continue
        shape = model.shapes.get(node.name, ())
        if node.kind == "param" and node.type is not None and node.type.is_network:
            continue
        n = numel(shape)
        copies, stats, last, rank = 1, 1, 1, 0
        if node.kind == "latent" and node.defs and node.defs[0].dist is not None:
            fam = get_family(node.defs[0].dist)
            copies = COPIES
            # Each statistic of rank r above the value's rank adds (r - rank) axes of the last
            # size (an MvNormal's E[x xᵀ]); a categorical's E[onehot] adds its categories.
            if fam.support == "cat":
                cats = _categories(model, node.name)
                last, rank = (max(known.size(cats[0]) or 1, 1) if cats else 1), -1
            else:
                last, rank = (max(known.size(shape[-1]) or 1, 1) if shape else 1), fam.event_rank
            stats = sum(last ** max(r - rank - (1 if rank < 0 else 0), 0) if rank >= 0 else last
                        for r in getattr(fam, "stat_ranks", (fam.event_rank,)))
        elif node.kind == "param":
            copies = COPIES
        b = n * stats * copies * BYTES
        total += b
        if b > top:
            top_span = node.defs[0].span if node.defs else node.span
            dims = [str(known.size(s) or s) for s in shape] + ([f"{last} categories"] if stats > 1 and rank < 0 else [])
            top, top_what = b, f"'{node.name}' ({' x '.join(dims) or 'scalar'})"
    return total, top_what, top_span


def check_memory(model, sizes: dict, max_memory=None, stand_in: bool = False, lower_bound: bool = False) -> int:
    """Refuse with a ``resource`` error when the estimate exceeds the limit; return the estimate.

    ``stand_in``: the dims are the compiler's small stand-in sizes (``check`` has no data),
    so only the constants are named as the cause; ``lower_bound``: every dim is 1 (no data
    yet), so only the constants are named and the estimate is the least any fit needs."""
    need, what, span = estimate(model, sizes)
    limit, source = memory_limit(max_memory)
    if limit is not None and need > limit:
        raise VemError(
            "resource",
            f"the fit would need at least {_human(need)} of memory (largest: {what}), more than the limit of "
            f"{_human(limit)} ({source}). Expected sizes whose arrays fit in memory; got "
            + (", ".join(f"{k} = {v}" for k, v in _named_sizes(model, sizes, stand_in or lower_bound))
               or "no size constants")
            + (" (every dim at a small stand-in size)" if stand_in else "")
            + (" (every dim at 1, the least any data can give)" if lower_bound else ""),
            span,
            f"reduce the sizes, or raise the limit with {MAX_MEMORY_ENV}=<bytes, e.g. 64G> (or --max-memory)",
        )
    return need


def _named_sizes(model, sizes, consts_only):
    """``(name, value)`` of the dims (unless ``consts_only``) and the whole-number consts."""
    known = _Sizes(model, sizes)
    out = []
    for node in model.of_kind("dim", "const"):
        if consts_only and node.kind == "dim":
            continue
        v = known.value(Name(node.name))
        if v is not None and v.is_integer():
            out.append((node.name, int(v)))
    return out
