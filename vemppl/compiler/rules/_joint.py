"""What a joint-block rule returns: one block over several nodes, by role."""

from __future__ import annotations

from typing import NamedTuple


class JointBlock(NamedTuple):
    """One block ``q(node_1, node_2, ...)`` of a structured family: its members as
    ``(role, node name)`` pairs in the order of the family's ``roles``.  The block is named
    after its first member."""

    members: tuple[tuple[str, str], ...]


__all__ = ["JointBlock"]
