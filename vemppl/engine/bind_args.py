"""Distribution arguments of constants given at fit time, checked against their supports.

``ir/validate.py`` checks the constants' own values as the model is built; here again with the
values given at fit time (``--set nu=0`` in ``Gamma(nu / 2, nu / 2)`` was a nan ELBO with no
location).  An argument that reads a given constant element by element, by the loop variables
of its statement (``A[k] ~ Dirichlet(alpha[k])`` with ``consts={"alpha": ...}``: a left-to-right
chain's prior with a zero or negative entry), is evaluated over the statement's loops, every
element it reads; before, only arguments without a loop index were evaluated, and a zero
concentration read as ``alpha[k]`` was a -inf ELBO blamed on the data.
"""

from __future__ import annotations

import numpy as np

from ..diagnostics import VemError
from ..elj import moments as M
from ..elj.evaluate import _Context, eval_fixed
from ..families import get_family
from ..ir.expr import names
from ..ir.graph import ModelGraph
from ..ir.signs import check_sign
from ..ir.sizes import arg_constraint, matrix_constrained, matrix_violation
from ..ir.validate import arg_violation


def check_given_const_args(model: ModelGraph, sizes: dict, values: dict, given: set) -> None:
    """A distribution's argument of constants outside its support is a ``support`` error at the
    argument.  Element-wise, only arguments that read a given constant are evaluated; a matrix that
    must be positive definite (``precision = kappa * eye(D)``), whose size the model alone does not
    fix, is checked here whether its constants are given or written."""
    fixed = {n.name for n in model.nodes.values() if n.kind in ("const", "dim")}
    for node in model.nodes.values():
        for d in node.defs if node.kind in ("latent", "data") else ():
            fam = get_family(d.dist).name
            loop_vars = {lp.var for lp in d.loops}
            for k, e in d.args:
                read = {n.id for n in names(e)}
                if read & given and not read <= fixed | loop_vars:  # kappa * tau: a sign the given value may settle
                    check_sign(model, fam, k, e, arg_constraint(fam, k), d.dist_span or d.span,
                               lambda c: float(values[c]) if np.ndim(values.get(c)) == 0 and c in values else None,
                               "(from consts=)")
                if not read <= fixed | loop_vars or not (read & given or matrix_constrained(fam, k)):
                    continue
                try:
                    if read & loop_vars:  # alpha[k]: every element the statement's loops read
                        v = _Context(None, d.loops, (), sizes, values, {}, {}, None).ev(e).value
                    else:
                        v = eval_fixed(e, sizes, values)
                except (M.NotFixed, M.NoMoment, KeyError):
                    continue
                msg = (arg_violation(fam, k, v) if read & given else None) or matrix_violation(fam, k, v)
                if msg:
                    whence = f", with {', '.join(sorted(read & given))} (from consts=)" if read & given else ""
                    raise VemError("support", msg + whence, e.span or d.dist_span or d.span)
