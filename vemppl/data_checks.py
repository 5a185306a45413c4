"""Checks of bound sizes and data beyond their declared types (issue #23).

Called by :func:`vemppl.engine.bind.bind` (one line each): :func:`check_size_limit` on
every size a dim or const is given, :func:`check_bound` once every size and array is
bound.  Layering: imports the IR and families only, never the engine or the compiler.
"""

from __future__ import annotations

from .diagnostics import VemError
from .ir.sizes import MAX_SIZE, check_model


def check_size_limit(kind: str, name: str, v: int, where: str) -> int:
    """A size above :data:`~vemppl.ir.sizes.MAX_SIZE` is refused before anything is allocated."""
    if v > MAX_SIZE:
        raise VemError(
            "data",
            f"{kind} '{name}' (from {where}) is a size. Expected at most {MAX_SIZE} (2**31 - 1); got {v}",
            hint=f"a size is the number of entries along one axis; --set {name}=... with a smaller number",
        )
    return v


def check_bound(model, sizes: dict) -> None:
    """The static size pass with every size known, then the memory estimate."""
    check_model(model, sizes)
