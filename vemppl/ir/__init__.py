"""The intermediate representation: a model as a networkx DAG of frozen nodes."""

from .builder import IRBuilder
from .expr import BinOp, Call, Expr, Index, Name, Neg, Num
from .graph import ModelGraph
from .nodes import Definition, Loop, Node, TypeSpec

__all__ = [
    "IRBuilder", "ModelGraph", "Node", "Definition", "Loop", "TypeSpec",
    "Expr", "Num", "Name", "Index", "BinOp", "Neg", "Call",
]
