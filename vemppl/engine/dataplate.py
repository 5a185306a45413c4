"""The data plate: the loop over independent data units that SVI subsamples and sharding splits.

Both stochastic VI (``engine/svi.py``) and data-parallel execution (``engine/shard.py``)
need the same facts, read from the model and its plan, never from a model's name:

* the plate's size ``dim`` (by default the leading axis shared by every observed data array:
  ``N`` of ``x: real[N, D]``, ``S`` of sequences ``x: cat(V)[S, T]``, ``M`` of LDA's tokens);
* the data arrays laid out along it (leading axis ``dim``), which are sliced or sharded;
* the *local* blocks, defined inside a loop over ``dim`` and indexed by it first
  (``z[n]``, a sequence's chain ``z[s, t]``), one element per data unit;
* the factors inside the plate, whose sum over the plate is the one SVI rescales by ``N/|B|``
  and sharding turns into an all-reduce.

The plate's units must be independent given the globals: a factor that reads a local or a
plate data array at an offset along the plate (``z[t-1]`` in ``for t in range(1, T)``) or
whole couples units and is refused with the reason (the chain's steps are not a data plate; its sequences are).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..compiler.locality import on_plates
from ..diagnostics import VemError
from ..elj.evaluate import plate_var as _in_plate
from ..ir.expr import Index, Name, const_int, indexes, loop_offset, names, walk


@dataclass(frozen=True)
class DataPlate:
    dim: str
    arrays: tuple[str, ...]  # data arrays whose leading axis is the plate
    local_blocks: tuple[str, ...]  # blocks with one element per unit (leading axis)
    factors: tuple  # the plan's factors inside the plate (same objects, plan order)

    def is_inside(self, factor) -> bool:
        return any(factor is f for f in self.factors)


def data_plate(model, plan, dim: str | None = None, purpose: str = "stochastic VI") -> DataPlate:
    observed = [n for n in model.of_kind("data") if n.defs]
    leads = {n.type.shape[0].id for n in observed if n.type.shape and isinstance(n.type.shape[0], Name)}
    if dim is None:
        if len(leads) != 1:
            found = ", ".join(sorted(leads)) or "none"
            raise VemError(
                "unsupported",
                f"{purpose} needs one data plate. Expected every observed data array to share its leading "
                f"dim; got leading dims {found}",
                None,
                "name the plate: fit(..., plate='N')" if leads else None,
            )
        dim = next(iter(leads))
    kinds = {n.name: n.kind for n in model.nodes.values()}
    if kinds.get(dim) != "dim":
        raise VemError("data", f"plate='{dim}' is not a size of the model. Expected a dim such as {sorted(leads)}")
    arrays = tuple(
        n.name for n in model.of_kind("data") if n.type.shape and isinstance(n.type.shape[0], Name)
        and n.type.shape[0].id == dim
    )
    locals_ = on_plates(model, plan, (dim,))  # compiler/locality.py: the one definition of a local block
    for name in locals_:
        for d in model.nodes[name].defs:
            v = _in_plate(d, dim)
            lead = loop_offset(d.indices[0], d.loop_vars) if d.indices else None
            if v is None or lead != (v, 0):
                raise VemError(
                    "unsupported",
                    f"{purpose} splits the plate over {dim}, but '{name}' is not indexed by it first "
                    f"(every definition of a local latent must be '{name}[{v or 'n'}, ...]' inside the loop "
                    f"over {dim})",
                    d.span,
                )
    factors = []
    for f in plan.factors:
        d = f.definition
        var = _in_plate(d, dim)
        if var is None:
            read = {x.id for _, a in d.args for x in names(a)} | {x.id for i in d.indices for x in names(i)}
            if read & set(locals_):
                raise VemError(
                    "unsupported",
                    f"'{f.describe()}' lies outside the plate over {dim} but reads the local latent(s) "
                    f"{', '.join(sorted(read & set(locals_)))}: {purpose} cannot split it",
                    d.span,
                )
            continue
        lp = next(lp for lp in d.loops if lp.var == var)
        if const_int(lp.start) != 0:
            raise VemError(
                "unsupported",
                f"{purpose} splits the plate over {dim}, but '{f.describe()}' runs over only part of it "
                f"(range starting at a non-zero index): its units are not independent",
                d.span,
            )
        _check_independent(f, var, set(locals_) | set(arrays), dim, purpose)
        factors.append(f)
    return DataPlate(dim, arrays, locals_, tuple(factors))


def rows_apart(model, plate: DataPlate) -> bool:
    """Whether the plate's rows can be taken apart from the rest of the model (sliced into
    chunks, or identical rows merged): no constant or point parameter is laid out along the
    plate (it would not be sliced with the data), and no deterministic node reads the
    plate's arrays or locals outside its loop."""
    along = set(plate.arrays) | set(plate.local_blocks)
    for node in model.nodes.values():
        shape = getattr(node.type, "shape", None) if node.type is not None else None
        if node.kind in ("const", "param") and shape and isinstance(shape[0], Name) and shape[0].id == plate.dim:
            return False
        if node.kind == "det":
            for d in node.defs:
                read = {x.id for x in names(d.expr)} if d.expr is not None else set()
                if read & along and _in_plate(d, plate.dim) is None:
                    return False
    return True


def _check_independent(factor, var, along, dim, purpose):
    """Refuse a factor that reads a local latent or a plate data array at another unit
    (``z[t-1]``, ``x[0]``) or whole (``sum(x)``): a slice of the plate holds only its own rows."""
    d = factor.definition
    exprs = [a for _, a in d.args] + list(d.indices)
    target = Index(Name(factor.target), d.indices) if d.indices else Name(factor.target)
    for e in exprs + [target]:
        for x in walk(e):
            if isinstance(x, Index) and isinstance(x.base, Name) and x.base.id in along:
                name, elsewhere = x.base.id, loop_offset(x.indices[0], d.loop_vars) != (var, 0)
            elif isinstance(x, Name) and x.id in along and not indexes(e, x):
                name, elsewhere = x.id, True
            else:
                continue
            if elsewhere:
                raise VemError(
                    "unsupported",
                    f"{purpose} splits the plate over {dim}, but '{factor.describe()}' reads "
                    f"'{name}' at another unit of it or whole: the units are coupled (a chain along {dim} "
                    "is one unit; a plate over several chains can be split)",
                    d.span,
                )
