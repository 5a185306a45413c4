"""Exponential families, one module each; importing this package registers them all.

A family registers itself by subclassing :class:`ExpFamily` (``base.__init_subclass__``),
so its module only has to be imported: every module of this package whose name does not
start with ``_`` is, here, by discovery.  A new family (a structured block's included) is
one new module and no edit anywhere else.
"""

import importlib
import pkgutil

from .. import _jax_setup  # noqa: F401  (float64, XLA flags and the compile cache before any JAX use)
from .base import REGISTRY, ArgSpec, ExpFamily, MomentSource, fixed, get_family

for _mod in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
    if not _mod.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_mod.name}")  # registers the family (subclassing)
del _mod

__all__ = ["REGISTRY", "ArgSpec", "ExpFamily", "MomentSource", "fixed", "get_family"]
