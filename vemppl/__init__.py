"""vemppl: a probabilistic programming language for variational EM.

Models are written in ``.vem`` text or in Python; both build one IR (a networkx DAG),
which a compiler turns into a plan of closed-form (CAVI) and gradient updates that a
JAX engine runs.  This module re-exports the public API and holds no logic.

``import vemppl`` is fast and does not import JAX: each public name is loaded from its
submodule on first use (PEP 562 ``__getattr__``).  The XLA flag of ``_threads`` is set here
(it is an environment variable); JAX's own settings (float64, the compilation cache) are
applied by ``_jax_setup`` where vemppl first imports JAX.
"""

from __future__ import annotations

import importlib
import sys
import types

from ._threads import avoid_cpu_lapack_deadlock as _avoid_deadlock
from .diagnostics import Span, VemError

from ._version import __version__  # noqa: E402,F401  (one leaf module every layer may read)

_avoid_deadlock()  # an environment variable only: XLA reads it when its CPU backend starts

#: public name -> (submodule, attribute in it)
_LAZY = {
    "families": (".families", "REGISTRY"),
    "Model": (".frontends.dsl", "Model"),
    "load": (".frontends.parser", "load"),
    "parse": (".frontends.parser", "parse"),
    "to_text": (".frontends.printer", "to_text"),
    "ModelGraph": (".ir", "ModelGraph"),
    "compile_model": (".compiler", "compile_model"),
    "fit": (".api", "fit"),
    "cavi": (".api", "cavi"),
    "svi": (".api", "svi"),
    "Fit": (".results", "Fit"),
    "Prediction": (".results", "Prediction"),
    "load_results": (".results", "load_results"),
    "select": (".selection", "select"),
    "Selection": (".selection", "Selection"),
    "use_compilation_cache": ("._compile_cache", "use_compilation_cache"),
}
_DSL_HELPERS = (
    "real", "pos", "unit", "int_", "count", "bool_", "cat", "simplex", "spd", "mlp",
    "zeros", "ones", "fill", "eye", "diag", "exp", "log", "sigmoid", "softmax", "sum_", "dot", "transpose",
)
_LAZY.update({name: (".frontends.dsl", name) for name in _DSL_HELPERS})


def _distributions() -> dict:
    """vp.Normal, vp.MvNormal, ...: one constructor per registered family."""
    return importlib.import_module(".frontends.dsl", __name__).DISTRIBUTIONS


def __getattr__(name: str):
    if name in _LAZY:
        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(module, __name__), attr)
    elif name == "__all__":
        value = [*_LAZY, "VemError", "Span", *_distributions()]
    elif not name.startswith("_") and name[:1].isupper() and name in _distributions():
        value = _distributions()[name]
    else:
        raise AttributeError(f"module 'vemppl' has no attribute {name!r}")
    if name != "families":  # see _Module: the subpackage of that name would shadow it
        globals()[name] = value
    return value


def __dir__():
    return sorted({*globals(), *_LAZY, *_distributions()})


class _Module(types.ModuleType):
    """``vp.families`` is the registry of families, but ``vemppl.families`` is also a
    subpackage, and importing it sets the package's attribute to the module.  A property
    wins over that attribute, and its setter keeps the import system's assignment aside."""

    @property
    def families(self):
        return __getattr__("families")

    @families.setter
    def families(self, module):
        self.__dict__["_families_package"] = module


sys.modules[__name__].__class__ = _Module
