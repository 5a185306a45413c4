"""Glue of the public API: accept a DSL model or an IR wherever a model is expected."""

from __future__ import annotations

from .diagnostics import VemError
from .ir.graph import ModelGraph


def as_ir(model) -> ModelGraph:
    """The IR of ``model`` (a :class:`ModelGraph` or a Python-DSL ``Model``)."""
    if isinstance(model, ModelGraph):
        return model
    ir = getattr(model, "ir", None)
    if isinstance(ir, ModelGraph):
        return ir
    raise VemError("type", f"expected a vemppl model, got {type(model).__name__}")
