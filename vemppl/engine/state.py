"""The engine's state: arrays only, no configuration (STYLE.md, pattern 1)."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp


class State(NamedTuple):
    eta: dict  # block name -> natural parameters (the family's Stats type)
    mu: dict  # block name -> mean parameters, always expected_stats(eta) (the ELBO reads both)
    params: dict  # param name -> value (a network's: a dict of named weight arrays)
    key: Any = None  # the Monte Carlo draw of this sweep (models with networks only)
    opt: Any = None  # Adam's state for the networks (engine.networks)
    sweeps: Any = None  # sweeps taken, counted only for fit(local_restart=) (engine/schedule.py)
    elbo: Any = None  # the last sweep's ELBO, kept only for fit(local_restart=): the guard's floor


def select(flag, new, old):
    """``new`` where the traced boolean ``flag`` holds, else ``old``, leaf by leaf (a state, a
    block's parameters): how a guarded step keeps or drops its result inside a program."""
    return jax.tree_util.tree_map(lambda a, b: jnp.where(flag, a, b), new, old)


__all__ = ["State", "select"]
