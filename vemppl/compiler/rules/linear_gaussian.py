"""A linear-Gaussian data plate: the data rows enter the fit only through their first two moments.

Take a data plate over ``N`` (every observed array laid out along it) whose local blocks
(``h[n]``, one element per row) are all Gaussian and updated in closed form, where

* every plate array is real data observed only as the *target* of Gaussian factors, and no
  expression anywhere reads data (no covariate, no data index, no deterministic node of data);
* the arguments of those factors other than ``loc`` (precision, scale, covariance) read no local;
* no factor reads two different locals (a local's update reads only globals and its row).

Then the CAVI target of a local is ``η_n = (a + B x_n, P)``: its linear part is affine in the row
``x_n`` and its quadratic part ``P`` is the same for every row (the ``loc`` is affine in the local,
else the block would not be closed form; the precisions read only globals).  So ``E[h_n]`` is
affine and ``E[h_n h_nᵀ]`` quadratic in ``x_n``, the entropy of ``q(h_n)`` is the same for every
row, and every term of the expected log joint of a row at its updated local (``x²``,
``x E[loc]``, ``E[loc²]``) is a polynomial of degree two in ``x_n``.  A sum over rows of a
quadratic polynomial depends on the rows only through ``N``, ``Σ x_n`` and ``Σ x_n x_nᵀ``: the
globals' CAVI targets, the params' M-steps and the ELBO of every sweep are the same for any
weighted set of rows with those three sums (``engine/moment_rows.py`` fits ``2r`` of them,
r = the rank of the rows' covariance).  This is the D×D second-moment form in which EM for
factor analysis and PPCA is written (Rubin & Thayer 1982; Tipping & Bishop 1999; Bishop, PRML
§12.2.4), derived here from the graph, not for one model.
"""

from __future__ import annotations

from ...elj.evaluate import plate_var
from ...families import get_family
from ...ir.expr import Name, loop_offset, names
from ...ir.graph import ModelGraph
from ...plan import BlockStructure, Plan, Update
from ..locality import on_plates


def _reads(m: ModelGraph, e, loop_vars=()) -> set[str]:
    """The non-deterministic nodes ``e`` reads, through deterministic nodes."""
    out, todo, seen = set(), [x.id for x in names(e) if x.id not in loop_vars], set()
    while todo:
        n = todo.pop()
        if n in seen or n not in m.nodes:
            continue
        seen.add(n)
        node = m.nodes[n]
        if node.kind == "det":
            for d in node.defs:
                if d.expr is not None:
                    todo += [x.id for x in names(d.expr) if x.id not in d.loop_vars]
        else:
            out.add(n)
    return out


def _lead(node) -> str | None:
    shape = node.type.shape if node.type is not None else ()
    return shape[0].id if shape and isinstance(shape[0], Name) else None


def moment_plate(m: ModelGraph, plan: Plan) -> str | None:
    """The dim of the data plate whose rows the fit reads only through their first two moments
    (see the module docstring), or None when the graph is not linear-Gaussian."""
    data = [n for n in m.of_kind("data")]
    observed = [n for n in data if n.defs]
    leads = {_lead(n) for n in observed}
    if not observed or len(leads) != 1 or None in leads:
        return None
    dim = leads.pop()
    if any(n.is_network for n in m.of_kind("param")):
        return None
    # Nothing but observed real arrays along the plate (no covariate, param or const row).
    for node in m.nodes.values():
        if node.kind in ("data", "param", "const") and _lead(node) == dim:
            if node.kind != "data" or not node.defs or node.type.base != "real":
                return None
    data_names = {n.name for n in data}
    locals_ = set()
    for b in plan.blocks:
        if b.name not in on_plates(m, plan, (dim,)):  # compiler/locality.py: the one rule
            continue
        defs = m.nodes[b.name].defs
        inside = [plate_var(d, dim) for d in defs]
        if any(v is None or not d.indices or loop_offset(d.indices[0], d.loop_vars) != (v, 0)
               for d, v in zip(defs, inside)):
            return None  # read at an offset or only partly along the plate: not one element per row
        fam = get_family(b.family)
        if not (fam.gaussian and b.update is Update.CAVI
                and b.structure in (BlockStructure.MEAN_FIELD, BlockStructure.JOINT_LAST_AXIS)):
            return None
        locals_.add(b.name)
    if not locals_:
        return None  # no local block: nothing is gained over the rows' own sums (a regression's)
    for f in plan.factors:
        d = f.definition
        if f.enum:
            return None
        args = {role: _reads(m, e, d.loop_vars) for role, e in d.args}
        read = set().union(*args.values(), *(_reads(m, i, d.loop_vars) for i in d.indices))
        if read & data_names:
            return None  # data read as a covariate or an index
        touched = (read | {f.target}) & locals_
        if len(touched) > 1:
            return None
        if f.target in data_names:
            if not get_family(f.family).gaussian:
                return None
            if any(reads & locals_ for role, reads in args.items() if role != "loc"):
                return None
    return dim


__all__ = ["moment_plate"]
