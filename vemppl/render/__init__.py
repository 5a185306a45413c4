"""Plate diagrams: IR → plain graph spec → graphviz."""

from .graphviz import render, to_graphviz
from .spec import GraphSpec, graph_spec

__all__ = ["graph_spec", "GraphSpec", "to_graphviz", "render"]
