"""Structural rules, one module per graph pattern.

A module here that defines both

* ``FAMILY``: the structured family (a module of ``vemppl/families``) of the block it makes, and
* ``match(model, factors) -> list[JointBlock]``: the joint blocks it finds in the graph
  (``model`` the IR, ``factors`` the plan's factors), each its ``(role, node)`` members,

is a *joint-block rule*.  Every such module is found here by discovery (``JOINT_RULES``,
in the order of the modules' names) and ``compile_model`` iterates over them, so a new
joint block is one family module and one rule module, with no edit anywhere else.  The
other modules (gates, admixtures, chains, ...) are helpers the compiler calls by name.
"""

from __future__ import annotations

import importlib
import pkgutil

from ._joint import JointBlock


def _joint_rules() -> tuple:
    rules = []
    for _, module, _ in sorted(pkgutil.iter_modules(__path__), key=lambda info: info[1]):
        if module[:1] == "_":
            continue
        mod = importlib.import_module(f"{__name__}.{module}")
        if callable(getattr(mod, "match", None)) and hasattr(mod, "FAMILY"):
            rules.append(mod)
    return tuple(rules)


#: The joint-block rule modules, each with ``FAMILY`` and ``match``.
JOINT_RULES = _joint_rules()

__all__ = ["JOINT_RULES", "JointBlock"]
