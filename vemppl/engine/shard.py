"""Data-parallel execution with ``jax.sharding``: the data plate split over devices.

The arrays along the data plate (``engine/dataplate.py``) and the local blocks (one element
per unit) are laid out over a one-axis ``Mesh`` of devices with
``NamedSharding(mesh, PartitionSpec("data"))`` on their leading axis; globals, point
parameters and every other array are replicated.  The CAVI sweep is the Engine's own,
jitted with these input and output shardings: XLA's SPMD partitioner (GSPMD) splits each
factor's plate computation by device and turns the sums over the plate, the gradients
that are the global blocks' natural parameters, into all-reduces.  Nothing in the
engine knows it is sharded.

Several processes (hosts) work the same way once ``jax.distributed.initialize`` has
joined them: ``jax.devices()`` then lists every process's devices and each process
holds the shards of its own devices.
"""

from __future__ import annotations

from functools import partial

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from ..diagnostics import VemError
from .guards import guarded_sweep
from .dataplate import DataPlate

AXIS = "data"


class Sharded:
    """The Engine's sweep over a mesh of ``devices`` devices, the data plate split."""

    def __init__(self, engine, plate: DataPlate, devices: int):
        available = jax.devices()
        if not 1 <= devices <= len(available):
            raise VemError(
                "data",
                f"devices={devices} but JAX sees {len(available)} device(s) ({available[0].platform}). "
                f"Expected 1 <= devices <= {len(available)}",
                None,
                "on CPU, set XLA_FLAGS=--xla_force_host_platform_device_count=N before starting Python; "
                "across machines, call jax.distributed.initialize() first (docs/scaling.md)",
            )
        self.engine, self.plate, self.devices = engine, plate, devices
        self.mesh = Mesh(np.array(available[:devices]), (AXIS,))
        self.split = NamedSharding(self.mesh, PartitionSpec(AXIS))
        self.whole = NamedSharding(self.mesh, PartitionSpec())
        n = engine.bound.sizes[plate.dim]
        if n % devices:
            raise VemError(
                "data",
                f"the plate {plate.dim} = {n} does not split evenly over {devices} devices. Expected a multiple "
                f"of {devices}",
                None,
                "pad the data to a multiple and mask the padding (mask=), or choose another number of devices",
            )
        self.n = n
        self.data_shardings = {k: (self.split if k in plate.arrays else self.whole) for k in engine.data}
        self.data = jax.device_put(engine.data, self.data_shardings)
        self._sweep = None

    def _leaf(self, local):
        def spec(a):
            return self.split if local and np.ndim(a) >= 1 and np.shape(a)[0] == self.n else self.whole

        return spec

    def shardings(self, state):
        """Locals split on their leading (plate) axis; everything else replicated."""
        whole = jax.tree_util.tree_map(lambda a: self.whole, state)
        local = set(self.plate.local_blocks)

        def blocks(d):
            return {j: jax.tree_util.tree_map(self._leaf(j in local), v) for j, v in d.items()}

        return whole._replace(eta=blocks(state.eta), mu=blocks(state.mu))

    def place(self, state):
        return jax.device_put(state, self.shardings(state))

    def sweep(self, state):
        if self._sweep is None:
            sh = self.shardings(state)
            # The carried sweep and, with fit(local_restart=), the restarting one (compiled on first use).
            self._sweep, self._restarting_sweep = (
                self.engine.jit(partial(self.engine._sweep_impl, restart=restart),
                                in_shardings=(sh, self.data_shardings), out_shardings=(sh, self.whole))
                for restart in (False, True))

        def jitted(st, data, restart=False):
            return (self._restarting_sweep if restart else self._sweep)(st, data)

        return guarded_sweep(jitted, self.engine, state, self.data)

    def gather(self, state):
        """The state as host arrays on every process (an all-gather across hosts if needed)."""
        if all(getattr(a, "is_fully_addressable", True) for a in jax.tree_util.tree_leaves(state)):
            return state
        from jax.experimental import multihost_utils

        return multihost_utils.process_allgather(state, tiled=True)
