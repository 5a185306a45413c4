"""vemppl: a probabilistic programming language for variational EM.

Models are written in ``.vem`` text or in Python; both build one IR (a networkx DAG),
which a compiler turns into a plan of closed-form (CAVI) and gradient updates that a
JAX engine runs.  This module re-exports the public API and holds no logic.
"""

import jax as _jax

# float64 by default (GUIDE §2, "Numerics"); set VEMPPL_X64=0 to opt out.
import os as _os

if _os.environ.get("VEMPPL_X64", "1") != "0":
    _jax.config.update("jax_enable_x64", True)

from ._threads import avoid_cpu_lapack_deadlock as _avoid_deadlock  # noqa: E402

_avoid_deadlock()

from ._compile_cache import from_environment as _cache_from_environment, use_compilation_cache  # noqa: E402

_cache_from_environment()  # VEMPPL_CACHE_DIR: compiled programs kept on disk across processes

from .diagnostics import Span, VemError  # noqa: E402
from .families import REGISTRY as families  # noqa: E402
from .frontends.dsl import (  # noqa: E402
    DISTRIBUTIONS as _DISTRIBUTIONS,
    Model,
    bool_,
    cat,
    count,
    diag,
    dot,
    exp,
    eye,
    fill,
    int_,
    log,
    mlp,
    ones,
    pos,
    real,
    sigmoid,
    simplex,
    softmax,
    spd,
    sum_,
    transpose,
    unit,
    zeros,
)
from .frontends.parser import load, parse  # noqa: E402
from .frontends.printer import to_text  # noqa: E402
from .ir import ModelGraph  # noqa: E402
from .compiler import compile_model  # noqa: E402
from .api import cavi, fit, svi  # noqa: E402
from .results import Fit, Prediction, load_results  # noqa: E402

globals().update(_DISTRIBUTIONS)  # vp.Normal, vp.MvNormal, ... one per registered family

__all__ = [
    "Model", "ModelGraph", "fit", "cavi", "svi", "compile_model", "use_compilation_cache", "Fit", "Prediction", "load_results", "VemError", "Span", "to_text", "parse", "load", "families",
    "real", "pos", "unit", "int_", "count", "bool_", "cat", "simplex", "spd", "mlp",
    "zeros", "ones", "fill", "eye", "diag", "exp", "log", "sigmoid", "softmax", "sum_", "dot", "transpose",
    *_DISTRIBUTIONS,
]
from ._version import __version__  # noqa: E402
