"""A binding of a model's names: the sizes of its dims, the values of its constants and
data, and the masks of its data (True where observed).  Made by ``data/bind.py`` from the
user's arrays, or from stand-in sizes by the compiler's conjugacy test."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Bound:
    sizes: dict[str, int]
    values: dict[str, np.ndarray]  # constants and data
    masks: dict[str, np.ndarray] = field(default_factory=dict)  # True where observed
    notes: list[str] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)  # size -> where its value came from, for messages


__all__ = ["Bound"]
