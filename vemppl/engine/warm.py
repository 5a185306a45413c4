"""The sweep compiled on a second thread while the prior start compiles and runs (issue #21).

A cold fit compiles two large programs in turn, the prior start (``engine/init.py``) and the
sweep, and XLA compiles each on one core (it releases Python's lock while it does).  The
sweep's input signature is known as soon as the start's program is lowered: the start's
outputs and the seeded blocks' types.  :class:`SweepWarmup` lowers and compiles the sweep for
that signature on a thread of its own, so the two compilations overlap, and ``join`` waits
for it before the first sweep.  The first sweep's call then finds the program in JAX's
caches (traced once, compiled once: ``Engine.traces`` stays 1): the same program, run on
the same state, so every result is the one a fit without the thread gives.

The thread never raises: an error it meets (a construct the sweep refuses) is met again by
the first sweep's own call on the main thread, which reports it as before.
"""

from __future__ import annotations

import threading


class SweepWarmup:
    """Compile ``jitted(state, data)`` for an abstract ``state`` on a daemon thread."""

    def __init__(self, jitted, data):
        self._jitted, self._data = jitted, data
        self._thread = None

    def __call__(self, state) -> None:
        """Start compiling for ``state``'s signature (arrays or ``jax.ShapeDtypeStruct``)."""

        def compile_sweep():
            try:
                self._jitted.lower(state, self._data).compile()
            except Exception:  # noqa: BLE001 - the main thread's own call reports it
                pass

        self._thread = threading.Thread(target=compile_sweep, name="vemppl-sweep-compile", daemon=True)
        self._thread.start()

    def join(self) -> None:
        """Wait for the compilation, if one was started."""
        if self._thread is not None:
            self._thread.join()
            self._thread = None

