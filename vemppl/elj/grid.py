"""Known values on a factor's grid: their own axes kept apart from the grid's.

A known per-element value is laid out as the grid's axes (one per loop, then one per gate),
then its own (``X[n]`` of a ``real[N, D]`` array is ``[N, D]``).  Combined with a value that
has no grid axes (``Wc``, ``eye(D)``), NumPy would pair the grid axes with the other's own
axes; these helpers pair grid with grid and own with own, given each operand's own rank.
"""

from __future__ import annotations

import numpy as np


def matmul(xp, x, y, ra, rb):
    """``x @ y`` for operands with grid axes in front of their own (of ranks ``ra``, ``rb``):
    a vector is a row or a column, so that the grid axes are batch axes of the product."""
    out = xp.matmul(xp.expand_dims(x, -2) if ra == 1 else x, xp.expand_dims(y, -1) if rb == 1 else y)
    if rb == 1:
        out = out[..., 0]
    if ra == 1:
        out = out[..., 0, :] if rb != 1 else out[..., 0]
    return out


def align(xp, x, y, ra, rb):
    """Operands whose leading axes are the grid's laid out so that NumPy broadcasting pairs
    grid with grid and value axes with value axes: ``w[n] * eye(D)`` is [N, 1, 1] × [D, D]."""
    r = max(ra, rb)
    x = xp.reshape(x, np.shape(x)[: np.ndim(x) - ra] + (1,) * (r - ra) + np.shape(x)[np.ndim(x) - ra:])
    y = xp.reshape(y, np.shape(y)[: np.ndim(y) - rb] + (1,) * (r - rb) + np.shape(y)[np.ndim(y) - rb:])
    return x, y


__all__ = ["align", "matmul"]
