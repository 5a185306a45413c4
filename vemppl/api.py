"""Glue of the public API: accept a DSL model or an IR wherever a model is expected."""

from __future__ import annotations

from .ir.graph import as_ir

__all__ = ["as_ir"]
