"""Amortised posteriors: ``q(z[n]) = enc(x[n])`` is a block given by an encoder network."""

from __future__ import annotations

from ...ir.graph import ModelGraph
from ...ir.text import definition_to_text
from ...plan import Block, BlockStructure, Update


def amortised_block(m: ModelGraph, node) -> Block:
    """``q(z[n]) = enc(x[n])``: a diagonal Normal from the encoder, in the latent's own
    family (Normal or MvNormal), fitted with the networks."""
    q = node.amortised
    where = f" at {q.span.file or '<model>'}:{q.span.line}:{q.span.column}" if q.span is not None else ""
    return Block(
        node.name, node.defs[0].dist, structure=BlockStructure.AMORTISED, update=Update.AMORTISED,
        reason=f"{definition_to_text(node.name, q, amortised=True)}{where}",
    )


__all__ = ["amortised_block"]
